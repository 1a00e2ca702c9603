-- Faults of the gateway that strike after authentication (the nonce is then
-- recorded) or after the action ran. gateway.lua calls them; the faults that
-- pre-empt every check (latency, reset_every, 5xx) stay in gateway.lua, the
-- listing faults live in ota_faults.lua. README.md, "Fault options".
--
-- "every N": request number n (since the config was set) with n % N == 0.
-- "once_every N": the first request for every Nth page (CurrentPage % N == 0;
-- CurrentPage 1 for requests without one; a QueryDevice NextToken counts as
-- the page it stands for), keyed by fault, action, JobId (ProductKey),
-- TaskStatus and first device name: which request is hit does not depend on
-- arrival order. Write faults count executed writes instead of requests.

local codec = require "codec"
local store = require "store"

local M = {}

M.WRITES = { CancelOTATaskByJob = true, ReupgradeOTATask = true }

local DEFAULT_REDIRECT_STATUS = 302
local DEFAULT_WRITE_TIMEOUT_MS = 15000

function M.every(n, count)
  return n > 0 and count % n == 0
end

local function page_of(ctx)
  local p = ctx.params
  if p and p.NextToken and (p.Action or ctx.headers["x-acs-action"]) == "QueryDevice" then
    return require("query_device").page_of(p)
  end
  return tonumber(p and p.CurrentPage or "1") or 1
end

-- The first request for every Nth page, for fault `name`.
function M.once_every(name, n, ctx)
  local p = ctx.params
  if n == 0 or not p then return false end
  local page = page_of(ctx)
  if page % n ~= 0 then return false end
  return store.first_time(table.concat({ name, tostring(p.Action or ctx.headers["x-acs-action"]),
    tostring(p.JobId or p.ProductKey), tostring(p.TaskStatus), tostring(p["DeviceNames.1"]), page }, "\0"))
end

local function hit(f, name, ctx)
  return M.every(f[name .. "_every"], ctx.count) or M.once_every(name, f[name .. "_once_every"], ctx)
end

local function reused_connection()
  return (tonumber(ngx.var.connection_requests) or 1) > 1
end

