--- The libcurl transport: one C Session (a reused easy handle) per client.
local core = require("aliyun.iot.core")

local curl = {}

-- Proxies as the official SDKs take them: the proxy option, else HTTPS_PROXY
-- or HTTP_PROXY by the endpoint's scheme (upper or lower case; libcurl alone
-- ignores upper-case HTTP_PROXY), and NO_PROXY. proxy = "" turns proxies off.
local function proxy_settings(opts, getenv)
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

--- The C core's transfer options for iot.new options (a Session's, and the
-- concurrent pager's Multi, which adds `size`).
function curl.options(opts)
  local proxy, noproxy = proxy_settings(opts, os.getenv)
  return {
    timeout = opts.timeout or 10,
    connect_timeout = opts.connect_timeout or 5,
    cafile = opts.cafile,
    verify = opts.ssl_verify,
    max_body_bytes = opts.max_body_bytes,
    proxy = proxy,
    noproxy = noproxy,
  }
end

function curl.new(opts)
  return core.new_session(curl.options(opts))
end

return curl
