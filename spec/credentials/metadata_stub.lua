-- A loopback stand-in for the ECS instance metadata service (100.100.100.200), for
-- spec/credentials_spec.lua. Run with lua5.4 + luasocket:
--   lua5.4 spec/credentials/metadata_stub.lua <portfile>
-- It binds a free 127.0.0.1 port, writes "<port>\n" to <portfile>, then serves one
-- connection at a time (Connection: close) until killed, or until it has been idle
-- for 60 s, so a crashed test run cannot leave it behind for long.
--
-- Metadata API (as the real service):
--   PUT /latest/api/token   needs X-aliyun-ecs-metadata-token-ttl-seconds; body = token
--   GET /latest/meta-data/ram/security-credentials/        -> the role name
--   GET /latest/meta-data/ram/security-credentials/<role>  -> credentials JSON
--   Both GETs need X-aliyun-ecs-metadata-token with the issued token, else 401.
-- Each credentials GET issues a new numbered set: AccessKeyId STS.stubkey<n>,
-- AccessKeySecret stub-secret-<n>-..., SecurityToken stub-token-<n>-...
--
-- Control API (for the test):
--   GET  /__stub/log            -> JSON array of { method, path, ttl, token_ok }
--   POST /__stub/reset          clear the log, restore the defaults, next credentials #1
--   POST /__stub/config?k=v&..  role=<name>  expiration=<ISO 8601>
--                               token_status=<n>  creds_status=<n>  (force an HTTP status)
--                               body=bad_json|failed  (break the credentials response)
local socket = require("socket")
local cjson = require("cjson")

local portfile = assert(arg[1], "usage: metadata_stub.lua <portfile>")
local IDLE_LIMIT = 60

local TOKEN = "stub-metadata-token-5d1e"
local DEFAULTS = { role = "iot-ota-role", expiration = "2030-01-01T01:00:00Z" }

local config, log, issued

local function reset()
  config = {}
  for k, v in pairs(DEFAULTS) do config[k] = v end
  log, issued = {}, 0
end
reset()

local function respond(client, status, body, content_type)
  local reason = ({ [200] = "OK", [400] = "Bad Request", [401] = "Unauthorized", [404] = "Not Found",
                    [500] = "Internal Server Error", [503] = "Service Unavailable" })[status] or "Status"
  client:send(string.format("HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
    status, reason, content_type or "text/plain", #body, body))
end

local function decode_query(q)
  local t = {}
  for k, v in (q or ""):gmatch("([^&=]+)=([^&]*)") do
    t[k] = v:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
  end
  return t
end

local function credentials_body()
  issued = issued + 1
  if config.body == "bad_json" then return "{\"Code\": \"Success\", \"AccessKeyId\": " end
  return cjson.encode({
    Code = config.body == "failed" and "Failed" or "Success",
    AccessKeyId = string.format("STS.stubkey%04d", issued),
    AccessKeySecret = string.format("stub-secret-%d-Zx81Qw", issued),
    SecurityToken = string.format("stub-token-%d-CAIS9QJ1q6Ft5B2yfSjIr5bkKdXS", issued),
    Expiration = config.expiration,
    LastUpdated = "2030-01-01T00:00:00Z",
  })
end

local function handle(client)
  client:settimeout(2)
  local line = client:receive("*l")
  if not line then return end
  local method, target = line:match("^(%u+) (%S+) HTTP/1%.%d$")
  if not method then return respond(client, 400, "bad request line") end
  local headers = {}
  while true do
    local h = client:receive("*l")
    if not h or h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    if name then headers[name:lower()] = value end
  end
  local length = tonumber(headers["content-length"] or 0) or 0
  if length > 0 then client:receive(length) end
  local path, query = target:match("^([^?]*)%??(.*)$")

  if path:sub(1, 8) == "/__stub/" then
    if path == "/__stub/log" then return respond(client, 200, cjson.encode(log), "application/json") end
    if path == "/__stub/reset" then reset() return respond(client, 200, "ok") end
    if path == "/__stub/config" then
      for k, v in pairs(decode_query(query)) do config[k] = v end
      return respond(client, 200, "ok")
    end
    return respond(client, 404, "no such control")
  end

  local entry = {
    method = method, path = path,
    ttl = headers["x-aliyun-ecs-metadata-token-ttl-seconds"] or cjson.null,
    token_ok = headers["x-aliyun-ecs-metadata-token"] == TOKEN,
  }
  log[#log + 1] = entry

  if path == "/latest/api/token" then
    if method ~= "PUT" then return respond(client, 404, "Not Found") end
    if config.token_status then return respond(client, tonumber(config.token_status), "token refused") end
    if not headers["x-aliyun-ecs-metadata-token-ttl-seconds"] then return respond(client, 400, "ttl missing") end
    return respond(client, 200, TOKEN)
  end
  local prefix = "/latest/meta-data/ram/security-credentials/"
  if path:sub(1, #prefix) == prefix and method == "GET" then
    if not entry.token_ok then return respond(client, 401, "Unauthorized") end
    local role = path:sub(#prefix + 1)
    if role == "" then return respond(client, 200, config.role) end
    if config.creds_status then return respond(client, tonumber(config.creds_status), "metadata failure") end
    if role ~= config.role then return respond(client, 404, "Not Found") end
    return respond(client, 200, credentials_body(), "text/plain")
  end
  return respond(client, 404, "Not Found")
end

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local f = assert(io.open(portfile, "w"))
f:write(port, "\n")
f:close()

server:settimeout(1)
local last = socket.gettime()
while socket.gettime() - last < IDLE_LIMIT do
  local client = server:accept()
  if client then
    local ok, err = pcall(handle, client)
    if not ok then io.stderr:write("metadata stub: ", tostring(err), "\n") end
    client:close()
    last = socket.gettime()
  end
end
server:close()
