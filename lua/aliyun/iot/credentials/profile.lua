--- aliyun.iot.credentials.profile: what one profile of a credentials file becomes, shared
-- by the aliyun CLI's config.json and the INI file, which name the same kinds of profile
-- differently (modes AK | StsToken | EcsRamRole | RamRoleArn | ChainableRamRoleArn | OIDC |
-- CredentialsURI; types access_key | sts | ecs_ram_role | ram_role_arn | oidc_role_arn |
-- credentials_uri) and name their fields differently too (ram_role_arn / role_arn, ...).
-- Each reader says how it names them; this decides what the profile makes.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")

local missing, invalid, nonempty, quotable = common.missing, common.invalid, common.nonempty, common.quotable
local format = string.format

local profile = {}

-- The role's parameters (see credentials/sts.lua, sts.role) from the profile's entry.
local function spec_of(p, dialect, entry)
  return { arn = entry.role_arn, session_name = entry.session_name, duration = entry.duration,
    external_id = entry.external_id, policy = entry.policy, sts_region = entry.sts_region,
    enable_vpc = entry.enable_vpc, oidc_provider_arn = entry.oidc_provider_arn,
    oidc_token_file = entry.oidc_token_file, region = nonempty(p.region_id), where = entry.where,
    names = dialect.names }
end

--- A provider from profile p, or nil, err. p's access_key_id, access_key_secret and
-- region_id are read as they are: both files name them alike. `dialect` (a constant of
-- each reader) carries what the two files name differently:
--   kinds       the file's mode or type names -> "keys" (a key pair), "sts" (a pair and a
--               token), "ecs" (an ECS RAM role), "role_arn" (a role assumed with the
--               profile's key pair), "chained_role" (a role assumed with another profile's
--               credentials), "oidc", "uri"; a name not in it is not supported;
--   names       the file's names of the role fields (arn, session_name, duration,
--               external_id, oidc_provider_arn, oidc_token_file, uri, source_profile);
--   source      the provider source's prefix ("cli-profile", "credentials-file");
--   no_token    the end of the message for an STS profile without its token;
--   unsupported the end of the message for an unsupported kind, %s its name.
-- `entry`: kind (the profile's mode or type name), name, path, where ("profile ... in
-- <path>", to start messages with) and the profile's values under the names of
-- spec_of and token, role (the ECS RAM role's name), uri, source_profile.
-- `make`: the chain's constructors ecs(role, region), ram_role_arn(source, spec),
-- oidc(spec), uri(url, from, region), and the reader's profile(name).
function profile.provider(p, dialect, entry, make)
  local kind, where = dialect.kinds[entry.kind], entry.where
  if kind == "keys" or kind == "sts" or kind == "role_arn" then
    local sts = kind == "sts"
    local creds, absent = keys.check(p.access_key_id, p.access_key_secret, kind ~= "keys" and entry.token, sts)
    if absent == "security_token" then return missing(where .. dialect.no_token) end
    if not creds then return missing(where .. " has no " .. absent) end
    local static = provider.static(format("%s:%s (%s)", dialect.source, entry.name, entry.path), p.region_id, creds)
    if kind ~= "role_arn" then return static end
    return make.ram_role_arn(static, spec_of(p, dialect, entry))
  elseif kind == "chained_role" then
    if not nonempty(entry.source_profile) then return missing(where .. " has no " .. dialect.names.source_profile) end
    local source, err = make.profile(entry.source_profile)
    if not source then return nil, err end
    return make.ram_role_arn(source, spec_of(p, dialect, entry))
  elseif kind == "ecs" then
    return make.ecs(nonempty(entry.role), p.region_id)
  elseif kind == "oidc" then
    return make.oidc(spec_of(p, dialect, entry))
  elseif kind == "uri" then
    return make.uri(entry.uri, where .. ": " .. dialect.names.uri, p.region_id)
  end
  return invalid(where .. format(dialect.unsupported, quotable(entry.kind)))
end

return profile
