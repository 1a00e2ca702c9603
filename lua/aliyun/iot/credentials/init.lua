--- aliyun.iot.credentials: the official SDKs' default credential chain.
--
--   local credentials = require("aliyun.iot.credentials")
--   local provider, err = credentials.chain(opts, env)
--   local creds, err = provider:get()  -- { access_key_id, access_key_secret, security_token }
--   print(provider)                    -- aliyun.iot.Credentials (environment, AccessKeyId LTAI****abcd)
--
-- Sources, first match wins:
--   1. options: access_key_id + access_key_secret (+ security_token); or role_name
--      (an ECS RAM role); or profile (skips the environment, goes to the files);
--   2. environment: ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
--      ALIBABA_CLOUD_SECURITY_TOKEN;
--   3. the aliyun CLI's ~/.aliyun/config.json (ALIBABA_CLOUD_CONFIG_FILE), modes AK,
--      StsToken and EcsRamRole;
--   4. the INI file ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE), types
--      access_key, sts and ecs_ram_role;
--   5. an ECS RAM role named by ALIBABA_CLOUD_ECS_METADATA, through the metadata service.
--
-- Errors: SDK.MissingCredentials when something is not there (no source at all, a named
-- profile or an explicitly named file that does not exist, a key missing from a profile);
-- SDK.InvalidArgument when something is there but unusable (malformed JSON or INI, an
-- unsupported mode or type). Messages name files, lines, profiles and keys, never values.
--
-- Nothing here does I/O at require time; chain() reads files, and only an ECS provider's
-- get() talks to the network.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local time = require("aliyun.iot.time")
local ecs = require("aliyun.iot.credentials.ecs")
local cjson = require("cjson.safe").new()

local type, tostring, tonumber, ipairs = type, tostring, tonumber, ipairs
local error = error
local format, match, gsub, sub, find, lower = string.format, string.match, string.gsub,
  string.sub, string.find, string.lower
local concat = table.concat
local open, getenv = io.open, os.getenv

local credentials = {
  DEFAULT_METADATA_URL = "http://100.100.100.200",
  -- Refresh ECS credentials this many seconds before their Expiration.
  DEFAULT_REFRESH_MARGIN = 180,
}

local ENV_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
local ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
local ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
local ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
local ENV_CONFIG_FILE = "ALIBABA_CLOUD_CONFIG_FILE"
local ENV_CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
local ENV_ECS_ROLE = "ALIBABA_CLOUD_ECS_METADATA"
-- The variable that holds each part of the pair.
local ENV_VAR = { access_key_id = ENV_ID, access_key_secret = ENV_SECRET }


-- Keys an INI syntax error may name. Anything else on a broken line could be a
-- pasted secret, so it is never echoed.
local KNOWN_INI_KEYS = {
  type = true, access_key_id = true, access_key_secret = true, security_token = true,
  sts_token = true, role_name = true, region_id = true, enable = true,
  role_arn = true, role_session_name = true, policy = true, public_key_id = true,
  private_key_file = true, bearer_token = true,
}

local missing, invalid = common.missing, common.invalid
local nonempty, trim, quotable = common.nonempty, common.trim, common.quotable

-- "2026-11-26T12:00:00Z" to epoch seconds (aliyun.iot.time), kept under its old name.
credentials.parse_iso8601 = time.iso8601_epoch

-- An ECS RAM role provider, with this module's defaults.
local function ecs_provider(opts, role, region)
  return ecs.provider(opts, role, region, credentials)
end

-- Read a whole file. Returns text, or nil, "missing" | "unreadable", message.
local function read_file(path)
  local f, msg, errno = open(path, "rb")
  if not f then
    if errno == 2 then return nil, "missing" end
    return nil, "unreadable", msg
  end
  local text, rmsg = f:read("*a")
  f:close()
  if not text then return nil, "unreadable", format("%s: %s", path, tostring(rmsg)) end
  if sub(text, 1, 3) == "\239\187\191" then text = sub(text, 4) end -- UTF-8 BOM
  return text
end

------------------------------------------------------------------------------
-- The aliyun CLI's config.json

-- 1-based line of a character offset, for JSON parse errors.
local function line_of(text, at)
  local n = 1
  for _ in sub(text, 1, at - 1):gmatch("\n") do n = n + 1 end
  return n
end