-- After steps 2-7 (signature valid, nonce recorded, not throttled), before the
-- action. Returns nil (go on) or a result for gateway.lua:
--   { reset = true, fault }                       close without an answer
--   { status, code, body, root, fault }           an answer instead of the action's
-- RFC 3986 percent-encoding (upper-case hex), for the echo fault's forms.
local function pct(v)
  return (v:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- The answer of the echo_secrets fault: the caller's secret and token sent
-- back in every field a server controls, in the forms a hostile or careless
-- server (or a proxy) would use, and terminal escape sequences in the text.
local function echo_secrets(acct)
  local secret, token = acct.access_key_secret, acct.security_token or acct.access_key_secret
  local lower = function(v) return (v:gsub("%%%x%x", string.lower)) end
  local plus = pct(token):gsub("%%20", "+")
  local message = "\27[2J\27[31mechoed: " .. token .. " / " .. lower(pct(token)) .. " / " .. plus
    .. " / " .. pct(pct(token)) .. " / cut " .. token:sub(2, 12) .. " / secret " .. secret:sub(3, 14)
    .. "\7\27]0;title\7"
  return { status = 400, code = "Echo.Secrets", fault = "echo_secrets", root = "Error",
           headers = { ["x-acs-request-id"] = "RID-" .. token },
           body = codec.object({ "RequestId", "HostId", "Code", "Message", "Recommend" },
             { RequestId = "RID-" .. token, HostId = lower(pct(secret)), Code = "Echo.Secrets",
               Message = message, Recommend = "https://example.test/?t=" .. pct(pct(token)) }) }
end

function M.after_auth(ctx, acct)
  local f = ctx.faults
  if f.echo_secrets > 0 and acct then return echo_secrets(acct) end
  if hit(f, "retry_after", ctx) then
    -- 503 with the wait a server asks for: x-acs-retry-after (ms) and/or Retry-After (s).
    local headers = {}
    if f.retry_after_ms > 0 then headers["x-acs-retry-after"] = tostring(f.retry_after_ms) end
    if f.retry_after_s > 0 then headers["Retry-After"] = tostring(f.retry_after_s) end
    return { status = 503, code = "ServiceUnavailable", fault = "retry_after", root = "Error", headers = headers,
             body = codec.object({ "RequestId", "HostId", "Code", "Message" },
               { RequestId = ctx.request_id, HostId = "iot.emulator", Code = "ServiceUnavailable",
                 Message = "The request has failed due to a temporary failure of the server." }) }
  end
  if hit(f, "reset_after_nonce", ctx) then
    return { reset = true, fault = "reset_after_nonce" }
  end
  if f.reset_reused_every > 0 and reused_connection() and M.every(f.reset_reused_every, ctx.count) then
    return { reset = true, fault = "reset_reused" }
  end
  if hit(f, "throttle_200", ctx) then
    -- A throttling answer with HTTP 200 and no Success field at all.
    return { status = 200, code = "Throttling.User", fault = "throttle_200", root = "Error",
             body = codec.object({ "RequestId", "Code", "Message" },
               { RequestId = ctx.request_id, Code = "Throttling.User",
                 Message = "Request was denied due to user flow control." }) }
  end
  if hit(f, "success_string", ctx) then
    -- An IoT error whose Success is the string "false", not the boolean.
    return { status = 200, code = "iot.system.SystemException", fault = "success_string", root = "Error",
             body = codec.object({ "RequestId", "Success", "Code", "ErrorMessage" },
               { RequestId = ctx.request_id, Success = "false", Code = "iot.system.SystemException",
                 ErrorMessage = "系统异常" }) }
  end
end

local BAD_GATEWAY = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n" ..
                    "<center><h1>502 Bad Gateway</h1></center>\r\n</body>\r\n</html>\r\n"

-- After the action ran (result = { status = 200, code, body, root }). Changes
-- result in place:
--   result.reset = true          close without an answer
--   result.raw, content_type     send this text instead of the encoded body
--   result.sleep_ms              answer (truly) only after this long
--   result.headers               extra response headers
--   result.early_hints           send "103 Early Hints" before the true answer
--   result.status, result.fault
function M.after_action(ctx, action_name, result)
  local f = ctx.faults
  if M.WRITES[action_name] then
    local n = store.next_write_number()
    if M.every(f.write_reset_every, n) then
      result.reset, result.fault = true, "write_reset"
      return
    elseif M.every(f.write_502_every, n) then
      result.status, result.fault = 502, "write_502"
      result.raw, result.content_type = BAD_GATEWAY, "text/html"
      return
    elseif M.every(f.write_timeout_every, n) then
      result.sleep_ms = f.write_timeout_ms > 0 and f.write_timeout_ms or DEFAULT_WRITE_TIMEOUT_MS
      result.fault = "write_timeout"
      return
    end
  end
  if hit(f, "redirect", ctx) then
    -- A redirect whose body is the real answer: a client must not take it.
    result.status = f.redirect_status > 0 and f.redirect_status or DEFAULT_REDIRECT_STATUS
    local region = ctx.params and ctx.params.RegionId
    if not (region and region:match("^[a-z0-9%-]+$")) then region = "cn-shanghai" end
    result.headers = { Location = "https://iot-moved." .. region .. ".aliyuncs.com/" }
    result.fault = "redirect"
  elseif hit(f, "informational", ctx) then
    -- A 1xx status as the final answer, the true body after it: to HTTP, the
    -- body is where the next status line should be.
    result.status, result.fault = 103, "informational"
  elseif hit(f, "early_hints", ctx) then
    -- A valid interim "103 Early Hints" before the true answer.
    result.early_hints, result.fault = true, "early_hints"
  elseif hit(f, "success_missing", ctx) and type(result.body) == "table" and result.body.values then
    -- The true answer without its Success field (Data and counts present).
    result.body.values.Success = nil
    result.fault = "success_missing"
  end
end

return M
