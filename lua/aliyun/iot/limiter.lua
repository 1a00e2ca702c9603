--- Client-side rate limiting: a token bucket per AccessKeyId.
-- Alibaba allows ListOTATaskByJob 10 requests per second per account, shared
-- by every script and server of that account; going over only earns
-- Throttling errors and backoff. So requests are spaced before they are sent.
--
-- The bucket is kept as GCRA (generic cell rate algorithm): one number per
-- key, the "theoretical arrival time" (TAT) of the next request. Reserving a
-- slot moves the TAT on by 1/rate and returns how long to wait for it. With
-- burst = 1 (the default) no window of one second ever sees more than `rate`
-- requests, which is what a gateway counting per second will check.
--
-- Buckets live in a store: by default one table per process, so every client
-- with the same key in a process shares it. In OpenResty a store backed by a
-- lua_shared_dict shares it across workers (see transport/resty.lua).
local max = math.max

local limiter = {}

limiter.DEFAULT_RATE = 10
-- Requests are spaced this much more than 1/rate apart: the gateway counts
-- arrivals in a sliding second, and a request that leaves a few milliseconds
-- late (a slow sleep wake-up, a signing pause) would otherwise let the next
-- one land inside the same second as the request `rate` places earlier.
limiter.SPACING_MARGIN = 0.005

--- The process-local store: reserve(key, now, interval, tolerance) -> delay.
local LocalStore = {}
LocalStore.__index = LocalStore

function LocalStore.new() return setmetatable({ tat = {} }, LocalStore) end

-- only_if_free: reserve only when the slot is free now; else just say when.
function LocalStore:reserve(key, now, interval, tolerance, only_if_free)
  local tat = max(self.tat[key] or now, now)
  local wait = max(0, tat - tolerance - now)
  if wait > 0 and only_if_free then return wait end
  self.tat[key] = tat + interval
  return wait
end

limiter.LocalStore = LocalStore

-- One store per process (per worker in nginx), shared by all clients.
local process_store = LocalStore.new()

-- Inside nginx with `lua_shared_dict aliyun_iot_limiter` declared, one store
-- in that dict for all workers (transport/resty.lua); else the process store.
local function default_store()
  local ngx = rawget(_G, "ngx")
  if ngx and ngx.shared and ngx.shared.aliyun_iot_limiter then
    return require("aliyun.iot.transport.resty").shared_store("aliyun_iot_limiter")
  end
  return process_store
end

local Limiter = {}
Limiter.__index = Limiter

--- limiter.new{ rate = 10, burst = 1, store = nil }
function limiter.new(opts)
  local rate = opts.rate or limiter.DEFAULT_RATE
  local burst = opts.burst or 1
  return setmetatable({
    interval = 1 / rate + limiter.SPACING_MARGIN,
    tolerance = (burst - 1) / rate,
    store = opts.store or default_store(),
  }, Limiter)
end

--- Reserve the next slot for `key`; returns the seconds to wait before sending.
function Limiter:delay(key, now)
  return self.store:reserve(key, now, self.interval, self.tolerance)
end

--- Take a slot for `key` only if one is free now: returns 0 (taken) or the
-- seconds until one will be (nothing reserved), for callers that must send
-- the moment they reserve (the concurrent pager).
function Limiter:try(key, now)
  return self.store:reserve(key, now, self.interval, self.tolerance, true)
end

return limiter
