--- aliyun.iot.credentials.cli_config: a profile of the aliyun CLI's ~/.aliyun/config.json,
-- so users who have run `aliyun configure` need nothing else.
--
--   {"current": "work", "profiles": [{"name": "work", "mode": "AK", "access_key_id": ...,
--     "access_key_secret": ..., "sts_token": ..., "ram_role_name": ..., "region_id": ...}]}
--
-- Modes AK, StsToken and EcsRamRole; any other mode is an error that names it. Pure: the
-- chain reads the file and hands over its text.
local common = require("aliyun.iot.credentials.common")
local profile = require("aliyun.iot.credentials.profile")
local cjson = require("cjson.safe").new()

local type, tostring, tonumber, ipairs = type, tostring, tonumber, ipairs
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

-- config.json's modes, as credentials/profile.lua's kinds.
local DIALECT = { source = "cli-profile", kinds = { AK = "keys", StsToken = "sts", EcsRamRole = "ecs" },
  no_token = " (mode StsToken) has no sts_token",
  unsupported = " uses mode %s, which aliyun.iot does not support (use AK, StsToken or EcsRamRole)" }

-- A provider from a profile, or nil, err.
local function from_profile(p, name, path, ecs_role)
  return profile.provider(p, DIALECT, { kind = nonempty(p.mode) or "AK", token = p.sts_token,
    role = p.ram_role_name, name = name, path = path, where = format("profile %q in %s", name, path) }, ecs_role)
end

--- The provider for profile `named` (nil: the file's current, else "default") of the
-- config.json at `path` whose text is `text`. ecs_role(role, region) makes an ECS RAM
-- role provider. Returns a provider; or nil, err; or nothing when the file has no such
-- profile and the chain should look further.
function cli_config.provider(text, path, named, ecs_role)
  local doc, perr = cli_config.parse(text, path)
  if not doc then return invalid(perr) end
  local name = named or nonempty(doc.current) or "default"
  local p = find_profile(doc, name)
  if p and placeholder(doc, p, name, named) then p = nil end
  if p then return from_profile(p, name, path, ecs_role) end
  if not named and nonempty(doc.current) then
    return missing(format("%s: its current profile %q is not among its profiles", path, name))
  end
  return nil
end

return cli_config
