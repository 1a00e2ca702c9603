--- The request pipeline: build -> sign, and one attempt's tail (decode,
-- request id, redaction, attempt count, retry decision).
-- `build_v1`, `sign_v1` and `sign_v3` are pure (time and nonce come in as
-- arguments), so a signed request can be reproduced in a test or returned
-- without sending (dry_run). Sending is not done here: aliyun.iot.schedule
-- sends every call, a single one or the pages of a listing, through the
-- transport and the limiter, and hands each answer to request.settle.
local core = require("aliyun.iot.core")
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local http_date_epoch = require("aliyun.iot.time").http_date_epoch

local pairs, setmetatable, tostring = pairs, setmetatable, tostring
local format, match, gsub, find = string.format, string.match, string.gsub, string.find
local ipairs, type, tonumber = ipairs, type, tonumber
local min, random = math.min, math.random
local sign_v1, sign_v3, percent_encode = core.sign_v1, core.sign_v3, core.percent_encode
local codes = errors.codes

local request = {}

request.API_VERSION = "2018-01-20"
request.DEFAULT_MAX_RETRIES = defaults.max_retries

-- Response headers: the gateway repeats the RequestId here, which matters
-- when a body is unreadable and carries none.
local REQUEST_ID_HEADER = "x-acs-request-id"
request.REQUEST_ID_HEADER = REQUEST_ID_HEADER
local EMPTY_BODY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

-- Backoff with full jitter (a random wait in [0, cap]); throttling gets a
-- longer base, because the account's whole quota is what ran out.
local BACKOFF_BASE, THROTTLE_BASE, BACKOFF_CAP = 0.1, 1.0, 10

--- The full V1 parameter set of one RPC call, without the Signature.
function request.build_v1(state, creds, action, api_params, at, signature_nonce)
  local p = {
    Action = action,
    Version = request.API_VERSION,
    Format = "JSON",
    AccessKeyId = creds.access_key_id,
    SignatureMethod = "HMAC-SHA1",
    SignatureVersion = "1.0",
    SignatureNonce = signature_nonce,
    Timestamp = at,
    RegionId = state.region,
    SecurityToken = creds.security_token,
    IotInstanceId = state.iot_instance_id,
  }
  for k, v in pairs(api_params) do p[k] = v end
  return p
end

--- V1: GET with every parameter and the Signature in the query.
function request.sign_v1(state, creds, p)
  local signature, _, canonical_query = sign_v1("GET", p, creds.access_key_secret)
  return {
    method = "GET",
    url = state.base_url .. "/?" .. canonical_query .. "&Signature=" .. percent_encode(signature),
    headers = { Accept = "application/json" },
  }
end

--- V3 (ACS3-HMAC-SHA256), as the official Node SDK sends RPC calls: POST to
-- "/" with an empty body, the API parameters in the query, and the action,
-- version, time and nonce in signed x-acs-* headers.
function request.sign_v3(state, creds, action, api_params, at, signature_nonce)
  local query = {}
  if state.iot_instance_id then query.IotInstanceId = state.iot_instance_id end
  for k, v in pairs(api_params) do query[k] = v end
  local headers = {
    host = state.host,
    ["x-acs-action"] = action,
    ["x-acs-version"] = request.API_VERSION,
    ["x-acs-date"] = at,
    ["x-acs-signature-nonce"] = signature_nonce,
    ["x-acs-content-sha256"] = EMPTY_BODY_SHA256,
    ["x-acs-security-token"] = creds.security_token,
    -- Set explicitly: an HTTP client adds one to a POST anyway, and a
    -- content-type that is sent must also be signed.
    ["content-type"] = "application/x-www-form-urlencoded",
  }
  local signature, _, _, signed_headers, canonical_query = sign_v3("POST", query, headers, "", creds.access_key_secret)
  headers.Authorization = format("ACS3-HMAC-SHA256 Credential=%s,SignedHeaders=%s,Signature=%s",
    creds.access_key_id, signed_headers, signature)
  headers.Accept = "application/json"
  return {
    method = "POST",
    url = state.base_url .. "/" .. (canonical_query ~= "" and ("?" .. canonical_query) or ""),
    headers = headers,
    body = "",
  }
end

-- Seconds since the epoch, from the injected clock or the system, corrected
-- by the measured skew when the client was asked to.
local function epoch(state)
  local t = state.clock and state.clock() or state.now()
  return t + (state.clock_offset or 0)
end

--- Sign one call with fresh time and nonce, with `creds` or the client's
-- current credentials. Returns req, creds or nil, err.
function request.prepare(state, action, api_params, creds)
  if not creds then
    local err
    creds, err = state.credentials:get()
    if not creds then return nil, err end
  end
  if not creds.checked then
    -- A control character would break the request's headers (or the
    -- signature) somewhere below; say which part is wrong, never its value.
    for _, part in ipairs({ "access_key_id", "access_key_secret", "security_token" }) do
      local v = creds[part]
      if v ~= nil and (type(v) ~= "string" or find(v, "%c")) then
        return nil, errors.invalid(format("the credentials' %s (from %s) contains a control character",
          part, tostring(state.credentials.source)))
      end
    end
    creds.checked = true
  end
  local at = core.timestamp(epoch(state))
  local signature_nonce = state.nonce and state.nonce() or core.nonce()
  local req
  if state.signature_version == "v1" then
    req = request.sign_v1(state, creds, request.build_v1(state, creds, action, api_params, at, signature_nonce))
  else
    req = request.sign_v3(state, creds, action, api_params, at, signature_nonce)
  end
  return req, creds
