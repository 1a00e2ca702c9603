--- aliyun.iot.credentials.keys: the one check of an AccessKey pair (and, for STS, its
-- security token) that every source runs on what it found, options, environment, CLI
-- profile, INI section or ECS metadata answer alike, so "usable keys" means one thing.
--
-- It only says which part is missing; each source words the error itself, because only it
-- knows where the part should have been (an option, an environment variable, a key in a
-- named profile, a field of a service's answer).
local nonempty = require("aliyun.iot.credentials.common").nonempty
local iso8601_epoch = require("aliyun.iot.time").iso8601_epoch

local type = type

local keys = {}

-- The other half of the pair, for messages such as "X is set but Y is missing".
local OTHER = { access_key_id = "access_key_secret", access_key_secret = "access_key_id" }

--- The credentials table { access_key_id, access_key_secret, security_token } from
-- strings that may be absent or empty. With `token_required` (STS) the token must be
-- there too; otherwise an empty one counts as none.
-- Returns creds, or nil, the name of the first missing part ("access_key_id",
-- "access_key_secret" or "security_token") and, for a half of the pair, the other half.
-- Keys copied from a file or a console keep its line end or a stray space
-- (a secret pasted from a CRLF file ends in "\r"); no key has them.
local function trimmed(v)
  if type(v) ~= "string" then return v end
  return (v:gsub("^%s+", ""):gsub("%s+$", ""))
end

function keys.check(id, secret, token, token_required)
  id, secret, token = nonempty(trimmed(id)), nonempty(trimmed(secret)), nonempty(trimmed(token))
  local absent = not id and "access_key_id" or not secret and "access_key_secret"
    or token_required and not token and "security_token" or nil
  if absent then return nil, absent, OTHER[absent] end
  return { access_key_id = id, access_key_secret = secret, security_token = token }
end

-- What keys.expiring's second result means, for a message "... returned <this>".
keys.MISSING = {
  keys = "no AccessKeyId, AccessKeySecret and SecurityToken",
  expiration = "an Expiration that is not an ISO 8601 time",
}

--- The STS credentials in a service's answer (ECS metadata, STS, a credentials URI all
-- name them alike): `doc`'s AccessKeyId, AccessKeySecret and SecurityToken, with its
-- Expiration as epoch seconds. Returns creds, or nil and what is missing or unusable
-- ("keys", "expiration").
function keys.expiring(doc)
  local creds = type(doc) == "table" and keys.check(doc.AccessKeyId, doc.AccessKeySecret, doc.SecurityToken, true)
  if not creds then return nil, "keys" end
  creds.expiration = iso8601_epoch(doc.Expiration)
  if not creds.expiration then return nil, "expiration" end
  return creds
end

return keys
