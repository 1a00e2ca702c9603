--- Test helpers: the gateway emulator (start, stop by PID, log, faults),
-- its accounts, clients pointed at it, and checks for leaked secrets.
-- The emulator is driven with the curl command line, never with the
-- project's own HTTP code, so a bug there cannot hide itself.
local assert = require("luassert")
local cjson = require("cjson.safe")
local iot = require("aliyun.iot")

local helpers = {}

--- math.type where it exists (5.3+); on 5.1/5.2/LuaJIT, where every number is
-- a double, "integer" for an integral number, else "float" (nil for non-numbers).
helpers.math_type = math.type or function(v)
  if type(v) ~= "number" then return nil end
  return (v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge) and "integer" or "float"
end

helpers.accounts = dofile("spec/emulator/accounts.lua")
helpers.jobs = dofile("spec/emulator/jobs.lua")

local function account(kind, n)
  local i = 0
  for _, a in ipairs(helpers.accounts) do
    if a.kind == kind and not a.inactive then
      i = i + 1
      if i == (n or 1) then return a end
    end
  end
  error("no emulator account of kind " .. kind)
end
helpers.ak = account("ak", 1)
helpers.ak2 = account("ak", 2)
helpers.sts = account("sts", 1)
for _, a in ipairs(helpers.accounts) do
  if a.inactive then helpers.inactive = a end
end

