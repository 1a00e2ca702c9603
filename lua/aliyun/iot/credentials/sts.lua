--- aliyun.iot.credentials.sts: the Security Token Service (STS 2015-04-01), the two calls
-- that turn something into a role's STS credentials, as Alibaba's credential libraries
-- send them:
--
--   AssumeRole          POST /, V1-signed with the source credentials. Query: Action,
--                       Version, Format=JSON and the common parameters (SecurityToken when
--                       the source is STS); form body: RoleArn, RoleSessionName,
--                       DurationSeconds, Policy, ExternalId. The signature covers both.
--   AssumeRoleWithOIDC  POST /, no AccessKey: the OIDC token authenticates. Query: Action,
--                       Version, Format, Timestamp; form: RoleArn, OIDCProviderArn,
--                       OIDCToken, RoleSessionName, DurationSeconds, Policy.
--
-- Both answer {RequestId, Credentials = {AccessKeyId, AccessKeySecret, SecurityToken,
-- Expiration}}, or an error status with {RequestId, Code, Message}. The error keeps STS's
-- Code (NoPermission, InvalidParameter.RoleArn, ...). Building and signing are pure (time
-- and nonce come in); sts.call is the one place that sends.
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local cjson = require("cjson.safe").new()

local type, tostring, tonumber, pairs, ipairs, setmetatable = type, tostring, tonumber, pairs, ipairs, setmetatable
local format, match, find, lower, sub = string.format, string.match, string.find, string.lower, string.sub
local concat, sort = table.concat, table.sort
local floor = math.floor
local percent_encode = core.percent_encode

local invalid, nonempty = common.invalid, common.nonempty

local sts = {
  VERSION = "2015-04-01",
  DEFAULT_ENDPOINT = "https://sts.aliyuncs.com",
  DEFAULT_DURATION = 3600, MIN_DURATION = 900, MAX_DURATION = 43200,
  -- The variables Alibaba's libraries (and the aliyun CLI) read for STS and for every role.
  ENV_ENDPOINT = "ALIBABA_CLOUD_STS_ENDPOINT", ENV_REGION = "ALIBABA_CLOUD_STS_REGION",
  ENV_VPC = "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED",
  ENV_SESSION_NAME = "ALIBABA_CLOUD_ROLE_SESSION_NAME",
  ENV_DURATION = "ALIBABA_CLOUD_ROLE_SESSION_EXPIRATION",
  ENV_EXTERNAL_ID = "ALIBABA_CLOUD_EXTERNAL_ID",
}

local SERVICE = "STS"

------------------------------------------------------------------------------
-- Where STS is

--- The STS base URL: the option sts_endpoint, else ALIBABA_CLOUD_STS_ENDPOINT (either a
-- URL or a bare host, which means https), else sts[-vpc].<region>.aliyuncs.com for the
-- profile's sts_region or ALIBABA_CLOUD_STS_REGION, else https://sts.aliyuncs.com.
-- vpc: the profile's enable_vpc, else ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED = true.
-- Returns the URL, or nil, err.
function sts.endpoint(opts, env, region, vpc)
  local given, from = opts.sts_endpoint, "option sts_endpoint"
  if given == nil then given, from = nonempty(env(sts.ENV_ENDPOINT)), sts.ENV_ENDPOINT end
  if given then
    if not find(given, "://", 1, true) then given = "https://" .. given end
    local base = match(given, "^(https?://[%w%.%-_:%[%]]+)/?$")
    if base then return base end
    return invalid(format("%s must be an STS endpoint such as https://sts.cn-shanghai.aliyuncs.com"
      .. " (no path or query)", from))
  end
  region = nonempty(region) or nonempty(env(sts.ENV_REGION))
  if not region then return sts.DEFAULT_ENDPOINT end
  if not match(region, "^[a-z][a-z0-9%-]*[a-z0-9]$") then
    return invalid(format("the STS region %s (a profile's sts_region, or %s) is not a region id such as cn-shanghai",
      common.quotable(region), sts.ENV_REGION))
  end
  if vpc == nil then vpc = lower(env(sts.ENV_VPC) or "") == "true" end
  return format("https://%s.%s.aliyuncs.com", vpc and "sts-vpc" or "sts", region)
end

------------------------------------------------------------------------------
-- The role's parameters

-- A role ARN as messages and sources show it: it names no secret, but it comes from a
-- file or the environment, so only printable ARN characters are echoed.
function sts.shown_arn(arn)
  if type(arn) == "string" and #arn <= 256 and match(arn, "^[%w:/%.@%-_]+$") then return arn end
  return "(an ARN that cannot be shown)"
end

local RULES = {
  session_name = { "^[%w%.@%-_]+$", 2, 32, "2 to 32 letters, digits or . @ - _" },
  external_id = { "^[%w=,%.@:/%-_]+$", 2, 1224, "2 to 1224 letters, digits or = , . @ : / - _" },
}

local function bad(spec, field, why)
  return invalid(format("%s%s %s", spec.where and (spec.where .. ": ") or "", spec.names[field], why))
end

local function checked_text(spec, field, v)
  local rule = RULES[field]
  if #v < rule[2] or #v > rule[3] or not match(v, rule[1]) then
    return bad(spec, field, "must be " .. rule[4])
  end
  return v
end

