--- aliyun.iot.credentials.assume_role: the two sources whose keys are a RAM role's, asked
-- of STS (credentials/sts.lua) and renewed before they expire (credentials/provider.lua):
--
--   RamRoleArn  AssumeRole, signed with source credentials that another provider gives:
--               options, the environment, a profile, an ECS RAM role, a credentials URI,
--               another role. Each renewal asks the source again, so a source whose own
--               keys expire (an ECS role, another role) is renewed on its own schedule.
--   OIDC        AssumeRoleWithOIDC with the token in a file (RRSA in ACK). The kubelet
--               rotates that file, so it is read again at each renewal, never kept.
--
-- Both are made by the chain (credentials/init.lua) from a `spec` (see sts.role) and the
-- chain's context `s` (opts, env, defaults). Nothing is sent before the first get(). The
-- end of this file says which role the options and the environment ask for.
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")
local defaults = require("aliyun.iot.defaults")
local common = require("aliyun.iot.credentials.common")
local provider = require("aliyun.iot.credentials.provider")
local sts = require("aliyun.iot.credentials.sts")

local tostring, ipairs, pairs, setmetatable = tostring, ipairs, pairs, setmetatable
local format, match = string.format, string.match

local missing, invalid, nonempty, trim = common.missing, common.invalid, common.nonempty, common.trim

local assume_role = {
  ENV_ROLE_ARN = "ALIBABA_CLOUD_ROLE_ARN",
  ENV_OIDC_PROVIDER = "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
  ENV_OIDC_TOKEN_FILE = "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
}

-- No sts_http given: a transport of its own, made on first use with opts.sts_transport
-- (iot.new passes the client's timeouts, proxy and TLS settings), else the SDKs'
-- timeouts and the proxy the environment names for the endpoint's scheme.
local STS_TRANSPORT = { timeout = defaults.timeout, connect_timeout = defaults.connect_timeout }

-- The refresh state of a role's provider, or nil, err; then the role and the endpoint.
local function role_state(s, spec, fetch, with_external_id)
  local state, err = provider.expiring_state(s.opts, s.defaults, { fetch = fetch, http = s.opts.sts_http or false })
  if not state then return nil, err end
  state.role, err = sts.role(spec, s.env, state.clock(), with_external_id)
  if not state.role then return nil, err end
  state.base, err = sts.endpoint(s.opts, s.env, spec.sts_region, spec.enable_vpc)
  if not state.base then return nil, err end
  state.transport = { scheme = match(state.base, "^(%a+):") }
  for k, v in pairs(s.opts.sts_transport or STS_TRANSPORT) do state.transport[k] = v end
  return state
end

local function ask(state, req, secrets)
  return sts.call(common.http_of(state, state.transport), req, state.what, secrets)
end

------------------------------------------------------------------------------
-- RamRoleArn

local function ram_fetch(_, state)
  local source = state.source
  state.what = format("AssumeRole of %s with the credentials from %s", state.role.shown, tostring(source.source))
  local creds, err = source:get()
  if not creds then
    return nil, errors.new(err.code or errors.codes.MISSING_CREDENTIALS,
      format("%s: the source credentials failed: %s", state.what, tostring(err.message)),
      { retryable = err.retryable, http_status = err.http_status })
  end
  local req = sts.assume_role_request(state.base, creds, state.role, core.timestamp(state.clock()), core.nonce())
  return ask(state, req, { creds.access_key_secret, creds.security_token })
end

--- A provider of the role spec.arn's keys, assumed with the keys of provider `source`, or
-- nil, err. The region is spec.region, else the source's (a profile's region_id).
function assume_role.ram_role_arn(s, source, spec)
  local state, err = role_state(s, spec, ram_fetch, true)
  if not state then return nil, err end
  state.source = source
  return provider.refreshing(format("ram-role-arn:%s from %s", state.role.shown, tostring(source.source)),
    spec.region or source.region, state)
end

------------------------------------------------------------------------------
-- OIDC

local function oidc_fetch(_, state)
  local text, why, msg = common.read_file(state.token_file)
  if why == "unreadable" then return invalid(format("%s: cannot read the OIDC token file %s", state.what, msg)) end
  local token = text and trim(text)
  if not token or token == "" then
    return missing(format("%s: the OIDC token file %s %s", state.what, state.token_file,
      text and "is empty" or "does not exist"))
  end
  local req = sts.oidc_request(state.base, state.role, state.provider_arn, token, core.timestamp(state.clock()))
  return ask(state, req, { token })
end

