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
-- OpenResty lua_shared_dict, shared by the workers of one nginx). A store is
-- any object with
--   take(key, now, interval, tolerance) -> 0 (taken) | seconds until a slot is free (nothing taken)
local defaults = require("aliyun.iot.defaults")
local local_store = require("aliyun.iot.limiter.local_store")

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

return limiter
