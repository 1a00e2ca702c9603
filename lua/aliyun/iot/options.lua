--- iot.new's options: the table of their names and kinds, their checks
-- (before any I/O), and the endpoint they resolve to.
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local limiter = require("aliyun.iot.limiter")

local pairs, ipairs, type, tostring = pairs, ipairs, type, tostring
local format, match = string.format, string.match
local getenv = os.getenv

local options = {}

local OPTIONS = {
  region = "string", endpoint = "string",
  access_key_id = "string", access_key_secret = "string", security_token = "string",
  profile = "string", role_name = "string", metadata_url = "string", credentials_refresh_margin = "number",
  -- More sources (aliyun.iot.credentials): a RAM role assumed through STS, OIDC, a credentials URI.
  role_arn = "string", role_session_name = "string", role_session_duration = "number", external_id = "string",
  policy = "string", oidc_provider_arn = "string", oidc_token_file = "string", credentials_uri = "string",
  sts_endpoint = "string",
  iot_instance_id = "string",
  timeout = "number", connect_timeout = "number",
  cafile = "string", ssl_verify = "boolean", gzip = "boolean", max_body_bytes = "number", max_inflight_bytes = "number",
  proxy = "string",
  transport = "transport",
  signature_version = "string",
  max_retries = "number", deadline = "number", paging_depth_cap = "number",
  rate_limit = "rate", correct_clock_skew = "boolean",
  -- The limiter's buckets in Redis, shared by every machine of the account
  -- (also from ALIYUN_IOT_RATE_LIMIT_STORE); see aliyun.iot.limiter.
  rate_limit_store = "store", rate_limit_share = "share", rate_limit_store_required = "boolean",
  rate_limit_store_timeout = "number", logger = "function",
  -- Injection points (tests): clock() returns epoch seconds, nonce() a fresh
  -- SignatureNonce.
  clock = "function", nonce = "function",
}

options.NAMES = OPTIONS

local function invalid(message) return nil, errors.invalid(message) end

--- true, or nil and an SDK.InvalidArgument naming the option.
function options.check(opts)
  for name, value in pairs(opts) do
    local want = OPTIONS[name]
    if not want then
      local names = {}
      for k in pairs(OPTIONS) do names[#names + 1] = k end
      table.sort(names)
      return invalid(params.unknown_key("option", "iot.new", name, names))
    end
    -- A transport is a name ("curl", "resty") or an object (table or C userdata).
    if want == "transport" then
      if type(value) ~= "string" and type(value) ~= "table" and type(value) ~= "userdata" then
        return invalid(format("option transport must be \"curl\", \"resty\" or an object, got %s", type(value)))
      end
    elseif want == "rate" then
      local ok, why = limiter.check_rate(value)
      if not ok then return invalid(format("option rate_limit must be %s, got %s", why, tostring(value))) end
    elseif want == "store" then
      if value ~= false and type(value) ~= "string" then
        return invalid(format("option rate_limit_store must be a redis:// URL or false, got %s", type(value)))
      end
    elseif want == "share" then
      if type(value) ~= "number" or not (value > 0 and value <= 1) then
        return invalid(format("option rate_limit_share must be a number in (0, 1], got %s", tostring(value)))
      end
    elseif type(value) ~= want then
      return invalid(format("option %s must be a %s, got %s", name, want, type(value)))
    end
  end
  if opts.signature_version ~= nil and opts.signature_version ~= "v1" and opts.signature_version ~= "v3" then
    return invalid(format("option signature_version must be \"v3\" or \"v1\", got %q", opts.signature_version))
  end
  local cap = opts.paging_depth_cap
  if cap ~= nil and (cap ~= math.floor(cap) or cap < params.MAX_PAGE_SIZE or cap > params.MAX_DEPTH) then
    return invalid(format("option paging_depth_cap must be an integer from %d to %d, got %s",
      params.MAX_PAGE_SIZE, params.MAX_DEPTH, tostring(cap)))
  end
  local retries = opts.max_retries
  if retries ~= nil and (retries < 0 or retries ~= math.floor(retries) or retries > 100) then
    return invalid(format("option max_retries must be an integer from 0 to 100, got %s", tostring(retries)))
  end
  for _, name in ipairs({ "timeout", "connect_timeout", "max_body_bytes", "max_inflight_bytes", "deadline",
                         "rate_limit_store_timeout" }) do
    local v = opts[name]
    if v ~= nil and not (v > 0 and v < math.huge) then
      return invalid(format("option %s must be a positive number, got %s", name, tostring(v)))
    end
  end
  return true
end

--- The endpoint URL and region of `opts` (the profile's region second), or nil, err.
function options.endpoint(opts, profile_region)
  local region = opts.region or profile_region or getenv("ALIBABA_CLOUD_REGION_ID")
  if region == "" then region = nil end
  if region and not match(region, "^[a-z][a-z0-9%-]*[a-z0-9]$") then
    return invalid(format("region %q is not a region id such as cn-shanghai", region))
  end
  local endpoint = opts.endpoint
  if endpoint then
    -- scheme://host[:port] only: paths and queries would break signing.
    local base = match(endpoint, "^(https?://[%w%.%-_:%[%]]+)/?$")
    if not base then
      return invalid(format("endpoint %q must look like https://host[:port] (no path or query)", endpoint))
    end
    return base, region
  end
  if not region then
    return invalid("region is required (e.g. region = \"cn-shanghai\"), or an explicit endpoint")
  end
  return format("https://iot.%s.aliyuncs.com", region), region
end

return options
