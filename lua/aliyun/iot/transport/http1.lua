--- HTTP/1.1 messages over a socket with the cosocket API (send, receive,
-- settimeout): the request head, the status line and headers, the body by
-- chunked encoding, Content-Length or close. No nginx here: the resty
-- transport hands it the socket.
local errors = require("aliyun.iot.errors")

local codes = errors.codes
local concat, pairs, rawget, select, tonumber, tostring, type =
  table.concat, pairs, rawget, select, tonumber, tostring, type
local find, format, lower, match, sub = string.find, string.format, string.lower, string.match, string.sub
local floor = math.floor

local http1 = {}

local function fail(code, message, fields)
  return nil, errors.new(code, message, fields)
end

local function net_error(what, err, where)
  if err == "timeout" then
    return fail(codes.TIMEOUT, format("%s %s timed out", what, where))
  end
  return fail(codes.CONNECTION_FAILED, format("%s %s failed: %s", what, where, tostring(err)))
end

-- scheme, host, port, request target. No userinfo; IPv6 literals in [].
local function parse_url(url)
  local scheme, authority, rest = match(url, "^(https?)://([^/?#]+)(.*)$")
  if not scheme then return nil end
  local host, port = match(authority, "^%[([^%]]+)%]:?(%d*)$")
  if not host then host, port = match(authority, "^([^:@]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  if rest == "" or sub(rest, 1, 1) == "?" then rest = "/" .. rest end
  rest = match(rest, "^[^#]*")
  return scheme, host, port, rest
end

local USER_AGENT = format("User-Agent: aliyun-iot/%s (OpenResty cosocket; %s)\r\n",
  tostring(require("aliyun.iot.core").version), tostring(rawget(_G, "jit") and jit.version or _VERSION))

local TOKEN = "^[%w!#%$%%&'%*%+%.%^_`|~%-]+$"

-- The request head and body as a table of strings for sock:send.
local function build(method, host_header, target, headers, body)
  local out = { method, " ", target, " HTTP/1.1\r\n" }
  local has = {}
  for name, value in pairs(headers or {}) do
    if type(name) ~= "string" or not find(name, TOKEN) then
      return nil, format("invalid header name %q", tostring(name))
    end
    value = tostring(value)
    if find(value, "[\r\n]") then return nil, format("header %s contains CR or LF", name) end
    local l = lower(name)
    if l ~= "connection" and l ~= "content-length" and l ~= "transfer-encoding" then
      has[l] = true
      out[#out + 1] = name
      out[#out + 1] = ": "
      out[#out + 1] = value
      out[#out + 1] = "\r\n"
    end
  end
  if not has.host then out[#out + 1] = "Host: " .. host_header .. "\r\n" end
  if not has["user-agent"] then out[#out + 1] = USER_AGENT end
  out[#out + 1] = "Connection: keep-alive\r\n"
  if body ~= nil or method == "POST" or method == "PUT" then
    body = body or ""
    out[#out + 1] = "Content-Length: " .. #body .. "\r\n\r\n"
    out[#out + 1] = body
  else
    out[#out + 1] = "\r\n"
  end
  return out
end

-- A reader bound to one socket, with the call's overall deadline applied to
-- every read (cosocket timeouts are per operation; ours is per call, as curl's).
local function reader(sock, deadline, now)
  return function(pattern)
    local left = deadline - now()
    if left <= 0 then return nil, "timeout" end
    sock:settimeout(floor(left * 1000) + 1)
    return sock:receive(pattern)
  end
end

local function too_large(max)
  return errors.new(codes.RESPONSE_TOO_LARGE, format("response exceeds max_body_bytes (%d bytes)", max))
end

local function bad_response(message)
  return errors.new(codes.TRANSPORT_ERROR, "malformed HTTP response: " .. message, { retryable = false })
end

-- Status line and header block; skips interim 1xx answers. Returns
-- status, headers, version or nil, err, got_anything.
local function read_head(read, where)
  while true do
    local line, err = read("*l")
    if not line then return nil, select(2, net_error("reading the response from", err, where)), false end
    local minor, status = match(line, "^HTTP/1%.(%d) (%d%d%d)")
    if not status then return nil, bad_response("status line " .. format("%q", sub(line, 1, 80))), true end
    status = tonumber(status)
    local headers = {}
    while true do
      local h
      h, err = read("*l")
      if not h then return nil, select(2, net_error("reading the response headers from", err, where)), true end
      if h == "" then break end
      local name, value = match(h, "^([^:%s]+)%s*:%s*(.-)%s*$")
      if name then headers[lower(name)] = value end -- last one wins, as the libcurl session
    end
    if status >= 200 or status == 101 then return status, headers, tonumber(minor) end
  end
end

-- The body, by chunked encoding, Content-Length, or up to the close.
-- Returns body, reusable (the connection may go back to the pool) or nil, err.
local function read_body(read, method, status, headers, max, where)
  if method == "HEAD" or status == 204 or status == 304 or status < 200 then return "", true end
  local te = headers["transfer-encoding"]
  if te and find(lower(te), "chunked", 1, true) then
    local parts, total = {}, 0
    while true do
      local line, err = read("*l")
      if not line then return nil, select(2, net_error("reading the response body from", err, where)) end
      local size = tonumber(match(line, "^%s*(%x+)"), 16)
      if not size then return nil, bad_response("chunk size " .. format("%q", sub(line, 1, 40))) end
      if size == 0 then
        repeat -- trailers, up to the empty line
          line, err = read("*l")
          if not line then return nil, select(2, net_error("reading the response body from", err, where)) end
        until line == ""
        return concat(parts), true
      end
      total = total + size
      if total > max then return nil, too_large(max) end
      local data
      data, err = read(size)
      if not data then return nil, select(2, net_error("reading the response body from", err, where)) end
      parts[#parts + 1] = data
      data, err = read(2)
      if data ~= "\r\n" then
        if not data then return nil, select(2, net_error("reading the response body from", err, where)) end
        return nil, bad_response("chunk not followed by CRLF")
      end
    end
  end
  local cl = headers["content-length"]
  if cl then
    local n = tonumber(match(cl, "^%d+$"))
    if not n then return nil, bad_response("Content-Length " .. format("%q", cl)) end
    if n > max then return nil, too_large(max) end
    if n == 0 then return "", true end
    local data, err = read(n)
    if not data then return nil, select(2, net_error("reading the response body from", err, where)) end
    return data, true
  end
  -- No length: the body ends when the server closes the connection.
  local parts, total = {}, 0
  while true do
    local data, err, partial = read(65536)
    data = data or partial
    if data and data ~= "" then
      total = total + #data
      if total > max then return nil, too_large(max) end
      parts[#parts + 1] = data
    end
    if err == "closed" then return concat(parts), false end
    if err then return nil, select(2, net_error("reading the response body from", err, where)) end
  end
end

local function wants_close(headers, minor)
  local c = headers.connection and lower(headers.connection) or nil
  if c and find(c, "close", 1, true) then return true end
  return minor == 0 and not (c and find(c, "keep-alive", 1, true))
end


http1.net_error, http1.parse_url, http1.build = net_error, parse_url, build
http1.reader, http1.read_head, http1.read_body, http1.wants_close = reader, read_head, read_body, wants_close

return http1
