--- aliyun.iot.credentials.ini: a section of the INI credentials file that Alibaba's
-- credential libraries share, ~/.alibabacloud/credentials:
--
--   [default]
--   type = access_key            ; or sts (with security_token), ecs_ram_role (role_name),
--                                ; ram_role_arn (role_arn, role_session_name, policy,
--                                ; external_id, role_session_expiration, with the keys
--                                ; as the source), oidc_role_arn (role_arn,
--                                ; oidc_provider_arn, oidc_token_file_path), credentials_uri
--   access_key_id = ...
--   access_key_secret = ...
--   region_id = cn-shanghai
--
-- A hand-edited file, so the parser is forgiving about whitespace, comments (# and ;),
-- quotes, CRLF, and strict about everything else, naming the file and line of what it
-- cannot read but never a value. Pure: the chain reads the file and hands over its text.
local common = require("aliyun.iot.credentials.common")
local profile = require("aliyun.iot.credentials.profile")

local format, match, gsub, sub, find, lower = string.format, string.match, string.gsub,
  string.sub, string.find, string.lower

local missing, invalid = common.missing, common.invalid
local nonempty, trim = common.nonempty, common.trim

local ini = {}

-- Keys an INI syntax error may name. Anything else on a broken line could be a
-- pasted secret, so it is never echoed.
local KNOWN_INI_KEYS = {
  type = true, access_key_id = true, access_key_secret = true, security_token = true,
  sts_token = true, role_name = true, region_id = true, enable = true,
  role_arn = true, role_session_name = true, policy = true, public_key_id = true,
  private_key_file = true, bearer_token = true, role_session_expiration = true, external_id = true,
  sts_region = true, oidc_provider_arn = true, oidc_token_file_path = true, oidc_token_file = true,
  credentials_uri = true,
}

local function unquote(raw)
  local q = sub(raw, 1, 1)
  if q == '"' or q == "'" then
    local close = find(raw, q, 2, true)
    if not close then return nil end
    local after = trim(sub(raw, close + 1))
    if after ~= "" and not match(after, "^[#;]") then return nil end
    return sub(raw, 2, close - 1)
  end
  -- An inline comment needs whitespace before it, so values may contain # and ;.
  local cut = find(raw, "%s[#;]")
  if cut then raw = sub(raw, 1, cut - 1) end
  return trim(raw)
end

--- Parse INI text into { [section] = { key = value, _line = n } }, or nil, message.
function ini.parse(text, path)
  local sections, current = {}, nil
  local n = 0
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    n = n + 1
    line = trim(gsub(line, "\r$", ""))
    local first_char = sub(line, 1, 1)
    local skip = first_char == "" or first_char == "#" or first_char == ";" -- blank or comment
    if not skip and first_char == "[" then
      local name = match(line, "^%[([^%]]*)%]%s*$") or match(line, "^%[([^%]]*)%]%s*[#;]")
      if not name or trim(name) == "" then
        return nil, format("%s line %d: malformed section header (expected [name])", path, n)
      end
      name = trim(name)
      current = sections[name] or { _line = n }
      sections[name] = current
    elseif not skip then
      local key, raw = match(line, "^([^=]-)%s*=%s*(.*)$")
      local first = match(line, "^([%w_]+)")
      if not key then
        local named = first and KNOWN_INI_KEYS[lower(first)] and format(" after key %s", first) or ""
        return nil, format("%s line %d: expected \"key = value\"%s", path, n, named)
      end
      key = lower(trim(key))
      local label = KNOWN_INI_KEYS[key] and format("key %s", key) or "a key"
      if key == "" or find(key, "%s") then
        return nil, format("%s line %d: malformed key before \"=\"", path, n)
      end
      local value = unquote(raw)
      if value == nil then
        return nil, format("%s line %d: unterminated or malformed quoted value for %s", path, n, label)
      end
      -- Keys before the first section belong to no profile and are ignored.
      if current then current[key] = value end
    end
  end
  return sections
end

-- The INI file's names for credentials/profile.lua's kinds and fields, and its messages.
local DIALECT = { source = "credentials-file",
  kinds = { access_key = "keys", sts = "sts", ecs_ram_role = "ecs", ram_role_arn = "role_arn",
            oidc_role_arn = "oidc", credentials_uri = "uri" },
  names = { arn = "role_arn", session_name = "role_session_name", duration = "role_session_expiration",
            external_id = "external_id", oidc_provider_arn = "oidc_provider_arn",
            oidc_token_file = "oidc_token_file_path", uri = "credentials_uri" },
  no_token = " (type sts) has no security_token",
  unsupported = " has type %s, which aliyun.iot does not support (use access_key, sts, ecs_ram_role,"
    .. " ram_role_arn, oidc_role_arn or credentials_uri)" }

-- A provider from a section, or nil, err. A section with no type but an access_key_id
-- is an access_key one.
local function from_section(s, name, path, make)
  local where = format("profile [%s] in %s", name, path)
  local kind = nonempty(s.type)
  if not kind and nonempty(s.access_key_id) then kind = "access_key" end
  if not kind then return missing(where .. " has no type (e.g. type = access_key)") end
  return profile.provider(s, DIALECT, { kind = kind, token = nonempty(s.security_token) or s.sts_token,
    role = s.role_name, name = name, path = path, where = where,
    role_arn = s.role_arn, session_name = s.role_session_name, duration = s.role_session_expiration,
    external_id = s.external_id, policy = s.policy, sts_region = s.sts_region,
    oidc_provider_arn = s.oidc_provider_arn, oidc_token_file = nonempty(s.oidc_token_file_path) or s.oidc_token_file,
    uri = s.credentials_uri }, make)
end

--- The provider for section `named` (nil: [default]) of the INI file at `path` whose text
-- is `text`. make: the chain's constructors (see credentials/profile.lua). Returns a
-- provider; or nil, err; or nothing when the file has no such section and the chain
-- should look further.
function ini.provider(text, path, named, make)
  local sections, perr = ini.parse(text, path)
  if not sections then return invalid(perr) end
  local name = named or "default"
  local s = sections[name]
  if s then return from_section(s, name, path, make) end
  return nil
end

return ini