local function load_cli_config(path)
  local text, why, msg = read_file(path)
  if not text then return nil, why, msg end
  local doc, err = cjson.decode(text)
  if doc == nil then
    -- cjson says "Expected ... but found ... at character N": no content quoted.
    local at = tonumber(match(tostring(err), "character (%d+)"))
    return nil, "invalid", format("%s is not valid JSON%s: %s", path,
      at and format(" (line %d)", line_of(text, at)) or "", tostring(err))
  end
  if type(doc) ~= "table" or (doc.profiles ~= nil and type(doc.profiles) ~= "table") then
    return nil, "invalid", format("%s is not an aliyun CLI configuration (expected {\"profiles\": [...]})", path)
  end
  return doc
end

local function find_cli_profile(doc, name)
  for i, p in ipairs(doc.profiles or {}) do
    if type(p) == "table" and p.name == name then return p, i end
  end
  return nil
end

-- A provider from a config.json profile, or nil, err.
local function from_cli_profile(p, name, path, opts)
  local where = format("profile %q in %s", name, path)
  local source = format("cli-profile:%s (%s)", name, path)
  local mode = nonempty(p.mode) or "AK"
  local region = p.region_id
  if mode == "AK" or mode == "StsToken" then
    local sts = mode == "StsToken"
    local creds, absent = keys.check(p.access_key_id, p.access_key_secret, sts and p.sts_token, sts)
    if absent == "security_token" then return missing(where .. " (mode StsToken) has no sts_token") end
    if not creds then return missing(where .. " has no " .. absent) end
    return provider.static(source, region, creds)
  elseif mode == "EcsRamRole" then
    return ecs_provider(opts, nonempty(p.ram_role_name), region)
  end
  return invalid(format("%s uses mode %s, which aliyun.iot does not support (use AK, StsToken or EcsRamRole)",
    where, quotable(mode)))
end

------------------------------------------------------------------------------
-- The INI credentials file

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

-- Parse INI text into { [section] = { key = value, _line = n } }, or nil, message.
local function parse_ini(text, path)
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

-- A provider from an INI section, or nil, err.
local function from_ini_section(s, name, path, opts)
  local where = format("profile [%s] in %s", name, path)
  local source = format("credentials-file:%s (%s)", name, path)
  local kind = nonempty(s.type)
  if not kind and nonempty(s.access_key_id) then kind = "access_key" end
  if not kind then return missing(where .. " has no type (e.g. type = access_key)") end
  local region = s.region_id
  if kind == "access_key" or kind == "sts" then
    local sts = kind == "sts"
    local creds, absent = keys.check(s.access_key_id, s.access_key_secret,
      sts and (nonempty(s.security_token) or s.sts_token), sts)
    if absent == "security_token" then return missing(where .. " (type sts) has no security_token") end
    if not creds then return missing(where .. " has no " .. absent) end
    return provider.static(source, region, creds)
  elseif kind == "ecs_ram_role" then
    return ecs_provider(opts, nonempty(s.role_name), region)
  end
  return invalid(format("%s has type %s, which aliyun.iot does not support (use access_key, sts or ecs_ram_role)",
    where, quotable(kind)))
end

------------------------------------------------------------------------------
-- The chain

local function home_path(env, rest)
  local home = nonempty(env("HOME")) or nonempty(env("USERPROFILE"))
  if not home then return nil end
  return (gsub(home, "[/\\]+$", "")) .. rest
end

-- The path of a file: from its environment variable (must exist), else under HOME.
-- Returns path, explicit.
local function file_path(env, var, rest)
  local path = nonempty(env(var))
  if path then return path, var end
  return home_path(env, rest), nil
end

local function check_types(opts)
  for _, name in ipairs({ "access_key_id", "access_key_secret", "security_token", "profile",
                          "metadata_url", "role_name" }) do
    local v = opts[name]
    if v ~= nil and type(v) ~= "string" then
      error(format("bad option %s to 'chain' (string expected, got %s)", name, type(v)), 3)
    end
  end
end

