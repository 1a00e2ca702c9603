--- Transport selection. A transport is any object with
--   :request(method, url, headers, body) -> status, body, headers | nil, err
--   :close()
-- `curl` is the C core's libcurl Session; `resty` (OpenResty cosockets) is
-- loaded only when asked for or when running inside nginx, so plain Lua never
-- touches ngx.
local transport = {}

local KINDS = { curl = "aliyun.iot.transport.curl", resty = "aliyun.iot.transport.resty" }

--- Pick a transport for iot.new options.
-- opts.transport: nil (automatic), "curl", "resty", or a ready object.
-- Returns transport, owned (true when the client must close it), or nil, message.
function transport.select(opts)
  local choice = opts.transport
  if choice ~= nil and type(choice) ~= "string" then return choice, false end
  if choice == nil then
    -- Inside nginx the resty transport itself decides per call, from
    -- ngx.get_phase(), whether cosockets are available or libcurl must do.
    local ngx = rawget(_G, "ngx")
    choice = (ngx and type(ngx.get_phase) == "function") and "resty" or "curl"
  end
  local module = KINDS[choice]
  if not module then
    return nil, string.format("option transport must be \"curl\", \"resty\" or an object, got %q", choice)
  end
  return require(module).new(opts), true
end

-- Phases where ngx.sleep cannot yield (lua-nginx-module's documentation).
local NO_YIELD_PHASES = {
  init = true, init_worker = true, set = true, header_filter = true, body_filter = true, log = true,
  balancer = true, exit_worker = true,
}

--- A sleep function for backoff and rate limiting: ngx.sleep where it can
-- yield (so the nginx worker keeps serving), the C core's sleep elsewhere.
function transport.sleep_function()
  local core = require("aliyun.iot.core")
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.sleep and ngx.get_phase) then return core.sleep end
  return function(seconds)
    if NO_YIELD_PHASES[ngx.get_phase()] then return core.sleep(seconds) end
    return ngx.sleep(seconds)
  end
end

return transport