--- A provider of the role spec.arn's keys for the OIDC token in the file
-- spec.oidc_token_file, issued by the identity provider spec.oidc_provider_arn; or nil, err.
function assume_role.oidc(s, spec)
  for _, field in ipairs({ "arn", "oidc_provider_arn", "oidc_token_file" }) do
    if not nonempty(spec[field]) then
      return missing(format("%sOIDC needs %s, which is missing or empty", spec.where and (spec.where .. ": ") or "",
        spec.names[field]))
    end
  end
  local state, err = role_state(s, spec, oidc_fetch, false)
  if not state then return nil, err end
  state.token_file, state.provider_arn = spec.oidc_token_file, spec.oidc_provider_arn
  state.what = format("AssumeRoleWithOIDC of %s (OIDC provider %s, token file %s)", state.role.shown,
    sts.shown_arn(spec.oidc_provider_arn), spec.oidc_token_file)
  return provider.refreshing(format("oidc-role-arn:%s (token file %s)", state.role.shown, spec.oidc_token_file),
    spec.region, state)
end

------------------------------------------------------------------------------
-- Which role, from the options and the environment (the chain asks)

-- Names of the role's fields where options give them.
local OPTION_NAMES = { arn = "option role_arn", session_name = "option role_session_name",
  duration = "option role_session_duration", external_id = "option external_id",
  oidc_provider_arn = "option oidc_provider_arn", oidc_token_file = "option oidc_token_file" }

-- A spec from the options' role_* fields; names (default OPTION_NAMES) say where each is.
local function option_role(opts, names)
  return { arn = opts.role_arn, session_name = opts.role_session_name, duration = opts.role_session_duration,
    external_id = opts.external_id, policy = opts.policy, names = names or OPTION_NAMES }
end

-- OIDC's three parts: the spec's field, its option, its variable.
local OIDC_PARTS = { { "arn", "role_arn", assume_role.ENV_ROLE_ARN },
                     { "oidc_provider_arn", "oidc_provider_arn", assume_role.ENV_OIDC_PROVIDER },
                     { "oidc_token_file", "oidc_token_file", assume_role.ENV_OIDC_TOKEN_FILE } }

--- Whether the environment names an OIDC provider or token file.
function assume_role.oidc_in(env)
  return nonempty(env(assume_role.ENV_OIDC_PROVIDER)) or nonempty(env(assume_role.ENV_OIDC_TOKEN_FILE))
end

--- The OIDC spec: each part from its option (when `from_options`), else from its variable.
function assume_role.oidc_spec(opts, env, from_options)
  local spec = option_role(opts, setmetatable({}, { __index = OPTION_NAMES }))
  for _, part in ipairs(OIDC_PARTS) do
    local v = from_options and opts[part[2]] or nil
    if v == nil then v, spec.names[part[1]] = env(part[3]), part[3] end
    spec[part[1]] = v
  end
  return spec
end

--- The RAM role to assume with what the chain's sources give: option role_arn, else
-- ALIBABA_CLOUD_ROLE_ARN unless OIDC claims it (its options, or its variables, even when
-- a profile skips OIDC). Returns a spec or nothing; or nil, err for options that shape a
-- role when there is no role to shape.
function assume_role.claimed(opts, env)
  local oidc = opts.oidc_token_file ~= nil or opts.oidc_provider_arn ~= nil
  if opts.role_arn ~= nil and not oidc then return option_role(opts) end
  if oidc or assume_role.oidc_in(env) then return end
  local arn = nonempty(env(assume_role.ENV_ROLE_ARN))
  if arn then
    local spec = option_role(opts, setmetatable({ arn = assume_role.ENV_ROLE_ARN }, { __index = OPTION_NAMES }))
    spec.arn = arn
    return spec
  end
  for _, name in ipairs({ "role_session_name", "role_session_duration", "external_id", "policy" }) do
    if opts[name] ~= nil then
      return nil, errors.invalid(format("option %s needs a role to assume: role_arn (or %s), or OIDC", name,
        assume_role.ENV_ROLE_ARN))
    end
  end
end

--- The sources' provider p (or their error), with `role` (assume_role.claimed's) assumed
-- on top of it through make.ram_role_arn.
function assume_role.on_top(make, role, p, err)
  if not role then return p, err end
  if not p then
    if err.code == errors.codes.MISSING_CREDENTIALS then
      err.message = format("the RAM role %s (%s) needs source credentials to be assumed with: %s",
        sts.shown_arn(role.arn), role.names.arn, err.message)
    end
    return nil, err
  end
  return make.ram_role_arn(p, role)
end

return assume_role
