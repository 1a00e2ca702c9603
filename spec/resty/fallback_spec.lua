-- The OpenResty transport outside nginx: no cosockets anywhere, so every call goes
-- through the libcurl fallback (or is refused when the fallback is off). Fast and
-- self-contained; the nginx tests proper are spec/resty/run (scripts/resty-suite).
local helpers = require("helpers")
local iot = require("aliyun.iot")
local resty = require("aliyun.iot.transport.resty")

describe("transport.resty outside nginx", function()
  local emu

  setup(function() emu = helpers.start_emulator() end)
  teardown(function() if emu then emu:stop() end end)

  it("sees no cosockets", function()
    assert.is_false(resty.cosockets_available())
  end)

  it("falls back to libcurl, created on the first call", function()
    local t = resty.new{ timeout = 5 }
    assert.is_nil(t.curl_session)
    local status, body = t:request("GET", emu.url .. "/__emulator/health")
    assert.are.equal(200, status)
    assert.are.equal("ok", body)
    assert.are.equal("curl", t.last)
    assert.are.same({ cosocket = 0, curl = 1 }, t.counts)
    t:close()
    t:close() -- idempotent
    local none, err = t:request("GET", emu.url .. "/__emulator/health")
    assert.is_nil(none)
    helpers.assert_error(err, "SDK.ClientClosed")
  end)

  it("refuses with SDK.TransportError when the fallback is off", function()
    local t = resty.new{ fallback = false }
    local status, err = t:request("GET", emu.url .. "/__emulator/health")
    assert.is_nil(status)
    helpers.assert_error(err, "SDK.TransportError")
    assert.is_false(err.retryable)
    assert.truthy(err.message:find("fallback is off", 1, true))
  end)

  it("serves a client asked for transport = \"resty\"", function()
    local c = helpers.client(emu, { transport = "resty" })
    local page = assert(c:ListOTATaskByJob{ JobId = "job-30", PageSize = 10 })
    assert.are.equal(30, page.Total)
    local n = 0
    for _ in c:tasks{ JobId = "job-30", PageSize = 10 } do n = n + 1 end
    assert.are.equal(30, n)
    c:close()
  end)

  it("has no shared limiter store without ngx.shared", function()
    local store, err = resty.limiter_store()
    assert.is_nil(store)
    assert.truthy(err:find("lua_shared_dict aliyun_iot_limiter", 1, true))
    assert.is_table(iot) -- the limiter's default store stays the process one
  end)
end)
