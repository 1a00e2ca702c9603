-- libcurl Session against a throwaway nginx (temp prefix, random port, stopped by PID).
local core = require "aliyun.iot.core"
local math_type = math.type or require("helpers").math_type -- 5.1/5.2 have no math.type
local socket = require "socket"

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

local function write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("*a")
  f:close()
  return d
end

local BIG = {}
for i = 1, 20000 do BIG[#BIG + 1] = ("line %05d of a compressible text file\n"):format(i) end
BIG = table.concat(BIG) -- ~820 KB

local CONF = [[
daemon on;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  default_type text/plain;
  keepalive_timeout 60;
  server {
    listen 127.0.0.1:${port};
    location = /hello {
      add_header X-Test "a b";
      add_header X-Dup first;
      add_header X-Dup second;
      return 200 "hello";
    }
    location = /echo {
      return 200 "$request_method|$http_x_custom|$http_x_empty|$http_user_agent|$content_length|$http_expect";
    }
    location = /error { return 404 '{"Code":"InvalidAccessKeyId.NotFound"}'; }
    location = /accept-encoding { return 200 "[$http_accept_encoding]"; }
    location /gz/ {
      alias ${dir}/files/;
      gzip on; gzip_min_length 1; gzip_types text/plain;
    }
    location /plain/ { alias ${dir}/files/; gzip off; }
  }
}
]]

local server = {}

local function start_nginx()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir .. "/files"))
  local port = free_port()
  write_file(dir .. "/nginx.conf", (CONF:gsub("%${(%w+)}", { dir = dir, port = port })))
  write_file(dir .. "/files/big.txt", BIG)
  assert(os.execute("nginx -q -p " .. dir .. " -c " .. dir .. "/nginx.conf"),
    read_file(dir .. "/error.log"))
  local pid
  for _ = 1, 100 do
    pid = tonumber(read_file(dir .. "/nginx.pid") or "")
    local c = socket.tcp()
    c:settimeout(0.1)
    local ok = pid and c:connect("127.0.0.1", port)
    c:close()
    if ok then break end
    socket.sleep(0.05)
  end
  assert(pid, "nginx did not start")
  server.dir, server.port, server.pid = dir, port, pid
  server.base = "http://127.0.0.1:" .. port
end

local function stop_nginx()
  if server.pid then
    os.execute("kill " .. server.pid)
    for _ = 1, 50 do -- wait for the master to exit before removing its prefix
      if not os.execute("kill -0 " .. server.pid .. " 2>/dev/null") then break end
      socket.sleep(0.05)
    end
  end
  if server.dir then os.execute("rm -rf " .. server.dir) end
  server = {}
end

describe("core.new_session", function()
  it("validates option types", function()
    assert.has_error(function() core.new_session("x") end)
    assert.has_error(function() core.new_session { timeout = "10" } end)
    assert.has_error(function() core.new_session { timeout = -1 } end)
    assert.has_error(function() core.new_session { connect_timeout = {} } end)
    assert.has_error(function() core.new_session { verify = "yes" } end)
    assert.has_error(function() core.new_session { max_body_bytes = 1.5 } end)
    assert.has_error(function() core.new_session { max_body_bytes = 0 } end)
    assert.has_error(function() core.new_session { cafile = 1 } end)
    assert.has_error(function() core.new_session { user_agent_suffix = "a\r\nX-Evil: 1" } end)
    assert.has_error(function() core.new_session { gzip = "no" } end)
    assert.has_error(function() core.new_multi { gzip = 0 } end)
    local s = core.new_session { timeout = 1.5, connect_timeout = 1, verify = false,
      cafile = "/nonexistent.pem", max_body_bytes = 1024, user_agent_suffix = "app/1" }
    s:close()
  end)

  it("closes idempotently, and refuses requests once closed", function()
    local s = core.new_session()
    assert.truthy(tostring(s):match("^aliyun%.iot%.Session %(0x%x+%)$") or
      tostring(s):match("^aliyun%.iot%.Session %(%x+%)$"), tostring(s))
    s:close()
    s:close()
    assert.equal("aliyun.iot.Session (closed)", tostring(s))
    local ok, err = pcall(s.request, s, "GET", "http://127.0.0.1:1/")
    assert.is_false(ok)
    assert.truthy(err:find("attempt to use a closed session", 1, true))
    assert.has_error(function() s:info() end)
  end)

  if _VERSION == "Lua 5.4" then
    it("closes a to-be-closed variable", function()
      local chunk = assert(load([[
        local core = ...
        local keep
        do
          local s <close> = core.new_session()
          keep = s
        end
        return keep
      ]]))
      assert.equal("aliyun.iot.Session (closed)", tostring(chunk(core)))
    end)
  end
end)

