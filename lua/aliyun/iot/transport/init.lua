--- Transports, and what the rest of the library needs to know of the runtime.
-- A transport is any object with
--   :request(method, url, headers, body, opts) -> status, body, headers | nil, err
--   :close()
-- opts (which a simple transport may ignore): timeout (seconds, this
-- request's own) and fresh (send it on a new connection, never a reused one).
-- and, optionally, the capability to have several requests in flight:
--   :concurrent(n) -> engine (start, wait, pending, close: see aliyun.iot.schedule)
-- `curl` (the C core's libcurl, multi handle for concurrency) and `resty`
-- (OpenResty cosockets, ngx.thread for concurrency) offer it; any other
-- transport is driven one request after the other. `resty` is loaded only
-- when asked for or when running inside nginx, so plain Lua never touches ngx.
local type, rawget, pcall = type, rawget, pcall

local transport = {}

local KINDS = { curl = "aliyun.iot.transport.curl", resty = "aliyun.iot.transport.resty" }

local function in_nginx()
  local ngx = rawget(_G, "ngx")
  return ngx ~= nil and type(ngx.get_phase) == "function"
end

--- Pick a transport for iot.new options.
-- opts.transport: nil (automatic), "curl", "resty", or a ready object.
-- Returns transport, owned (true when the client must close it), or nil, message.
function transport.select(opts)
  local choice = opts.transport
  if choice ~= nil and type(choice) ~= "string" then return choice, false end
  if choice == nil then
    -- Inside nginx the resty transport itself decides per call, from
    -- ngx.get_phase(), whether cosockets are available or libcurl must do.
    choice = in_nginx() and "resty" or "curl"
  end
  local module = KINDS[choice]
  if not module then
    return nil, string.format("option transport must be \"curl\", \"resty\" or an object, got %q", choice)
  end
  local t, why = require(module).new(opts)
  if not t then return nil, why end
  return t, true
end

--- A sleep function for backoff and rate limiting: the resty transport's
-- (ngx.sleep where the phase can yield) inside nginx, the C core's elsewhere.
function transport.sleep_function()
  if in_nginx() then return require(KINDS.resty).sleep end
  return require("aliyun.iot.core").sleep
end

--- The rate limiter's default store: inside nginx with
-- `lua_shared_dict aliyun_iot_limiter` declared, that dict (shared by the
-- workers); else nil (the limiter's process store).
function transport.limiter_store()
  if in_nginx() then return require(KINDS.resty).limiter_store() end
  return nil
end

--- A client for the limiter's Redis store (aliyun.iot.limiter.redis):
-- lua-resty-redis over cosockets inside nginx, the C core's hiredis elsewhere.
function transport.redis_client(config)
  if in_nginx() then return require("aliyun.iot.transport.resty_redis").new(config) end
  return require("aliyun.iot.transport.hiredis").new(config)
end

local stderr = io.stderr

--- The library's logger, function(level, message) (level "warn", ...):
-- ngx.log inside nginx, standard error elsewhere.
function transport.logger()
  if in_nginx() then return require(KINDS.resty).log end
  return function(level, message) stderr:write("aliyun.iot: [", level, "] ", message, "\n") end
end

--- function(method, url, headers, body) -> status, body, headers | nil, err
-- over a transport of its own, made on first use, for side services: the ECS
-- metadata service and a credentials URI (reached directly: `opts` should say
-- proxy = ""), and STS (a form POST, through the API's proxy).
function transport.http_function(opts)
  local t
  return function(method, url, headers, body)
    if not t then t = transport.select(opts) end
    return t:request(method, url, headers, body)
  end
end

--- The engine of a transport that has no concurrency of its own: each
-- request is performed inside start(), and wait() hands it back.
function transport.sequential(t, sleep)
  local done = {}
  return {
    start = function(id, req)
      local status, body, headers = t:request(req.method, req.url, req.headers, req.body, req)
      if status == nil then
        done[#done + 1] = { id = id, err = body }
      else
        done[#done + 1] = { id = id, status = status, body = body, headers = headers or {} }
      end
    end,
    wait = function(seconds)
      if #done == 0 then
        if seconds > 0 then sleep(seconds) end
        return done
      end
      local out = done
      done = {}
      return out
    end,
    pending = function() return #done end,
    close = function() done = {} end,
  }
end

-- t.concurrent, also for a userdata transport whose metatable has no __index.
local function concurrent_of(t)
  local ok, f = pcall(function() return t.concurrent end)
  return ok and type(f) == "function" and f or nil
end

--- An engine over transport `t` with up to `n` requests in flight.
function transport.engine(t, n, sleep)
  local concurrent = n > 1 and concurrent_of(t)
  if concurrent then return concurrent(t, n, sleep) end
  return transport.sequential(t, sleep)
end

return transport
