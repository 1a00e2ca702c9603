--- Client-side rate limiting: GCRA buckets keyed by AccessKeyId.
-- Alibaba allows ListOTATaskByJob 10 requests per second per account, shared
-- by every script and server of that account; going over only earns
-- Throttling errors and backoff. So requests are spaced before they are sent.
--
-- GCRA (generic cell rate algorithm) keeps one number per key, the
-- "theoretical arrival time" (TAT) of the next request. Taking a slot moves
-- the TAT on by 1/rate. With burst = 1 (the default) no window of one second
-- ever sees more than `rate` requests, which is what a gateway counting per
-- second checks.
--
-- The numbers live in a store: `limiter.local_store` (one table per process,
-- shared by every client of the process) or `limiter.shared_dict` (an
-- OpenResty lua_shared_dict, shared by the workers of one nginx) or
-- `limiter.redis` (one Redis for every machine of the account, through
-- `limiter.fallback`, which decides what happens when Redis fails). A store
-- is any object with
--   take(key, now, interval, tolerance) -> 0 (taken) | seconds until a slot is free (nothing taken)
--                                          | nil, err (the store cannot say: the call fails)
-- and optionally close() and info(key).
local defaults = require("aliyun.iot.defaults")
local local_store = require("aliyun.iot.limiter.local_store")
local redis = require("aliyun.iot.limiter.redis")
local fallback = require("aliyun.iot.limiter.fallback")
local errors = require("aliyun.iot.errors")

local setmetatable = setmetatable

local limiter = {}

limiter.DEFAULT_RATE = defaults.rate_limit
-- Requests are spaced this much more than 1/rate apart: the gateway counts
-- arrivals in a sliding second, and a request that leaves a few milliseconds
-- late (a slow sleep wake-up, a signing pause) would otherwise let the next
-- one land inside the same second as the request `rate` places earlier.
limiter.SPACING_MARGIN = 0.005

-- One store per process (per worker in nginx), shared by all clients.
local process_store = local_store.new()
limiter.process_store = process_store

local Limiter = {}
Limiter.__index = Limiter

--- limiter.new{ rate = 10, burst = 1, store = nil (the process store) }
function limiter.new(opts)
  local rate = opts.rate or limiter.DEFAULT_RATE
  local burst = opts.burst or 1
  return setmetatable({
    interval = 1 / rate + limiter.SPACING_MARGIN,
    tolerance = (burst - 1) / rate,
    store = opts.store or process_store,
  }, Limiter)
end

--- Take a slot for `key` if one is free at `now` (monotonic seconds):
-- returns 0 (taken: send at once) or the seconds until one will be free
-- (nothing taken). Slots are never reserved ahead: a reservation made while
-- the caller is busy elsewhere would be sent late, bunched with the next
-- ones, and a gateway counting per second would see a burst.
function Limiter:try(key, now)
  return self.store:take(key, now, self.interval, self.tolerance)
end

--- What the store is doing for `key` (a table), or nil for stores that do not say.
function Limiter:info(key)
  local store = self.store
  return store.info and store:info(key) or nil
end

--- Release the store's connection, if it has one. Idempotent.
function Limiter:close()
  local store = self.store
  if store.close then store:close() end
end

--- The limiter for a client of iot.new: opts are iot.new's (rate_limit,
-- rate_limit_store, rate_limit_share, rate_limit_store_required,
-- rate_limit_store_timeout, logger); `runtime` is what the runtime offers
-- (aliyun.iot.transport knows):
--   local_store() -> store | nil   nginx's shared dict where declared, else nil (the process store)
--   redis_client(config) -> client (see aliyun.iot.limiter.redis)
--   logger() -> function(level, message)
--   monotonic() -> seconds;  new_id() -> a random id;  getenv(name)
-- Without rate_limit_store (nor ALIYUN_IOT_RATE_LIMIT_STORE) the buckets are
-- local. Returns limiter | nil, err.
function limiter.for_client(opts, runtime)
  local backup = runtime.local_store() or process_store
  local url = opts.rate_limit_store
  if url == nil then url = runtime.getenv("ALIYUN_IOT_RATE_LIMIT_STORE") end
  if url == false or url == nil or url == "" then
    return limiter.new{ rate = opts.rate_limit, store = backup }
  end
  local config, err = redis.parse_url(url)
  if not config then return nil, errors.invalid(err) end
  config.timeout = opts.rate_limit_store_timeout or defaults.rate_limit_store_timeout
  local state = redis.state_for(url)
  local primary = redis.new(runtime.redis_client(config),
    { name = config.name, state = state, peer = backup:peer_id(runtime.new_id), clock = runtime.monotonic })
  local store = fallback.new{
    primary = primary, backup = backup, share = opts.rate_limit_share,
    required = opts.rate_limit_store_required, log = opts.logger or runtime.logger(),
    clock = runtime.monotonic, retry = defaults.rate_limit_store_retry, state = state, name = config.name,
  }
  return limiter.new{ rate = opts.rate_limit, store = store }
end

return limiter
