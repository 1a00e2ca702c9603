--- The request pipeline: build -> sign -> transport -> decode.
-- `build` and `sign` are pure (clock and nonce come in as arguments), so a
-- signed request can be reproduced in a test or returned without sending.
-- The transport is any object with `:request(method, url, headers, body)`
-- returning `status, body, headers` or `nil, err`: the libcurl Session from
-- the C core, or a cosocket transport inside OpenResty.
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")

local pairs = pairs
local sign_v1, percent_encode = core.sign_v1, core.percent_encode
local timestamp, nonce = core.timestamp, core.nonce

local request = {}

request.API_VERSION = "2018-01-20"

-- Response headers: the gateway repeats the RequestId here, which matters
-- when a body is unreadable and carries none.
local REQUEST_ID_HEADER = "x-acs-request-id"

--- The full parameter set of one RPC call, without the Signature.
-- `state` is the client's private state (see aliyun/iot.lua).
function request.build_v1(state, action, api_params, at, signature_nonce)
  local p = {
    Action = action,
    Version = request.API_VERSION,
    Format = "JSON",
    AccessKeyId = state.access_key_id,
    SignatureMethod = "HMAC-SHA1",
    SignatureVersion = "1.0",
    SignatureNonce = signature_nonce,
    Timestamp = at,
    RegionId = state.region,
    SecurityToken = state.security_token,
    IotInstanceId = state.iot_instance_id,
  }
  for k, v in pairs(api_params) do p[k] = v end
  return p
end

--- Sign a parameter set and return the request to send: method, url, headers.
function request.sign_v1(state, p)
  local signature, _, canonical_query = sign_v1("GET", p, state.access_key_secret)
  return {
    method = "GET",
    url = state.base_url .. "/?" .. canonical_query .. "&Signature=" .. percent_encode(signature),
    headers = { Accept = "application/json" },
  }
end

--- build + sign, with a fresh nonce and timestamp from the client's clock
-- and nonce source (OpenSSL's RNG and the system clock unless injected).
function request.prepare(state, action, api_params)
  local at = timestamp(state.clock and state.clock() or nil)
  local signature_nonce = state.nonce and state.nonce() or nonce()
  return request.sign_v1(state, request.build_v1(state, action, api_params, at, signature_nonce))
end

--- Send one call and decode its response with `decode(body, status)`.
-- Returns the decoded value, or nil and an error object with every secret
-- scrubbed from its text.
function request.send(state, action, api_params, decode)
  local req = request.prepare(state, action, api_params)
  local status, body, headers = state.transport:request(req.method, req.url, req.headers)
  if not status then
    return nil, errors.redact(body, state.secrets)
  end
  local result, err = decode(body, status)
  if result == nil then
    if err.request_id == nil and headers then err.request_id = headers[REQUEST_ID_HEADER] end
    return nil, errors.redact(err, state.secrets)
  end
  return result
end

return request
