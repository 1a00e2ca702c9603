--- A minimal Chrome DevTools Protocol client (Lua 5.4, LuaSocket, lua-cjson): enough
-- to drive one headless Chromium page from spec/dashboard/browser.lua. It speaks
-- just the WebSocket (RFC 6455) a local DevTools endpoint needs: one text message
-- per command, masked as a client must, answers reassembled from fragments.
--
--   local cdp = require("cdp")
--   local page = cdp.open_page(9222)                 -- a new tab of the browser on that port
--   page:call("Page.navigate", { url = "http://127.0.0.1:8080/" })
--   local title = page:eval("document.title")        -- a JSON-able value, by value
local socket = require("socket")
local cjson = require("cjson.safe")

local char, byte, format = string.char, string.byte, string.format
local concat = table.concat

local cdp = {}

local Page = {}
Page.__index = Page

-- One request to the DevTools HTTP endpoint (which keeps the connection open:
-- the body is read by its Content-Length).
local function http_get(port, path, method)
  local sock = assert(socket.connect("127.0.0.1", port))
  sock:settimeout(10)
  assert(sock:send(format("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n\r\n", method or "GET", path, port)))
  local length = 0
  local line = sock:receive("*l")
  while line and line ~= "" do
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
    line = sock:receive("*l")
  end
  local body = length > 0 and sock:receive(length) or ""
  sock:close()
  return body
end

local function receive_exactly(sock, n)
  local data, err, partial = sock:receive(n)
  if not data then error("DevTools connection: " .. tostring(err) .. " after " .. #(partial or "") .. " bytes", 0) end
  return data
end

local function send_frame(sock, opcode, payload)
  local n = #payload
  local head
  if n < 126 then
    head = char(0x80 | opcode, 0x80 | n)
  elseif n < 65536 then
    head = char(0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff)
  else
    local b = {}
    for i = 7, 0, -1 do b[#b + 1] = char((n >> (8 * i)) & 0xff) end
    head = char(0x80 | opcode, 0x80 | 127) .. concat(b)
  end
  local mask = { math.random(0, 255), math.random(0, 255), math.random(0, 255), math.random(0, 255) }
  local out = {}
  for i = 1, n do out[i] = char(byte(payload, i) ~ mask[(i - 1) % 4 + 1]) end
  assert(sock:send(head .. char(mask[1], mask[2], mask[3], mask[4]) .. concat(out)))
end

-- One message (text), answering pings and reassembling fragments.
local function receive_message(sock)
  local parts = {}
  while true do
    local h = receive_exactly(sock, 2)
    local b1, b2 = byte(h, 1, 2)
    local fin, opcode, n = b1 & 0x80 ~= 0, b1 & 0x0f, b2 & 0x7f
    if n == 126 then
      local e = receive_exactly(sock, 2)
      n = (byte(e, 1) << 8) | byte(e, 2)
    elseif n == 127 then
      local e = receive_exactly(sock, 8)
      n = 0
      for i = 1, 8 do n = (n << 8) | byte(e, i) end
    end
    local mask
    if b2 & 0x80 ~= 0 then mask = { byte(receive_exactly(sock, 4), 1, 4) } end
    local payload = n > 0 and receive_exactly(sock, n) or ""
    if mask then
      local out = {}
      for i = 1, n do out[i] = char(byte(payload, i) ~ mask[(i - 1) % 4 + 1]) end
      payload = concat(out)
    end
    if opcode == 0x8 then error("DevTools connection closed by the browser", 0) end
    if opcode == 0x9 then
      send_frame(sock, 0xA, payload)
    elseif opcode == 0x1 or opcode == 0x0 then
      parts[#parts + 1] = payload
      if fin then return concat(parts) end
    end
  end
end

--- Connect to a DevTools WebSocket URL (ws://127.0.0.1:PORT/devtools/page/ID).
function cdp.connect(url)
  local host, port, path = url:match("^ws://([^:/]+):(%d+)(/.*)$")
  assert(host, "not a DevTools URL: " .. tostring(url))
  local sock = assert(socket.connect(host, tonumber(port)))
  sock:settimeout(60)
  assert(sock:send(format("GET %s HTTP/1.1\r\nHost: %s:%s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    .. "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n", path, host, port,
    "ZGFzaGJvYXJkLXNwZWMtMQ==")))
  local status = assert(sock:receive("*l"))
  assert(status:match("^HTTP/1%.1 101"), "WebSocket upgrade refused: " .. status)
  repeat local line = assert(sock:receive("*l")) until line == ""
  return setmetatable({ sock = sock, id = 0, events = {} }, Page)
end

--- A new tab of the browser whose DevTools listen on `port`.
function cdp.open_page(port)
  local body = http_get(port, "/json/new?about:blank", "PUT")
  local target = cjson.decode(body or "")
  assert(target and target.webSocketDebuggerUrl, "cannot open a tab: " .. tostring(body))
  local page = cdp.connect(target.webSocketDebuggerUrl)
  page.target_id, page.port = target.id, port
  return page
end

--- Send a command and return its result; raises with the browser's error.
function Page:call(method, params)
  self.id = self.id + 1
  local id = self.id
  send_frame(self.sock, 0x1, assert(cjson.encode({ id = id, method = method, params = params or {} })))
  while true do
    local msg = cjson.decode(receive_message(self.sock))
    if msg and msg.id == id then
      if msg.error then error(method .. ": " .. tostring(msg.error.message), 0) end
      return msg.result
    elseif msg and msg.method then
      self.events[#self.events + 1] = msg
    end
  end
end

--- The value of a JavaScript expression in the page (promises awaited).
-- Raises with the exception's text when it throws.
function Page:eval(expression)
  local r = self:call("Runtime.evaluate", { expression = expression, returnByValue = true, awaitPromise = true })
  if r.exceptionDetails then
    local ex = r.exceptionDetails.exception
    error("JavaScript: " .. tostring(ex and ex.description or r.exceptionDetails.text), 0)
  end
  local v = r.result and r.result.value
  if v == cjson.null then return nil end
  return v
end

--- Poll `expression` until it is truthy or `seconds` pass; returns its last value.
function Page:wait_for(expression, seconds)
  local deadline = socket.gettime() + (seconds or 10)
  local v
  repeat
    local ok, value = pcall(self.eval, self, expression)
    v = ok and value or nil
    if v then return v end
    socket.sleep(0.1)
  until socket.gettime() > deadline
  return v
end

--- Load `url` and wait for its load event (up to `seconds`).
function Page:navigate(url, seconds)
  self:call("Page.navigate", { url = url })
  return self:wait_for("document.readyState === 'complete' && location.href === " .. cjson.encode(url), seconds)
end

--- Close the tab.
function Page:close()
  pcall(http_get, self.port, "/json/close/" .. self.target_id)
  self.sock:close()
end

return cdp
