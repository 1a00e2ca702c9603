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
return {
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
