-- The emulated Alibaba Cloud RPC API gateway (content handler for location /).
--
-- Checks run in the order of the real gateway; the first failure answers with
-- the gateway error body {RequestId, HostId, Code, Message, Recommend}:
--   1 path and method        5 signature (own V1/V3 code, signing.lua, crypto.lua)
--   2 common parameters      6 nonce replay
--   3 timestamp              7 throttling (fault options qps, qps_per_action, qps_<Action>)
--   4 AccessKeyId / STS      8 Action, Version   9 parameters, then the action
-- A request with "Authorization: ACS3-..." is a V3 request (steps 2-6 read
-- headers, authenticate_v3), any other a V1 request (authenticate_v1).
-- Fault injection (latency, 5xx, resets, broken bodies) wraps all of this;
-- faults.lua adds the ones that strike after authentication or after the
-- action, ota_faults.lua those that reshape listings.

local signing = require "signing"
local crypto = require "crypto"
local codec = require "codec"
local store = require "store"
local counts = require "counts"
local quota = require "quota"
local faults_after = require "faults"
local sts = require "sts"

local M = {}

-- Actions: one module per action, each with
--   name, version, is_parameter(name), check_parameters(params) -> nil | err,
--   call(params) -> body_object, code
-- A new action is one new file plus one line here.
local ACTIONS = {
  ListOTATaskByJob = require "ota",
  QueryOTAJob = require "ota_query_job",
  ListOTAJobByFirmware = require "ota_list_jobs",
  CancelOTATaskByJob = require "ota_cancel",
  ReupgradeOTATask = require "ota_reupgrade",
  QueryDevice = require "query_device",
  -- STS 2015-04-01 (sts.lua): credentials the gateway then accepts for every action.
  AssumeRole = sts.assume_role,
  AssumeRoleWithOIDC = sts.assume_role_with_oidc,
}

-- Credentials, from the shared accounts file.
local ACCOUNTS, TOKEN_OWNER = {}, {}
for _, acct in ipairs(require "accounts") do
  ACCOUNTS[acct.access_key_id] = acct
  if acct.security_token then TOKEN_OWNER[acct.security_token] = acct.access_key_id end
  if acct.expired_token then TOKEN_OWNER[acct.expired_token] = acct.access_key_id end
end

-- Parameters every request must carry, in the order they are checked.
-- The three signature fields answer IncompleteSignature, the rest Missing<Name>.
local REQUIRED = {
  "AccessKeyId", "Signature", "SignatureMethod", "SignatureVersion", "SignatureNonce",
  "Timestamp", "Action", "Version", "Format",
}
local SIGNATURE_FIELDS = { Signature = true, SignatureMethod = true, SignatureVersion = true }

-- Accepted by every action besides REQUIRED.
local OPTIONAL_COMMON = { SecurityToken = true, RegionId = true, IotInstanceId = true }

local MAX_CLOCK_SKEW = 900   -- seconds, like the real gateway (15 minutes)

local ERROR_FIELDS = { "RequestId", "HostId", "Code", "Message", "Recommend" }

-- Helpers -------------------------------------------------------------------

local function new_request_id()
  local r = math.random
  return string.format("%08X-%04X-4%03X-%04X-%04X%08X",
    r(0, 0xFFFFFFFF), r(0, 0xFFFF), r(0, 0xFFF), r(0, 0x3FFF) + 0x8000, r(0, 0xFFFF), r(0, 0xFFFFFFFF))
end

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = math.floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function iso_utc(t)
  return os.date("!%Y-%m-%dT%H:%M:%SZ", t)
end