--- Find credentials in the official SDKs' order.
-- opts: access_key_id, access_key_secret, security_token, profile, role_name,
--   metadata_url, http, clock, refresh_margin. env: function(name) -> value
--   (default os.getenv). Returns a provider, or nil and an error object.
function credentials.chain(opts, env)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then
    error("bad argument #1 to 'chain' (table expected, got " .. type(opts) .. ")", 2)
  end
  if env == nil then env = getenv end
  if type(env) ~= "function" then
    error("bad argument #2 to 'chain' (function expected, got " .. type(env) .. ")", 2)
  end
  check_types(opts)

  -- 1. Options.
  local id, secret, token = opts.access_key_id, opts.access_key_secret, opts.security_token
  if id ~= nil or secret ~= nil then
    local creds, absent, other = keys.check(id, secret, token)
    if not creds then return missing(format("option %s is missing or empty (%s is set)", absent, other)) end
    if opts.role_name ~= nil or opts.profile ~= nil then
      return invalid("pass access keys, role_name or profile, not several: each chooses the credentials")
    end
    return provider.static("options", nil, creds)
  end
  if nonempty(token) then
    return missing("option security_token needs access_key_id and access_key_secret (the STS key pair)")
  end
  if opts.role_name ~= nil then
    if opts.profile ~= nil then
      return invalid("pass role_name or profile, not both: each chooses the credentials")
    end
    if not nonempty(opts.role_name) then return invalid("option role_name must not be empty") end
    return ecs_provider(opts, opts.role_name, nil)
  end

  -- 2. Environment, unless a profile was chosen in the options.
  if opts.profile == nil then
    local eid, esecret = nonempty(env(ENV_ID)), nonempty(env(ENV_SECRET))
    if eid or esecret then
      -- The token variable is read only once the pair is there.
      local creds, absent, other = keys.check(eid, esecret, eid and esecret and env(ENV_TOKEN))
      if not creds then
        return missing(format("%s is set but %s is missing or empty", ENV_VAR[other], ENV_VAR[absent]))
      end
      return provider.static("environment", nil, creds)
    end
  elseif opts.profile == "" then
    return invalid("option profile must not be empty")
  end

  local named = opts.profile or nonempty(env(ENV_PROFILE))
  local searched = {}

  -- 3. The aliyun CLI's config.json.
  local cli_path, cli_var = file_path(env, ENV_CONFIG_FILE, "/.aliyun/config.json")
  if cli_path then
    local doc, why, msg = load_cli_config(cli_path)
    if doc then
      local name = named or nonempty(doc.current) or "default"
      local p = find_cli_profile(doc, name)
      -- An implicit "default" AK profile with no keys at all is the CLI's unconfigured
      -- placeholder: look further rather than fail on it.
      if p and name == "default" and not named and not nonempty(doc.current)
          and (nonempty(p.mode) or "AK") == "AK" and not nonempty(p.access_key_id)
          and not nonempty(p.access_key_secret) then
        p = nil
      end
      if p then return from_cli_profile(p, name, cli_path, opts) end
      if not named and nonempty(doc.current) then
        return missing(format("%s: its current profile %q is not among its profiles", cli_path, name))
      end
      searched[#searched + 1] = cli_path .. " (no such profile)"
    elseif why == "missing" then
      if cli_var then return missing(format("%s names %s, which does not exist", cli_var, cli_path)) end
      searched[#searched + 1] = cli_path .. " (not found)"
    elseif why == "unreadable" then
      return invalid(format("cannot read %s", msg))
    else
      return invalid(msg)
    end
  end

  -- 4. The INI credentials file.
  local ini_path, ini_var = file_path(env, ENV_CREDENTIALS_FILE, "/.alibabacloud/credentials")
  if ini_path then
    local text, why, msg = read_file(ini_path)
    if text then
      local sections, perr = parse_ini(text, ini_path)
      if not sections then return invalid(perr) end
      local name = named or "default"
      local s = sections[name]
      if s then return from_ini_section(s, name, ini_path, opts) end
      searched[#searched + 1] = ini_path .. " (no such profile)"
    elseif why == "missing" then
      if ini_var then return missing(format("%s names %s, which does not exist", ini_var, ini_path)) end
      searched[#searched + 1] = ini_path .. " (not found)"
    else
      return invalid(format("cannot read %s", msg))
    end
  end

  if named then
    return missing(format("profile %q not found; searched %s", named,
      #searched > 0 and concat(searched, ", ") or "nothing (HOME is not set)"))
  end

  -- 5. An ECS RAM role named in the environment.
  local role = nonempty(env(ENV_ECS_ROLE))
  if role then return ecs_provider(opts, role, nil) end

  return missing("no credentials found: pass access_key_id and access_key_secret, set "
    .. ENV_ID .. " and " .. ENV_SECRET .. ", configure a profile in "
    .. (cli_path or "~/.aliyun/config.json") .. " or " .. (ini_path or "~/.alibabacloud/credentials")
    .. ", or name an ECS RAM role (role_name, " .. ENV_ECS_ROLE .. ")")
end

return credentials