end

-- tostring() of a dry-run request: the SecurityToken is masked; the
-- signature stays (it is single-use and proves nothing without the secret).
local DryRun = {}
DryRun.__name = "aliyun.iot.SignedRequest"
function DryRun.__tostring(req)
  local url = gsub(req.url, "SecurityToken=[^&]*", "SecurityToken=***")
  return format("%s %s", req.method, url)
end

--- The signed request, without sending it (client:call's dry_run).
function request.dry_run(state, action, api_params)
  local req, err = request.prepare(state, action, api_params)
  if not req then return nil, err end
  return setmetatable(req, DryRun)
end

--- Seconds to wait before retry number `attempt` after `err`.
local function backoff(attempt, err)
  local base = match(err.code, "^Throttling") and THROTTLE_BASE or BACKOFF_BASE
  return random() * min(BACKOFF_CAP, base * 2 ^ (attempt - 1))
end

--- The context of one call across its attempts.
-- Fields: state (the client's), action, params (flat API parameters),
-- decode(body, status), read (may be sent again after any transient
-- failure; see params.is_read), attempt (attempts sent so far), started
-- (monotonic time of the first), deadline_at (monotonic time by which the
-- call must be over, or nil), skew_corrected (the clock was corrected once
-- already), fresh (the next attempt must go out on a new connection).
-- opts: idempotent (overrides the read/write rule), deadline_at (a
-- listing's own deadline, on top of the client's per-call one).
function request.call(state, action, api_params, decode, opts)
  local idempotent = opts and opts.idempotent
  if idempotent == nil then idempotent = params.is_read(action) end
  return { state = state, action = action, params = api_params, decode = decode, read = idempotent,
           attempt = 0, started = nil, deadline_at = opts and opts.deadline_at,
           skew_corrected = false, fresh = not idempotent }
end

local function deadline_passed(call)
  return errors.new(codes.TIMEOUT, format("the %s deadline passed before the call could be sent",
    call.state.deadline and format("%g s", call.state.deadline) or "listing's"), { retryable = false })
end

--- Sign the next attempt of `call` at monotonic time `now`, with `creds`
-- (or the client's current credentials). Returns req, creds or nil, err.
-- req.timeout is what the deadline leaves of the client's timeout; req.fresh
-- asks the transport for a new connection: always for a write (an HTTP
-- client may re-send a request by itself when a reused connection fails
-- before any answer, and the gateway would execute the copy), and for a read
-- after a reset or a SignatureNonceUsed (a server may reset every reused
-- connection).
function request.next_attempt(call, now, creds)
  local state = call.state
  if not call.started then
    call.started = now
    if state.deadline and not (call.deadline_at and call.deadline_at < now + state.deadline) then
      call.deadline_at = now + state.deadline
    end
  end
  local timeout = state.timeout or defaults.timeout
  if call.deadline_at then
    local left = call.deadline_at - now
    if left <= 0 then return nil, deadline_passed(call) end
    if left < timeout then timeout = left end
  end
  local req
  req, creds = request.prepare(state, call.action, call.params, creds)
  if not req then return nil, creds end
  call.attempt = call.attempt + 1
  req.timeout, req.fresh = timeout, call.fresh
  return req, creds
end

-- Transport failures that prove the request never left (no name, no
-- connection, no TLS session): the transports say so with request_sent = false.
local function never_sent(err)
  return err.request_sent == false
end

local function is_transport_failure(err)
  return err.http_status == nil or err.http_status == 0
end

-- A read is also sent again after a malformed or truncated answer and after
-- SignatureNonceUsed (a silent re-send of the same bytes by the HTTP client
-- met the nonce the first copy had left at the gateway); re-signed, it is new.
local READ_RETRYABLE = { [codes.BAD_RESPONSE] = true, SignatureNonceUsed = true }

-- Whether a failed write may still have been carried out by the service.
local function maybe_executed(err)
  local code = err.code
  if code == codes.INVALID_ARGUMENT or code == codes.MISSING_CREDENTIALS then return false end
  if is_transport_failure(err) then return not never_sent(err) end
  local status = err.http_status
  return status >= 500 or code == codes.BAD_RESPONSE or code == codes.HTTP_ERROR or code == "SignatureNonceUsed"
end

-- Whether `err` may be retried for this call, at all.
local function may_retry(call, err)
  if call.read then return err.retryable or READ_RETRYABLE[err.code] == true end
  -- A write: only what provably never reached the service.
  if match(err.code, "^Throttling") then return true end
  return is_transport_failure(err) and never_sent(err)
end

-- The wait a server asked for, in seconds: x-acs-retry-after (milliseconds,
-- as Alibaba's runtimes read it) or Retry-After (seconds or an HTTP date).
-- At most MAX_SERVER_WAIT, as the aliyun CLI caps it.
request.MAX_SERVER_WAIT = 60
local function server_wait(state, headers)
  if not headers then return nil end
  local ms = tonumber(headers["x-acs-retry-after"])
  local wait = ms and ms / 1000
  local ra = headers["retry-after"]
  if not wait and ra then
    wait = tonumber(ra)
    if not wait then
      local at = http_date_epoch(ra)
      wait = at and at - epoch(state)
    end
  end
  if not wait or wait ~= wait or wait <= 0 then return nil end
  return math.min(wait, request.MAX_SERVER_WAIT)
end

--- After a failed attempt: whether and when to try `call` again.
-- Returns the seconds to wait (0: at once), or nil and, when the deadline
-- is what stopped it, the reason. An InvalidTimeStamp.Expired answer with a
-- Date header carries err.clock_offset (set by settle); with
-- correct_clock_skew the first such answer of a call is retried at once,
-- outside max_retries, once settle has corrected the clock (the gateway
-- refused it before anything ran, so this holds for writes too).
function request.retry_after(call, err, now, headers)
  local state = call.state
  if err.clock_offset and state.correct_clock_skew and not call.skew_corrected then return 0 end
  if not may_retry(call, err) or call.attempt > (state.max_retries or request.DEFAULT_MAX_RETRIES) then
    return nil
  end
  local delay = backoff(call.attempt, err)
  local asked = server_wait(state, headers)
  if asked and asked > delay then delay = asked end
  if call.deadline_at and now + delay > call.deadline_at then
    return nil, format("gave up: the %s deadline would pass before the next attempt",
      state.deadline and format("%g s", state.deadline) or "listing's")
  end
  return delay
end

-- The most a server's Date may differ from ours and still be taken as the
-- clock to correct to: the gateway allows 15 minutes, real skews are
-- minutes or hours; a day off is a hostile or broken header, not a clock.
request.MAX_CLOCK_OFFSET = 86400

-- InvalidTimeStamp.Expired: how far off the local clock is, from the
-- server's Date header, in err (clock_offset and the message).
local function note_clock_offset(state, err, headers)
  local date = headers and headers.date
  local server = http_date_epoch(date)
  if not server then return end
  local offset = server - epoch(state)
  local off = math.abs(offset)
  if off ~= off or off > request.MAX_CLOCK_OFFSET then
    err.message = format("%s [the server's Date header (%s) is %.0f s from the local clock: "
      .. "implausible, not taken as a clock to correct to]", tostring(err.message), tostring(date):sub(1, 40),
      math.abs(offset))
    return
  end
  err.clock_offset = offset
  err.message = format("%s [the local clock is %.0f s %s the server's Date header%s]", tostring(err.message),
    math.abs(offset), offset > 0 and "behind" or "ahead of",
    state.correct_clock_skew and "" or "; iot.new{correct_clock_skew = true} corrects for it")
end

--- One attempt's tail: what the transport gave for an attempt of `call`
-- signed with `creds` (`r` = { status, body, headers } or { err }) at
-- monotonic time `now`. Returns the decoded value, or nil, err, delay:
-- delay is the seconds to wait before the next attempt, nil when `err` is
-- final. err has every secret of `creds` scrubbed from its text.
function request.settle(call, creds, r, now)
  local err, headers = r.err, r.headers
  local state = call.state
  if not err then
    local result
    result, err = call.decode(r.body, r.status)
    if result ~= nil then return result end
    if err.request_id == nil and headers then err.request_id = headers[REQUEST_ID_HEADER] end
  end
  errors.redact(err, { creds.access_key_secret, creds.security_token, state.proxy_password })
  if call.attempt > 1 then err.attempts = call.attempt end
  if err.code == "InvalidTimeStamp.Expired" then note_clock_offset(state, err, headers) end
  if not call.read and maybe_executed(err) then
    err.maybe_executed = true
    err.message = format("%s [%s may have been carried out: check its effect before sending it again]",
      tostring(err.message), call.action)
  end
  if err.name_not_resolved and state.region_endpoint then
    -- A made-up region's endpoint does not resolve: no retry will fix that.
    err.retryable = false
    err.message = format("%s [the endpoint for region %s did not resolve: check the region (e.g. cn-shanghai)]",
      tostring(err.message), tostring(state.region))
  end
  local delay, why = request.retry_after(call, err, now, headers)
  if delay == nil then
    if why then err.message = format("%s [%s]", tostring(err.message), why) end
    return nil, err
  end
  if is_transport_failure(err) or err.code == "SignatureNonceUsed" then call.fresh = true end
  if err.clock_offset and state.correct_clock_skew and not call.skew_corrected then
    state.clock_offset = (state.clock_offset or 0) + err.clock_offset
    call.skew_corrected = true
  end
  return nil, err, delay
end

return request
