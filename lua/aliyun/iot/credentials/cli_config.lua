--- aliyun.iot.credentials.cli_config: a profile of the aliyun CLI's ~/.aliyun/config.json,
-- so users who have run `aliyun configure` need nothing else.
--
--   {"current": "work", "profiles": [{"name": "work", "mode": "AK", "access_key_id": ...,
--     "access_key_secret": ..., "sts_token": ..., "ram_role_name": ..., "region_id": ...}]}
--
-- Modes AK, StsToken, EcsRamRole, RamRoleArn (ram_role_arn, ram_session_name,
-- expired_seconds, external_id, policy, sts_region, with the profile's keys as the
-- source), ChainableRamRoleArn (the same with source_profile), OIDC (oidc_provider_arn,
-- oidc_token_file, ram_role_arn, ram_session_name) and CredentialsURI (credentials_uri);
-- any other mode is an error that names it. Pure: the chain reads the file and hands over
-- its text.
local common = require("aliyun.iot.credentials.common")
local profile = require("aliyun.iot.credentials.profile")
local cjson = require("cjson.safe").new()

local type, tostring, tonumber, ipairs, setmetatable = type, tostring, tonumber, ipairs, setmetatable
local format, match, sub = string.format, string.match, string.sub

local missing, invalid = common.missing, common.invalid
local nonempty = common.nonempty

local cli_config = {}

-- 1-based line of a character offset, for JSON parse errors.
local function line_of(text, at)
  local n = 1
  for _ in sub(text, 1, at - 1):gmatch("\n") do n = n + 1 end
  return n
end

--- The decoded configuration, or nil, message (naming the file and line, never content).
function cli_config.parse(text, path)
  local doc, err = cjson.decode(text)
  if doc == nil then
    -- cjson says "Expected ... but found ... at character N": no content quoted.
    local at = tonumber(match(tostring(err), "character (%d+)"))
    return nil, format("%s is not valid JSON%s: %s", path,
      at and format(" (line %d)", line_of(text, at)) or "", tostring(err))
  end
  if type(doc) ~= "table" or (doc.profiles ~= nil and type(doc.profiles) ~= "table") then
    return nil, format("%s is not an aliyun CLI configuration (expected {\"profiles\": [...]})", path)
  end
  return doc
end

local function find_profile(doc, name)
  for i, p in ipairs(doc.profiles or {}) do
    if type(p) == "table" and p.name == name then return p, i end
  end
  return nil
end

-- An implicit "default" AK profile with no keys at all is the CLI's unconfigured
-- placeholder: the chain looks further rather than fail on it.
local function placeholder(doc, p, name, named)
  return name == "default" and not named and not nonempty(doc.current)
    and (nonempty(p.mode) or "AK") == "AK" and not nonempty(p.access_key_id)
    and not nonempty(p.access_key_secret)
end

-- config.json's modes and field names, as credentials/profile.lua's kinds and names.
local DIALECT = { source = "cli-profile",
  kinds = { AK = "keys", StsToken = "sts", EcsRamRole = "ecs", RamRoleArn = "role_arn",
            ChainableRamRoleArn = "chained_role", OIDC = "oidc", CredentialsURI = "uri" },
  names = { arn = "ram_role_arn", session_name = "ram_session_name", duration = "expired_seconds",
            external_id = "external_id", oidc_provider_arn = "oidc_provider_arn",
            oidc_token_file = "oidc_token_file", uri = "credentials_uri", source_profile = "source_profile" },
  no_token = " (mode StsToken) has no sts_token",
  unsupported = " uses mode %s, which aliyun.iot does not support (use AK, StsToken, EcsRamRole,"
    .. " RamRoleArn, ChainableRamRoleArn, OIDC or CredentialsURI)" }

-- How deep ChainableRamRoleArn profiles may name each other's source_profile.
local MAX_CHAIN = 5

-- A provider from profile p, or nil, err. `make` (the chain's constructors) gains
-- profile(name): another profile of this file, for ChainableRamRoleArn's source_profile.
local function from_profile(doc, p, name, path, make, depth)
  local where = format("profile %q in %s", name, path)
  local own = setmetatable({ profile = function(source)
    local sp = find_profile(doc, source)
    if not sp then return missing(format("%s: its source_profile %q is not among its profiles", where, source)) end
    if depth >= MAX_CHAIN then
      return invalid(format("%s: its source_profile chain is deeper than %d profiles (a loop?)", where, MAX_CHAIN))
    end
    return from_profile(doc, sp, source, path, make, depth + 1)
  end }, { __index = make })
  return profile.provider(p, DIALECT, { kind = nonempty(p.mode) or "AK", token = p.sts_token,
    role = p.ram_role_name, name = name, path = path, where = where,
    role_arn = p.ram_role_arn, session_name = p.ram_session_name, duration = p.expired_seconds,
    external_id = p.external_id, policy = p.policy, sts_region = p.sts_region,
    enable_vpc = type(p.enable_vpc) == "boolean" and p.enable_vpc or nil,
    oidc_provider_arn = p.oidc_provider_arn, oidc_token_file = p.oidc_token_file,
    uri = p.credentials_uri, source_profile = p.source_profile }, own)
end

--- The provider for profile `named` (nil: the file's current, else "default") of the
-- config.json at `path` whose text is `text`. make: the chain's constructors (see
-- credentials/profile.lua). Returns a provider; or nil, err; or nothing when the file has
-- no such profile and the chain should look further.
function cli_config.provider(text, path, named, make)
  local doc, perr = cli_config.parse(text, path)
  if not doc then return invalid(perr) end
  local name = named or nonempty(doc.current) or "default"
  local p = find_profile(doc, name)
  if p and placeholder(doc, p, name, named) then p = nil end
  if p then return from_profile(doc, p, name, path, make, 1) end
  if not named and nonempty(doc.current) then
    return missing(format("%s: its current profile %q is not among its profiles", path, name))
  end
  return nil
end

return cli_config
