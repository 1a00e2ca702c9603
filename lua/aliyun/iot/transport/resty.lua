--- The OpenResty transport: HTTP/1.1 over nginx cosockets, so a call inside
-- a request handler or a timer yields to the event loop instead of blocking
-- the worker. Where nginx offers no cosockets (init, init_worker, set,
-- header_filter, body_filter, log, balancer, ...) it falls back, per call, to
-- the C core's libcurl session, created on first need.
--
--   local t = require("aliyun.iot.transport.resty").new{ timeout = 10 }
--   local status, body, headers = t:request("GET", "https://iot.cn-shanghai.aliyuncs.com/?...")
--
-- iot.new picks this transport by itself when `ngx` exists; iot.new{transport = "curl"}
-- forces libcurl everywhere. TLS is verified by default against the CA file
-- nginx.conf names in `lua_ssl_trusted_certificate` (the cafile option only
-- reaches the libcurl fallback: cosockets cannot take a CA file per call).
-- Host names need a `resolver` directive; IP addresses do not.
--
-- Which path served the last call is in t.last ("cosocket" or "curl"), and
-- t.counts.cosocket / t.counts.curl count them, for logs and tests.
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")

local codes = errors.codes
local pairs, rawget, setmetatable, type = pairs, rawget, setmetatable, type
local find, format = string.find, string.format
local floor, min = math.floor, math.min

local resty = {}


-- Phases whose handlers may use ngx.socket.tcp (lua-nginx-module's docs,
-- "Context" of ngx.socket.tcp); everywhere else cosockets are disabled.
local COSOCKET_PHASES = {
  rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true,
}

--- The nginx phase we run in, or nil outside nginx.
local function phase()
  local ngx = rawget(_G, "ngx")
  if ngx == nil or type(ngx.get_phase) ~= "function" then return nil end
  return ngx.get_phase()
end

--- True when a call made now could use cosockets.
function resty.cosockets_available()
  local p = phase()
  return p ~= nil and COSOCKET_PHASES[p] == true
end

local Transport = {}
Transport.__index = Transport
Transport.__name = "aliyun.iot.RestyTransport"

--- opts: timeout, connect_timeout (seconds), ssl_verify (default true),
-- cafile (libcurl fallback only), max_body_bytes, and for direct use
-- keepalive_timeout (s), pool_size, fallback ("curl" default, or false to
-- fail with SDK.TransportError where cosockets are unavailable).
function resty.new(opts)
  opts = opts or {}
  local fallback = opts.fallback
  if fallback == nil then fallback = "curl" end
  return setmetatable({
    opts = opts,
    timeout = opts.timeout or defaults.timeout,
    connect_timeout = opts.connect_timeout or defaults.connect_timeout,
    verify = opts.ssl_verify ~= false,
    max_body_bytes = opts.max_body_bytes or defaults.max_body_bytes,
    keepalive_timeout = opts.keepalive_timeout or defaults.keepalive_timeout,
    pool_size = opts.pool_size or defaults.pool_size,
    fallback = fallback,
    counts = { cosocket = 0, curl = 0 },
    last = nil,
    closed = false,
  }, Transport)
end

local http1 = require("aliyun.iot.transport.http1")
local net_error, parse_url, build, reader = http1.net_error, http1.parse_url, http1.build, http1.reader
local read_head, read_body, wants_close = http1.read_head, http1.read_body, http1.wants_close

local function fail(code, message, fields)
  return nil, errors.new(code, message, fields)
end

-- Failures before anything was sent: the caller may safely send a write again.
local function not_sent(e)
  e.request_sent = false
  return nil, e
end

