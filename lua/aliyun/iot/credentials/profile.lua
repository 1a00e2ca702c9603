--- aliyun.iot.credentials.profile: what one profile of a credentials file becomes, shared
-- by the aliyun CLI's config.json and the INI file, which name the same three kinds of
-- profile differently (mode AK | StsToken | EcsRamRole; type access_key | sts |
-- ecs_ram_role). Each reader says how it names them; this decides what the profile makes.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")

local missing, invalid, nonempty, quotable = common.missing, common.invalid, common.nonempty, common.quotable
local format = string.format

local profile = {}

--- A provider from profile p, or nil, err. p's access_key_id, access_key_secret and
-- region_id are read as they are: both files name them alike. `dialect` (a constant of
-- each reader) carries what the two files name differently:
--   kinds       the file's mode or type names -> "keys" (a key pair), "sts" (a pair and a
--               token), "ecs" (a RAM role); a name not in it is not supported;
--   source      the provider source's prefix ("cli-profile", "credentials-file");
--   no_token    the end of the message for an STS profile without its token;
--   unsupported the end of the message for an unsupported kind, %s its name.
-- `entry`: kind (the profile's mode or type name), token and role (the profile's STS
-- token and RAM role name; absent or empty allowed), name and path (for its source), where
-- ("profile ... in <path>", to start messages with). ecs_role(role, region) makes an ECS
-- RAM role provider.
function profile.provider(p, dialect, entry, ecs_role)
  local kind, where = dialect.kinds[entry.kind], entry.where
  if kind == "keys" or kind == "sts" then
    local sts = kind == "sts"
    local creds, absent = keys.check(p.access_key_id, p.access_key_secret, sts and entry.token, sts)
    if absent == "security_token" then return missing(where .. dialect.no_token) end
    if not creds then return missing(where .. " has no " .. absent) end
    return provider.static(format("%s:%s (%s)", dialect.source, entry.name, entry.path), p.region_id, creds)
  elseif kind == "ecs" then
    return ecs_role(nonempty(entry.role), p.region_id)
  end
  return invalid(where .. format(dialect.unsupported, quotable(entry.kind)))
end

return profile
