-- The emulated Alibaba Cloud RPC API gateway (content handler for location /).
--
-- Checks run in the order of the real gateway; the first failure answers with
-- the gateway error body {RequestId, HostId, Code, Message, Recommend}:
--   1 path and method        5 signature (own V1 code, signing.lua)
--   2 common parameters      6 nonce replay
--   3 timestamp              7 throttling (fault option qps)
--   4 AccessKeyId / STS      8 Action, Version   9 parameters, then the action
-- Fault injection (latency, 5xx, resets, broken bodies) wraps all of this.

local signing = require "signing"
local codec = require "codec"
local store = require "store"

local M = {}

-- Actions: one module per action, each with
--   name, version, is_parameter(name), check_parameters(params) -> nil | err,
--   call(params) -> body_object, code
-- A new action is one new file plus one line here.
local ACTIONS = {
  ListOTATaskByJob = require "ota",
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
-- Returns map, or nil and an error message. Repeated names are rejected: the
-- canonical query of V1 cannot represent them.
local function collect_params(method)
  local pairs_list, err = signing.parse_pairs(ngx.var.args)
  if not pairs_list then return nil, "query string: " .. err end
  if method == "POST" then
    ngx.req.read_body()
    local body = ngx.req.get_body_data()
    if body == nil and ngx.req.get_body_file() then
      return nil, "request body too large"
    end
    if body and body ~= "" then
      local ctype = (ngx.var.content_type or ""):lower()
      if not ctype:find("^application/x%-www%-form%-urlencoded") then
        return nil, "a POST body must be application/x-www-form-urlencoded, got Content-Type " ..
                    (ngx.var.content_type or "(none)")
      end
      local body_pairs, berr = signing.parse_pairs(body)
      if not body_pairs then return nil, "form body: " .. berr end
      for _, p in ipairs(body_pairs) do pairs_list[#pairs_list + 1] = p end
    end
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

-- The checks ------------------------------------------------------------------

-- Runs checks 1-9 and the action. Returns a result table:
--   { status, code, message }                 gateway error
--   { status = 200, code, body, root }        action answer (body is a codec value)
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

  -- 2. Common parameters (present and non-empty).
  for _, name in ipairs(REQUIRED) do
    if p[name] == nil or p[name] == "" then
      if SIGNATURE_FIELDS[name] then
        return gateway_error(400, "IncompleteSignature",
          "The request signature does not conform to Aliyun standards. Missing parameter " .. name .. ".")
      end
      return gateway_error(400, "Missing" .. name, name .. " is mandatory for this action.")
    end
  end
  if p.SignatureMethod ~= "HMAC-SHA1" then
    return gateway_error(400, "IncompleteSignature",
      "The request signature does not conform to Aliyun standards. SignatureMethod must be HMAC-SHA1, got " ..
      p.SignatureMethod .. ".")
  end
  if p.SignatureVersion ~= "1.0" then
    return gateway_error(400, "IncompleteSignature",
      "The request signature does not conform to Aliyun standards. SignatureVersion must be 1.0, got " ..
      p.SignatureVersion .. ".")
  end

  -- 3. Timestamp: exact form, then within 15 minutes of the server clock.
  local ts = parse_timestamp(p.Timestamp)
  if not ts then
    return gateway_error(400, "IllegalTimestamp",
      "The input parameter \"Timestamp\" that is mandatory for processing this request is not supplied " ..
      "or is not in the format YYYY-MM-DDThh:mm:ssZ (UTC): " .. p.Timestamp)
  end
  ngx.update_time()
  local now = ngx.time()
  if math.abs(now - ts) > MAX_CLOCK_SKEW then
    return gateway_error(400, "InvalidTimeStamp.Expired",
      "Specified time stamp or date value is expired. Request time: " .. p.Timestamp ..
      ", server time: " .. iso_utc(now) .. " (allowed skew 15 minutes)")
  end

  -- 4. Credentials.
  local acct = ACCOUNTS[p.AccessKeyId]
  if not acct then
    return gateway_error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
  end
  if acct.inactive then
    return gateway_error(400, "InvalidAccessKeyId.Inactive", "Specified access key is disabled.")
  end
  local token = p.SecurityToken
  if acct.kind == "sts" then
    if token == nil or token == "" then
      return gateway_error(400, "InvalidSecurityToken.Malformed",
        "Specified SecurityToken is malformed. (an STS AccessKeyId needs SecurityToken)")
    elseif token == acct.expired_token then
      return gateway_error(400, "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.")
    elseif token ~= acct.security_token then
      if TOKEN_OWNER[token] then
        return gateway_error(400, "InvalidSecurityToken.MismatchWithAccessKey",
          "Specified SecurityToken mismatch with the AccessKey.")
      end
      return gateway_error(400, "InvalidSecurityToken.Malformed",
        "Specified SecurityToken is malformed.")
    end
  elseif token ~= nil then
    return gateway_error(400, "InvalidSecurityToken.MismatchWithAccessKey",
      "Specified SecurityToken mismatch with the AccessKey. (this AccessKeyId is not an STS key)")
  end

  -- 5. Signature, with the emulator's own V1 canonicalization.
  local string_to_sign = signing.string_to_sign(ctx.method, p)
  local expected = ngx.encode_base64(ngx.hmac_sha1(signing.hmac_key(acct.access_key_secret), string_to_sign))
  if expected ~= p.Signature then
    return gateway_error(400, "SignatureDoesNotMatch",
      "Specified signature is not matched with our calculation. server string to sign is:" .. string_to_sign)
  end

  -- 6. Nonce replay (recorded only now that the signature is valid).
  if not store.use_nonce(p.AccessKeyId, p.SignatureNonce) then
    return gateway_error(400, "SignatureNonceUsed", "Specified signature nonce was used already.")
  end

  -- 7. Throttling.
  if ctx.faults.qps > 0 and not store.throttle_admit(p.AccessKeyId, ctx.faults.qps) then
    return gateway_error(400, "Throttling.User", "Request was denied due to user flow control.")
  end

  -- 8. Action and Version.
  local action = ACTIONS[p.Action]
  if not action then
    return gateway_error(404, "InvalidAction.NotFound",
      "Specified api is not found, please check your url and method. (Action " .. p.Action .. ")")
  end
  if p.Version ~= action.version then
    return gateway_error(400, "InvalidVersion",
      "Specified parameter Version is not valid. (" .. p.Action .. " needs " .. action.version .. ")")
  end

  -- 9. Parameters: names (stricter than the real gateway), common values, then
  -- the action's own gateway-level checks.
  local names = {}
  for name in pairs(p) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local known = name == "Signature" or OPTIONAL_COMMON[name] or action.is_parameter(name)
    if not known then
      for _, r in ipairs(REQUIRED) do if r == name then known = true end end
    end
    if not known then
      return gateway_error(400, "InvalidParameter",
        "The parameter \"" .. name .. "\" is not accepted by " .. action.name ..
        " (the emulator rejects unknown parameter names).")
    end
  end
  if p.RegionId and not p.RegionId:match("^[a-z][a-z0-9]*%-[a-z0-9%-]*[a-z0-9]$") then
    return invalid_parameter("RegionId", "Expected a region id such as cn-shanghai.")
  end
  if p.IotInstanceId and p.IotInstanceId == "" then
    return invalid_parameter("IotInstanceId", "It must not be empty when given.")
  end
  local err = action.check_parameters(p)
  if err then return err end

  local body, code = action.call(p, ctx.request_id)
  return { status = 200, code = code, body = body, root = action.name .. "Response" }
end

-- Encoding and sending ----------------------------------------------------------

local function host_id(ctx)
  local region = ctx.params and ctx.params.RegionId
  if region and region:match("^[a-z0-9%-]+$") then return "iot." .. region .. ".aliyuncs.com" end
  return "iot.cn-shanghai.aliyuncs.com"
end

-- Body text and content type for a result.
local function encode(ctx, result)
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

-- The request as recorded in the control log.
local function log_entry(ctx, http_status, code, fault)
  local params = {}
  for k, v in pairs(ctx.params or {}) do
    if k == "SecurityToken" then params[k] = "***"
    elseif k ~= "Signature" then params[k] = v end
  end
  return codec.object(
    { "action", "access_key_id", "method", "params", "http_status", "code", "fault" },
    {
      action = ctx.params and ctx.params.Action or codec.null,
      access_key_id = ctx.params and ctx.params.AccessKeyId or codec.null,
      method = ctx.method,
      params = params,
      http_status = http_status,
      code = code,
      fault = fault,
    })
end

local function every(n, count)
  return n > 0 and count % n == 0
end

function M.handle()
  local ctx = {
    request_id = new_request_id(),
    method = ngx.req.get_method(),
    faults = store.faults(),
  }
  ctx.params, ctx.parse_error = collect_params(ctx.method)
  -- Only a request that asked for JSON gets JSON (the real default is XML).
  -- When the parameters could not be parsed, look for a literal Format=JSON.
  if ctx.params then
    ctx.json = ctx.params.Format == "JSON"
  else
    local raw = "&" .. (ngx.var.args or "") .. "&" .. (ngx.req.get_body_data() or "") .. "&"
    ctx.json = raw:find("&Format=JSON&", 1, true) ~= nil
  end

  local faults = ctx.faults
  local count = store.next_request_number()
  if faults.latency_ms > 0 then ngx.sleep(faults.latency_ms / 1000) end

  -- Faults that pre-empt processing: the request never reaches the checks.
  if every(faults.reset_every, count) then
    store.log_append(log_entry(ctx, 444, "ConnectionReset", "reset"))
    return ngx.exit(444)            -- nginx closes the connection, no response
  end
  local result, fault
  if every(faults.error_500_every, count) then
    result, fault = gateway_error(500, "InternalError",
      "The request processing has failed due to some unknown error, exception or failure."), "error_500"
  elseif every(faults.error_503_every, count) then
    result, fault = gateway_error(503, "ServiceUnavailable",
      "The request has failed due to a temporary failure of the server."), "error_503"
  else
    result = process(ctx)
  end

  local body, content_type = encode(ctx, result)
  local status = result.status

  -- Faults that damage the answer of a processed request (always HTTP 200).
  if not fault and every(faults.malformed_every, count) then
    fault, status = "malformed", 200
    body = '{"RequestId":"' .. ctx.request_id .. '","Success":true,"Total":,,"Data":{"SimpleOTATaskInfo":[{'
  elseif not fault and every(faults.truncated_every, count) then
    fault, status = "truncated", 200
    body = body:sub(1, math.floor(#body / 2))
  elseif faults.huge_body_bytes > #body then
    -- Whitespace keeps the body valid JSON/XML and its meaning unchanged.
    local pad = string.rep(" ", faults.huge_body_bytes - #body)
    if ctx.json then body = body:sub(1, -2) .. pad .. "}" else body = body .. pad end
    fault = fault or "huge_body"
  end

  store.log_append(log_entry(ctx, status, result.code, fault))

  ngx.status = status
  ngx.header["Content-Type"] = content_type
  ngx.header["Content-Length"] = #body
  ngx.header["x-acs-request-id"] = ctx.request_id
  ngx.print(body)
end

return M
