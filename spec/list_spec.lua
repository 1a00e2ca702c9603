-- client:ListOTATaskByJob against the emulator over real HTTP: one page at a
-- time, the request the gateway saw, and every class of failure surfacing as
-- a structured error with its code and RequestId.
local helpers = require("helpers")
local jobs = helpers.jobs
local math_type = helpers.math_type

describe("client:ListOTATaskByJob", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  it("returns a page of task tables with the API's field names", function()
    local page = assert(client:ListOTATaskByJob{ JobId = "job-2500", PageSize = 100, CurrentPage = 3 })
    assert.are.equal(2500, page.Total)
    assert.are.equal(100, page.PageSize)
    assert.are.equal(3, page.CurrentPage)
    assert.are.equal(25, page.PageCount)
    assert.are.equal("integer", math_type(page.Total))
    assert.is_string(page.RequestId)
    assert.are.equal(100, #page.tasks)
    for k, task in ipairs(page.tasks) do
      assert.are.same(jobs.task("job-2500", 200 + k), task)
    end
    local first = page.tasks[1]
    for _, field in ipairs({ "TaskId", "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion",
                             "JobId", "IotId", "ProductKey", "FirmwareId", "UtcCreate", "UtcModified" }) do
      assert.is_string(first[field], field)
    end
  end)

  it("sends a V1 request the strict gateway accepts, with the common parameters", function()
    local c = helpers.client(emu, { iot_instance_id = "iot-emu-instance", signature_version = "v1" })
    assert(c:ListOTATaskByJob{ JobId = "job-10" })
    c:close()
    local log = emu:log()
    assert.are.equal(1, #log)
    local entry = log[1]
    assert.are.equal("OK", entry.code)
    assert.are.equal("v1", entry.signature_version)
    assert.are.equal("GET", entry.method)
    assert.are.equal("ListOTATaskByJob", entry.action)
    assert.are.equal("2018-01-20", entry.params.Version)
    assert.are.equal("JSON", entry.params.Format)
    assert.are.equal("cn-shanghai", entry.params.RegionId)
    assert.are.equal("iot-emu-instance", entry.params.IotInstanceId)
    assert.are.equal("HMAC-SHA1", entry.params.SignatureMethod)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", entry.params.Timestamp)
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", entry.params.SignatureNonce)
  end)

  it("sends a V3 request as the official Node SDK does: POST, parameters in the query", function()
    local c = helpers.client(emu, { iot_instance_id = "iot-emu-instance" })
    assert(c:ListOTATaskByJob{ JobId = "job-10", PageSize = 5 })
    c:close()
    local entry = emu:log()[1]
    assert.are.equal("OK", entry.code)
    assert.are.equal("v3", entry.signature_version)
    assert.are.equal("POST", entry.method)
    assert.are.same({ JobId = "job-10", PageSize = "5", IotInstanceId = "iot-emu-instance" }, entry.params)
    assert.are.equal("2018-01-20", entry.headers["x-acs-version"])
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$", entry.headers["x-acs-date"])
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", entry.headers["x-acs-signature-nonce"])
  end)

  it("filters by TaskStatus", function()
    local page = assert(client:ListOTATaskByJob{ JobId = "job-2500", TaskStatus = "FAILED", PageSize = 50 })
    assert.are.equal(50, #page.tasks)
    for _, task in ipairs(page.tasks) do assert.are.equal("FAILED", task.TaskStatus) end
  end)

  it("filters by DeviceNames, including names that need percent-encoding", function()
    local names = {}
    for i = 1, 50 do names[i] = jobs.device_name(i * 7) end
    local page = assert(client:ListOTATaskByJob{ JobId = "job-2500", DeviceNames = names })
    assert.are.equal(50, #page.tasks)
    local got = {}
    for _, task in ipairs(page.tasks) do got[task.DeviceName] = true end
    for _, name in ipairs(names) do assert.is_true(got[name], name) end
  end)

  it("decodes an empty job", function()
    local page = assert(client:ListOTATaskByJob{ JobId = "job-0" })
    assert.are.same({}, page.tasks)
    assert.are.equal(0, page.Total)
  end)

  it("decodes a page past the end as an empty page", function()
    local page = assert(client:ListOTATaskByJob{ JobId = "job-10", PageSize = 10, CurrentPage = 5 })
    assert.are.same({}, page.tasks)
  end)

  it("reuses one connection for successive calls", function()
    local session = require("aliyun.iot.core").new_session{ timeout = 5 }
    local c = helpers.client(emu, { transport = session })
    assert(c:ListOTATaskByJob{ JobId = "job-1" })
    assert.are.equal(1, session:info().num_connects)
    assert(c:ListOTATaskByJob{ JobId = "job-1" })
    assert.are.equal(0, session:info().num_connects)
    session:close()
  end)

  for _, version in ipairs({ "v1", "v3" }) do
    it("accepts STS credentials with their SecurityToken (" .. version .. ")", function()
      local c = helpers.client(emu, { access_key_id = helpers.sts.access_key_id, signature_version = version,
        access_key_secret = helpers.sts.access_key_secret, security_token = helpers.sts.security_token })
      local page = assert(c:ListOTATaskByJob{ JobId = "job-3" })
      c:close()
      assert.are.equal(3, #page.tasks)
      assert.are.equal("OK", emu:log()[1].code)
    end)
  end

  describe("gateway errors", function()
    local function fails(opts, params, code, http_status)
      local c = helpers.client(emu, opts)
      local page, err = c:ListOTATaskByJob(params or { JobId = "job-10" })
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, code)
      if http_status then assert.are.equal(http_status, err.http_status) end
      assert.is_string(err.request_id)
      assert.truthy(#err.request_id > 0)
      assert.truthy(tostring(err):find(err.request_id, 1, true))
      return err
    end

    it("InvalidAccessKeyId.NotFound", function()
      local err = fails({ access_key_id = "LTAI5tNoSuchKey" }, nil, "InvalidAccessKeyId.NotFound", 404)
      assert.is_false(err.retryable)
    end)

    it("InvalidAccessKeyId.Inactive", function()
      fails({ access_key_id = helpers.inactive.access_key_id,
              access_key_secret = helpers.inactive.access_key_secret }, nil, "InvalidAccessKeyId.Inactive")
    end)

    it("SignatureDoesNotMatch, without echoing the secret", function()
      local err = fails({ access_key_secret = "not-the-secret" }, nil, "SignatureDoesNotMatch", 400)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find("string to sign", 1, true))
    end)

    for version, shown in pairs({ v1 = "SecurityToken%3D***", v3 = "x-acs-security-token:***" }) do
      it("SignatureDoesNotMatch with STS never shows the SecurityToken (" .. version .. ")", function()
        local err = fails({ access_key_id = helpers.sts.access_key_id, access_key_secret = "wrong",
                            security_token = helpers.sts.security_token, signature_version = version },
                          nil, "SignatureDoesNotMatch", 400)
        -- The server quotes what it signed; the token in it is scrubbed.
        assert.truthy(err.message:find(shown, 1, true), err.message)
      end)
    end

    it("InvalidSecurityToken.Malformed when an STS key comes without its token", function()
      fails({ access_key_id = helpers.sts.access_key_id, access_key_secret = helpers.sts.access_key_secret },
        nil, "InvalidSecurityToken.Malformed")
    end)

    it("InvalidSecurityToken.Expired", function()
      fails({ access_key_id = helpers.sts.access_key_id, access_key_secret = helpers.sts.access_key_secret,
              security_token = helpers.sts.expired_token }, nil, "InvalidSecurityToken.Expired")
    end)

    it("SignatureNonceUsed when a nonce is replayed", function()
      local fixed = function() return "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf" end
      local c = helpers.client(emu, { nonce = fixed })
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      c:close()
      fails({ nonce = fixed }, nil, "SignatureNonceUsed", 400)
    end)

    it("InvalidTimeStamp.Expired when the clock is 20 minutes behind", function()
      fails({ clock = function() return os.time() - 20 * 60 end }, nil, "InvalidTimeStamp.Expired", 400)
    end)

    it("accepts a clock 10 minutes off", function()
      local c = helpers.client(emu, { clock = function() return os.time() + 10 * 60 end })
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      c:close()
    end)

    it("an IoT Success=false body is an error even on HTTP 200", function()
      local err = fails(nil, { JobId = "no-such-job" }, nil, 200)
      assert.matches("^iot%.", err.code)
      assert.is_false(err.retryable)
    end)

    it("InternalError on HTTP 500 is retryable", function()
      emu:faults{ error_500_every = 1 }
      local err = fails(nil, nil, "InternalError", 500)
      assert.is_true(err.retryable)
    end)

    it("ServiceUnavailable on HTTP 503 is retryable", function()
      emu:faults{ error_503_every = 1 }
      local err = fails(nil, nil, "ServiceUnavailable", 503)
      assert.is_true(err.retryable)
    end)

    it("Throttling.User when the account's QPS is exceeded", function()
      emu:faults{ qps = 1 }
      local c = helpers.client(emu)
      local err
      for _ = 1, 5 do
        local page
        page, err = c:ListOTATaskByJob{ JobId = "job-1" }
        if not page then break end
      end
      c:close()
      helpers.assert_error(err, "Throttling.User")
      assert.is_true(err.retryable)
    end)
  end)

  describe("local failures", function()
    it("SDK.ConnectionFailed when the connection is dropped", function()
      emu:faults{ reset_every = 1 }
      local page, err = client:ListOTATaskByJob{ JobId = "job-10" }
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.ConnectionFailed")
      assert.is_true(err.retryable)
    end)

    it("SDK.ConnectionFailed when nothing listens", function()
      local c = helpers.client(emu, { endpoint = "http://127.0.0.1:9" })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.ConnectionFailed")
    end)

    it("SDK.Timeout when the gateway is slower than the timeout", function()
      emu:faults{ latency_ms = 1500 }
      local c = helpers.client(emu, { timeout = 0.3 })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.Timeout")
      assert.is_true(err.retryable)
    end)

    it("SDK.BadResponse on malformed JSON", function()
      emu:faults{ malformed_every = 1 }
      local page, err = client:ListOTATaskByJob{ JobId = "job-10" }
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.BadResponse")
      assert.are.equal(200, err.http_status)
    end)

    it("SDK.BadResponse on truncated JSON", function()
      emu:faults{ truncated_every = 1 }
      local page, err = client:ListOTATaskByJob{ JobId = "job-10" }
      assert.is_nil(page)
      assert.truthy(err.code == "SDK.BadResponse" or err.code == "SDK.ConnectionFailed", tostring(err))
      helpers.assert_error(err)
    end)

    it("SDK.ResponseTooLarge past the size cap", function()
      emu:faults{ huge_body_bytes = 2 * 1024 * 1024 }
      local c = helpers.client(emu, { max_body_bytes = 1024 * 1024 })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.ResponseTooLarge")
    end)
  end)

  it("never shows a secret in tostring(client)", function()
    local c = helpers.client(emu, { access_key_id = helpers.sts.access_key_id,
      access_key_secret = helpers.sts.access_key_secret, security_token = helpers.sts.security_token })
    helpers.assert_no_secret(tostring(c))
    for k, v in pairs(c) do
      helpers.assert_no_secret(k)
      helpers.assert_no_secret(v)
    end
    c:close()
  end)

  it("a closed client answers SDK.ClientClosed (iterators raise it), sending nothing", function()
    local c = helpers.client(emu)
    c:close()
    c:close()
    local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
    assert.is_nil(page)
    helpers.assert_error(err, "SDK.ClientClosed")
    assert.truthy(err.message:find("closed", 1, true))
    local ok, raised = pcall(c.tasks, c, { JobId = "job-1" })
    assert.is_false(ok)
    helpers.assert_error(raised, "SDK.ClientClosed")
    assert.are.equal(0, #emu:log())
  end)
end)
