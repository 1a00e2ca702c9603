--- The libcurl transport: one C Session (a reused easy handle) per client.
local core = require("aliyun.iot.core")

local curl = {}

function curl.new(opts)
  return core.new_session{
    timeout = opts.timeout or 10,
    connect_timeout = opts.connect_timeout or 5,
    cafile = opts.cafile,
    verify = opts.ssl_verify,
    max_body_bytes = opts.max_body_bytes,
  }
end

return curl
