-- The limiter's Redis store against a real redis-server (spec/redis/start,
-- on a free loopback port, stopped by PID): the URL, the C core's hiredis
-- connection, the GCRA script, NOSCRIPT, the fallback when Redis fails, and
-- iot.new's options. Several machines sharing one budget, OpenResty and
-- Redis stopped mid-listing are scripts/redis-suite's.
local helpers = require("helpers")
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local limiter = require("aliyun.iot.limiter")
local redis = require("aliyun.iot.limiter.redis")
local fallback = require("aliyun.iot.limiter.fallback")
local local_store = require("aliyun.iot.limiter.local_store")
local hiredis = require("aliyun.iot.transport.hiredis")

local PASSWORD = "s3cr3t-p@ss-do-not-leak"
local INTERVAL = 1 / 10 + limiter.SPACING_MARGIN

local function config_of(url, timeout)
  local config = assert(redis.parse_url(url))
  config.timeout = timeout or 0.5
  return config
end

-- A store over a fresh connection, with its own state (as another machine would have).
local function store_for(url, peer)
  return redis.new(hiredis.new(config_of(url)), { name = redis.mask(url), state = { peers = {} }, peer = peer })
end

local function assert_no_password(text)
  text = tostring(text)
  assert(not text:find(PASSWORD, 1, true), "the password leaked into: " .. text)
  assert(not text:find("s3cr3t", 1, true), "part of the password leaked into: " .. text)
end

describe("redis:// URLs", function()
  it("parses host, port, password (percent-decoded), database and IPv6", function()
    assert.are.same({ host = "10.0.0.5", port = 6380, password = "a@b", db = 3, name = "redis://:***@10.0.0.5:6380/3" },
      redis.parse_url("redis://:a%40b@10.0.0.5:6380/3"))
    assert.are.same({ host = "cache.internal", port = 6379, db = 0, name = "redis://cache.internal" },
      redis.parse_url("redis://cache.internal"))
    assert.are.same({ host = "::1", port = 7000, db = 1, name = "redis://[::1]:7000/1" },
      redis.parse_url("redis://[::1]:7000/1"))
    -- An @ inside the password needs no escaping: the host starts after the last one.
    assert.are.equal("p@ss", redis.parse_url("redis://:p@ss@h:1").password)
  end)

  it("refuses what it cannot use, naming the URL with its password masked", function()
    for _, url in ipairs({ "http://h:1", "redis://user:" .. PASSWORD .. "@h:1", "redis://" .. PASSWORD .. "@h:1",
                           "redis://:" .. PASSWORD .. "@h:99999", "redis://:" .. PASSWORD .. "@h:1/x", "redis://" }) do
      local config, err = redis.parse_url(url)
      assert.is_nil(config, url)
      assert.is_string(err)
      assert_no_password(err)
    end
    assert.are.equal("redis://:***@h:1/2", redis.mask("redis://:" .. PASSWORD .. "@h:1/2"))
  end)
end)

