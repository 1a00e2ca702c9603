--- aliyun.iot.credentials: the official SDKs' default credential chain.
--
--   local credentials = require("aliyun.iot.credentials")
--   local provider, err = credentials.chain(opts, env)
--   local creds, err = provider:get()  -- { access_key_id, access_key_secret, security_token }
--   print(provider)                    -- aliyun.iot.Credentials (environment, AccessKeyId LTAI****abcd)
--
-- Sources, first match wins (credentials-go's order, options first):
--   1. options: access_key_id + access_key_secret (+ security_token); or role_name (an ECS
--      RAM role); or profile (skips the environment, goes to the files); or
--      credentials_uri; or oidc_token_file + oidc_provider_arn (+ role_arn);
--   2. environment: ALIBABA_CLOUD_ACCESS_KEY_ID, ALIBABA_CLOUD_ACCESS_KEY_SECRET,
--      ALIBABA_CLOUD_SECURITY_TOKEN;
--   3. OIDC (RRSA): ALIBABA_CLOUD_ROLE_ARN, ALIBABA_CLOUD_OIDC_PROVIDER_ARN,
--      ALIBABA_CLOUD_OIDC_TOKEN_FILE;
--   4. the aliyun CLI's ~/.aliyun/config.json (ALIBABA_CLOUD_CONFIG_FILE), modes AK,
--      StsToken, EcsRamRole, RamRoleArn, ChainableRamRoleArn, OIDC and CredentialsURI;
--   5. the INI file ~/.alibabacloud/credentials (ALIBABA_CLOUD_CREDENTIALS_FILE), types
--      access_key, sts, ecs_ram_role, ram_role_arn, oidc_role_arn and credentials_uri;
--   6. an ECS RAM role named by ALIBABA_CLOUD_ECS_METADATA, through the metadata service;
--   7. a credentials URI named by ALIBABA_CLOUD_CREDENTIALS_URI.
-- Then a RAM role to assume, option role_arn, else ALIBABA_CLOUD_ROLE_ARN (when no OIDC
-- variable claims it), is assumed with whatever the sources gave (RamRoleArn).
--
-- Errors: SDK.MissingCredentials when something is not there (no source at all, a named
-- profile or an explicitly named file that does not exist, a key missing from a profile);
-- SDK.InvalidArgument when something is there but unusable (malformed JSON or INI, an
-- unsupported mode or type). Messages name files, lines, profiles and keys, never values.
--
-- This file is the chain: which source is asked, in which order, one small step each.
-- What a source does lives beside it: credentials/provider.lua (the object get() is called
-- on), keys.lua (the one AK/STS check), cli_config.lua and ini.lua (the two files, with
-- profile.lua, what a profile of either becomes), ecs.lua (the metadata service),
-- assume_role.lua and sts.lua (RamRoleArn and OIDC through STS, and which role the options
-- and the environment ask for), uri.lua (a credentials URI) and common.lua (errors and
-- helpers they all share).
--
-- Nothing here does I/O at require time; chain() reads files, and only the get() of a
-- provider whose keys expire talks to the network.
local common = require("aliyun.iot.credentials.common")
local keys = require("aliyun.iot.credentials.keys")
local provider = require("aliyun.iot.credentials.provider")
local cli_config = require("aliyun.iot.credentials.cli_config")
local ini = require("aliyun.iot.credentials.ini")
local ecs = require("aliyun.iot.credentials.ecs")
local assume_role = require("aliyun.iot.credentials.assume_role")
local uri = require("aliyun.iot.credentials.uri")
local time = require("aliyun.iot.time")
local defaults = require("aliyun.iot.defaults")

local type, ipairs, pairs, error = type, ipairs, pairs, error
local format, gsub = string.format, string.gsub
local concat = table.concat
local getenv = os.getenv

local missing, invalid, nonempty = common.missing, common.invalid, common.nonempty

local credentials = {
  DEFAULT_METADATA_URL = "http://100.100.100.200",
  -- Renew keys that expire (ECS role, STS, credentials URI) this many seconds before their Expiration.
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

-- What the options may choose the credentials with; role_arn goes with any of them.
local function chosen_by_options(opts)
  local chosen = {}
  if opts.access_key_id ~= nil or opts.access_key_secret ~= nil then chosen[#chosen + 1] = "access keys" end
  for _, name in ipairs({ "role_name", "profile", "credentials_uri" }) do
    if opts[name] ~= nil then chosen[#chosen + 1] = name end
  end
  if opts.oidc_token_file ~= nil or opts.oidc_provider_arn ~= nil then chosen[#chosen + 1] = "oidc_token_file" end
  return chosen
end

-- 1. Options: a key pair (with an optional STS token), an ECS RAM role by name, a
-- credentials URI or an OIDC token file.
local function from_options(s)
  local opts = s.opts
  local chosen = chosen_by_options(opts)
  if #chosen > 1 then
    return invalid(format("pass access keys, role_name, profile, credentials_uri or oidc_token_file, not several"
      .. " (%s are set): each chooses the credentials", concat(chosen, " and ")))
  end
  local id, secret, token = opts.access_key_id, opts.access_key_secret, opts.security_token
  if id ~= nil or secret ~= nil then
    local creds, absent, other = keys.check(id, secret, token)
    if not creds then return missing(format("option %s is missing or empty (%s is set)", absent, other)) end
    return provider.static("options", nil, creds)
  end
  if nonempty(token) then
    return missing("option security_token needs access_key_id and access_key_secret (the STS key pair)")
  end
  if opts.role_name ~= nil then
    if not nonempty(opts.role_name) then return invalid("option role_name must not be empty") end
    return s.make.ecs(opts.role_name, nil)
  end
  if opts.credentials_uri ~= nil then return s.make.uri(opts.credentials_uri, "option credentials_uri") end
  if chosen[1] == "oidc_token_file" then return s.make.oidc(assume_role.oidc_spec(opts, s.env, true)) end
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

-- 3. OIDC (RRSA in ACK) from the environment, unless the options chose a profile.
local function from_oidc_environment(s)
  if s.opts.profile ~= nil or not assume_role.oidc_in(s.env) then return end
  return s.make.oidc(assume_role.oidc_spec(s.opts, s.env, false))
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
  local p, err = reader.provider(text, path, s.named, s.make)
  if p or err then return p, err end
  s.searched[#s.searched + 1] = path .. " (no such profile)"
end

-- 4. The aliyun CLI's config.json.
local function from_cli_config(s)
  return from_file(s, ENV_CONFIG_FILE, "/.aliyun/config.json", cli_config)
end

-- 5. The INI credentials file.
local function from_ini_file(s)
  return from_file(s, ENV_CREDENTIALS_FILE, "/.alibabacloud/credentials", ini)
end

-- A profile asked for by name must be in one of the files: never fall through to ECS.
local function named_profile_missing(s)
  if not s.named then return end
  return missing(format("profile %q not found; searched %s", s.named,
    #s.searched > 0 and concat(s.searched, ", ") or "nothing (HOME is not set)"))
end

-- 6. An ECS RAM role named in the environment.
local function from_ecs_environment(s)
  local role = nonempty(s.env(ENV_ECS_ROLE))
  if role then return s.make.ecs(role, nil) end
end

-- 7. A credentials URI named in the environment: last, and only when it is set.
local function from_uri_environment(s)
  local url = nonempty(s.env(uri.ENV))
  if url then return s.make.uri(url, uri.ENV) end
end

local STEPS = { from_options, from_environment, from_oidc_environment, choose_profile, from_cli_config,
                from_ini_file, named_profile_missing, from_ecs_environment, from_uri_environment }

-- No step decided: say everything that was tried.
local function nothing_found(s)
  return missing("no credentials found: pass access_key_id and access_key_secret, set "
    .. ENV_ID .. " and " .. ENV_SECRET .. ", configure a profile in "
    .. (s.paths[ENV_CONFIG_FILE] or "~/.aliyun/config.json") .. " or "
    .. (s.paths[ENV_CREDENTIALS_FILE] or "~/.alibabacloud/credentials")
    .. ", name an ECS RAM role (role_name, " .. ENV_ECS_ROLE .. "), an OIDC token file ("
    .. assume_role.ENV_OIDC_TOKEN_FILE .. ") or a credentials URI (credentials_uri, " .. uri.ENV .. ")")
end

------------------------------------------------------------------------------
-- The chain

local OPTION_TYPES = { access_key_id = "string", access_key_secret = "string", security_token = "string",
  profile = "string", metadata_url = "string", role_name = "string", role_arn = "string",
  role_session_name = "string", role_session_duration = "number", external_id = "string", policy = "string",
  oidc_provider_arn = "string", oidc_token_file = "string", credentials_uri = "string", sts_endpoint = "string",
  sts_transport = "table" }

local function check_types(opts)
  for name, want in pairs(OPTION_TYPES) do
    local v = opts[name]
    if v ~= nil and type(v) ~= want then
      error(format("bad option %s to 'chain' (%s expected, got %s)", name, want, type(v)), 3)
    end
  end
end

--- Find credentials in the official SDKs' order.
-- opts: access_key_id, access_key_secret, security_token, profile, role_name,
--   credentials_uri, oidc_provider_arn, oidc_token_file, role_arn, role_session_name,
--   role_session_duration, external_id, policy, sts_endpoint, metadata_url; http (the
--   metadata service and a credentials URI, reached directly), sts_http (STS), or
--   sts_transport (options of STS's own transport: timeout, proxy, cafile, ...), clock,
--   refresh_margin, logger. env: function(name) -> value (default os.getenv).
-- Returns a provider, or nil and an error object.
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

  -- Every source that fetches keys makes its provider through s.make, with these options
  -- and this module's defaults (read now, so callers may change them).
  local s = { opts = opts, env = env, defaults = credentials, searched = {}, paths = {} }
  s.make = {
    ecs = function(role, region) return ecs.provider(opts, role, region, credentials) end,
    ram_role_arn = function(source, spec) return assume_role.ram_role_arn(s, source, spec) end,
    oidc = function(spec) return assume_role.oidc(s, spec) end,
    uri = function(url, from, region) return uri.provider(s, url, from, region) end,
  }
  -- The RAM role to assume with what the sources give, if any.
  local role, err = assume_role.claimed(opts, env)
  if err then return nil, err end
  for _, step in ipairs(STEPS) do
    local p
    p, err = step(s)
    if p or err then return assume_role.on_top(s.make, role, p, err) end
  end
  return assume_role.on_top(s.make, role, nothing_found(s))
end

return credentials
