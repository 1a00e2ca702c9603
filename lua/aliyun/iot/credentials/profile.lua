--- aliyun.iot.credentials.profile: what one profile of a credentials file becomes, shared
-- by the aliyun CLI's config.json and the INI file, which name the same three kinds of
-- profile differently (mode AK | StsToken | EcsRamRole; type access_key | sts |
-- ecs_ram_role). Each reader says how it names them; this decides what the profile makes.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")

local missing, invalid, nonempty = common.missing, common.invalid, common.nonempty

local profile = {}

--- A provider from profile p, or nil, err. p's access_key_id, access_key_secret and
-- region_id are read as they are: both files name them alike. `how` carries what the two
-- files name differently:
--   kind     "keys" (a key pair), "sts" (a pair and a token), "ecs" (a RAM role), or nil
--            for a mode or type aliyun.iot does not support;
--   token, role   the profile's STS token and RAM role name (absent or empty allowed);
--   where    "profile ... in <path>", to start messages with;
--   source   the provider's source;
--   no_token, unsupported   the ends of the messages for an STS profile without its
--            token and for an unsupported kind.
-- ecs_role(role, region) makes an ECS RAM role provider.
function profile.provider(p, how, ecs_role)
  local kind = how.kind
  if kind == "keys" or kind == "sts" then
    local sts = kind == "sts"
    local creds, absent = keys.check(p.access_key_id, p.access_key_secret, sts and how.token, sts)
    if absent == "security_token" then return missing(how.where .. how.no_token) end
    if not creds then return missing(how.where .. " has no " .. absent) end
    return provider.static(how.source, p.region_id, creds)
  elseif kind == "ecs" then
    return ecs_role(nonempty(how.role), p.region_id)
  end
  return invalid(how.where .. how.unsupported)
end

return profile