describe("with a real Redis", function()
  local server

  setup(function() server = helpers.start_redis{ password = PASSWORD, debug = true } end)
  teardown(function() if server then server:stop() end end)
  before_each(function()
    if not server.pid then server:restart() end
    server:cli("FLUSHALL")
  end)

  describe("the C core's connection (aliyun.iot.Redis)", function()
    it("connects, authenticates, selects, loads a script and calls it by SHA", function()
      local r = assert(core.redis_connect("127.0.0.1", server.port, 0.5, 0.5))
      assert.are.equal("aliyun.iot.Redis (127.0.0.1:" .. server.port .. ")", tostring(r))
      local _, noauth = r:script_load("return 1")
      assert.are.equal("NOAUTH", helpers.assert_error(noauth, "SDK.RedisError").redis_error)
      assert.is_true(r:auth(PASSWORD))
      assert.is_true(r:select(5))
      local sha = assert(r:script_load("return { KEYS[1], tonumber(ARGV[1]) + 1, redis.call('GET', 'nothing') }"))
      assert.are.same({ "k", 42, false }, r:evalsha(sha, 1, "k", 41))
      local missing, err = r:evalsha(string.rep("0", 40), 0)
      assert.is_nil(missing)
      assert.are.equal("NOSCRIPT", helpers.assert_error(err, "SDK.RedisError").redis_error)
      assert.is_false(err.retryable)
      r:close()
      r:close()
      assert.are.equal("aliyun.iot.Redis (closed)", tostring(r))
      assert.has_error(function() r:select(1) end, "attempt to use a closed Redis connection")
    end)

    it("says WRONGPASS without the password it was given", function()
      local r = assert(core.redis_connect("127.0.0.1", server.port, 0.5))
      local ok, err = r:auth("not-" .. PASSWORD)
      assert.is_nil(ok)
      assert.are.equal("WRONGPASS", helpers.assert_error(err, "SDK.RedisError").redis_error)
      assert_no_password(err)
      r:close()
    end)

    it("fails with SDK.ConnectionFailed where nothing listens, SDK.Timeout when Redis is slow", function()
      local r, err = core.redis_connect("127.0.0.1", 1, 0.5)
      assert.is_nil(r)
      helpers.assert_error(err, "SDK.ConnectionFailed")
      r = assert(core.redis_connect("127.0.0.1", server.port, 0.5, 0.2))
      assert(r:auth(PASSWORD))
      local f = io.popen(string.format("REDISCLI_AUTH='%s' redis-cli -p %d DEBUG SLEEP 0.8", PASSWORD, server.port))
      core.sleep(0.1)
      local t0 = core.monotonic()
      local reply, terr = r:script_load("return 1")
      local took = core.monotonic() - t0
      f:close()
      assert.is_nil(reply)
      helpers.assert_error(terr, "SDK.Timeout")
      assert.truthy(took < 0.7, "the command timeout was not honoured: " .. took) -- DEBUG SLEEP 0.8
      -- hiredis cannot use a context after that: the same error, at once.
      local again, aerr = r:script_load("return 1")
      assert.is_nil(again)
      helpers.assert_error(aerr, "SDK.Timeout")
      r:close()
      assert.has_error(function() core.redis_connect("127.0.0.1", 0, 1) end)
      assert.has_error(function() core.redis_connect("127.0.0.1", 6379, 0) end)
    end)
  end)

  describe("the store", function()
    it("takes a slot or says how long to wait, as the local store does, on Redis's clock #realtime", function()
      local store = store_for(server:url(2), "a")
      assert.are.equal(0, store:take("K1", 0, INTERVAL, 0))
      local wait = store:take("K1", 0, INTERVAL, 0)
      assert.truthy(wait > INTERVAL - 0.02 and wait <= INTERVAL, "wait " .. wait)
      core.sleep(wait + 0.002)
      assert.are.equal(0, store:take("K1", 0, INTERVAL, 0))
      -- A tolerance of two intervals (burst 3): three at once, then a wait; like local_store.
      local here = local_store.new()
      for _ = 1, 3 do
        assert.are.equal(0, store:take("K2", 0, INTERVAL, 2 * INTERVAL))
        assert.are.equal(0, here:take("K2", 0, INTERVAL, 2 * INTERVAL))
      end
      assert.truthy(store:take("K2", 0, INTERVAL, 2 * INTERVAL) > 0)
      assert.truthy(here:take("K2", 0, INTERVAL, 2 * INTERVAL) > 0)
      -- Keys carry the hash tag; the TAT expires once it no longer matters; peers are counted.
      assert.truthy(server:cli("-n 2 KEYS '*'"):find("aliyun-iot:{K1}:tat", 1, true))
      local pttl = tonumber(server:cli("-n 2 PTTL aliyun-iot:{K2}:tat"))
      assert.truthy(pttl > 0 and pttl <= 3 * INTERVAL * 1000 + 1, "PTTL " .. tostring(pttl))
      assert.are.equal(1, store:peers("K2"))
      -- The store and its client name Redis with the password masked.
      assert.are.equal("aliyun.iot.limiter.redis (redis://:***@127.0.0.1:" .. server.port .. "/2)", tostring(store))
      assert.are.equal("aliyun.iot.HiredisClient (redis://:***@127.0.0.1:" .. server.port .. "/2)",
        tostring(store.client))
      store:close()
    end)

    it("is one bucket for every store of a key, whatever their connection", function()
      -- 5 s apart: whatever the machine's speed, b asks within a's interval.
      local a, b = store_for(server:url(), "machine-a"), store_for(server:url(), "machine-b")
      assert.are.equal(0, a:take("shared", 0, 5, 0))
      assert.truthy(b:take("shared", 0, 5, 0) > 4)
      assert.are.equal(0, b:take("other key", 0, 5, 0))
      assert.are.equal(2, b:peers("shared"))
      -- A Redis that lost its data (restarted) says 1 peer: the store keeps the 2 it saw.
      server:cli("FLUSHALL")
      assert.are.equal(0, b:take("shared", 0, 5, 0))
      assert.are.equal(2, b:peers("shared"))
      a:close()
      b:close()
    end)

    it("loads the script again when Redis answers NOSCRIPT (restarted, or its cache flushed)", function()
      local store = store_for(server:url(), "a")
      assert.are.equal(0, store:take("K", 0, INTERVAL, 0))
      local sha = store.state.sha
      assert.matches("^%x+$", sha)
      server:cli("SCRIPT FLUSH")
      core.sleep(INTERVAL)
      assert.are.equal(0, store:take("K", 0, INTERVAL, 0))
      assert.are.equal(sha, store.state.sha)
      store:close()
    end)
  end)

  describe("iot.new{ rate_limit_store = ... }", function()
    local emu
    helpers.use_emulator(function(e) emu = e end, false)

    local function client(opts)
      opts.rate_limit = opts.rate_limit or 10
      return helpers.client(emu, opts)
    end

    it("spaces requests through Redis and says so in rate_limit_info, never the password", function()
      local c = client{ rate_limit_store = server:url(1) }
      for _ = 1, 3 do assert(c:ListOTATaskByJob{ JobId = "job-1" }) end
      local info = c:rate_limit_info()
      assert.are.equal("shared", info.using)
      assert.truthy(info.asked.shared >= 3)
      assert.are.equal(redis.mask(server:url(1)), info.store)
      assert.truthy(server:cli("-n 1 KEYS '*'"):find(helpers.ak.access_key_id, 1, true))
      assert_no_password(tostring(c))
      for _, v in pairs(info) do assert_no_password(v) end
      c:close()
    end)

    it("validates its options; a bad URL's message masks the password", function()
      local keys = { endpoint = emu.url, access_key_id = "a", access_key_secret = "b" }
      local function new(opts)
        for k, v in pairs(keys) do opts[k] = v end
        return iot.new(opts)
      end
      local _, err = new{ rate_limit_store = "redis://:" .. PASSWORD .. "@h:0" }
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert_no_password(err)
      for _, bad in ipairs({ { rate_limit_store = 5 }, { rate_limit_share = 0 }, { rate_limit_share = 1.5 },
                             { rate_limit_store_required = "yes" }, { rate_limit_store_timeout = -1 },
                             { logger = 1 } }) do
        helpers.assert_error(select(2, new(bad)), "SDK.InvalidArgument")
      end
      assert(new{ rate_limit_store = server:url(), rate_limit = false }) -- no limiter: the store is not used
    end)

    it("falls back to the local bucket at a share of the budget, warns once, and comes back to Redis #realtime",
      function()
      local lines = {}
      local old_retry = iot.defaults.rate_limit_store_retry
      iot.defaults.rate_limit_store_retry = 0.3
      local c = client{ rate_limit_store = server:url(4), rate_limit_share = 0.5,
                        logger = function(level, message) lines[#lines + 1] = level .. ": " .. message end }
      iot.defaults.rate_limit_store_retry = old_retry
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      server:stop("KILL")
      local t0 = core.monotonic()
      for _ = 1, 4 do assert(c:ListOTATaskByJob{ JobId = "job-1" }) end
      local elapsed = core.monotonic() - t0
      -- 5/s instead of 10/s: the 4 requests after the first need >= 3 intervals of 0.21 s.
      assert.truthy(elapsed >= 3 * 2 * INTERVAL - 0.02, "not at half the budget: " .. elapsed)
      local info = c:rate_limit_info()
      assert.are.equal("local", info.using)
      assert.are.equal(1, #lines, table.concat(lines, "\n"))
      assert.truthy(lines[1]:find("is unavailable", 1, true) and lines[1]:find("0.5 of the budget", 1, true))
      assert.truthy(info.failures >= 1 and info.failures <= 3, "Redis was retried too often: " .. info.failures)
      server:restart()
      core.sleep(0.35)
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      info = c:rate_limit_info()
      assert.are.equal("shared", info.using)
      assert.are.equal(1, info.recoveries)
      assert.truthy(lines[2]:find("answers again", 1, true), tostring(lines[2]))
      for _, line in ipairs(lines) do assert_no_password(line) end
      c:close()
    end)

    it("fails with SDK.RateLimitStoreUnavailable when the store is required, sending nothing", function()
      server:stop()
      local c = client{ rate_limit_store = server:url(6), rate_limit_store_required = true, logger = function() end }
      local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.RateLimitStoreUnavailable")
      assert.truthy(err.message:find(redis.mask(server:url(6)), 1, true), err.message)
      assert_no_password(err)
      assert.are.equal(0, #emu:log())
      c:close()
    end)

    it("with a wrong password: a warning (default) or a clear error (required), no password anywhere", function()
      local wrong = server:url(0, "wrong-" .. PASSWORD)
      local lines = {}
      local c = client{ rate_limit_store = wrong, logger = function(_, m) lines[#lines + 1] = m end }
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      assert.are.equal(1, #lines)
      assert.truthy(lines[1]:find("WRONGPASS", 1, true), lines[1])
      assert_no_password(lines[1])
      assert_no_password(c:rate_limit_info().last_error)
      c:close()
      local strict = client{ rate_limit_store = wrong, rate_limit_store_required = true, logger = function() end }
      local page, err = strict:ListOTATaskByJob{ JobId = "job-1" }
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.RateLimitStoreUnavailable")
      assert.truthy(err.message:find("WRONGPASS", 1, true), err.message)
      assert_no_password(err)
      strict:close()
    end)

    it("reads ALIYUN_IOT_RATE_LIMIT_STORE; rate_limit_store = false ignores it", function()
      local out = helpers.run_lua([[
        local iot = require("aliyun.iot")
        local c = assert(iot.new{ endpoint = "http://127.0.0.1:9", access_key_id = "a", access_key_secret = "b" })
        local off = assert(iot.new{ endpoint = "http://127.0.0.1:9", access_key_id = "a", access_key_secret = "b",
                                    rate_limit_store = false })
        print(c:rate_limit_info().store, off:rate_limit_info().store)
      ]], { ALIYUN_IOT_RATE_LIMIT_STORE = server:url(7) })
      assert.are.equal(redis.mask(server:url(7)) .. "\tnil\n", out)
    end)
  end)
end)

describe("the fallback's policy", function()
  local function failing_primary()
    local p = { calls = 0, ok = false, seen = nil }
    function p.take()
      p.calls = p.calls + 1
      if p.ok then return 0 end
      return nil, require("aliyun.iot.errors").new("SDK.ConnectionFailed", "down")
    end
    function p.peers() return p.seen end
    return p
  end

  it("asks a failing primary at most once per retry interval, warns once a minute", function()
    local now, lines = 0, {}
    local p = failing_primary()
    local f = fallback.new{ primary = p, backup = local_store.new(), retry = 5, clock = function() return now end,
                            log = function(_, m) lines[#lines + 1] = m end, name = "redis://x" }
    for i = 1, 120 do
      now = i * 0.5
      f:take("K", now, INTERVAL, 0)
    end
    assert.are.equal(12, p.calls)      -- 60 s at one try per 5 s
    assert.are.equal(1, #lines)        -- the second warning is due at 60.5 s
    assert.are.equal(0.25, f:share_of("K"))
    p.seen = 2
    assert.are.equal(0.5, f:share_of("K"))
    p.ok = true
    now = 70
    assert.are.equal(0, f:take("K", now, INTERVAL, 0))
    assert.are.equal(2, #lines)
    assert.truthy(lines[2]:find("answers again", 1, true))
  end)
end)
