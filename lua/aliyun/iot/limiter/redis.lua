--- The limiter's store in Redis, so that every machine of an account draws
-- from one bucket per key (the service's quota is per account, not per
-- machine). One atomic script, GCRA as redis-gcra does it, takes a slot or
-- says how long to wait, with exactly the local store's semantics; its clock
-- is Redis's TIME, so machines whose clocks disagree still agree on the
-- spacing (the caller's `now` is not used). For limiter key K it keeps
--   aliyun-iot:{K}:tat     the theoretical arrival time, in microseconds
--                          (SET ... PX: it expires when it no longer matters)
--   aliyun-iot:{K}:peers   who took or asked for a slot of K in the last
--                          PEER_WINDOW seconds (a sorted set, id -> last seen)
-- Both carry the hash tag {K}: in a Redis Cluster they live on one node, as a
-- script that touches two keys needs. The key is an opaque string.
--
-- This module knows no nginx and no hiredis. It is handed a "redis client":
-- any object with
--   client:script_load(script)                    -> sha | nil, err
--   client:evalsha(sha, numkeys, key..., arg...)  -> reply | nil, err
-- where err is an error table, with redis_error = "NOSCRIPT" (the reply's
-- first word) for an error reply. Whoever knows the runtime makes it
-- (aliyun.iot.transport.redis_client: lua-resty-redis in OpenResty, the C
-- core's hiredis elsewhere). What happens when Redis fails is
-- aliyun.iot.limiter.fallback's business: here take() returns nil, err.
local errors = require("aliyun.iot.errors")

local os, setmetatable, tonumber, tostring, type = os, setmetatable, tonumber, tostring, type
local format, match, gsub, char = string.format, string.match, string.gsub, string.char
local floor = math.floor

local redis = {}

redis.DEFAULT_PORT = 6379
redis.PREFIX = "aliyun-iot"
-- Peers seen in this many seconds count towards the fallback's default share.
redis.PEER_WINDOW = 60

-- KEYS[1] the TAT, KEYS[2] the peers; ARGV: interval and tolerance (whole
-- microseconds), this peer's id, PEER_WINDOW in milliseconds.
-- Returns { 0 | microseconds to wait, number of peers }.
redis.SCRIPT = [[
if redis.replicate_commands then redis.replicate_commands() end
local interval, tolerance = tonumber(ARGV[1]), tonumber(ARGV[2])
local window = tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
redis.call('ZADD', KEYS[2], now, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window * 1000)
redis.call('PEXPIRE', KEYS[2], window)
local peers = redis.call('ZCARD', KEYS[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local wait = tat - tolerance - now
if wait > 0 then return { math.ceil(wait), peers } end
local next_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.max(1, math.ceil((next_tat - now) / 1000)))
return { 0, peers }
]]

-- ---- The store's address -------------------------------------------------

--- The URL with its password masked: redis://:***@host:port/db.
function redis.mask(url)
  url = tostring(url)
  local scheme, rest = match(url, "^(%a[%w+.-]*://)(.*)$")
  if not scheme then return (gsub(url, "^.*@", "***@")) end
  if not match(rest, "@") then return url end
  return scheme .. ":***@" .. match(rest, "^.*@(.*)$")
end

local function unescape(s)
  return (gsub(s, "%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

--- redis://[:password@]host[:port][/db] -> config | nil, message, where
-- config = { host, port, password (or nil), db, name (the masked URL) }.
-- The password may be percent-encoded (%40 for @); IPv6 hosts go in brackets.
function redis.parse_url(url)
  local name = redis.mask(url)
  local function bad(why) return nil, format("rate limit store %q: %s", name, why) end
  local rest = match(url, "^redis://(.*)$")
  if not rest then return bad("expected redis://[:password@]host:port[/db]") end
  local auth, hostpart = match(rest, "^(.*)@([^@]*)$")
  if not auth then hostpart = rest end
  local password
  if auth then
    local user, pw = match(auth, "^([^:]*):(.*)$")
    if not user then return bad("the password goes after a colon: redis://:password@host:port") end
    if user ~= "" then return bad("Redis ACL user names are not supported; use redis://:password@host:port") end
    password = unescape(pw)
    if password == "" then password = nil end
  end
  local hostport, db = match(hostpart, "^([^/]*)/?(%d*)/?$")
  if not hostport then return bad("the database must be a number: redis://host:port/0") end
  local host, port = match(hostport, "^%[([%x:.]+)%]:?(%d*)$")
  if not host then host, port = match(hostport, "^([%w.-]+):?(%d*)$") end
  if not host then return bad("expected a host name or address") end
  port = port ~= "" and tonumber(port) or redis.DEFAULT_PORT
  if port < 1 or port > 65535 then return bad("port out of range") end
  return { host = host, port = port, password = password, db = tonumber(db) or 0, name = name }
end

-- What the stores of one Redis (one URL) in this process know together: the
-- script's SHA, the peers last seen per key, and the fallback's state.
local states = {}

--- The state shared by every store of `url` in this process (per worker in nginx).
function redis.state_for(url)
  local state = states[url]
  if not state then
    state = { peers = {} }
    states[url] = state
  end
  return state
end

--- The class of a redis client that a transport makes: `new(config)` (config
-- from parse_url, plus timeout), the interface's two methods over the
-- class's `run(self, command, ...)` (command "script_load" or "evalsha"),
-- and a tostring that names the store by its masked URL.
function redis.client_class(name)
  local class = { __name = name }
  class.__index = class
  function class.new(config) return setmetatable({ config = config }, class) end
  function class:script_load(script) return self:run("script_load", script) end
  function class:evalsha(sha, numkeys, ...) return self:run("evalsha", sha, numkeys, ...) end
  function class:__tostring() return name .. " (" .. self.config.name .. ")" end
  return class
end

-- ---- The store -----------------------------------------------------------

local RedisStore = {}
RedisStore.__index = RedisStore

--- redis.new(client, { name = masked URL, state = redis.state_for(url), peer = id, clock })
-- peer: this store's id among the peers (one per process, or per nginx where
-- the fallback is a shared dict): the fallback's default share is 1/peers.
-- clock: monotonic seconds (default os.time), to remember peer counts.
function redis.new(client, opts)
  opts = opts or {}
  return setmetatable({
    client = client, name = opts.name or "redis", state = opts.state or { peers = {} },
    peer = opts.peer or "anonymous", clock = opts.clock or os.time,
  }, RedisStore)
end

-- Keep the most peers seen in the last PEER_WINDOW seconds: a Redis that just
-- restarted has forgotten them, and the first machine back would see itself alone.
local function saw_peers(self, key, n)
  local peers, now = self.state.peers, self.clock()
  local last = peers[key]
  if not last or n >= last.n or now - last.at > redis.PEER_WINDOW then peers[key] = { n = n, at = now } end
end

local function micros(seconds) return format("%d", floor(seconds * 1e6 + 0.5)) end

local function load(self)
  local sha, err = self.client:script_load(redis.SCRIPT)
  if not sha then return nil, err end
  self.state.sha = sha
  return sha
end

-- limiter store interface: take(key, now, interval, tolerance) -> 0 | wait,
-- or nil, err when Redis cannot be asked.
function RedisStore:take(key, _now, interval, tolerance)
  local client, state = self.client, self.state
  local tat_key = format("%s:{%s}:tat", redis.PREFIX, key)
  local peers_key = format("%s:{%s}:peers", redis.PREFIX, key)
  local a1, a2, a4 = micros(interval), micros(tolerance), format("%d", redis.PEER_WINDOW * 1000)
  local reply, err
  if state.sha then
    reply, err = client:evalsha(state.sha, 2, tat_key, peers_key, a1, a2, self.peer, a4)
  end
  if not state.sha or (reply == nil and type(err) == "table" and err.redis_error == "NOSCRIPT") then
    -- The first call in this process, or Redis restarted or flushed its
    -- script cache: load the script, once, and call it by its SHA.
    local sha, lerr = load(self)
    if not sha then return nil, lerr end
    reply, err = client:evalsha(sha, 2, tat_key, peers_key, a1, a2, self.peer, a4)
  end
  if reply == nil then return nil, err end
  local wait, peers = type(reply) == "table" and tonumber(reply[1]), type(reply) == "table" and tonumber(reply[2])
  if not wait or not peers then
    return nil, errors.new(errors.codes.BAD_RESPONSE,
      format("Redis at %s: unexpected answer to the limiter's script", self.name), { retryable = false })
  end
  saw_peers(self, key, peers)
  return wait / 1e6
end

--- The most peers Redis said share `key` in the last PEER_WINDOW seconds
-- (nil before it answered).
function RedisStore:peers(key)
  local last = self.state.peers[key]
  return last and last.n
end

function RedisStore:close()
  if type(self.client.close) == "function" then self.client:close() end
end

function RedisStore:__tostring() return "aliyun.iot.limiter.redis (" .. self.name .. ")" end

return redis
