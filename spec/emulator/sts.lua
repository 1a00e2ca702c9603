-- STS (2015-04-01) on the emulator: the actions AssumeRole and AssumeRoleWithOIDC
-- (registered in gateway.lua's ACTIONS, routed by Action and Version like the Iot
-- ones), and the credentials URI (control.lua, GET /__emulator/credentials-uri).
--
-- AssumeRole arrives V1-signed: the gateway has checked the caller's signature, nonce
-- and keys (accounts.lua's, and the credentials issued here) before check_parameters.
-- AssumeRoleWithOIDC carries no AccessKey (anonymous: the gateway skips steps 2-6); the
-- OIDC token authenticates. Checks, in this order (README.md, "STS"):
--   fault sts_unavailable                         503 ServiceUnavailable
--   RoleArn missing / not acs:ram::<uid>:role/<n> 400 MissingRoleArn / InvalidParameter.RoleArn
--   no such role                                  404 EntityNotExist.Role
--   RoleSessionName missing / not 2-32 [A-Za-z0-9.@_-]  400 MissingRoleSessionName /
--                                                 InvalidParameter.RoleSessionName
--   DurationSeconds not an integer in 900..the role's maximum  400 InvalidParameter.DurationSeconds
--   Policy not a JSON object                      400 InvalidParameter.PolicyGrammar
--   AssumeRole: the caller's account is not the role's, or the ExternalId the role
--     requires is missing or wrong                403 NoPermission
--   OIDC: OIDCProviderArn / OIDCToken missing     400 MissingOIDCProviderArn / MissingOIDCToken
--     no such provider                            404 EntityNotExist.OIDCProvider
--     the provider's expired token / any other    400 AuthenticationFail.OIDCToken.Expired / .Invalid
--     the role does not trust that provider       403 NoPermission
-- Then credentials are issued (store.sts_issue), which the gateway accepts for any
-- action until their Expiration: now + DurationSeconds (default 3600), or fault
-- sts_duration_seconds whatever was asked.

local cjson = require "cjson.safe"
local codec = require "codec"
local store = require "store"
local counts = require "counts"
local lib = require "actionlib"
local accounts = require "accounts"

local format, concat = string.format, table.concat
local sts_error = lib.error

local M = {}

local ROLES, PROVIDERS = {}, {}
for _, r in ipairs(accounts.roles) do ROLES[r.arn] = r end
for _, p in ipairs(accounts.oidc_providers) do PROVIDERS[p.arn] = p end

local VERSION = "2015-04-01"
local DEFAULT_DURATION, MIN_DURATION = 3600, 900
local CREDENTIAL_FIELDS = { "SecurityToken", "AccessKeyId", "AccessKeySecret", "Expiration" }

local function iso_utc(t) return os.date("!%Y-%m-%dT%H:%M:%SZ", t) end

local function random_hex(n)
  local t = {}
  for i = 1, n do t[i] = format("%x", math.random(0, 15)) end
  return concat(t)
end

-- The checks both actions share: the fault, RoleArn, role, session name, duration, policy.
-- Returns the role, or nil and an error.
local function check_role(p, faults)
  if faults.sts_unavailable > 0 then
    return nil, sts_error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server.")
  end
  local missing = lib.missing(p, "RoleArn")
  if missing then return nil, missing end
  local uid = p.RoleArn:match("^acs:ram::(%d+):role/[%w%.%-]+$")
  if not uid then
    return nil, sts_error(400, "InvalidParameter.RoleArn",
      "The parameter RoleArn is wrong: expected acs:ram::<uid>:role/<name>.")
  end
  local role = ROLES[p.RoleArn]
  if not role then return nil, sts_error(404, "EntityNotExist.Role", "The role not exists: " .. p.RoleArn .. ".") end
  missing = lib.missing(p, "RoleSessionName")
  if missing then return nil, missing end
  local name = p.RoleSessionName
  if #name < 2 or #name > 32 or not name:match("^[%w%.@%-_]+$") then
    return nil, sts_error(400, "InvalidParameter.RoleSessionName",
      "The parameter RoleSessionName must be 2 to 32 letters, digits, or . @ - _.")
  end
  if p.DurationSeconds then
    local d = lib.parse_integer(p.DurationSeconds)
    if not d or d < MIN_DURATION or d > role.max_duration then
      return nil, sts_error(400, "InvalidParameter.DurationSeconds", format(
        "The Min/Max value of DurationSeconds is %d/%d seconds for this role.", MIN_DURATION, role.max_duration))
    end
  end
  if p.Policy and type(cjson.decode(p.Policy)) ~= "table" then
    return nil, sts_error(400, "InvalidParameter.PolicyGrammar", "The parameter Policy has not been parsed.")
  end
  return role
end

local function no_permission(why)
  return sts_error(403, "NoPermission", "You are not authorized to do this action. You should be authorized by RAM. ("
    .. why .. ")")
end

-- Credentials for `role`, stored so that the gateway accepts them until they expire.
local function issue(role, duration, faults)
  local n = store.sts_next()
  local life = faults.sts_duration_seconds > 0 and faults.sts_duration_seconds or duration
  ngx.update_time()
  local id = format("STS.EmuIssued%04d%s", n, random_hex(8))
  local record = { access_key_id = id, access_key_secret = format("EmuIssuedSecret-%d-%s", n, random_hex(16)),
    security_token = format("EmuIssuedToken/%d+%s=", n, random_hex(24)), kind = "sts", account = role.account,
    role = role.arn, expires_at = ngx.time() + life }
  store.sts_issue(id, record)
  return record
end

local function credentials_values(r)
  return { SecurityToken = r.security_token, AccessKeyId = r.access_key_id, AccessKeySecret = r.access_key_secret,
           Expiration = iso_utc(r.expires_at) }
end

-- The answer of both actions: { RequestId, [OIDCTokenInfo,] AssumedRoleUser, Credentials }.
local function answer(p, request_id, faults, extra)
  local role = ROLES[p.RoleArn]
  local r = issue(role, lib.parse_integer(p.DurationSeconds or "") or DEFAULT_DURATION, faults)
  local uid = role.arn:match("^acs:ram::(%d+):")
  local keys = { "RequestId", "AssumedRoleUser", "Credentials" }
  local values = { RequestId = request_id,
    AssumedRoleUser = codec.object({ "AssumedRoleId", "Arn" },
      { AssumedRoleId = "3" .. uid .. ":" .. p.RoleSessionName, Arn = role.arn .. "/" .. p.RoleSessionName }),
    Credentials = codec.object(CREDENTIAL_FIELDS, credentials_values(r)) }
  if extra then
    table.insert(keys, 2, "OIDCTokenInfo")
    values.OIDCTokenInfo = extra
  end
  return codec.object(keys, values), "OK"
end

-- AssumeRole ------------------------------------------------------------------------

local ASSUME_ROLE_PARAMETERS = { RoleArn = true, RoleSessionName = true, DurationSeconds = true, Policy = true,
                                 ExternalId = true }

M.assume_role = { name = "AssumeRole", version = VERSION }

function M.assume_role.is_parameter(name) return ASSUME_ROLE_PARAMETERS[name] == true end

-- auth: the gateway's (auth.account is the caller's account).
function M.assume_role.check_parameters(p, faults, auth)
  local role, err = check_role(p, faults)
  if not role then return err end
  if role.trust ~= "account" or auth.account ~= role.account then
    return no_permission("the role's trust policy does not let this account assume it")
  end
  if role.external_id and p.ExternalId ~= role.external_id then
    return no_permission("the role's trust policy requires a matching ExternalId")
  end