--- Everything an iterator yields, as a list.
function helpers.collect(iter)
  local list = {}
  for item in iter do list[#list + 1] = item end
  return list
end

--- {1, 2, ..., n}
function helpers.range(n)
  local t = {}
  for i = 1, n do t[i] = i end
  return t
end

--- Every secret the emulator knows, to look for in any output.
function helpers.all_secrets()
  local list = {}
  for _, a in ipairs(helpers.accounts) do
    list[#list + 1] = a.access_key_secret
    if a.security_token then list[#list + 1] = a.security_token end
    if a.expired_token then list[#list + 1] = a.expired_token end
  end
  return list
end

local function sh(cmd)
  local f = assert(io.popen(cmd, "r"))
  local out = f:read("*a") -- "*a": Lua 5.1/LuaJIT need the star
  local ok, _, code = f:close()
  return out, ok, code
end

local Emulator = {}
Emulator.__index = Emulator

function Emulator:control(method, path, body)
  local cmd = string.format("curl -sS -X %s %s %s/__emulator/%s", method,
    body and ("-H 'Content-Type: application/json' --data-binary '" .. body .. "'") or "",
    self.url, path)
  local out, ok = sh(cmd)
  assert(ok, "emulator control request failed: " .. cmd)
  return out
end

function Emulator:log()
  local entries = assert(cjson.decode(self:control("GET", "log")))
  return entries
end

function Emulator:reset() self:control("POST", "reset") end

function Emulator:faults(config)
  self:control("POST", "faults", assert(cjson.encode(config)))
end

function Emulator:stop()
  if self.pid then
    sh(string.format("spec/emulator/stop %s %s", self.pid, self.dir))
    self.pid = nil
  end
end

--- Start an emulator on a free loopback port. Stop it with emu:stop().
function helpers.start_emulator()
  local out, ok = sh("spec/emulator/start")
  local port, pid, dir = out:match("(%d+) (%d+) (%S+)")
  assert(ok and port, "emulator did not start: " .. tostring(out))
  return setmetatable({ port = tonumber(port), pid = pid, dir = dir,
                        url = "http://127.0.0.1:" .. port }, Emulator)
end

-- ---- A throwaway redis-server (spec/redis/start, stopped by PID) ----------

local Redis = {}
Redis.__index = Redis

local function start_redis_server(env)
  local parts = {}
  for k, v in pairs(env) do parts[#parts + 1] = string.format("%s='%s'", k, v) end
  local out, ok = sh("env " .. table.concat(parts, " ") .. " spec/redis/start")
  local port, pid, dir = out:match("(%d+) (%d+) (%S+)")
  assert(ok and port, "redis-server did not start: " .. tostring(out))
  return tonumber(port), pid, dir
end

--- Start a redis-server on a free loopback port. opts: password, debug
-- (allow DEBUG SLEEP). r.url is redis://[:password@]127.0.0.1:port/db.
function helpers.start_redis(opts)
  opts = opts or {}
  local r = setmetatable({ password = opts.password, debug = opts.debug }, Redis)
  r:start()
  return r
end

function Redis:start(port)
  local env = { REDIS_PORT = port, REDIS_PASSWORD = self.password, REDIS_DEBUG = self.debug and "1" or nil }
  self.port, self.pid, self.dir = start_redis_server(env)
  return self
end

--- The store URL, for database `db` (default 0) and an optional other password.
function Redis:url(db, password)
  password = password or self.password
  return string.format("redis://%s127.0.0.1:%d/%d", password and (":" .. password .. "@") or "",
    self.port, db or 0)
end

--- Stop it by PID ("KILL" for a crash); restart() brings it back on the same port.
function Redis:stop(signal)
  if self.pid then
    sh(string.format("spec/redis/stop %s %s %s", self.pid, self.dir, signal or "TERM"))
    self.pid = nil
  end
end

function Redis:restart() return self:start(self.port) end

--- redis-cli against it: the output of one command (arguments as a shell string).
function Redis:cli(args)
  local auth = self.password and string.format("REDISCLI_AUTH='%s' ", self.password) or ""
  return (sh(string.format("%sredis-cli -p %d %s 2>&1", auth, self.port, args)))
end

--- Give a describe block one emulator for all its tests: started in setup,
-- stopped by PID in teardown, its log and faults reset before each test.
-- `bind(emu, client)` receives it and, unless `client_opts` is false, a
-- client from helpers.client(emu, client_opts), closed in teardown.
function helpers.use_emulator(bind, client_opts)
  local busted = require("busted")
  local emu, client
  busted.setup(function()
    emu = helpers.start_emulator()
    if client_opts ~= false then client = helpers.client(emu, client_opts) end
    bind(emu, client)
  end)
  busted.teardown(function()
    if client then client:close() end
    if emu then emu:stop() end
  end)
  busted.before_each(function() emu:reset() end)
end

--- A client for the emulator with the first AK account, options merged in.
-- Retries and the rate limiter are off unless a spec asks for them, so each
-- spec sees the raw outcome of every request (the resilience specs turn them
-- on); a false override removes an option.
--- This process's id (for /proc/<pid>/...), read once from /proc/self.
function helpers.pid()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("*a"):match("^(%d+)")
  f:close()
  return pid
end

--- This process's resident set (VmRSS, kB; Linux). The file is opened and closed
-- here, not read with io.lines: a loop left at the VmRSS line would leave it open
-- until a collection, and LuaJIT may keep it reachable past one, so a spec that
-- counts open descriptors would see a leak of ours.
function helpers.rss_kib()
  local f = assert(io.open("/proc/self/status"))
  local status = f:read("*a")
  f:close()
  return tonumber(status:match("VmRSS:%s+(%d+) kB"))
end

local KEEP_FALSE = { ssl_verify = true, rate_limit = true, correct_clock_skew = true }
function helpers.client(emu, overrides)
  local opts = {
    endpoint = emu.url, region = "cn-shanghai",
    access_key_id = helpers.ak.access_key_id,
    access_key_secret = helpers.ak.access_key_secret,
    timeout = 10, connect_timeout = 2,
    max_retries = 0, rate_limit = false,
  }
  for k, v in pairs(overrides or {}) do
    if v == false and not KEEP_FALSE[k] then opts[k] = nil else opts[k] = v end
  end
  return assert(iot.new(opts))
end

--- Fail if any known secret appears in `text` (raw or percent-encoded).
function helpers.assert_no_secret(text)
  text = tostring(text)
  local core = require("aliyun.iot.core")
  for _, secret in ipairs(helpers.all_secrets()) do
    for _, form in ipairs({ secret, core.percent_encode(secret), core.percent_encode(core.percent_encode(secret)) }) do
      assert(not text:find(form, 1, true), "a secret leaked into: " .. text:gsub(form, "<SECRET>"))
    end
  end
end

--- Every request in the emulator's log was signed afresh: each carried a
-- nonce (V1 parameter or V3 header), and none was sent twice.
function helpers.assert_fresh_nonces(emu)
  local seen = {}
  for _, e in ipairs(emu:log()) do
    local nonce = e.headers and e.headers["x-acs-signature-nonce"] or e.params.SignatureNonce
    assert.is_string(nonce)
    assert.is_nil(seen[nonce], "nonce reused")
    seen[nonce] = true
  end
end

--- Check an error object: its shape, and that no secret is in it.
function helpers.assert_error(err, code)
  assert(type(err) == "table", "expected an error object, got " .. tostring(err))
  assert(require("aliyun.iot.core").is_error(err), "not an aliyun.iot error object")
  if code then assert.are.equal(code, err.code, tostring(err)) end
  assert.is_string(err.message)
  assert.is_boolean(err.retryable)
  helpers.assert_no_secret(tostring(err))
  for _, v in pairs(err) do helpers.assert_no_secret(v) end
  return err
end

--- Run a Lua snippet in a child interpreter with a given environment.
-- `env` maps names to values; false removes the variable.
function helpers.run_lua(code, env)
  -- env wants every -u before the first assignment.
  local unset, set = {}, {}
  for k, v in pairs(env or {}) do
    if v == false then unset[#unset + 1] = "-u " .. k
    else set[#set + 1] = string.format("%s='%s'", k, v) end
  end
  local parts = { "env", table.concat(unset, " "), table.concat(set, " ") }
  local lua = os.getenv("LUA") or "lua5.4"
  local path = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;./spec/?.lua;;' LUA_CPATH='./"
    .. (os.getenv("BUILD_DIR") or "build") .. "/?.so;;'"
  local script = os.tmpname()
  local f = assert(io.open(script, "w"))
  f:write(code)
  f:close()
  local out, ok = sh(string.format("%s %s %s %s 2>&1", table.concat(parts, " "), path, lua, script))
  os.remove(script)
  return out, ok
end

return helpers