describe("session:request without a server", function()
  it("maps connection refused to SDK.ConnectionFailed", function()
    local s = core.new_session { connect_timeout = 2 }
    local status, err = s:request("GET", "http://127.0.0.1:" .. free_port() .. "/?SecurityToken=SEKRIT")
    s:close()
    assert.is_nil(status)
    assert.is_true(core.is_error(err))
    assert.equal("SDK.ConnectionFailed", err.code)
    assert.is_true(err.retryable)
    assert.falsy(err.message:find("SEKRIT", 1, true))
  end)

  it("maps a silent server to SDK.Timeout", function()
    -- A listening socket that never accepts: the kernel completes the handshake, then nothing.
    local l = assert(socket.bind("127.0.0.1", 0))
    local _, port = l:getsockname()
    local s = core.new_session { timeout = 0.3 }
    local t0 = socket.gettime()
    local status, err = s:request("GET", "http://127.0.0.1:" .. port .. "/")
    local elapsed = socket.gettime() - t0
    s:close()
    l:close()
    assert.is_nil(status)
    assert.equal("SDK.Timeout", err.code)
    assert.is_true(err.retryable)
    assert.truthy(elapsed < 2)
  end)

  it("refuses protocols other than http and https", function()
    local s = core.new_session()
    local status, err = s:request("GET", "file:///etc/passwd")
    s:close()
    assert.is_nil(status)
    assert.equal("SDK.TransportError", err.code)
  end)

  it("rejects bad arguments", function()
    local s = core.new_session()
    assert.has_error(function() s:request() end)
    assert.has_error(function() s:request("GET") end)
    assert.has_error(function() s:request("GET", "http://x/", "headers") end)
    assert.has_error(function() s:request("GET", "http://x/", { ["X-A"] = 1 }) end)
    assert.has_error(function() s:request("GET", "http://x/", { ["X-A"] = "a\r\nX-B: b" }) end)
    assert.has_error(function() s:request("GET", "http://x/", { ["Bad Name"] = "v" }) end)
    assert.has_error(function() s:request("GE T", "http://x/") end)
    assert.has_error(function() s:request("POST", "http://x/", nil, {}) end)
    s:close()
  end)
end)

