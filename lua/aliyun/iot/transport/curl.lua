--- The libcurl transport: a C Session (one reused easy handle) for requests
-- one at a time, and a C Multi (libcurl multi) for up to N at once.
local core = require("aliyun.iot.core")
local defaults = require("aliyun.iot.defaults")

local setmetatable, getenv = setmetatable, os.getenv

local curl = {}

-- Proxies as the official SDKs take them: the proxy option, else HTTPS_PROXY
-- or HTTP_PROXY by the endpoint's scheme (upper or lower case; libcurl alone
-- ignores upper-case HTTP_PROXY), and NO_PROXY. proxy = "" turns proxies off.
local function proxy_settings(opts)
  local proxy = opts.proxy
  if proxy == nil then
    if (opts.scheme or "https") == "https" then
      proxy = getenv("HTTPS_PROXY") or getenv("https_proxy")
    else
      proxy = getenv("HTTP_PROXY") or getenv("http_proxy")
    end
  end
  return proxy, getenv("NO_PROXY") or getenv("no_proxy")
end

--- The C core's transfer options for iot.new options (a Session's; a Multi
-- adds `size`).
function curl.options(opts)
  local proxy, noproxy = proxy_settings(opts)
  return {
    timeout = opts.timeout or defaults.timeout,
    connect_timeout = opts.connect_timeout or defaults.connect_timeout,
    cafile = opts.cafile,
    verify = opts.ssl_verify,
    max_body_bytes = opts.max_body_bytes or defaults.max_body_bytes,
    proxy = proxy,
    noproxy = noproxy,
  }
end

-- libcurl's codes for failures before the request left: no proxy or host
-- name, no connection, no TLS session. Marked request_sent = false, so that
-- a write may be sent again exactly then.
local NOT_SENT = { [5] = true, [6] = true, [7] = true, [35] = true }
local function mark_unsent(err)
  if err and NOT_SENT[err.curl_code] then err.request_sent = false end
  return err
end

local Transport = {}
Transport.__index = Transport
Transport.__name = "aliyun.iot.CurlTransport"

function curl.new(opts)
  local options = curl.options(opts)
  return setmetatable({ session = core.new_session(options), options = options }, Transport)
end

-- opts: timeout, fresh (see aliyun.iot.transport); the C Session reads only those.
function Transport:request(method, url, headers, body, opts)
  local status, rbody, rheaders = self.session:request(method, url, headers, body, opts)
  if not status then return nil, mark_unsent(rbody) end
  return status, rbody, rheaders
end

--- Up to n transfers in flight on a Multi of this listing's own; its wait()
-- keeps every transfer moving while the scheduler waits for the limiter.
function Transport:concurrent(n)
  local options = {}
  for k, v in pairs(self.options) do options[k] = v end
  options.size = n
  local m = core.new_multi(options)
  return {
    start = function(id, req) m:add(id, req.method, req.url, req.headers, req.body, req) end,
    wait = function(seconds)
      local done = m:wait(seconds)
      for i = 1, #done do mark_unsent(done[i].err) end
      return done
    end,
    pending = function() return m:pending() end,
    close = function() m:close() end,
  }
end

--- Release the Session. Idempotent.
function Transport:close()
  self.session:close()
end

function Transport:__tostring()
  return "aliyun.iot.CurlTransport (" .. tostring(self.session) .. ")"
end

return curl
