-- The emulator's credentials: the single source of truth, read by the emulator
-- (gateway.lua) and by the client's tests (`dofile("spec/emulator/accounts.lua")`).
-- A plain table, loadable by LuaJIT and Lua 5.1/5.4. Test-only secrets.
--
-- kind = "ak"  : a permanent AccessKey.
-- kind = "sts" : STS credentials; SecurityToken must equal security_token;
--                sending expired_token answers InvalidSecurityToken.Expired.
-- inactive     : the key exists but is disabled (InvalidAccessKeyId.Inactive).
-- account      : the Alibaba Cloud account the key belongs to: the per-API
--                quotas (fault options qps_per_action, qps_<Action>) are per
--                account, shared by its AccessKeys and STS sessions.
-- The STS tokens contain '/', '+' and '=' on purpose: they must be
-- percent-encoded (%2F %2B %3D) by the client.
--
-- roles and oidc_providers (beside the list): what STS (sts.lua) lets callers
-- assume. A role belongs to an account (uid in its ARN); trust = "account"
-- lets that account's keys (AK, STS, and credentials STS issued for its
-- roles) call AssumeRole, trust = <OIDC provider ARN> lets that provider's
-- token call AssumeRoleWithOIDC. external_id: AssumeRole must send it.
-- max_duration: the role's maximum session duration (DurationSeconds).
local accounts = {
  { access_key_id = "LTAI5tEmuAk0001", access_key_secret = "EmuSecret0001-do-not-leak", kind = "ak",
    account = "emu-account-1" },
  { access_key_id = "LTAI5tEmuAk0002", access_key_secret = "EmuSecret0002-do-not-leak", kind = "ak",
    account = "emu-account-2" },
  { access_key_id = "LTAI5tEmuInactive", access_key_secret = "EmuSecretInactive", kind = "ak", inactive = true,
    account = "emu-account-3" },
  { access_key_id = "STS.EmuSts0001", access_key_secret = "EmuStsSecret0001-do-not-leak", kind = "sts",
    security_token = "EmuStsToken0001/+=secret-token", expired_token = "EmuStsTokenExpired0001",
    account = "emu-account-1" },
  { access_key_id = "STS.EmuSts0002", access_key_secret = "EmuStsSecret0002-do-not-leak", kind = "sts",
    security_token = "EmuStsToken0002/+=other token", expired_token = "EmuStsTokenExpired0002",
    account = "emu-account-2" },
}

local RRSA = "acs:ram::1000000000000001:oidc-provider/emu-ack-rrsa"

accounts.roles = {
  { arn = "acs:ram::1000000000000001:role/iot-ota-operator", account = "emu-account-1", trust = "account",
    max_duration = 43200 },
  { arn = "acs:ram::1000000000000001:role/iot-ota-partner", account = "emu-account-1", trust = "account",
    external_id = "emu-partner-7f3a", max_duration = 3600 },
  { arn = "acs:ram::1000000000000001:role/iot-ota-rrsa", account = "emu-account-1", trust = RRSA,
    max_duration = 3600 },
  { arn = "acs:ram::1000000000000002:role/iot-ota-operator", account = "emu-account-2", trust = "account",
    max_duration = 3600 },
}

-- The OIDC token a test writes to the file ALIBABA_CLOUD_OIDC_TOKEN_FILE names
-- (a kubelet-projected service account token in ACK), and one that expired.
accounts.oidc_providers = {
  { arn = RRSA, token = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6b3RhIn0.emu-rrsa-sig-do-not-leak",
    expired_token = "eyJhbGciOiJSUzI1NiJ9.eyJleHAiOjF9.emu-rrsa-expired-sig" },
}

return accounts
