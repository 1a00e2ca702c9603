--- What the limiter does when its shared store (Redis) fails: a store over
-- two stores.
--
-- take() asks the primary (shared) store. When that fails (down, too slow,
-- refused, wrong password), by default the request is spaced by the backup
-- (the process store, or nginx's shared dict) at `share` of the budget, a
-- warning is logged at most once a minute, and the primary is asked again
-- only after `retry` seconds, not on every request; the first answer after
-- that puts the limiter back on it (logged when the outage was). With
-- `required`, take() returns nil, SDK.RateLimitStoreUnavailable instead for
-- as long as the primary is failing, and the client's call fails with it.
--
-- The default share is 1 / the number of peers the primary last saw sharing
-- the key (primary:peers(key)): when Redis goes, every machine falls back at
-- once, and together they keep to the budget. Before Redis ever answered
-- nothing is known, and DEFAULT_SHARE is used.
local errors = require("aliyun.iot.errors")

local setmetatable, tostring = setmetatable, tostring
local format = string.format

local fallback = {}

fallback.DEFAULT_SHARE = 0.25
fallback.WARN_EVERY = 60

local Fallback = {}
Fallback.__index = Fallback

--- fallback.new{ primary, backup, share = nil | (0, 1], required = false,
--   log = function(level, message), clock = monotonic seconds, retry = seconds,
--   state = table shared by the clients of one primary in the process, name }
function fallback.new(o)
  local state = o.state or {}
  state.counts = state.counts or { shared = 0, ["local"] = 0 }
  state.failures, state.recoveries = state.failures or 0, state.recoveries or 0
  return setmetatable({
    primary = o.primary, backup = o.backup, share = o.share, required = o.required == true,
    log = o.log, clock = o.clock, retry = o.retry, state = state, name = o.name or tostring(o.primary),
  }, Fallback)
end

--- The share of the budget the backup is used at, for `key`.
function Fallback:share_of(key)
  if self.share then return self.share end
  local peers = self.primary.peers and self.primary:peers(key)
  if peers and peers > 0 then return 1 / peers end
  return fallback.DEFAULT_SHARE
end

local function unavailable(self, cause)
  return errors.new(errors.codes.RATE_LIMIT_STORE_UNAVAILABLE,
    format("rate limit store %s is unavailable: %s", self.name, tostring(cause)), { retryable = false })
end

-- limiter store interface: take(key, now, interval, tolerance) -> 0 | wait | nil, err.
function Fallback:take(key, now, interval, tolerance)
  local state, t = self.state, self.clock()
  if t >= (state.retry_at or 0) then
    local wait, err = self.primary:take(key, now, interval, tolerance)
    if wait then
      if state.down then
        state.down, state.recoveries = false, state.recoveries + 1
        if state.warned then
          state.warned = false
          self.log("warn", format("rate limit store %s answers again: the budget is shared through it", self.name))
        end
      end
      state.counts.shared = state.counts.shared + 1
      return wait
    end
    state.down, state.cause, state.failures = true, err, state.failures + 1
    state.retry_at = t + self.retry
  end
  local share = self:share_of(key)
  if t >= (state.warn_at or 0) then
    state.warn_at, state.warned = t + fallback.WARN_EVERY, true
    self.log("warn", self.required
      and format("rate limit store %s is unavailable (%s): calls fail until it answers (next try in %.0f s)",
        self.name, tostring(state.cause), state.retry_at - t)
      or format("rate limit store %s is unavailable (%s): limiting locally at %.3g of the budget until it "
        .. "answers (next try in %.0f s)", self.name, tostring(state.cause), share, state.retry_at - t))
  end
  if self.required then return nil, unavailable(self, state.cause) end
  state.counts["local"] = state.counts["local"] + 1
  return self.backup:take(key, now, interval / share, tolerance / share)
end

--- What this store is doing, for logs and tests (no secret in it).
function Fallback:info(key)
  local state = self.state
  return {
    store = self.name, using = state.down and "local" or "shared", share = self:share_of(key),
    peers = self.primary.peers and self.primary:peers(key) or nil, required = self.required,
    asked = { shared = state.counts.shared, ["local"] = state.counts["local"] },
    failures = state.failures, recoveries = state.recoveries,
    last_error = state.cause and tostring(state.cause) or nil,
  }
end

function Fallback:close()
  if self.primary.close then self.primary:close() end
end

function Fallback:__tostring() return "aliyun.iot.limiter.fallback (" .. self.name .. ")" end

return fallback