--- The parameters of one role, checked, from `spec`: arn, session_name, duration,
-- external_id, policy (absent or empty: the environment's ALIBABA_CLOUD_ROLE_SESSION_NAME,
-- ALIBABA_CLOUD_ROLE_SESSION_EXPIRATION, ALIBABA_CLOUD_EXTERNAL_ID, then the defaults:
-- "aliyun-iot-<epoch seconds>" and 3600 s); names (what each field is called where it came
-- from, for messages) and where (e.g. 'profile "x" in <path>'). `now`: epoch seconds.
-- Returns { arn, session_name, duration, external_id, policy, shown }, or nil, err.
function sts.role(spec, env, now, with_external_id)
  local names = setmetatable({}, { __index = spec.names })
  local s = { names = names, where = spec.where }
  local arn = nonempty(spec.arn)
  if not arn then return common.missing(format("%s%s is missing or empty", spec.where and (spec.where .. ": ") or "",
    names.arn)) end
  if #arn > 1024 or find(arn, "[%s%c]") then
    return bad(s, "arn", "must be a RAM role ARN such as acs:ram::<account id>:role/<name>")
  end
  local out = { arn = arn, shown = sts.shown_arn(arn), policy = nonempty(spec.policy) }
  local fields = { { "session_name", sts.ENV_SESSION_NAME }, { "duration", sts.ENV_DURATION } }
  if with_external_id then fields[3] = { "external_id", sts.ENV_EXTERNAL_ID } end
  for _, f in ipairs(fields) do
    local v = spec[f[1]]
    if v == nil or v == "" or v == 0 then
      v = nonempty(env(f[2]))
      if v then names[f[1]] = f[2] end
    end
    out[f[1]] = v
  end
  local err
  if out.session_name then
    out.session_name, err = checked_text(s, "session_name", tostring(out.session_name))
    if not out.session_name then return nil, err end
  else
    out.session_name = format("aliyun-iot-%d", floor(now))
  end
  if out.external_id then
    out.external_id, err = checked_text(s, "external_id", tostring(out.external_id))
    if not out.external_id then return nil, err end
  end
  local d = tonumber(out.duration or sts.DEFAULT_DURATION)
  if not d or d ~= floor(d) or d < sts.MIN_DURATION or d > sts.MAX_DURATION then
    return bad(s, "duration", format("must be a whole number of seconds from %d to %d",
      sts.MIN_DURATION, sts.MAX_DURATION))
  end
  out.duration = format("%d", d)
  return out
end

------------------------------------------------------------------------------
-- The requests

-- "name=value&..." of t, sorted by name, V1-encoded: the form body, and the query.
local function encode(t)
  local names = {}
  for k in pairs(t) do names[#names + 1] = k end
  sort(names)
  for i, k in ipairs(names) do names[i] = percent_encode(k) .. "=" .. percent_encode(t[k]) end
  return concat(names, "&")
end

local function post(base, query, form)
  return { method = "POST", url = base .. "/?" .. encode(query), body = encode(form),
           headers = { ["Content-Type"] = "application/x-www-form-urlencoded", Accept = "application/json" } }
end

--- AssumeRole as `role` (sts.role's) signed with `creds` (the source credentials), at UTC
-- timestamp `at` with nonce `nonce`. Returns { method, url, headers, body }.
function sts.assume_role_request(base, creds, role, at, nonce)
  local query = { Action = "AssumeRole", Version = sts.VERSION, Format = "JSON", AccessKeyId = creds.access_key_id,
    SignatureMethod = "HMAC-SHA1", SignatureVersion = "1.0", SignatureNonce = nonce, Timestamp = at,
    SecurityToken = creds.security_token }
  local form = { RoleArn = role.arn, RoleSessionName = role.session_name, DurationSeconds = role.duration,
    Policy = role.policy, ExternalId = role.external_id }
  local signed = {}
  for k, v in pairs(query) do signed[k] = v end
  for k, v in pairs(form) do signed[k] = v end
  query.Signature = core.sign_v1("POST", signed, creds.access_key_secret)
  return post(base, query, form)
end

--- AssumeRoleWithOIDC as `role` with the OIDC `token` of provider `provider_arn`, at `at`.
function sts.oidc_request(base, role, provider_arn, token, at)
  return post(base, { Action = "AssumeRoleWithOIDC", Version = sts.VERSION, Format = "JSON", Timestamp = at },
    { RoleArn = role.arn, OIDCProviderArn = provider_arn, OIDCToken = token, RoleSessionName = role.session_name,
      DurationSeconds = role.duration, Policy = role.policy })
end

------------------------------------------------------------------------------
-- Sending, and the answer

-- An STS error answer: its Code and Message (cut short), else the HTTP status.
local function answered_error(what, status, body, headers)
  local doc = cjson.decode(body or "")
  if type(doc) ~= "table" or type(doc.Code) ~= "string" or doc.Code == "" then
    return common.http_error(SERVICE, what, status)
  end
  local message = type(doc.Message) == "string" and sub(doc.Message, 1, 300) or "(no message)"
  return errors.new(sub(doc.Code, 1, 100), format("%s: %s failed: %s", SERVICE, what, message),
    { http_status = tonumber(status),
    request_id = type(doc.RequestId) == "string" and doc.RequestId or headers and headers["x-acs-request-id"] })
end

--- Send `req` through http(method, url, headers, body) and read the credentials of the
-- answer (with their expiration). `what` names the call in messages ("AssumeRole of
-- <role> for <source>"); every string of `secrets` is scrubbed from the error.
-- Returns creds, or nil, err.
function sts.call(http, req, what, secrets)
  local status, body, headers = http(req.method, req.url, req.headers, req.body)
  local err
  if status == 200 then
    local doc = cjson.decode(body or "")
    local creds, missing_part = keys.expiring(type(doc) == "table" and doc.Credentials)
    if creds then return creds end
    err = common.bad_response(SERVICE, format("%s returned %s", what,
      type(doc) == "table" and keys.MISSING[missing_part] or "a body that is not JSON"))
  elseif status == nil then
    err = common.http_error(SERVICE, what, nil, body)
  else
    err = answered_error(what, status, body, headers)
  end
  return nil, errors.redact(err, secrets)
end

return sts
