--- The Redis client of the limiter's shared store inside OpenResty (see
-- aliyun.iot.limiter.redis for what a client offers): lua-resty-redis over
-- cosockets, so asking Redis yields to the event loop. Each call takes a
-- connection from nginx's pool for this Redis and gives it back with
-- set_keepalive; AUTH and SELECT run only on a new connection. Where the
-- phase has no cosockets (init_worker, log, ...) the call goes through the C
-- core's hiredis client instead, as the resty transport falls back to libcurl.
--
-- lua-resty-redis is found under its own name (resty.redis) or Debian's
-- (nginx.redis, package lua-nginx-redis).
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")
local resty = require("aliyun.iot.transport.resty")

local codes = errors.codes
local pcall, rawget, tostring, type = pcall, rawget, tostring, type
local floor = math.floor
local find, format, match = string.find, string.format, string.match


local driver
local function load_driver()
  if driver == nil then
    driver = false
    for _, name in ipairs({ "resty.redis", "nginx.redis" }) do
      local ok, m = pcall(require, name)
      if ok and type(m) == "table" then
        driver = m
        break
      end
    end
  end
  return driver or nil
end

local Client = require("aliyun.iot.limiter.redis").client_class("aliyun.iot.RestyRedisClient")

--- resty_redis.new(config): config from limiter.redis.parse_url, plus
-- timeout (seconds), and optionally keepalive_timeout (s) and pool_size.
local resty_redis = { new = Client.new }

local function fail(self, code, what, fields)
  local config = self.config
  local e = errors.new(code, format("Redis at %s:%d%s", config.host, config.port, what), fields)
  return nil, errors.redact(e, { config.password })
end

local function network_error(self, err)
  err = tostring(err)
  if find(err, "timeout", 1, true) then return fail(self, codes.TIMEOUT, ": timed out (" .. err .. ")") end
  return fail(self, codes.CONNECTION_FAILED, ": " .. err)
end

local function reply_error(self, err)
  return fail(self, codes.REDIS_ERROR, " answered: " .. tostring(err), { redis_error = match(tostring(err), "^(%S+)") })
end

-- Pools are per Redis, database and password (a hash of it: pool names are
-- nginx's, and nginx may show them).
local function pool_name(config)
  local ngx = rawget(_G, "ngx")
  return format("aliyun-iot-redis:%s:%d:%d:%s", config.host, config.port, config.db,
    config.password and ngx.md5(config.password) or "")
end

-- Run `command` on a pooled connection. Returns reply | nil, err.
function Client:run(command, ...)
  if not resty.cosockets_available() then
    local blocking = self.blocking
    if not blocking then
      blocking = require("aliyun.iot.transport.hiredis").new(self.config)
      self.blocking = blocking
    end
    return blocking[command](blocking, ...)
  end
  local lib = load_driver()
  if not lib then
    return fail(self, codes.TRANSPORT_ERROR, ": lua-resty-redis is not installed "
      .. "(Debian: apt-get install lua-nginx-redis)", { retryable = false })
  end
  local config = self.config
  local red = lib:new()
  local ms = floor(config.timeout * 1000) + 1
  if red.set_timeouts then red:set_timeouts(ms, ms, ms) else red:set_timeout(ms) end
  local ok, err = red:connect(config.host, config.port, { pool = pool_name(config) })
  if not ok then return network_error(self, err) end
  if red:get_reused_times() == 0 then
    if config.password then ok, err = red:auth(config.password) end
    if ok and config.db ~= 0 then ok, err = red:select(config.db) end
    if not ok then
      red:close()
      if ok == nil then return network_error(self, err) end
      return reply_error(self, err)
    end
  end
  local reply
  if command == "script_load" then reply, err = red:script("load", ...) else reply, err = red[command](red, ...) end
  if reply == nil then
    red:close()
    return network_error(self, err)
  end
  red:set_keepalive(floor((config.keepalive_timeout or defaults.keepalive_timeout) * 1000),
    config.pool_size or defaults.pool_size)
  if reply == false then return reply_error(self, err) end -- lua-resty-redis: false, message
  return reply
end

--- Pooled connections belong to nginx; this closes the blocking fallback's, if any.
function Client:close()
  if self.blocking then self.blocking:close() end
end

return resty_redis
