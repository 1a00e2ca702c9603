--- aliyun.iot.credentials.uri: STS credentials from a credentials URI, a local service
-- (a sidecar, a vault agent) that answers `GET <uri>` with
--
--   {"Code": "Success", "AccessKeyId": ..., "AccessKeySecret": ..., "SecurityToken": ...,
--    "Expiration": "2030-01-01T00:00:00Z"}
--
-- as Alibaba's credential libraries and the aliyun CLI (mode CredentialsURI) read it: the
-- four keys are required; Code, when present, must be "Success" (the CLI and
-- credentials-python insist on it, credentials-go ignores it). Renewed before Expiration
-- (credentials/provider.lua). Reached directly, never through a proxy, like the ECS
-- metadata service. The URI may carry a token in its query or user information: messages
-- and the provider's source show only scheme://host[:port]/path.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local cjson = require("cjson.safe").new()

local type, format, match = type, string.format, string.match

local invalid, missing, nonempty, quotable = common.invalid, common.missing, common.nonempty, common.quotable

local uri = { ENV = "ALIBABA_CLOUD_CREDENTIALS_URI" }

-- None given: a transport of its own, reached directly, with the SDKs' timeouts.
local DIRECT = { timeout = 10, connect_timeout = 5, proxy = "" }

local function fetch(_, state)
  local service = "credentials URI " .. state.shown
  local status, body = common.http_of(state, DIRECT)("GET", state.url, { Accept = "application/json" })
  local err
  if status ~= 200 then
    err = common.http_error(service, "GET", status, body)
  else
    local doc = cjson.decode(body or "")
    if type(doc) ~= "table" then
      err = common.bad_response(service, "GET did not return a JSON object")
    elseif doc.Code ~= nil and doc.Code ~= "Success" then
      err = common.bad_response(service, format("GET returned Code %s instead of \"Success\"", quotable(doc.Code)))
    else
      local creds, missing_part = keys.expiring(doc)
      if creds then return creds end
      err = common.bad_response(service, "GET returned " .. keys.MISSING[missing_part])
    end
  end
  return nil, err
end

--- A provider of the credentials at `url` (nil: ALIBABA_CLOUD_CREDENTIALS_URI); `from`
-- names where the URL was given, for messages; `region` is a profile's region_id.
-- s: the chain's context (opts, env, defaults). Returns a provider, or nil, err.
function uri.provider(s, url, from, region)
  if not nonempty(url) then
    url = nonempty(s.env(uri.ENV))
    if not url then return missing(format("%s is missing or empty, and %s is not set", from, uri.ENV)) end
    from = uri.ENV
  end
  local scheme, authority, path = match(url, "^(https?)://([^/?#%s]+)([^?#%s]*)%??[^#%s]*$")
  if not scheme then return invalid(from .. " must be an http(s):// URL") end
  local shown = format("%s://%s%s", scheme, match(authority, "([^@]*)$"), path)
  local state, err = provider.expiring_state(s.opts, s.defaults, { fetch = fetch, url = url, shown = shown })
  if not state then return nil, err end
  return provider.refreshing("credentials-uri:" .. shown, region, state)
end

return uri
