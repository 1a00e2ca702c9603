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
-- chain's context `s` (opts, env, defaults). Nothing is sent before the first get().
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")
local defaults = require("aliyun.iot.defaults")
local common = require("aliyun.iot.credentials.common")
local provider = require("aliyun.iot.credentials.provider")
local sts = require("aliyun.iot.credentials.sts")

local tostring, ipairs, pairs = tostring, ipairs, pairs
local format, match = string.format, string.match

local missing, invalid, nonempty, trim = common.missing, common.invalid, common.nonempty, common.trim

local assume_role = {}

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

return assume_role
