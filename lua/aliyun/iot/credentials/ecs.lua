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
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local cjson = require("cjson.safe").new()

local type = type
local format, match, find = string.format, string.match, string.find

local missing, invalid, trim, quotable = common.missing, common.invalid, common.trim, common.quotable

local TOKEN_TTL_HEADER = "X-aliyun-ecs-metadata-token-ttl-seconds"
local TOKEN_HEADER = "X-aliyun-ecs-metadata-token"
local TOKEN_TTL = "21600"
local CREDENTIALS_PATH = "/latest/meta-data/ram/security-credentials/"

local ecs = {}

local function valid_role(role)
  return type(role) == "string" and #role <= 128 and match(role, "^[%w%.%-_@]+$") ~= nil
end

local SERVICE = "ECS metadata service"

local function metadata_error(what, status, err) return common.http_error(SERVICE, what, status, err) end
local function bad_response(message) return common.bad_response(SERVICE, message) end

-- None given: a transport of its own with short timeouts, reached directly.
local DIRECT = { timeout = 2, connect_timeout = 1, proxy = "" }

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
  local creds, missing_part = keys.expiring(doc)
  if not creds then return nil, bad_response(format("GET %s returned %s", path, keys.MISSING[missing_part])) end
  return creds
end

-- The provider's fetch: the three steps. A discovered role is kept, and named in the
-- provider's source, for every later refresh.
local function fetch(self, state)
  local http, base = common.http_of(state, DIRECT), state.metadata_url
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
  local state, err = provider.expiring_state(opts, defaults, { fetch = fetch, role = role, metadata_url = base })
  if not state then return nil, err end
  return provider.refreshing(role and ("ecs-ram-role:" .. role) or "ecs-ram-role", region, state)
end

return ecs
