--- The Redis client of the limiter's shared store in plain Lua and embedded
-- hosts (see aliyun.iot.limiter.redis for what a client offers): the C
-- core's hiredis connection (aliyun.iot.Redis), one per client, made on the
-- first call with AUTH and SELECT as the store's URL says. After a network
-- failure the connection is dropped and the next call makes a new one; how
-- often that may happen is the limiter's fallback's business.
--
-- Blocking: inside nginx it serves only the phases without cosockets
-- (transport.resty_redis uses lua-resty-redis everywhere else).
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")

local Client = require("aliyun.iot.limiter.redis").client_class("aliyun.iot.HiredisClient")

--- hiredis.new(config): config from limiter.redis.parse_url, plus timeout
-- (seconds, for connecting and for each command).
local hiredis = { new = Client.new }

-- The password is never in a message the core makes; this makes sure.
local function redacted(self, err)
  return errors.redact(err, { self.config.password })
end

local function connect(config)
  local conn, err = core.redis_connect(config.host, config.port, config.timeout, config.timeout)
  if not conn then return nil, err end
  local ok = true
  if config.password then ok, err = conn:auth(config.password) end
  if ok and config.db ~= 0 then ok, err = conn:select(config.db) end
  if not ok then
    conn:close()
    return nil, err
  end
  return conn
end

function Client:run(method, ...)
  local conn = self.conn
  if not conn then
    local cerr
    conn, cerr = connect(self.config)
    if not conn then return nil, redacted(self, cerr) end
    self.conn = conn
  end
  local reply, err = conn[method](conn, ...)
  if reply == nil then
    -- An error reply leaves the connection usable; anything else does not.
    if not err.redis_error then self:close() end
    return nil, redacted(self, err)
  end
  return reply
end

--- Close the connection (the next call makes a new one). Idempotent.
function Client:close()
  if self.conn then
    self.conn:close()
    self.conn = nil
  end
end

return hiredis
