--- aliyun.iot: Alibaba Cloud IoT Platform OTA API for Lua.
--
--   local iot = require("aliyun.iot")
--   local client = assert(iot.new{ region = "cn-shanghai",
--     access_key_id = os.getenv("ALIBABA_CLOUD_ACCESS_KEY_ID"),
--     access_key_secret = os.getenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET") })
--   for task in client:tasks{ JobId = job_id } do print(task.DeviceName, task.TaskStatus) end
--
-- Requiring this module does no I/O; iot.new creates its transport but
-- connects only on the first call.
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local request = require("aliyun.iot.request")
local pager = require("aliyun.iot.pager")
local schedule = require("aliyun.iot.schedule")
local transports = require("aliyun.iot.transport")
local limiter = require("aliyun.iot.limiter")
local credentials = require("aliyun.iot.credentials")
local defaults = require("aliyun.iot.defaults")
local options = require("aliyun.iot.options")

local type, pairs, setmetatable, error = type, pairs, setmetatable, error
local format, match = string.format, string.match
local getenv = os.getenv

local iot = {
  VERSION = core.version,
  codes = core.codes,
  TASK_STATUSES = params.TASK_STATUSES,
  FINAL_STATUSES = params.FINAL_STATUSES,
  -- iot.scrub(text, {secret, ...}): text with every form of each secret masked.
  scrub = errors.scrub,
  defaults = defaults,
  -- Alibaba's recommended signature; the official Node SDK for this API signs with it.
  DEFAULT_SIGNATURE_VERSION = defaults.signature_version,
}

local Client = {}
Client.__name = "aliyun.iot.Client"

-- Each client's state (see iot.new) lives here, keyed by client, never in
-- the client table itself: so pairs(client), a debugger's table dump or
-- tostring() cannot show a secret.
local private = setmetatable({}, { __mode = "k" })

-- What a client shows of its state: client.region, client.endpoint, ...
local PUBLIC = { region = "region", endpoint = "base_url", credentials = "credentials",
                 iot_instance_id = "iot_instance_id", signature_version = "signature_version" }

function Client.__index(client, key)
  local method = Client[key]
  if method ~= nil then return method end
  local field = PUBLIC[key]
  local state = field and private[client]
  if state then return state[field] end
  return nil
end

local function invalid(message) return nil, errors.invalid(message) end

-- What the limiter needs of the runtime (see limiter.for_client).
local RUNTIME = {
  local_store = transports.limiter_store, redis_client = transports.redis_client, logger = transports.logger,
  monotonic = core.monotonic, new_id = core.nonce, getenv = getenv,
}

--- Create a client. Returns the client, or nil and an error object.
function iot.new(opts)
  if opts == nil then opts = {} end
  if type(opts) ~= "table" then error("bad argument #1 to 'new' (table expected, got " .. type(opts) .. ")", 2) end
  local ok, err = options.check(opts)
  if not ok then return nil, err end
  local provider
  provider, err = credentials.chain{
    access_key_id = opts.access_key_id, access_key_secret = opts.access_key_secret,
    security_token = opts.security_token, profile = opts.profile, role_name = opts.role_name,
    metadata_url = opts.metadata_url, refresh_margin = opts.credentials_refresh_margin, clock = opts.clock,
    role_arn = opts.role_arn, role_session_name = opts.role_session_name, external_id = opts.external_id,
    role_session_duration = opts.role_session_duration, policy = opts.policy, sts_endpoint = opts.sts_endpoint,
    oidc_provider_arn = opts.oidc_provider_arn, oidc_token_file = opts.oidc_token_file,
    credentials_uri = opts.credentials_uri, logger = opts.logger or transports.logger(),
    -- The metadata service (ECS RAM roles) and a credentials URI are reached
    -- directly, never through a proxy meant for the API, over a transport made
    -- on first use only; STS, a public endpoint like the API, through the API's
    -- proxy and TLS settings, as the SDKs reach it.
    http = transports.http_function{ timeout = 2, connect_timeout = 1, proxy = "" },
    sts_transport = { timeout = opts.timeout, connect_timeout = opts.connect_timeout, proxy = opts.proxy,
      cafile = opts.cafile, ssl_verify = opts.ssl_verify },
  }
  if not provider then return nil, err end
  local base_url, region = options.endpoint(opts, provider.region)
  if not base_url then return nil, region end
  if opts.iot_instance_id == "" then return invalid("iot_instance_id must not be empty") end
  -- Unless given, the instance comes from ALIYUN_IOT_INSTANCE_ID (empty: none).
  local instance_id = opts.iot_instance_id
  if instance_id == nil then instance_id = getenv("ALIYUN_IOT_INSTANCE_ID") end
  if instance_id == "" then instance_id = nil end

  local rate_limiter
  if opts.rate_limit ~= false then
    rate_limiter, err = limiter.for_client(opts, RUNTIME)
    if not rate_limiter then return nil, err end
  end

  local transport_opts = setmetatable({ scheme = match(base_url, "^(%a+):") }, { __index = opts })
  local transport, owns_transport = transports.select(transport_opts)
  if not transport then return invalid(owns_transport) end

  -- The client's whole state: read by request, schedule and the pager.
  local state = {
    base_url = base_url,
    host = match(base_url, "^https?://(.*)$"),
    region = region,
    credentials = provider,
    iot_instance_id = instance_id,
    signature_version = opts.signature_version or defaults.signature_version,
    transport = transport,
    owns_transport = owns_transport,
    -- Scrubbed from every error like the keys: a proxy may echo it back.
    proxy_password = type(transport) == "table" and rawget(transport, "proxy_password") or nil,
    -- The endpoint is the region's own (not one the caller named).
    region_endpoint = opts.endpoint == nil,
    limiter = rate_limiter,
    max_retries = opts.max_retries,
    max_body_bytes = opts.max_body_bytes or defaults.max_body_bytes,
    max_inflight_bytes = opts.max_inflight_bytes or defaults.max_inflight_bytes,
    paging_depth_cap = opts.paging_depth_cap or params.MAX_DEPTH,
    timeout = opts.timeout,
    deadline = opts.deadline,
    correct_clock_skew = opts.correct_clock_skew,
    clock = opts.clock,
    nonce = opts.nonce,
    now = core.now,
    monotonic = core.monotonic,
    sleep = transports.sleep_function(),
  }
  local client = setmetatable({}, Client)
  private[client] = state
  return client
end

local function state_of(client, method)
  local state = private[client]
  if not state then
    error(format("bad self to '%s' (aliyun.iot.Client expected; call it as client:%s{...})", method, method), 3)
  end
  return state
end

local function closed(method)
  return errors.new(errors.codes.CLIENT_CLOSED,
    format("client:%s on a closed client (client:close() was called)", method), { retryable = false })
end

--- One page of an OTA job's tasks. Returns page or nil, err.
-- page.tasks is an array of task tables with the API's field names; page
-- also carries Total, PageSize, CurrentPage, PageCount and RequestId.
function Client:ListOTATaskByJob(p)
  state_of(self, "ListOTATaskByJob")
  return self:call("ListOTATaskByJob", p)
end

-- client:call's options.
local CALL_OPTIONS = { dry_run = true, idempotent = true }

-- Actions whose responses get more than generic decoding.
local DECODERS = { ListOTATaskByJob = core.decode_tasks }

-- Every Iot answer says "Success": true when it is one; anything else is an error.
local decode = core.decode
local function decode_iot(body, status) return decode(body, status, true) end

--- Any Iot 2018-01-20 RPC action. Lists flatten to Name.1..N, tables to
-- Name.Field, booleans to "true"/"false". Returns the decoded response table
-- (a page for ListOTATaskByJob) or nil, err. opts.dry_run = true returns the
-- signed request (method, url, headers, body) without sending it.
function Client:call(action, p, opts)
  local state = state_of(self, "call")
  if state.closed then return nil, closed("call") end
  local flat, err = params.for_action(action, p)
  if not flat then return nil, err end
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #3 to 'call' (table of options expected, got " .. type(opts) .. ")", 2)
  end
  for name in pairs(opts or {}) do
    -- An option that is not one (dryRun) must not send a write for real.
    if not CALL_OPTIONS[name] then
      return invalid(params.unknown_key("option", "client:call", name, { "dry_run", "idempotent" }))
    end
  end
  if opts and opts.dry_run then return request.dry_run(state, action, flat) end
  local idempotent
  if opts and opts.idempotent ~= nil then idempotent = opts.idempotent == true end
  local call = request.call(state, action, flat, DECODERS[action] or decode_iot, { idempotent = idempotent })
  return schedule.one(state, transports.engine(state.transport, 1, state.sleep), call)
end

-- Closes what a listing has in flight and frees its sets: Lua 5.4's
-- generic for closes its 4th value when the loop ends early (break); older
-- Lua ignores it (the sets' __gc frees them then).
local function closer(scheduler, listing)
  return setmetatable({}, { __close = function()
    scheduler:close()
    for _, set in ipairs(listing.sets) do set:close() end
  end })
end

-- A listing's fetch_all(list, each) for the pager: the ListOTATaskByJob
-- calls of `list` through one scheduler (up to `concurrency` in flight),
-- each page handed to `each` in list order; raises the first failure.
local decode_tasks = core.decode_tasks

local function listing_of(self, p, method)
  local state = state_of(self, method)
  if state.closed then error(closed(method), 3) end
  local listing, err = pager.validate(p)
  -- Like io.lines: an iterator cannot return nil, err, so it raises.
  if not listing then error(err, 3) end
  listing.depth_cap = state.paging_depth_cap
  -- Every transfer in flight may hold a body of up to max_body_bytes: the
  -- listing keeps no more in flight than max_inflight_bytes allows.
  local n = listing.concurrency or defaults.concurrency
  n = math.max(1, math.min(n, math.floor(state.max_inflight_bytes / state.max_body_bytes)))
  local scheduler = schedule.new(state, transports.engine(state.transport, n, state.sleep), n)
  local deadline_at = listing.deadline and state.monotonic() + listing.deadline
  -- One entry: ListOTATaskByJob parameters, or { action = name, params = p }
  -- for another action (the walk's QueryOTAJob and QueryDevice calls).
  local function call_of(entry, check)
    local action, api_params = "ListOTATaskByJob", entry
    if entry.action then action, api_params = entry.action, entry.params end
    local flat, e = params.for_action(action, api_params)
    if not flat then error(e, 0) end
    local decode_one = DECODERS[action] or decode_iot
    if action == "ListOTATaskByJob" and check then
      decode_one = function(body, status)
        local page, perr = decode_tasks(body, status)
        if page == nil then return nil, perr end
        local ok, cerr = check(page, api_params)
        if not ok then
          cerr.http_status, cerr.request_id = status, page.RequestId
          return nil, cerr
        end
        return page
      end
    end
    local call = request.call(state, action, flat, decode_one, { deadline_at = deadline_at })
    call.entry = entry
    return call
  end
  -- fetch_all(entries, each, check): entries a list or a source function
  -- (next entry, nil: none ready yet, false: no more); each(value, entry) in
  -- order; raises the first failure.
  local function fetch_all(entries, each, check)
    local calls
    if type(entries) == "function" then
      calls = function()
        local entry = entries()
        if not entry then return entry end
        return call_of(entry, check)
      end
    else
      calls = {}
      for i = 1, #entries do calls[i] = call_of(entries[i], check) end
    end
    local ok, e = scheduler:run(calls, function(value, _, call) return each(value, call.entry) end)
    if not ok then error(e, 0) end
  end
  listing.sets = {}
  return listing, fetch_all, closer(scheduler, listing), state.monotonic
end

local function iterate(make, listing, fetch_all, close, clock)
  return make(listing, fetch_all, clock), nil, nil, close
end

--- Iterate over every task of a job, each exactly once; raises the error
-- object if a page cannot be fetched. Options as ListOTATaskByJob, except
-- CurrentPage; DeviceNames may hold any number of names, TaskStatus may be
-- a list of statuses (listed one after the other, each task still once).
-- `concurrency = N` keeps up to N page requests in flight, within the rate
-- limiter.
function Client:tasks(p)
  return iterate(pager.tasks, listing_of(self, p, "tasks"))
end

--- Iterate over every page of a job (tasks de-duplicated across pages).
function Client:pages(p)
  return iterate(pager.pages, listing_of(self, p, "pages"))
end

--- What the rate limiter does for this client's AccessKeyId: nil without a
-- limiter; with a Redis store { store (the URL, password masked), using =
-- "shared" | "local", share, peers, asked = { shared, local } (how often
-- each store was asked), failures, recoveries, last_error }, counted for
-- this process; else {}.
function Client:rate_limit_info(action)
  local state = state_of(self, "rate_limit_info")
  if not state.limiter then return nil end
  local creds = state.credentials:get()
  return state.limiter:info(creds and creds.access_key_id or "", action or "ListOTATaskByJob") or {}
end

--- Release the HTTP session and the limiter's Redis connection. Idempotent;
-- the client cannot be used after.
function Client:close()
  local state = private[self]
  if not state or state.closed then return end
  state.closed = true
  if state.owns_transport then state.transport:close() end
  if state.limiter then state.limiter:close() end
end
Client.__close = Client.close

function Client:__tostring()
  return format("aliyun.iot.Client (%s, %s)", self.endpoint, tostring(self.credentials))
end

return iot
