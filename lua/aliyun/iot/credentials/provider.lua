--- aliyun.iot.credentials.provider: the object every source hands back, so the client
-- holds one kind of thing whatever the source.
--
--   provider:get()      -- { access_key_id, access_key_secret, security_token } or nil, err
--   provider.source     -- where the keys come from, e.g. "environment", "ecs-ram-role:name"
--   provider.region     -- the profile's region_id, if it had one
--   tostring(provider)  -- aliyun.iot.Credentials (environment, AccessKeyId LTAI****abcd)
--
-- Static keys are returned as they are. Keys that expire (ECS RAM role, and later STS
-- sources) are fetched on first use, served from a cache, and fetched again `margin`
-- seconds before their expiration; if that refresh fails while the old keys are still
-- valid, the old keys are served. Secrets live in a weak table keyed by the provider,
-- never in the provider table, so pairs(provider) or a table dump cannot show them.
local type, tostring, setmetatable, error, rawget, ipairs = type, tostring, setmetatable, error, rawget, ipairs
local format, sub = string.format, string.sub
local os_time = os.time

local common = require("aliyun.iot.credentials.common")
local nonempty, invalid = common.nonempty, common.invalid

local provider = {}

local Provider = {}
Provider.__index = Provider
Provider.__name = "aliyun.iot.Credentials"

local private = setmetatable({}, { __mode = "k" })

-- "LTAI****abcd": enough to tell keys apart, not enough to use one.
local function mask(id)
  if type(id) ~= "string" then return "(not fetched yet)" end
  if #id <= 8 then return "****" end
  return sub(id, 1, 4) .. "****" .. sub(id, -4)
end

function Provider:__tostring()
  local state = private[self]
  local creds = state and (state.static or state.cached)
  return format("aliyun.iot.Credentials (%s, AccessKeyId %s)", tostring(self.source),
    mask(creds and creds.access_key_id))
end

local function state_of(self)
  local state = type(self) == "table" and rawget(private, self)
  if not state then
    error("bad self to 'get' (aliyun.iot.Credentials expected; call it as provider:get())", 3)
  end
  return state
end

-- After a refresh that failed while the old keys were still good, the next try waits
-- this many seconds: a busy client would otherwise ask (and warn) at every call.
provider.RETRY_AFTER = 10

-- Expiring keys: the cached set while it is fresh, else a new one from state.fetch.
local function refreshed(self, state)
  local now = state.clock()
  local cached = state.cached
  if cached and now < cached.expiration - state.margin then return cached end
  if cached and now < cached.expiration and state.retry_at and now < state.retry_at then return cached end
  local creds, err = state.fetch(self, state)
  if not creds then
    -- A hiccup inside the refresh margin: the old keys are still good.
    if cached and now < cached.expiration then
      state.retry_at = now + provider.RETRY_AFTER
      if state.log then
        state.log("warn", format("credentials from %s: refresh failed, the current keys are kept for the %d s"
          .. " they have left: %s", tostring(self.source), cached.expiration - now,
          tostring(type(err) == "table" and err.message or err)))
      end
      return cached
    end
    return nil, err
  end
  state.cached, state.retry_at = creds, nil
  return creds
end

--- The credentials: { access_key_id, access_key_secret, security_token } or nil, err.
function Provider:get()
  local state = state_of(self)
  if state.static then return state.static end
  return refreshed(self, state)
end

local function new(source, region, state)
  local p = setmetatable({ source = source, region = nonempty(region) }, Provider)
  private[p] = state
  return p
end

--- A provider of fixed keys: `creds` as keys.check returns it.
function provider.static(source, region, creds)
  return new(source, region, { static = creds })
end

--- A provider of keys that expire. `state` holds fetch(provider, state) -> creds (with an
-- `expiration` in epoch seconds) or nil, err; clock() -> epoch seconds; margin (seconds);
-- log(level, message) or nil; and whatever fetch itself needs. fetch may update
-- provider.source once it knows more.
provider.refreshing = new

--- The chain's options for keys that expire, checked: `state` (a refreshing provider's,
-- or a new table) with margin (opts.refresh_margin, else defaults.DEFAULT_REFRESH_MARGIN,
-- read now), clock (opts.clock, else os.time), log (opts.logger) and http (opts.http).
-- Returns state, or nil, err.
function provider.expiring_state(opts, defaults, state)
  local margin = opts.refresh_margin
  if margin == nil then margin = defaults.DEFAULT_REFRESH_MARGIN end
  if type(margin) ~= "number" or margin < 0 or margin ~= margin then
    return invalid("refresh_margin must be a number of seconds >= 0")
  end
  for _, name in ipairs({ "http", "sts_http", "clock", "logger" }) do
    if opts[name] ~= nil and type(opts[name]) ~= "function" then
      return invalid(format("%s must be a function", name))
    end
  end
  state = state or {}
  state.margin, state.clock, state.log = margin, opts.clock or os_time, opts.logger
  if state.http == nil then state.http = opts.http end
  return state
end

return provider
