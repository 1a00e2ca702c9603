--- aliyun.iot.credentials.ecs: credentials of the RAM role attached to an ECS instance,
-- from the instance metadata service, as the official SDKs fetch them (IMDSv2 style):
--
--   PUT  <metadata_url>/latest/api/token                             (X-aliyun-ecs-metadata-token-ttl-seconds)
--   GET  <metadata_url>/latest/meta-data/ram/security-credentials/   (the role's name, when none is given)
--   GET  <metadata_url>/latest/meta-data/ram/security-credentials/<role>  -> AccessKeyId, ..., Expiration
--
-- A separate file because it is the one source that talks to the network: everything
-- else in the chain reads options, the environment or a file. Nothing is fetched before
-- the first provider:get(); the provider (credentials/provider.lua) refreshes the keys
-- before their Expiration. The metadata address is an option so tests can use loopback.
-- Response bodies are never quoted in errors: a credentials body carries the secret.
local errors = require("aliyun.iot.errors")
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local iso8601_epoch = require("aliyun.iot.time").iso8601_epoch
local cjson = require("cjson.safe").new()

local type, tostring, tonumber = type, tostring, tonumber
local format, match, find = string.format, string.match, string.find
local os_time = os.time

local codes = errors.codes
local missing, invalid, trim, quotable = common.missing, common.invalid, common.trim, common.quotable

local TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
local TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
local TOKEN_TTL = "21600"
local CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"

local ecs = {}

local function valid_role(role)
  return type(role) == "string" and #role <= 128 and match(role, "^[%w%.%-_@]+$") ~= nil
end

-- Wrap a transport failure (or an HTTP status) from the metadata service.
local function metadata_error(what, status, err)
  if status == nil then
    local code, retryable, detail = codes.TRANSPORT_ERROR, nil, tostring(err)
    if type(err) == "table" then
      code = type(err.code) == "string" and err.code or code
      retryable = err.retryable
      detail = tostring(err.message or err.code)
    end
    return errors.new(code, format("ECS metadata service: %s failed: %s", what, detail),
      { retryable = retryable })
  end
  -- Response bodies are never quoted: a credentials body carries the secret.
  return errors.new(codes.HTTP_ERROR, format("ECS metadata service: %s returned HTTP %s", what, tostring(status)),
    { http_status = tonumber(status) })
end

local function bad_response(message)
  return errors.new(codes.BAD_RESPONSE, "ECS metadata service: " .. message, { retryable = true })
end

local function http_of(state)
  if state.http then return state.http end
  -- None given: a transport of its own with short timeouts, made on first use
  -- (never at require or chain time).
  state.http = require("aliyun.iot.transport").http_function{ timeout = 2, connect_timeout = 1, proxy = "" }
  return state.http
end

-- Step 1: a session token for the other requests (PUT, so that a proxied or forged GET
-- cannot obtain one). Returns the token's header table, or nil, err.
local function session_token(http, base)
  local status, body = http("PUT", base .. "/latest/api/token", { [TOKEN_TTL_HEADER] = TOKEN_TTL })
  if status ~= 200 then return nil, metadata_error("PUT /latest/api/token", status, body) end
  local token = type(body) == "string" and trim(body) or ""
  if token == "" or find(token, "[%c ]") then
    return nil, bad_response("PUT /latest/api/token returned no usable token")
  end
  return { [TOKEN_HEADER] = token }
end

-- Step 2, when no role was named: the first role the instance lists. Returns its name,
-- or nil, err.
local function listed_role(http, base, auth)
  local status, body = http("GET", base .. CREDENTIALS_PATH, auth)
  if status ~= 200 then return nil, metadata_error("GET " .. CREDENTIALS_PATH, status, body) end
  local role = match(body or "", "^%s*([^\r\n]-)%s*[\r\n]") or trim(body or "")
  if role == "" then
    return missing("no RAM role is attached to this ECS instance (the metadata service lists none)")
  end
  if not valid_role(role) then return nil, bad_response("the listed RAM role name is not a valid name") end
  return role
end

-- Step 3: the role's keys, with their Expiration as epoch seconds, or nil, err.
local function role_credentials(http, base, auth, role)
  local path = CREDENTIALS_PATH .. role
  local status, body = http("GET", base .. path, auth)
  if status == 404 then
    return missing(format("RAM role %q is not attached to this ECS instance (GET %s returned HTTP 404)", role, path))
  end
  if status ~= 200 then return nil, metadata_error("GET " .. path, status, body) end
  local doc = cjson.decode(body or "")
  if type(doc) ~= "table" then return nil, bad_response(format("GET %s did not return a JSON object", path)) end
  if doc.Code ~= "Success" then
    return nil, bad_response(format("GET %s returned Code %s instead of \"Success\"", path, quotable(doc.Code)))
  end
  local creds = keys.check(doc.AccessKeyId, doc.AccessKeySecret, doc.SecurityToken, true)
  if not creds then
    return nil, bad_response(format("GET %s returned no AccessKeyId, AccessKeySecret and SecurityToken", path))
  end
  creds.expiration = iso8601_epoch(doc.Expiration)
  if not creds.expiration then
    return nil, bad_response(format("GET %s returned an Expiration that is not an ISO 8601 time", path))
  end
  return creds
end

-- The provider's fetch: the three steps. A discovered role is kept, and named in the
-- provider's source, for every later refresh.
local function fetch(self, state)
  local http, base = http_of(state), state.metadata_url
  local auth, err = session_token(http, base)
  if not auth then return nil, err end
  if not state.role then
    local role, rerr = listed_role(http, base, auth)
    if not role then return nil, rerr end
    state.role = role
    self.source = "ecs-ram-role:" .. role
  end
  return role_credentials(http, base, auth, state.role)
end

--- A provider of the RAM role's credentials, or nil, err. role: the role name, or nil to
-- take the one the metadata service lists. region: the profile's region_id, if any.
-- opts: the chain's options (metadata_url, refresh_margin, http, clock). defaults: the
-- table holding DEFAULT_METADATA_URL and DEFAULT_REFRESH_MARGIN (aliyun.iot.credentials),
-- read at each call.
function ecs.provider(opts, role, region, defaults)
  local url = opts.metadata_url or defaults.DEFAULT_METADATA_URL
  local base = type(url) == "string" and match(url, "^(https?://[^/?#%s]+)/?$")
  if not base then
    return invalid(format("metadata_url %s must look like http://host[:port] (no path or query)", quotable(url)))
  end
  if role ~= nil and not valid_role(role) then
    return invalid("ECS RAM role name must be letters, digits, '.', '-', '_' or '@' (at most 128)")
  end
  local margin = opts.refresh_margin
  if margin == nil then margin = defaults.DEFAULT_REFRESH_MARGIN end
  if type(margin) ~= "number" or margin < 0 or margin ~= margin then
    return invalid("refresh_margin must be a number of seconds >= 0")
  end
  if opts.http ~= nil and type(opts.http) ~= "function" then
    return invalid("http must be a function(method, url, headers) -> status, body, headers")
  end
  if opts.clock ~= nil and type(opts.clock) ~= "function" then
    return invalid("clock must be a function returning epoch seconds")
  end
  return provider.refreshing(role and ("ecs-ram-role:" .. role) or "ecs-ram-role", region, {
    fetch = fetch, role = role, metadata_url = base, http = opts.http,
    clock = opts.clock or os_time, margin = margin,
  })
end

return ecs