-- "YYYY-MM-DDThh:mm:ssZ" -> epoch seconds, or nil when not exactly that form
-- or not a real calendar time.
local function parse_timestamp(s)
  local y, mo, d, h, mi, se = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)Z$")
  if not y then return nil end
  y, mo, d, h, mi, se = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
  local leap = (y % 4 == 0 and y % 100 ~= 0) or y % 400 == 0
  local month_days = { 31, leap and 29 or 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
  if mo < 1 or mo > 12 or d < 1 or d > month_days[mo] or h > 23 or mi > 59 or se > 59 then
    return nil
  end
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se
end

-- A gateway error result. status is the HTTP status.
local function gateway_error(status, code, message)
  return { status = status, code = code, message = message }
end

local function invalid_parameter(name, why)
  return gateway_error(400, "InvalidParameter",
    "The specified parameter \"" .. name .. "\" is not valid. " .. why)
end

-- Reading the request ---------------------------------------------------------

-- Collects the parameters of the query string and, for a form POST, the body.
-- Sets ctx.body (raw body, "" when none), ctx.query_params (query only: the V3
-- canonical query) and returns the merged map, or nil and an error message.
-- Repeated names are rejected: the canonical query of V1 cannot represent them.
local function collect_params(ctx)
  ctx.body = ""
  local pairs_list, err = signing.parse_pairs(ngx.var.args)
  if not pairs_list then return nil, "query string: " .. err end
  local query = {}
  for _, p in ipairs(pairs_list) do
    if query[p[1]] ~= nil then
      return nil, "parameter " .. signing.percent_encode(p[1]) .. " is given more than once"
    end
    query[p[1]] = p[2]
  end
  ctx.query_params = query
  -- The body is read for every method: V3 hashes it (x-acs-content-sha256).
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if body == nil and ngx.req.get_body_file() then
    return nil, "request body too large"
  end
  ctx.body = body or ""
  if ctx.method == "POST" and ctx.body ~= "" then
    local ctype = (ngx.var.content_type or ""):lower()
    if not ctype:find("^application/x%-www%-form%-urlencoded") then
      return nil, "a POST body must be application/x-www-form-urlencoded, got Content-Type " ..
                  (ngx.var.content_type or "(none)")
    end
    local body_pairs, berr = signing.parse_pairs(ctx.body)
    if not body_pairs then return nil, "form body: " .. berr end
    for _, p in ipairs(body_pairs) do pairs_list[#pairs_list + 1] = p end
  end
  local params = {}
  for _, p in ipairs(pairs_list) do
    if params[p[1]] ~= nil then
      return nil, "parameter " .. signing.percent_encode(p[1]) .. " is given more than once"
    end
    params[p[1]] = p[2]
  end
  return params
end

-- Request headers as a map lowercase name -> value. Returns map, or map and an
-- error message when a header is given more than once.
local function read_headers()
  local raw = ngx.req.get_headers(200)
  local headers, err = {}, nil
  for name, value in pairs(raw) do
    name = name:lower()
    if type(value) == "table" then
      err = err or ("header " .. name .. " is given more than once")
      value = value[1]
    end
    headers[name] = value
  end
  return headers, err
end

-- The checks ------------------------------------------------------------------

-- Step 4: the AccessKeyId and the STS token (token_name names where the token
-- came from in messages): accounts.lua's keys, or credentials STS issued (until
-- their expires_at). Returns the account, or nil and a gateway error.
local function check_credentials(access_key_id, token, token_name)
  local acct = ACCOUNTS[access_key_id] or store.sts_issued(access_key_id)
  if not acct then
    return nil, gateway_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
  end
  if acct.inactive then
    return nil, gateway_error(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
  end
  if acct.kind == "sts" then
    if token == nil or token == "" then
      return nil, gateway_error(400, "InvalidSecurityToken.Malformed",
        "Specified SecurityToken is malformed. (an STS AccessKeyId needs " .. token_name .. ")")
    elseif token == acct.expired_token or (acct.expires_at and token == acct.security_token
                                           and ngx.time() >= acct.expires_at) then
      return nil, gateway_error(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
    elseif token ~= acct.security_token then
      if TOKEN_OWNER[token] then
        return nil, gateway_error(400, "InvalidSecurityToken.MismatchWithAccessKey",
          "Specified SecurityToken mismatch with the AccessKey.")
      end
      return nil, gateway_error(400, "InvalidSecurityToken.Malformed",
        "Specified SecurityToken is malformed.")
    end
  elseif token ~= nil then
    return nil, gateway_error(400, "InvalidSecurityToken.MismatchWithAccessKey",
      "Specified SecurityToken mismatch with the AccessKey. (this AccessKeyId is not an STS key; " ..
      token_name .. " must not be sent)")
  end
  return acct
end

-- Step 3: a "YYYY-MM-DDThh:mm:ssZ" time within 15 minutes of the server clock.
local function check_time(value, name)
  local ts = parse_timestamp(value)
  if not ts then
    return gateway_error(400, "IllegalTimestamp",
      "The input parameter \"" .. name .. "\" that is mandatory for processing this request is not supplied " ..
      "or is not in the format YYYY-MM-DDThh:mm:ssZ (UTC): " .. value)
  end
  ngx.update_time()
  local now = ngx.time()
  if math.abs(now - ts) > MAX_CLOCK_SKEW then
    return gateway_error(400, "InvalidTimeStamp.Expired",
      "Specified time stamp or date value is expired. Request time: " .. value ..
      ", server time: " .. iso_utc(now) .. " (allowed skew 15 minutes)")
  end
end

-- Parameter names a V1 request may carry besides the action's own.
local V1_COMMON = { Signature = true }
for name in pairs(OPTIONAL_COMMON) do V1_COMMON[name] = true end
for _, name in ipairs(REQUIRED) do V1_COMMON[name] = true end

-- Steps 2-6 of a V1 request. Returns { access_key_id, acct (accounts.lua's entry,
-- or the credentials STS issued), account, action, version, common } or nil and a
-- gateway error.
local function authenticate_v1(ctx)
  local p = ctx.params

  -- 2. Common parameters (present and non-empty).
  for _, name in ipairs(REQUIRED) do
    if p[name] == nil or p[name] == "" then
      if SIGNATURE_FIELDS[name] then
        return nil, gateway_error(400, "IncompleteSignature",
          "The request signature does not conform to Aliyun standards. Missing parameter " .. name .. ".")
      end
      return nil, gateway_error(400, "Missing" .. name, name .. " is mandatory for this action.")
    end
  end
  if p.SignatureMethod ~= "HMAC-SHA1" then
    return nil, gateway_error(400, "IncompleteSignature",
      "The request signature does not conform to Aliyun standards. SignatureMethod must be HMAC-SHA1, got " ..
      p.SignatureMethod .. ".")
  end
  if p.SignatureVersion ~= "1.0" then
    return nil, gateway_error(400, "IncompleteSignature",
      "The request signature does not conform to Aliyun standards. SignatureVersion must be 1.0, got " ..
      p.SignatureVersion .. ".")
  end

  -- 3. Timestamp: exact form, then within 15 minutes of the server clock.
  local err = check_time(p.Timestamp, "Timestamp")
  if err then return nil, err end

  -- 4. Credentials.
  local acct
  acct, err = check_credentials(p.AccessKeyId, p.SecurityToken, "SecurityToken")
  if not acct then return nil, err end

  -- 5. Signature, with the emulator's own V1 canonicalization.
  local string_to_sign = signing.string_to_sign(ctx.method, p)
  local expected = ngx.encode_base64(ngx.hmac_sha1(signing.hmac_key(acct.access_key_secret), string_to_sign))
  if expected ~= p.Signature then
    return nil, gateway_error(400, "SignatureDoesNotMatch",
      "Specified signature is not matched with our calculation. server string to sign is:" .. string_to_sign)
  end

  -- 6. Nonce replay (recorded only now that the signature is valid).
  if not store.use_nonce(p.AccessKeyId, p.SignatureNonce) then
    return nil, gateway_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
  end
  return { access_key_id = p.AccessKeyId, acct = acct, account = acct.account, action = p.Action,
           version = p.Version, common = V1_COMMON }
end

-- Steps 2-6 of an action no AccessKey signs (STS's AssumeRoleWithOIDC: its token
-- authenticates, sts.lua checks it): a Timestamp, when sent, must be current.
local function authenticate_anonymous(ctx, action)
  local p = ctx.params
  local err = p.Timestamp and check_time(p.Timestamp, "Timestamp")
  if err then return nil, err end
  return { action = p.Action, version = p.Version, common = action.common, account = "(anonymous)" }
end

-- V3 ----------------------------------------------------------------------------

-- Parameter names a V3 request may carry besides the action's own (Action,
-- Version, AccessKeyId, nonce, date and token travel in headers).
local V3_COMMON = { Format = true, RegionId = true, IotInstanceId = true }

-- Headers a V3 request must carry (non-empty), in check order, with the code
-- a missing one answers.
local V3_REQUIRED = {
  { "host", "IncompleteSignature" },
  { "x-acs-action", "MissingAction" },
  { "x-acs-version", "MissingVersion" },
  { "x-acs-date", "MissingTimestamp" },
  { "x-acs-signature-nonce", "MissingSignatureNonce" },
  { "x-acs-content-sha256", "IncompleteSignature" },
}

local function incomplete(why)
  return gateway_error(400, "IncompleteSignature",
    "The request signature does not conform to Aliyun standards. " .. why)
end

-- Steps 2-6 of a V3 (ACS3-HMAC-SHA256) request. Same result as authenticate_v1.
local function authenticate_v3(ctx)
  local h = ctx.headers
  if ctx.header_error then
    return nil, gateway_error(400, "InvalidParameter", "The request headers are malformed: " .. ctx.header_error)
  end

  -- 2. Authorization, required headers, SignedHeaders.
  local auth, why = signing.parse_authorization(h.authorization)
  if not auth then return nil, incomplete("Authorization: " .. why) end
  for _, r in ipairs(V3_REQUIRED) do
    local v = h[r[1]]
    if v == nil or signing.trim(v) == "" then
      if r[2] == "IncompleteSignature" then
        return nil, incomplete("Missing header " .. r[1] .. ".")
      end
      return nil, gateway_error(400, r[2], "Header " .. r[1] .. " is mandatory for this action.")
    end
  end
  local signed = {}
  for k, name in ipairs(auth.signed_headers) do
    if name == "" or name ~= name:lower() then
      return nil, incomplete("SignedHeaders must be non-empty lowercase header names joined by ';', got \"" ..
                             auth.signed_headers_raw .. "\".")
    end
    if k > 1 and auth.signed_headers[k - 1] >= name then
      return nil, incomplete("SignedHeaders must be sorted and without duplicates, got \"" ..
                             auth.signed_headers_raw .. "\".")
    end
    if h[name] == nil then
      return nil, incomplete("SignedHeaders names " .. name .. ", which the request does not carry.")
    end
    signed[name] = true
  end
  local must = { "host" }
  if h["content-type"] then must[#must + 1] = "content-type" end
  for name in pairs(h) do
    if name:find("^x%-acs%-") then must[#must + 1] = name end
  end
  table.sort(must)
  for _, name in ipairs(must) do
    if not signed[name] then
      return nil, incomplete("Header " .. name .. " must be signed (SignedHeaders: \"" ..
                             auth.signed_headers_raw .. "\").")
    end
  end

  -- 3. x-acs-date.
  local err = check_time(signing.trim(h["x-acs-date"]), "x-acs-date")
  if err then return nil, err end

  -- 4. Credentials: Credential=<AccessKeyId>, token in x-acs-security-token.
  if h["x-acs-accesskey-id"] and signing.trim(h["x-acs-accesskey-id"]) ~= auth.credential then
    return nil, incomplete("Header x-acs-accesskey-id differs from the Credential of Authorization.")
  end
  local token = h["x-acs-security-token"] and signing.trim(h["x-acs-security-token"])
  local acct
  acct, err = check_credentials(auth.credential, token, "x-acs-security-token")
  if not acct then return nil, err end

  -- 5. Body hash, then the signature, with the emulator's own V3 code.
  local hashed_payload = crypto.sha256_hex(ctx.body)
  if signing.trim(h["x-acs-content-sha256"]) ~= hashed_payload then
    return nil, gateway_error(400, "InvalidParameter",
      "The specified header \"x-acs-content-sha256\" is not valid. It must be the lowercase hex SHA-256 of " ..
      "the request body (" .. #ctx.body .. " bytes): " .. hashed_payload)
  end
  local canonical_request = signing.v3_canonical_request(ctx.method, ctx.query_params, h,
                                                         auth.signed_headers, hashed_payload)
  local string_to_sign = signing.v3_string_to_sign(crypto.sha256_hex(canonical_request))
  local expected = crypto.hmac_sha256_hex(acct.access_key_secret, string_to_sign)
  if expected ~= auth.signature then
    return nil, gateway_error(400, "SignatureDoesNotMatch",
      "Specified signature is not matched with our calculation. server string to sign is:" .. string_to_sign ..
      " server canonical request is:" .. canonical_request)
  end

  -- 6. Nonce replay (shared with V1: per AccessKeyId).
  if not store.use_nonce(auth.credential, signing.trim(h["x-acs-signature-nonce"])) then
    return nil, gateway_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
  end
  return { access_key_id = auth.credential, acct = acct, account = acct.account,
           action = signing.trim(h["x-acs-action"]), version = signing.trim(h["x-acs-version"]), common = V3_COMMON }
end

-- The action's own parameters (no common or signature ones) as sorted
-- name=value text: what identifies a request's content across re-sends.
local function params_text(p, common)
  local names = {}
  for name in pairs(p) do
    if not (common[name] or V1_COMMON[name]) then names[#names + 1] = name end
  end
  table.sort(names)
  for i, name in ipairs(names) do names[i] = signing.percent_encode(name) .. "=" .. signing.percent_encode(p[name]) end
  return table.concat(names, "&")
end

-- Runs the checks and the action. Returns a result table:
--   { status, code, message }                 gateway error
--   { status = 200, code, body, root }        action answer (body is a codec value)
-- plus the fields of faults.lua (reset, raw, sleep_ms, headers, fault) and
-- listing_fault (ota_faults.lua; it does not rule out the damage faults).
local function process(ctx)
  -- 1. Path and method. The raw path (before nginx normalizes it) must be "/".
  local raw_path = ngx.var.request_uri:match("^[^?]*")
  if raw_path ~= "/" then
    return gateway_error(404, "InvalidAction.NotFound",
      "Specified api is not found, please check your url and method. (path must be /, got " .. raw_path .. ")")
  end
  if ctx.method ~= "GET" and ctx.method ~= "POST" then
    return gateway_error(404, "InvalidAction.NotFound",
      "Specified api is not found, please check your url and method. (method must be GET or POST, got " ..
      ctx.method .. ")")
  end
  if ctx.parse_error then
    return gateway_error(400, "InvalidParameter", "The request parameters are malformed: " .. ctx.parse_error)
  end
  local p = ctx.params

  -- 2-6. Signature V1 or V3, or none for an anonymous action.
  local anonymous = not ctx.v3 and ACTIONS[p.Action or ""]
  local auth, err
  if anonymous and anonymous.anonymous then
    auth, err = authenticate_anonymous(ctx, anonymous)
  else
    auth, err = (ctx.v3 and authenticate_v3 or authenticate_v1)(ctx)
  end
  if not auth then return err end

  -- 7. Throttling: per AccessKeyId (qps), then per account and action (quota.lua).
  local account = auth.account or auth.access_key_id
  if (auth.access_key_id and ctx.faults.qps > 0 and not store.throttle_admit(auth.access_key_id, ctx.faults.qps))
     or not store.throttle_admit_buckets(quota.buckets(ctx.faults, account, auth.action, p)) then
    ctx.throttled = true
    return gateway_error(400, "Throttling.User", "Request was denied due to user flow control.")
  end

  -- A RAM policy that does not grant the action (fault deny_<Action>).
  if quota.denied(ctx.faults, auth.action) then
    return gateway_error(403, "Forbidden.RAM",
      "User not authorized to operate on the specified resource, or this API doesn't support RAM.")
  end

  -- Faults after authentication: the nonce is recorded by now.
  local early = faults_after.after_auth(ctx, auth.acct)
  if early then return early end

  -- 8. Action and Version.
  local action = ACTIONS[auth.action]
  if not action then
    return gateway_error(404, "InvalidAction.NotFound",
      "Specified api is not found, please check your url and method. (Action " .. auth.action .. ")")
  end
  if auth.version ~= action.version then
    return gateway_error(400, "InvalidVersion",
      "Specified parameter Version is not valid. (" .. auth.action .. " needs " .. action.version .. ")")
  end

  -- 9. Parameters: names (stricter than the real gateway), common values, then
  -- the action's own gateway-level checks.
  local names = {}
  for name in pairs(p) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    if not (auth.common[name] or action.is_parameter(name)) then
      return gateway_error(400, "InvalidParameter",
        "The parameter \"" .. name .. "\" is not accepted by " .. action.name ..
        (ctx.v3 and " in a V3 request" or "") .. " (the emulator rejects unknown parameter names).")
    end
  end
  if p.RegionId and not p.RegionId:match("^[a-z][a-z0-9]*%-[a-z0-9%-]*[a-z0-9]$") then
    return invalid_parameter("RegionId", "Expected a region id such as cn-shanghai.")
  end
  if p.IotInstanceId and p.IotInstanceId == "" then
    return invalid_parameter("IotInstanceId", "It must not be empty when given.")
  end
  err = action.check_parameters(p, ctx.faults, auth)
  if err then return err end

  local body, code, fault = action.call(p, ctx.request_id, ctx.faults)
  -- Parameter sets only for writes while the log is off (store.count_execution).
  local detail = (ctx.faults.log ~= 0 or faults_after.WRITES[action.name]) and params_text(p, auth.common) or nil
  store.count_execution(action.name, detail, code == "OK")
  local result = { status = 200, code = code, body = body, root = action.name .. "Response",
                   listing_fault = fault }
  faults_after.after_action(ctx, action.name, result)
  return result
end

-- Encoding and sending ----------------------------------------------------------

local function host_id(ctx)
  local region = ctx.params and ctx.params.RegionId
  if region and region:match("^[a-z0-9%-]+$") then return "iot." .. region .. ".aliyuncs.com" end
  return "iot.cn-shanghai.aliyuncs.com"
end

-- Body text and content type for a result.
local function encode(ctx, result)
  if result.raw then return result.raw, result.content_type end
  local body_value, root
  if result.body then
    body_value, root = result.body, result.root
  else
    body_value = codec.object(ERROR_FIELDS, {
      RequestId = ctx.request_id,
      HostId = host_id(ctx),
      Code = result.code,
      Message = result.message,
      Recommend = "https://api.aliyun.com/troubleshoot?q=" .. result.code ..
                  "&product=Iot&requestId=" .. ctx.request_id,
    })
    root = "Error"
  end
  if ctx.json then
    return codec.json(body_value), "application/json;charset=utf-8"
  end
  return codec.xml(root, body_value), "text/xml;charset=utf-8"
end

-- The Action and AccessKeyId a request names (either may be nil), before
-- any check: V3 from x-acs-action and the Credential, V1 from the parameters.
local function caller(ctx)
  if ctx.v3 then
    return ctx.headers["x-acs-action"], (ctx.headers.authorization or ""):match("Credential=([^,%s]+)")
  end
  return ctx.params and ctx.params.Action, ctx.params and ctx.params.AccessKeyId
end

-- The request as recorded in the control log. signature_version is "v3" for a
-- request with "Authorization: ACS3-...", else "v1"; V3 entries also carry the
-- x-acs-* headers (x-acs-security-token shown as ***).
local function log_entry(ctx, http_status, code, fault)
  local params = {}
  for k, v in pairs(ctx.params or {}) do
    if k == "SecurityToken" or k == "OIDCToken" then params[k] = "***"
    elseif k ~= "Signature" then params[k] = v end
  end
  local action, key = caller(ctx)
  local headers
  if ctx.v3 then
    headers = {}
    for name, v in pairs(ctx.headers) do
      if name:find("^x%-acs%-") then headers[name] = name == "x-acs-security-token" and "***" or v end
    end
  end
  return codec.object(
    { "action", "access_key_id", "method", "signature_version", "params", "headers", "http_status", "code", "fault",
      "at" },
    {
      action = action or codec.null,
      access_key_id = key or codec.null,
      method = ctx.method,
      signature_version = ctx.v3 and "v3" or "v1",
      params = params,
      headers = headers,
      http_status = http_status,
      code = code,
      fault = fault,
      at = ctx.at,
    })
end

local every = faults_after.every

-- Appends the request to the control log, unless fault option log is 0; the
-- counts (counts.lua) are kept either way.
local function record(ctx, http_status, code, fault)
  if ctx.throttled then counts.throttled(caller(ctx)) end
  if ctx.faults.log ~= 0 then store.log_append(log_entry(ctx, http_status, code, fault)) end
end

function M.handle()
  local ctx = {
    request_id = new_request_id(),
    method = ngx.req.get_method(),
    faults = store.faults(),
  }
  ctx.headers, ctx.header_error = read_headers()
  ctx.v3 = (ctx.headers.authorization or ""):find("^ACS3%-") ~= nil
  ctx.params, ctx.parse_error = collect_params(ctx)
  -- V1: only a request that asked for JSON gets JSON (the real default is XML).
  -- When the parameters could not be parsed, look for a literal Format=JSON.
  -- V3: Format=JSON/other if given; else XML only when Accept asks for XML and
  -- not for JSON; else JSON (the V3 SDKs send "accept: application/json").
  local raw = "&" .. (ngx.var.args or "") .. "&" .. (ngx.req.get_body_data() or "") .. "&"
  local format = ctx.params and ctx.params.Format
  if not ctx.params then
    format = raw:find("&Format=JSON&", 1, true) and "JSON" or (raw:find("&Format=", 1, true) and "XML")
  end
  if ctx.v3 and format == nil then
    local accept = (ctx.headers.accept or ""):lower()
    ctx.json = not (accept:find("xml", 1, true) and not accept:find("json", 1, true))
  else
    ctx.json = format == "JSON"
  end

  local faults = ctx.faults
  ngx.update_time()
  local action_name, key = caller(ctx)
  counts.arrival(action_name, key, ngx.now())
  ctx.at = ngx.now()   -- arrival, for tests that look at request rates
  local count = store.next_request_number()
  ctx.count = count
  if faults.latency_ms > 0 then ngx.sleep(faults.latency_ms / 1000) end

  -- Faults that pre-empt processing: the request never reaches the checks.
  if every(faults.reset_every, count) then
    record(ctx, 444, "ConnectionReset", "reset")
    return ngx.exit(444)            -- nginx closes the connection, no response
  end
  local result, fault
  if every(faults.error_500_every, count) or faults_after.once_every("error_500", faults.error_500_once_every, ctx) then
    result, fault = gateway_error(500, "InternalError",
      "The request processing has failed due to some unknown error, exception or failure."), "error_500"
  elseif every(faults.error_503_every, count) then
    result, fault = gateway_error(503, "ServiceUnavailable",
      "The request has failed due to a temporary failure of the server."), "error_503"
  else
    result = process(ctx)
    fault = result.fault
  end

  if result.reset then
    -- The request was read (and its nonce recorded, or its write executed).
    record(ctx, 444, "ConnectionReset", fault)
    return ngx.exit(444)
  end
  if result.sleep_ms then ngx.sleep(result.sleep_ms / 1000) end

  local body, content_type = encode(ctx, result)
  local status = result.status

  -- Faults that damage the answer of a processed request (always HTTP 200).
  if not fault and every(faults.malformed_every, count) then
    fault, status = "malformed", 200
    body = '{"RequestId":"' .. ctx.request_id .. '","Success":true,"Total":,,"Data":{"SimpleOTATaskInfo":[{'
  elseif not fault and every(faults.truncated_every, count) then
    fault, status = "truncated", 200
    body = body:sub(1, math.floor(#body / 2))
  elseif faults.huge_body_bytes > #body and not result.raw then
    -- Whitespace keeps the body valid JSON/XML and its meaning unchanged.
    local pad = string.rep(" ", faults.huge_body_bytes - #body)
    if ctx.json then body = body:sub(1, -2) .. pad .. "}" else body = body .. pad end
    fault = fault or "huge_body"
  end

  record(ctx, status, result.code, fault or result.listing_fault)

  if result.early_hints then
    -- nginx cannot send an interim response itself: write the whole answer
    -- on the raw connection (nginx closes it afterwards).
    local sock = assert(ngx.req.socket(true))
    sock:send("HTTP/1.1 103 Early Hints\r\nLink: </>; rel=preconnect\r\n\r\n" ..
      "HTTP/1.1 " .. status .. " OK\r\nDate: " .. ngx.http_time(ngx.time()) .. "\r\nContent-Type: " .. content_type ..
      "\r\nContent-Length: " .. #body .. "\r\nx-acs-request-id: " .. ctx.request_id ..
      "\r\nConnection: close\r\n\r\n" .. body)
    return
  end

  ngx.status = status
  ngx.header["Content-Type"] = content_type
  ngx.header["Content-Length"] = #body
  ngx.header["x-acs-request-id"] = ctx.request_id
  for name, value in pairs(result.headers or {}) do ngx.header[name] = value end
  if faults.date_year > 0 then
    -- A hostile or broken Date header (fault date_year): a year far off.
    ngx.header["Date"] = string.format("Sun, 01 Jan %d 00:00:00 GMT", faults.date_year)
  end
  ngx.print(body)
end

return M
