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
-- This file is the chain: which source is asked, in which order, one small step each.
-- What a source does lives beside it: credentials/provider.lua (the object get() is called
-- on), keys.lua (the one AK/STS check), cli_config.lua and ini.lua (the two files, with
-- profile.lua, what a profile of either becomes), ecs.lua (the metadata service) and
-- common.lua (errors and helpers they all share).
--
-- Nothing here does I/O at require time; chain() reads files, and only an ECS provider's
-- get() talks to the network.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local cli_config = require("aliyun.iot.credentials.cli_config")
local ini = require("aliyun.iot.credentials.ini")
local ecs = require("aliyun.iot.credentials.ecs")
local time = require("aliyun.iot.time")
local defaults = require("aliyun.iot.defaults")

local type, ipairs, error = type, ipairs, error
local format, gsub = string.format, string.gsub
local concat = table.concat
local getenv = os.getenv

local missing, invalid, nonempty = common.missing, common.invalid, common.nonempty

local credentials = {
  DEFAULT_METADATA_URL = "http://100.100.100.200",
  -- Refresh ECS credentials this many seconds before their Expiration.
  DEFAULT_REFRESH_MARGIN = defaults.credentials_refresh_margin,
}

--- "2026-11-26T12:00:00Z" to epoch seconds, or nil (aliyun.iot.time), kept under its old name.
credentials.parse_iso8601 = time.iso8601_epoch

local ENV_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
local ENV_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
local ENV_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
local ENV_PROFILE = "ALIBABA_CLOUD_PROFILE"
local ENV_CONFIG_FILE = "ALIBABA_CLOUD_CONFIG_FILE"
local ENV_CREDENTIALS_FILE = "ALIBABA_CLOUD_CREDENTIALS_FILE"
local ENV_ECS_ROLE = "ALIBABA_CLOUD_ECS_METADATA"
-- The variable that holds each part of the pair.
local ENV_VAR = { access_key_id = ENV_ID, access_key_secret = ENV_SECRET }

------------------------------------------------------------------------------
-- Files

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

------------------------------------------------------------------------------
-- The steps, in the chain's order. Each takes the search state `s` (opts, env, the
-- profile asked for, the files looked at) and returns a provider, or nil and an error,
-- when it decides; nothing when the next step should be asked.

-- 1. Options: a key pair (with an optional STS token), or an ECS RAM role by name.
local function from_options(s)
  local opts = s.opts
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
    return s.ecs_role(opts.role_name, nil)
  end
end

-- 2. The environment, unless the options chose a profile.
local function from_environment(s)
  if s.opts.profile ~= nil then return end
  local env = s.env
  local id, secret = nonempty(env(ENV_ID)), nonempty(env(ENV_SECRET))
  if not (id or secret) then return end
  -- The token variable is read only once the pair is there.
  local creds, absent, other = keys.check(id, secret, id and secret and env(ENV_TOKEN))
  if not creds then
    return missing(format("%s is set but %s is missing or empty", ENV_VAR[other], ENV_VAR[absent]))
  end
  return provider.static("environment", nil, creds)
end

-- Not a source: the profile the files are asked for, options.profile, else
-- ALIBABA_CLOUD_PROFILE, else nil (each file's own default).
local function choose_profile(s)
  if s.opts.profile == "" then return invalid("option profile must not be empty") end
  s.named = s.opts.profile or nonempty(s.env(ENV_PROFILE))
end

-- A credentials file: read it (a file named by its variable must exist) and ask `reader`
-- (cli_config or ini) for the profile; note in s.searched why it had none.
local function from_file(s, var, rest, reader)
  local path, explicit = file_path(s.env, var, rest)
  s.paths[var] = path
  if not path then return end
  local text, why, msg = common.read_file(path)
  if why == "unreadable" then return invalid(format("cannot read %s", msg)) end
  if not text then
    if explicit then return missing(format("%s names %s, which does not exist", var, path)) end
    s.searched[#s.searched + 1] = path .. " (not found)"
    return
  end
  local p, err = reader.provider(text, path, s.named, s.ecs_role)
  if p or err then return p, err end
  s.searched[#s.searched + 1] = path .. " (no such profile)"
end

-- 3. The aliyun CLI's config.json.
local function from_cli_config(s)
  return from_file(s, ENV_CONFIG_FILE, "/.aliyun/config.json", cli_config)
end

-- 4. The INI credentials file.
local function from_ini_file(s)
  return from_file(s, ENV_CREDENTIALS_FILE, "/.alibabacloud/credentials", ini)
end

-- A profile asked for by name must be in one of the files: never fall through to ECS.
local function named_profile_missing(s)
  if not s.named then return end
  return missing(format("profile %q not found; searched %s", s.named,
    #s.searched > 0 and concat(s.searched, ", ") or "nothing (HOME is not set)"))
end

-- 5. An ECS RAM role named in the environment.
local function from_ecs_environment(s)
  local role = nonempty(s.env(ENV_ECS_ROLE))
  if role then return s.ecs_role(role, nil) end
end

local STEPS = { from_options, from_environment, choose_profile, from_cli_config, from_ini_file,
                named_profile_missing, from_ecs_environment }

-- No step decided: say everything that was tried.
local function nothing_found(s)
  return missing("no credentials found: pass access_key_id and access_key_secret, set "
    .. ENV_ID .. " and " .. ENV_SECRET .. ", configure a profile in "
    .. (s.paths[ENV_CONFIG_FILE] or "~/.aliyun/config.json") .. " or "
    .. (s.paths[ENV_CREDENTIALS_FILE] or "~/.alibabacloud/credentials")
    .. ", or name an ECS RAM role (role_name, " .. ENV_ECS_ROLE .. ")")
end

------------------------------------------------------------------------------
-- The chain

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

  local s = { opts = opts, env = env, searched = {}, paths = {} }
  -- Every source that can name an ECS RAM role makes its provider here, with these
  -- options and this module's defaults (read now, so callers may change them).
  function s.ecs_role(role, region) return ecs.provider(opts, role, region, credentials) end
  for _, step in ipairs(STEPS) do
    local p, err = step(s)
    if p or err then return p, err end
  end
  return nothing_found(s)
end

return credentials