-- One exchange over one connection: pooled unless `fresh`. Returns
-- status, body, headers or nil, err, retry_on_fresh_connection.
function Transport:exchange(scheme, host, port, method, head_and_body, timeout, fresh)
  local ngx = rawget(_G, "ngx")
  local where = format("%s:%d", host, port)
  local deadline = ngx.now() + timeout
  local sock = ngx.socket.tcp()
  local timeout_ms = floor(timeout * 1000) + 1
  sock:settimeouts(floor(min(self.connect_timeout, timeout) * 1000) + 1, timeout_ms, timeout_ms)
  local pool = format("aliyun-iot:%s:%s:%d:%s", scheme, host, port, self.verify and "verify" or "noverify")
  if fresh then
    -- A pool of its own (never shared, never kept): a new connection.
    self.fresh_count = (self.fresh_count or 0) + 1
    pool = format("%s:fresh:%s:%d", pool, tostring(self), self.fresh_count)
  end
  local ok, err = sock:connect(host, port, { pool = pool })
  if not ok then
    local _, e = net_error("connecting to", err, where)
    local why = tostring(err)
    if find(why, "could not be resolved", 1, true) or find(why, "no resolver", 1, true) then
      e.name_not_resolved = true
    end
    return not_sent(e)
  end
  local reused = sock:getreusedtimes() > 0
  if scheme == "https" and not reused then
    ok, err = sock:sslhandshake(nil, host, self.verify)
    if not ok then
      sock:close()
      if err == "timeout" then return not_sent(select(2, net_error("TLS handshake with", err, where))) end
      if find(tostring(err), "verify", 1, true) or find(tostring(err), "certificate", 1, true) then
        return not_sent(errors.new(codes.TRANSPORT_ERROR, format("TLS certificate verification for %s failed: %s "
          .. "(nginx verifies against lua_ssl_trusted_certificate; set it in nginx.conf, e.g. "
          .. "/etc/ssl/certs/ca-certificates.crt)", where, tostring(err)), { retryable = false }))
      end
      return not_sent(errors.new(codes.CONNECTION_FAILED,
        format("TLS handshake with %s failed: %s", where, tostring(err))))
    end
  end
  ok, err = sock:send(head_and_body)
  if not ok then
    sock:close()
    local _, e = net_error("sending the request to", err, where)
    return nil, e, reused and err ~= "timeout"
  end
  local read = reader(sock, deadline, ngx.now)
  local status, headers, minor = read_head(read, where)
  if not status then
    sock:close()
    -- A pooled connection the server had already closed: nothing was answered.
    return nil, headers, reused and minor == false and not find(headers.message, "timed out", 1, true)
  end
  local body, reusable = read_body(read, method, status, headers, self.max_body_bytes, where)
  if not body then
    sock:close()
    return nil, reusable
  end
  if reusable and not fresh and not wants_close(headers, minor) then
    sock:setkeepalive(floor(self.keepalive_timeout * 1000), self.pool_size)
  else
    sock:close()
  end
  self.last_reused = reused
  return status, body, headers
end

function Transport:curl()
  local c = self.curl_session
  if not c then
    c = require("aliyun.iot.transport.curl").new(self.opts)
    self.curl_session = c
  end
  return c
end

--- request(method, url [, headers [, body [, opts]]]) -> status, body, headers | nil, err
-- opts: timeout (seconds, this request's), fresh (a new connection, and no
-- second try on one: the gateway may have read the first copy).
function Transport:request(method, url, headers, body, opts)
  if self.closed then
    return fail(codes.CLIENT_CLOSED, "the transport was closed (client:close())", { retryable = false })
  end
  if not resty.cosockets_available() then
    if self.fallback ~= "curl" then
      return fail(codes.TRANSPORT_ERROR, format("cosockets are not available in the %s phase "
        .. "and the libcurl fallback is off", tostring(phase() or "(not nginx)")), { retryable = false })
    end
    self.last = "curl"
    self.counts.curl = self.counts.curl + 1
    return self:curl():request(method, url, headers, body, opts)
  end
  self.last = "cosocket"
  self.counts.cosocket = self.counts.cosocket + 1
  local scheme, host, port, target = parse_url(url)
  if not scheme then
    return fail(codes.TRANSPORT_ERROR, "URL is not http(s)://host[:port]/...", { retryable = false })
  end
  local default_port = (scheme == "https" and port == 443) or (scheme == "http" and port == 80)
  local host_header = (find(host, ":", 1, true) and ("[" .. host .. "]") or host)
    .. (default_port and "" or (":" .. port))
  local out, berr = build(method, host_header, target, headers, body)
  if not out then return fail(codes.TRANSPORT_ERROR, berr, { retryable = false }) end
  local timeout = opts and opts.timeout or self.timeout
  local fresh = opts and opts.fresh
  local status, rbody, rheaders = self:exchange(scheme, host, port, method, out, timeout, fresh)
  if not status and rheaders == true then
    -- A pooled connection the server had closed before reading: one more
    -- try on a new one, and the next attempt of the call goes out fresh.
    status, rbody, rheaders = self:exchange(scheme, host, port, method, out, timeout, true)
  end
  if not status then return nil, rbody end
  return status, rbody, rheaders
