-- Hardening: every failure an error table, no secret in any field, bounded
-- memory, options that cannot misfire. Each case is something a hostile
-- server (the emulator's echo_secrets, date_year, retry_after faults) or a
-- careless input did to the library before.
local helpers = require("helpers")
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local request = require("aliyun.iot.request")
local pager = require("aliyun.iot.pager")
local errors = require("aliyun.iot.errors")
local cjson = require("cjson.safe")

-- No form of any emulator secret or token in `text`: raw, percent-encoded
-- (upper or lower hex, + for space) once or twice, nor any cut of 8 or more.
local function assert_no_secret_anywhere(text)
  text = tostring(text)
  for _, secret in ipairs(helpers.all_secrets()) do
    local once = core.percent_encode(secret)
    for _, form in ipairs({ secret, once, once:lower(), once:gsub("%%20", "+"), core.percent_encode(once) }) do
      for i = 1, #form - 7 do
        local cut = form:sub(i, i + 7)
        assert(not text:find(cut, 1, true), "a cut of a secret leaked into: " .. text)
      end
    end
  end
end

local function assert_clean_error(err)
  helpers.assert_error(err)
  assert_no_secret_anywhere(tostring(err))
  for k, v in pairs(err) do
    if type(v) == "string" then assert_no_secret_anywhere(v) else assert(k ~= "cause" or core.is_error(v)) end
  end
end

describe("hardening", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  describe("options that cannot misfire", function()
    it("iot.new refuses an unknown option with a hint, before any I/O", function()
      local c, err = iot.new{ endpoint = emu.url, access_key_id = "a", access_key_secret = "b", timout = 3 }
      assert.is_nil(c)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.truthy(err.message:find("did you mean timeout?", 1, true), err.message)
    end)

    it("client:call refuses dryRun (and dryrun): the write is neither sent nor executed", function()
      for _, key in ipairs({ "dryRun", "dryrun", "dry-run" }) do
        local r, err = client:call("CancelOTATaskByJob", { JobId = "job-100", CancelQueuedTask = true },
          { [key] = true })
        assert.is_nil(r)
        helpers.assert_error(err, "SDK.InvalidArgument")
        assert.truthy(err.message:find("did you mean dry_run?", 1, true), err.message)
      end
      assert.are.equal(0, #emu:log())
      local executions = cjson.decode(emu:control("GET", "executions"))
      assert.is_nil((executions.CancelOTATaskByJob or {}).calls)
    end)

    it("tasks{} refuses a misspelt pager option with a hint", function()
      local ok, err = pcall(client.tasks, client, { JobId = "job-10", Concurrency = 2 })
      assert.is_false(ok)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.truthy(err.message:find("did you mean concurrency?", 1, true), err.message)
    end)
  end)

  describe("every failure an error table", function()
    it("counts that are not counts (1e400, 100000.5, 2^63) are SDK.BadResponse", function()
      for _, total in ipairs({ math.huge, 100000.5, 2 ^ 63, -1 }) do
        local ok, err = pager.check_page({ Total = total, tasks = {} }, { CurrentPage = 1 })
        assert.is_nil(ok)
        helpers.assert_error(err, "SDK.BadResponse")
      end
    end)

    it("a request libcurl refuses at concurrency > 1 (an over-long URL) is an error table", function()
      local long = string.rep("d", 200000)
      local names = {}
      for i = 1, 120 do names[i] = long .. i end
      local ok, err = pcall(helpers.collect, client:tasks{ JobId = "job-100", DeviceNames = names, concurrency = 4 })
      assert.is_false(ok)
      helpers.assert_error(err)
    end)

    it("keys pasted with a CR are trimmed; a control character inside one is a clear error", function()
      local c = helpers.client(emu, { access_key_secret = helpers.ak.access_key_secret .. "\r" })
      assert(c:ListOTATaskByJob{ JobId = "job-10" })
      c:close()
      c = helpers.client(emu, { access_key_secret = "Emu\1Secret" })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.truthy(err.message:find("access_key_secret", 1, true))
      c:close()
    end)

    it("a method called with a dot names the call", function()
      local ok, err = pcall(client.ListOTATaskByJob, { JobId = "job-10" })
      assert.is_false(ok)
      assert.truthy(tostring(err):find("ListOTATaskByJob", 1, true), tostring(err))
    end)
  end)

  describe("no secret in any field", function()
    it("a server echoing key and token in every field it controls leaks nothing (AK and STS)", function()
      emu:faults{ echo_secrets = 1 }
      for _, account in ipairs({ helpers.ak, helpers.sts }) do
        local c = helpers.client(emu, { access_key_id = account.access_key_id,
          access_key_secret = account.access_key_secret, security_token = account.security_token or false })
        local r, err = c:call("QueryOTAJob", { JobId = "job-10" })
        assert.is_nil(r)
        assert.are.equal("Echo.Secrets", err.code)
        assert_clean_error(err)
        assert.truthy(err.request_id:find("RID-", 1, true))
        local ok, raised = pcall(helpers.collect, c:tasks{ JobId = "job-10" })
        assert.is_false(ok)
        assert_clean_error(raised)
        assert_no_secret_anywhere(tostring(c))
        c:close()
      end
    end)

    it("the CLI shows the server's text with its control characters replaced", function()
      emu:faults{ echo_secrets = 1 }
      local out = helpers.run_lua([[
        local cli = require("aliyun.iot.cli")
        local err_lines = {}
        local sink = { write = function(self, ...) for _, s in ipairs({ ... }) do err_lines[#err_lines + 1] = s end
                       return self end, flush = function() end }
        local code = cli.main({ "--endpoint", os.getenv("EMU"), "--region", "cn-shanghai", "tasks", "job-10" },
          { stdout = sink, stderr = sink })
        io.write(code, "\n", table.concat(err_lines))
      ]], { EMU = emu.url, ALIBABA_CLOUD_ACCESS_KEY_ID = helpers.ak.access_key_id,
            ALIBABA_CLOUD_ACCESS_KEY_SECRET = helpers.ak.access_key_secret })
      assert.truthy(out:find("^1\n"), out)
      assert.is_nil(out:find("\27", 1, true), "an escape sequence reached the terminal")
      assert.is_nil(out:find("\7", 1, true))
      assert_no_secret_anywhere(out)
    end)

    it("a malformed proxy URL with a password: a clear error without the password, not retryable", function()
      local c, err = iot.new{ endpoint = emu.url, access_key_id = "a", access_key_secret = "b",
                              proxy = "http://u:Pr0xyPassw0rd@[::1" }
      assert.is_nil(c)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.is_false(err.retryable)
      assert.is_nil(tostring(err):find("Pr0xyPassw0rd", 1, true))
    end)

    it("a proxy password is masked when there is no token (a hole before it in the secrets)", function()
      -- request.lua redacts with { secret, token, proxy_password }; without a
      -- token the list has a hole, which must not end it.
      local err = errors.new("X", "via http://u:Pr0xyPassw0rd@proxy:3128 and K3ySecretValue")
      errors.redact(err, { "K3ySecretValue", nil, "Pr0xyPassw0rd" })
      assert.are.equal("via http://u:***@proxy:3128 and ***", err.message)
    end)

    it("redaction keyed by its secrets: the same set again, then other sets, mask each its own", function()
      for round = 1, 2 do
        for n = 1, 6 do -- more sets than the cache holds
          local secret, other = string.rep(string.char(64 + n), 10), string.rep(string.char(65 + n), 10)
          local err = errors.new("X", "a " .. secret .. " and " .. other .. " z")
          errors.redact(err, { secret })
          assert.are.equal("a *** and " .. other .. " z", err.message, "round " .. round)
        end
      end
      assert.are.equal("x *** y", iot.scrub("x 0therS3cret y", { "0therS3cret" }))
    end)
  end)

  it("a Date header in year 99999 is reported, never adopted: the client stays usable", function()
    emu:faults{ date_year = 99999 }
    local skewed = helpers.client(emu, { correct_clock_skew = true, clock = function() return os.time() - 7200 end })
    local page, err = skewed:ListOTATaskByJob{ JobId = "job-10" }
    assert.is_nil(page)
    helpers.assert_error(err, "InvalidTimeStamp.Expired")
    assert.is_nil(err.clock_offset)
    assert.truthy(err.message:find("implausible", 1, true), err.message)
    -- Nothing bad reached the signer: a dry run still signs.
    assert(skewed:call("QueryOTAJob", { JobId = "job-10" }, { dry_run = true }))
    skewed:close()
  end)

  it("holds a listing's bodies in flight to max_inflight_bytes, whatever its concurrency", function()
    emu:faults{ latency_ms = 200 }
    local bounded = helpers.client(emu, { max_body_bytes = 1024 * 1024, max_inflight_bytes = 2 * 1024 * 1024 })
    local t0 = core.monotonic()
    local tasks = helpers.collect(bounded:tasks{ JobId = "job-1000", PageSize = 100, concurrency = 64 })
    local elapsed = core.monotonic() - t0
    bounded:close()
    assert.are.equal(1000, #tasks)
    -- 10 pages at 200 ms each, at most 2 in flight: page 1, then 9 in pairs.
    assert.truthy(elapsed >= 5 * 0.2, "more than 2 bodies were in flight: " .. elapsed .. " s")
  end)

  describe("waits the server asks for", function()
    it("x-acs-retry-after (ms) sets the wait before the retry", function()
      emu:faults{ retry_after_once_every = 1, retry_after_ms = 1200 }
      local c = helpers.client(emu, { max_retries = 2 })
      local t0 = core.monotonic()
      assert(c:ListOTATaskByJob{ JobId = "job-10", CurrentPage = 1, PageSize = 10 })
      assert.truthy(core.monotonic() - t0 >= 1.1)
      c:close()
    end)

    it("Retry-After (seconds) too, and never past the deadline", function()
      emu:faults{ retry_after_every = 1, retry_after_s = 2 }
      local c = helpers.client(emu, { max_retries = 3, deadline = 1 })
      local t0 = core.monotonic()
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      assert.is_nil(page)
      helpers.assert_error(err, "ServiceUnavailable")
      assert.truthy(err.message:find("deadline", 1, true), err.message)
      assert.truthy(core.monotonic() - t0 < 1, "waited past the deadline")
      c:close()
    end)
  end)

  it("a region endpoint that does not resolve is final and says to check the region", function()
    -- The attempt tail over what a transport reports for a name that did not
    -- resolve (the suite sends no DNS query off this machine).
    local state = { region = "xx-nowhere-1", region_endpoint = true, max_retries = 3 }
    local call = request.call(state, "QueryOTAJob", {}, core.decode)
    call.attempt, call.started = 1, 0
    local err = errors.new(errors.codes.CONNECTION_FAILED, "Could not resolve host: iot.xx-nowhere-1.aliyuncs.com",
      { request_sent = false, name_not_resolved = true })
    local value, final, delay = request.settle(call, { access_key_secret = "s" }, { err = err }, 0)
    assert.is_nil(value)
    assert.is_nil(delay)
    assert.is_false(final.retryable)
    assert.truthy(final.message:find("check the region", 1, true), final.message)
  end)
end)
