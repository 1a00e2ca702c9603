-- The emulator's credentials: the single source of truth, read by the emulator
-- (gateway.lua) and by the client's tests (`dofile("spec/emulator/accounts.lua")`).
-- A plain table, loadable by LuaJIT and Lua 5.1/5.4. Test-only secrets.
--
-- kind = "ak"  : a permanent AccessKey.
-- kind = "sts" : STS credentials; SecurityToken must equal security_token;
--                sending expired_token answers InvalidSecurityToken.Expired.
-- inactive     : the key exists but is disabled (InvalidAccessKeyId.Inactive).
-- The STS tokens contain '/', '+' and '=' on purpose: they must be
-- percent-encoded (%2F %2B %3D) by the client.
return {
  { access_key_id = "LTAI5tEmuAk0001", access_key_secret = "EmuSecret0001-do-not-leak", kind = "ak" },
  { access_key_id = "LTAI5tEmuAk0002", access_key_secret = "EmuSecret0002-do-not-leak", kind = "ak" },
  { access_key_id = "LTAI5tEmuInactive", access_key_secret = "EmuSecretInactive", kind = "ak", inactive = true },
  { access_key_id = "STS.EmuSts0001", access_key_secret = "EmuStsSecret0001-do-not-leak", kind = "sts",
    security_token = "EmuStsToken0001/+=secret-token", expired_token = "EmuStsTokenExpired0001" },
  { access_key_id = "STS.EmuSts0002", access_key_secret = "EmuStsSecret0002-do-not-leak", kind = "sts",
    security_token = "EmuStsToken0002/+=other token", expired_token = "EmuStsTokenExpired0002" },
}