end

function M.assume_role.call(p, request_id, faults) return answer(p, request_id, faults) end

-- AssumeRoleWithOIDC ----------------------------------------------------------------

local OIDC_PARAMETERS = { RoleArn = true, RoleSessionName = true, DurationSeconds = true, Policy = true,
                          OIDCProviderArn = true, OIDCToken = true }

M.assume_role_with_oidc = { name = "AssumeRoleWithOIDC", version = VERSION, anonymous = true,
  -- Accepted besides its own parameters: no AccessKey, nonce or signature.
  common = { Action = true, Version = true, Format = true, Timestamp = true, RegionId = true } }

function M.assume_role_with_oidc.is_parameter(name) return OIDC_PARAMETERS[name] == true end

function M.assume_role_with_oidc.check_parameters(p, faults)
  local role, err = check_role(p, faults)
  if not role then return err end
  err = lib.missing(p, "OIDCProviderArn") or lib.missing(p, "OIDCToken")
  if err then return err end
  local provider = PROVIDERS[p.OIDCProviderArn]
  if not provider then
    return sts_error(404, "EntityNotExist.OIDCProvider",
      "The OIDC provider does not exist: " .. p.OIDCProviderArn .. ".")
  end
  if p.OIDCToken == provider.expired_token then
    return sts_error(400, "AuthenticationFail.OIDCToken.Expired", "The OIDC token has expired.")
  elseif p.OIDCToken ~= provider.token then
    return sts_error(400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid.")
  end
  if role.trust ~= provider.arn then return no_permission("the role does not trust this OIDC provider") end
end

function M.assume_role_with_oidc.call(p, request_id, faults)
  return answer(p, request_id, faults, codec.object({ "Subject", "Issuer", "ClientIds" },
    { Subject = "system:serviceaccount:iot:ota-worker", Issuer = "https://oidc-ack.emulator.invalid/emu",
      ClientIds = "sts.aliyuncs.com" }))
end

-- The credentials URI --------------------------------------------------------------

--- GET /__emulator/credentials-uri?role=<name>&duration=<s>&status=<n>&body=bad_json|failed|no_expiration:
-- fresh STS credentials of role acs:ram::1000000000000001:role/<name> (default
-- iot-ota-operator) as {"Code":"Success", AccessKeyId, AccessKeySecret, SecurityToken,
-- Expiration, LastUpdated}; status forces an HTTP status, body breaks the answer. Fault
-- sts_unavailable answers 503. Counted as action "CredentialsURI" in /__emulator/counts.
-- Returns status, body.
function M.credentials_uri(args, faults)
  ngx.update_time()
  counts.arrival("CredentialsURI", nil, ngx.now())
  if faults.sts_unavailable > 0 then return 503, "credentials service unavailable" end
  if args.status then return tonumber(args.status) or 500, "forced failure" end
  local role = ROLES["acs:ram::1000000000000001:role/" .. (args.role or "iot-ota-operator")]
  if not role then return 404, "no such role" end
  local r = issue(role, tonumber(args.duration) or DEFAULT_DURATION, faults)
  if args.body == "bad_json" then return 200, '{"Code": "Success", "AccessKeyId": ' end
  local fields = { "Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration", "LastUpdated" }
  local values = credentials_values(r)
  values.Code = args.body == "failed" and "Failed" or "Success"
  values.LastUpdated = iso_utc(ngx.time())
  if args.body == "no_expiration" then values.Expiration = nil; table.remove(fields, 5) end
  return 200, codec.json(codec.object(fields, values))
end

return M
