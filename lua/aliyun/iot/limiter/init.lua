--- Client-side rate limiting: GCRA buckets keyed by account and action.
-- Alibaba's limits are per account and per API (ListOTATaskByJob 10
-- requests per second, QueryDevice 50, CancelOTATaskByJob 5, ...), shared by
-- every script and server of that account; going over only earns Throttling
-- errors and backoff. So requests are spaced before they are sent, one
-- bucket per (AccessKeyId, action), each at its action's rate.
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

local setmetatable, pairs, type, tostring = setmetatable, pairs, type, tostring

local limiter = {}

limiter.DEFAULT_RATE = defaults.rate_limit
-- Requests per second per account, by action (Alibaba's API references; see
-- ALIYUN_NOTES). An action not named here gets DEFAULT_RATE.
limiter.ACTION_RATES = {
  ListOTATaskByJob = 10, QueryOTAJob = 10, ListOTAJobByFirmware = 10, ListOTAJobByDevice = 10,
  ListOTAFirmware = 10, ListOTAUnfinishedTaskByDevice = 10, CancelOTATaskByJob = 5,
  CancelOTATaskByDevice = 10, ReupgradeOTATask = 20, ConfirmOTATask = 20,
  CreateOTAStaticUpgradeJob = 20, CreateOTADynamicUpgradeJob = 20,
  QueryDevice = 50, QueryDeviceBySQL = 10,
}
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

--- limiter.new{ rate = 10 | { Action = rate, ... }, burst = 1, store = nil (the process store) }
-- rate: a number is every action's rate; a table sets the named actions'
-- rates, the others keeping ACTION_RATES (and `default`, if the table has
-- one, for actions not in either).
function limiter.new(opts)
  local rate = opts.rate
  local rates, default = {}, limiter.DEFAULT_RATE
  if type(rate) == "number" then
    default = rate
  else
    for action, r in pairs(limiter.ACTION_RATES) do rates[action] = r end
    if type(rate) == "table" then
      for action, r in pairs(rate) do
        if action == "default" then default = r else rates[action] = r end
      end
    end
  end
  return setmetatable({
    rates = rates, default = default, burst = opts.burst or 1,
    spacing = {},     -- action -> { interval, tolerance }
    store = opts.store or process_store,
  }, Limiter)
end

--- Is `rate` a valid rate option? true, or nil and what it must be instead.
local WHAT = "requests per second (> 0), a table of them by action, or false"
function limiter.check_rate(rate)
  if rate == false then return true end
  local function ok(r) return type(r) == "number" and r > 0 and r < math.huge end
  if ok(rate) then return true end
  if type(rate) ~= "table" then return nil, WHAT end
  for action, r in pairs(rate) do
    if type(action) ~= "string" or not ok(r) then
      return nil, string.format("%s (its entry %s is %s)", WHAT, tostring(action), tostring(r))
    end
  end
  return true
end

--- The requests per second allowed for `action`.
function Limiter:rate(action)
  return self.rates[action] or self.default
end

local function spacing_of(self, action)
  local s = self.spacing[action]
  if not s then
    local rate = self:rate(action)
    s = { 1 / rate + limiter.SPACING_MARGIN, (self.burst - 1) / rate }
    self.spacing[action] = s
  end
  return s
end

--- Take a slot of `action`'s bucket for account `key` if one is free at
-- `now` (monotonic seconds): returns 0 (taken: send at once) or the seconds
-- until one will be free (nothing taken). Slots are never reserved ahead: a
-- reservation made while the caller is busy elsewhere would be sent late,
-- bunched with the next ones, and a gateway counting per second would see
-- a burst.
function Limiter:try(key, action, now)
  local s = spacing_of(self, action)
  return self.store:take(key .. "/" .. action, now, s[1], s[2])
end

--- What the store is doing for `action`'s bucket of account `key` (a
-- table), or nil for stores that do not say.
function Limiter:info(key, action)
  local store = self.store
  return store.info and store:info(key .. "/" .. action) or nil
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