describe("session:request against nginx", function()
  setup(start_nginx)
  teardown(stop_nginx)

  it("returns status, body and lowercase headers, reusing the connection", function()
    local s = core.new_session()
    local status, body, headers = s:request("GET", server.base .. "/hello")
    assert.equal(200, status)
    assert.equal("integer", math_type(status))
    assert.equal("hello", body)
    assert.equal("a b", headers["x-test"])
    assert.equal("second", headers["x-dup"]) -- last one wins
    assert.equal("text/plain", headers["content-type"])
    assert.equal("5", headers["content-length"])
    assert.equal(1, s:info().num_connects)

    status, body = s:request("GET", server.base .. "/hello")
    assert.equal(200, status)
    assert.equal("hello", body)
    assert.equal(0, s:info().num_connects) -- kept alive
    s:close()
  end)

  it("returns HTTP error responses as responses", function()
    local s = core.new_session()
    local status, body = s:request("GET", server.base .. "/error")
    s:close()
    assert.equal(404, status)
    local _, err = core.decode(body, status)
    assert.equal("InvalidAccessKeyId.NotFound", err.code)
  end)

  it("sends method, headers, body length and the User-Agent", function()
    local s = core.new_session { user_agent_suffix = "app/1" }
    local _
    local status, body = s:request("GET", server.base .. "/echo", { ["X-Custom"] = "v1", ["X-Empty"] = "" })
    assert.equal(200, status)
    local method, custom, empty, ua, len, expect = body:match("^(.-)|(.-)|(.-)|(.-)|(.-)|(.-)$")
    assert.equal("", expect)
    assert.equal("GET", method)
    assert.equal("v1", custom)
    assert.equal("", empty)
    assert.equal(core.user_agent .. " app/1", ua)
    assert.truthy(ua:find("^aliyun%-iot/" .. core.version:gsub("%.", "%%.") .. " libcurl/"), ua)
    assert.equal("", len)

    local big = string.rep("x", 5000)
    status, body = s:request("POST", server.base .. "/echo", { ["Content-Type"] =
      "application/x-www-form-urlencoded" }, big)
    method, custom, _, _, len, expect = body:match("^(.-)|(.-)|(.-)|(.-)|(.-)|(.-)$")
    assert.equal(200, status)
    assert.equal("POST", method)
    assert.equal("", custom) -- headers do not leak from the previous request
    assert.equal("5000", len)
    assert.equal("", expect) -- no 100-continue round trip

    _, body = s:request("GET", server.base .. "/echo")
    assert.equal("GET", body:match("^(.-)|"))
    _, body = s:request("PUT", server.base .. "/echo", nil, "abc")
    assert.equal("PUT", body:match("^(.-)|"))
    status, body = s:request("HEAD", server.base .. "/echo")
    assert.equal(200, status)
    assert.equal("", body)
    _, body = s:request("GET", server.base .. "/echo")
    assert.equal("GET", body:match("^(.-)|"))
    s:close()
  end)

  it("decodes gzip bodies", function()
    local s = core.new_session()
    local status, body, headers = s:request("GET", server.base .. "/gz/big.txt")
    s:close()
    assert.equal(200, status)
    assert.equal("gzip", headers["content-encoding"])
    assert.equal(#BIG, #body)
    assert.equal(BIG, body)
  end)

  it("asks for gzip unless gzip = false, in a Session and a Multi", function()
    local function accept(client)
      if client.add then
        client:add(1, "GET", server.base .. "/accept-encoding")
        local done = {}
        while #done == 0 do done = client:wait(2) end
        assert.equal(200, done[1].status)
        return done[1].body
      end
      local status, body = client:request("GET", server.base .. "/accept-encoding")
      assert.equal(200, status)
      return body
    end
    for _, new in ipairs({ core.new_session, core.new_multi }) do
      local on, default, off = new { gzip = true }, new(), new { gzip = false }
      assert.truthy(accept(on):find("gzip", 1, true), accept(on))
      assert.truthy(accept(default):find("gzip", 1, true)) -- the default, as before
      assert.equal("[]", accept(off)) -- no Accept-Encoding header at all
      on:close()
      default:close()
      off:close()
    end
    -- Without it the server sends the identity body, and it arrives as sent.
    local s = core.new_session { gzip = false }
    local status, body, headers = s:request("GET", server.base .. "/gz/big.txt")
    s:close()
    assert.equal(200, status)
    assert.is_nil(headers["content-encoding"])
    assert.equal(tostring(#BIG), headers["content-length"])
    assert.equal(BIG, body)
  end)

  it("caps the body size", function()
    local s = core.new_session { max_body_bytes = 100000 }
    -- plain: Content-Length is known up front
    local status, err = s:request("GET", server.base .. "/plain/big.txt")
    assert.is_nil(status)
    assert.equal("SDK.ResponseTooLarge", err.code)
    assert.truthy(err.message:find("100000", 1, true), err.message)
    assert.is_false(err.retryable)
    -- gzip: only the decoded size tells, in the write callback
    status, err = s:request("GET", server.base .. "/gz/big.txt")
    assert.is_nil(status)
    assert.equal("SDK.ResponseTooLarge", err.code)
    -- the session stays usable
    local body
    status, body = s:request("GET", server.base .. "/hello")
    assert.equal(200, status)
    assert.equal("hello", body)
    s:close()
  end)

  it("survives many requests and garbage collection", function()
    for _ = 1, 3 do
      local s = core.new_session()
      for _ = 1, 20 do
        assert.equal(200, (s:request("GET", server.base .. "/hello")))
      end
      assert.equal(0, s:info().num_connects)
    end
    collectgarbage()
    collectgarbage()
  end)
end)
