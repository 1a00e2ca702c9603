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

-- A proxy URL's password, and whether the URL is well formed:
-- scheme://[user[:password]@]host[:port][/]. Returns password (or nil), or
-- false and a message that shows the URL with its password masked.
function curl.check_proxy(proxy)
  if proxy == nil or proxy == "" then return nil end
  local scheme, rest = proxy:match("^(%a[%w+.%-]*)://(.*)$")
  if not scheme then rest = proxy end
  local authority = rest:match("^[^/?#]*")
  local userinfo, hostport = authority:match("^(.*)@(.*)$")
  hostport = hostport or authority
  local password = userinfo and userinfo:match("^[^:]*:(.*)$")
  local host_ok = hostport:match("^%[[%x:%.]+%]:?%d*$") or hostport:match("^[%w%.%-_]+:?%d*$")
  if not host_ok then
    local shown = password and password ~= "" and proxy:gsub(password:gsub("%p", "%%%0"), "***") or proxy
    return false, string.format("proxy %q is not a URL such as http://[user:password@]host:port", shown)
  end
  return password ~= "" and password or nil
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
    gzip = opts.gzip,
    proxy = proxy,
    noproxy = noproxy,
  }
end

-- libcurl's codes for failures before the request left: no proxy or host
-- name, no connection, no TLS session. Marked request_sent = false, so that
-- a write may be sent again exactly then.
local NOT_SENT = { [5] = true, [6] = true, [7] = true, [35] = true }
local COULDNT_RESOLVE_HOST = 6
local function mark_unsent(err)
  if err and NOT_SENT[err.curl_code] then err.request_sent = false end
  if err and err.curl_code == COULDNT_RESOLVE_HOST then err.name_not_resolved = true end
  return err
end

local function closed()
  local errors = require("aliyun.iot.errors")
  return errors.new(errors.codes.CLIENT_CLOSED, "the transport was closed (client:close())", { retryable = false })
end

local Transport = {}
Transport.__index = Transport
Transport.__name = "aliyun.iot.CurlTransport"

function curl.new(opts)
  local options = curl.options(opts)
  local password, why = curl.check_proxy(options.proxy)
  if password == false then return nil, why end
  return setmetatable({ session = core.new_session(options), options = options, proxy_password = password },
    Transport)
end

-- opts: timeout, fresh (see aliyun.iot.transport); the C Session reads only those.
function Transport:request(method, url, headers, body, opts)
  if self.closed then return nil, closed() end
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
  -- Requests libcurl refused to start (an option it rejects, such as an
  -- over-long URL): finished at once, as errors, with the next wait.
  local refused = {}
  return {
    start = function(id, req)
      local ok, why = pcall(m.add, m, id, req.method, req.url, req.headers, req.body, req)
      if not ok then
        local errors = require("aliyun.iot.errors")
        refused[#refused + 1] = { id = id, err = errors.new(errors.codes.TRANSPORT_ERROR,
          "libcurl refused the request: " .. tostring(why), { retryable = false, request_sent = false }) }
      end
    end,
    wait = function(seconds)
      if #refused > 0 then
        local out = refused
        refused = {}
        return out
      end
      local done = m:wait(seconds)
      for i = 1, #done do mark_unsent(done[i].err) end
      return done
    end,
    pending = function() return m:pending() + #refused end,
    close = function() m:close() end,
  }
end

--- Release the Session. Idempotent.
function Transport:close()
  self.closed = true
  self.session:close()
end

function Transport:__tostring()
  return "aliyun.iot.CurlTransport (" .. tostring(self.session) .. ")"
end

return curl