end

--- Release the libcurl fallback, if one was made. Pooled cosocket
-- connections belong to nginx and expire by themselves. Idempotent.
function Transport:close()
  if self.curl_session then
    self.curl_session:close()
    self.curl_session = nil
  end
  self.closed = true
end

-- ---- Several requests at once: one ngx.thread each ------------------------

-- Longest single wait while threads run and nothing else is due.
local IDLE_WAIT = 1
-- Shortest sleep: Debian's lua-nginx-module has no delayed-events patch, so
-- ngx.sleep(0) logs a warning each time and busy-waits the worker.
local MIN_SLEEP = 0.001

--- ngx.sleep where the phase can yield (the worker keeps serving), the C
-- core's sleep elsewhere (init, log, ...: phases that cannot yield).
function resty.sleep(seconds)
  if not resty.cosockets_available() then return require("aliyun.iot.core").sleep(seconds) end
  return rawget(_G, "ngx").sleep(seconds > MIN_SLEEP and seconds or MIN_SLEEP)
end

--- An engine of up to n requests in flight, each in its own light thread
-- (aliyun.iot.schedule's interface). Where cosockets are unavailable the
-- requests go one after the other through the libcurl fallback.
function Transport:concurrent(_n) -- the scheduler keeps at most n in flight
  if not resty.cosockets_available() then
    return require("aliyun.iot.transport").sequential(self, resty.sleep)
  end
  local ngx = rawget(_G, "ngx")
  local spawn, wait, kill = ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill
  local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
  local threads, count = {}, 0
  local transport = self
  local function run(id, req)
    local ok, status, body, headers = pcall(transport.request, transport, req.method, req.url, req.headers, req.body,
      req)
    if not ok then
      return id, nil, errors.new(codes.TRANSPORT_ERROR, tostring(status), { retryable = false })
    end
    return id, status, body, headers
  end
  local function sleeper(seconds) ngx.sleep(seconds) return false end
  return {
    start = function(id, req)
      threads[id] = spawn(run, id, req)
      count = count + 1
    end,
    wait = function(seconds)
      if count == 0 then
        if seconds > 0 then resty.sleep(seconds) end
        return {}
      end
      local list = {}
      for _, th in pairs(threads) do list[#list + 1] = th end
      local timer
      if seconds < IDLE_WAIT then
        timer = spawn(sleeper, seconds > MIN_SLEEP and seconds or MIN_SLEEP)
        list[#list + 1] = timer
      end
      local ok, id, status, body, headers = wait(unpack(list))
      if timer then kill(timer) end
      if not ok or id == false or threads[id] == nil then return {} end
      threads[id] = nil
      count = count - 1
      if status == nil then return { { id = id, err = body } } end
      return { { id = id, status = status, body = body, headers = headers or {} } }
    end,
    pending = function() return count end,
    close = function()
      for id, th in pairs(threads) do
        kill(th)
        threads[id] = nil
      end
      count = 0
    end,
  }
end

-- ---- The rate limiter's store ---------------------------------------------

--- The limiter store over `lua_shared_dict <name>` (default
-- aliyun_iot_limiter), shared by every worker; nil, message when the dict is
-- not declared.
function resty.limiter_store(name)
  local shared_dict = require("aliyun.iot.limiter.shared_dict")
  name = name or shared_dict.DEFAULT_NAME
  local ngx = rawget(_G, "ngx")
  local dict = ngx and ngx.shared and ngx.shared[name]
  if not dict then
    return nil, format("no lua_shared_dict %s (declare it in nginx.conf's http block)", name)
  end
  -- Between lock attempts: ngx.sleep where the phase can yield, else spin.
  return shared_dict.new(dict, name, function(seconds)
    if resty.cosockets_available() then ngx.sleep(seconds) end
  end)
end

-- ---- The library's logger inside nginx --------------------------------------

local LEVELS = { error = "ERR", warn = "WARN", notice = "NOTICE", info = "INFO", debug = "DEBUG" }

--- resty.log(level, message): ngx.log at that level ("warn", "info", ...).
function resty.log(level, message)
  local ngx = rawget(_G, "ngx")
  ngx.log(ngx[LEVELS[level] or "WARN"], "aliyun.iot: ", message)
end

function Transport:__tostring()
  return format("aliyun.iot.RestyTransport (%s)", self.closed and "closed" or (self.last or "unused"))
end

return resty
