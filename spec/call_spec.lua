-- client:call for any Iot 2018-01-20 action: flattening, dry runs, both
-- signature versions accepted by the emulator, proxies, and the neighbouring
-- OTA actions driven end to end.
local helpers = require("helpers")
local params = require("aliyun.iot.params")
local jobs = helpers.jobs

describe("params.flatten", function()
  it("renders lists, lists of tables, booleans and numbers as the official SDKs do", function()
    local flat = assert(params.flatten("ReupgradeOTATask", {
      JobId = "j1",
      TaskId = { "t1", "t2" },
      Tags = { { Key = "a", Value = "1" }, { Key = "b", Value = "2" } },
      CancelQueuedTask = true,
      CancelInProgressTask = false,
      PageSize = 100.0,
      Ratio = 0.1,
      Big = 2 ^ 60,
    }))
    assert.are.same({
      JobId = "j1", ["TaskId.1"] = "t1", ["TaskId.2"] = "t2",
      ["Tags.1.Key"] = "a", ["Tags.1.Value"] = "1", ["Tags.2.Key"] = "b", ["Tags.2.Value"] = "2",
      CancelQueuedTask = "true", CancelInProgressTask = "false", PageSize = "100", Ratio = "0.1",
      Big = "1.152921504606847e+18",
    }, flat)
  end)

  local bad = {
    { "a lower-case action", "listOTATaskByJob", {}, "action must be an API name" },
    { "a NaN", "QueryOTAJob", { X = 0 / 0 }, "must be a finite number" },
    { "a function value", "QueryOTAJob", { X = print }, "has a function value" },
    { "a mixed table", "QueryOTAJob", { X = { 1, a = 2 } }, "mixes list items and fields" },
    { "a bad name", "QueryOTAJob", { ["a b"] = "x" }, "is not an API parameter name" },
  }
  for _, case in ipairs(bad) do
    it("rejects " .. case[1], function()
      local flat, err = params.flatten(case[2], case[3])
      assert.is_nil(flat)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.truthy(err.message:find(case[4], 1, true), err.message)
    end)
  end
end)

describe("client:call", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  it("dry_run returns the signed request without sending it", function()
    local c = helpers.client(emu, { access_key_id = helpers.sts.access_key_id,
      access_key_secret = helpers.sts.access_key_secret, security_token = helpers.sts.security_token,
      signature_version = "v1" })
    local req = assert(c:call("ListOTATaskByJob", { JobId = "job-10", PageSize = 5 }, { dry_run = true }))
    c:close()
    assert.are.equal("GET", req.method)
    assert.truthy(req.url:find("^" .. emu.url:gsub("%p", "%%%0") .. "/%?"))
    assert.truthy(req.url:find("&Signature=", 1, true))
    assert.truthy(req.url:find("PageSize=5", 1, true))
    assert.are.same({}, emu:log())
    -- tostring masks the token; the table itself is the request as it would go out.
    helpers.assert_no_secret(tostring(req))
    assert.truthy(tostring(req):find("SecurityToken=***", 1, true))
  end)

  it("dry_run with V3 shows the Authorization header and x-acs-* headers", function()
    local c = helpers.client(emu, { signature_version = "v3" })
    local req = assert(c:call("QueryOTAJob", { JobId = "demo-job" }, { dry_run = true }))
    c:close()
    assert.are.equal("POST", req.method)
    assert.are.equal("QueryOTAJob", req.headers["x-acs-action"])
    assert.are.equal("2018-01-20", req.headers["x-acs-version"])
    assert.matches("^ACS3%-HMAC%-SHA256 Credential=" .. helpers.ak.access_key_id
      .. ",SignedHeaders=content%-type;host;x%-acs%-action;.*,Signature=%x+$", req.headers.Authorization)
    assert.truthy(req.url:find("JobId=demo-job", 1, true))
  end)

  it("validates ListOTATaskByJob by its rules, other actions only by shape", function()
    local c = helpers.client(emu)
    local page, err = c:call("ListOTATaskByJob", { JobId = "j", PageSize = 500 })
    assert.is_nil(page)
    helpers.assert_error(err, "SDK.InvalidArgument")
    local res
    res, err = c:call("no such action", {})
    assert.is_nil(res)
    helpers.assert_error(err, "SDK.InvalidArgument")
    c:close()
    assert.are.same({}, emu:log())
  end)

  for _, version in ipairs({ "v1", "v3" }) do
    it("sends " .. version .. " requests the emulator accepts, also with STS", function()
      for _, account in ipairs({ helpers.ak, helpers.sts }) do
        local c = helpers.client(emu, { signature_version = version, access_key_id = account.access_key_id,
          access_key_secret = account.access_key_secret, security_token = account.security_token })
        local page = assert(c:ListOTATaskByJob{ JobId = "job-120", PageSize = 100, CurrentPage = 2,
                                               DeviceNames = nil })
        assert.are.equal(20, #page.tasks)
        local names = { jobs.device_name(3), jobs.device_name(5), jobs.device_name(9) }
        page = assert(c:ListOTATaskByJob{ JobId = "job-120", DeviceNames = names })
        assert.are.equal(3, #page.tasks)
        c:close()
      end
      for _, e in ipairs(emu:log()) do
        assert.are.equal("OK", e.code)
        assert.are.equal(version, e.signature_version)
      end
    end)
  end

  it("V3 is the default, as in the official Node SDK", function()
    local c = helpers.client(emu)
    assert.are.equal("v3", c.signature_version)
    assert(c:ListOTATaskByJob{ JobId = "job-1" })
    c:close()
    assert.are.equal("v3", emu:log()[1].signature_version)
  end)

  it("V3 errors surface like V1 errors", function()
    local c = helpers.client(emu, { signature_version = "v3", access_key_secret = "wrong" })
    local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
    c:close()
    assert.is_nil(page)
    helpers.assert_error(err, "SignatureDoesNotMatch")
  end)

  describe("the neighbouring OTA actions, end to end", function()
    local c
    before_each(function() c = helpers.client(emu) end)
    after_each(function() c:close() end)

    it("QueryOTAJob", function()
      local res = assert(c:call("QueryOTAJob", { JobId = "demo-job" }))
      assert.is_true(res.Success)
      assert.are.equal("demo-job", res.Data.JobId)
      assert.is_string(res.Data.JobStatus)
    end)

    it("ListOTAJobByFirmware", function()
      local firmware = jobs.task("demo-job", 1).FirmwareId
      local res = assert(c:call("ListOTAJobByFirmware", { FirmwareId = firmware, PageSize = 10, CurrentPage = 1 }))
      assert.is_true(res.Success)
      local found = false
      for _, job in ipairs(res.Data.SimpleOTAJobInfo) do
        if job.JobId == "demo-job" then found = true end
      end
      assert.is_true(found)
    end)

    it("CancelOTATaskByJob changes what ListOTATaskByJob shows", function()
      local queued = 0
      for _ in c:tasks{ JobId = "job-200", TaskStatus = "QUEUED" } do queued = queued + 1 end
      assert.truthy(queued > 0)
      assert(c:call("CancelOTATaskByJob", { JobId = "job-200", CancelQueuedTask = true }))
      local after = 0
      for _ in c:tasks{ JobId = "job-200", TaskStatus = "QUEUED" } do after = after + 1 end
      assert.are.equal(0, after)
      local canceled = 0
      for task in c:tasks{ JobId = "job-200" } do
        if task.TaskStatus == "CANCELED" then canceled = canceled + 1 end
      end
      assert.truthy(canceled >= queued)
    end)

    it("ReupgradeOTATask puts failed tasks back in the queue", function()
      local failed = {}
      for task in c:tasks{ JobId = "job-100", TaskStatus = "FAILED" } do failed[#failed + 1] = task.TaskId end
      assert.truthy(#failed >= 2)
      assert(c:call("ReupgradeOTATask", { JobId = "job-100", TaskId = { failed[1], failed[2] } }))
      local status = {}
      for task in c:tasks{ JobId = "job-100" } do status[task.TaskId] = task.TaskStatus end
      assert.are.equal("QUEUED", status[failed[1]])
      assert.are.equal("QUEUED", status[failed[2]])
      local log = emu:log()
      local reupgrade
      for _, e in ipairs(log) do if e.action == "ReupgradeOTATask" then reupgrade = e end end
      assert.are.equal(failed[1], reupgrade.params["TaskId.1"])
      assert.are.equal(failed[2], reupgrade.params["TaskId.2"])
    end)
  end)

  it("signs with credentials found in a profile file, end to end", function()
    local home = os.tmpname()
    os.remove(home)
    assert(os.execute("mkdir -p " .. home .. "/.alibabacloud"))
    local f = assert(io.open(home .. "/.alibabacloud/credentials", "w"))
    f:write("[default]\ntype = access_key\naccess_key_id = LTAI5tNotThisOne\naccess_key_secret = x\n\n",
            "[ops]\n; an STS key pair with its token\ntype = sts\naccess_key_id = ", helpers.sts.access_key_id,
            "\naccess_key_secret = ", helpers.sts.access_key_secret,
            "\nsecurity_token = ", helpers.sts.security_token, "\nregion_id = cn-shanghai\n")
    f:close()
    local code = string.format([[
      local iot = require("aliyun.iot")
      local c = assert(iot.new{ endpoint = %q, profile = "ops", rate_limit = false })
      local page, err = c:ListOTATaskByJob{ JobId = "job-2" }
      print(page and ("OK " .. #page.tasks) or tostring(err), c.credentials.source, c.region)
    ]], emu.url)
    local out = helpers.run_lua(code, { HOME = home, ALIBABA_CLOUD_ACCESS_KEY_ID = false,
      ALIBABA_CLOUD_ACCESS_KEY_SECRET = false, ALIBABA_CLOUD_CONFIG_FILE = false })
    os.execute("rm -rf " .. home)
    assert.truthy(out:find("^OK 2\tcredentials%-file:ops %(.*credentials%)\tcn%-shanghai"), out)
    helpers.assert_no_secret(out)
  end)

  describe("proxies", function()
    -- The emulator also answers absolute-form requests, so it can act as the
    -- proxy for an endpoint on 127.0.0.2, where nothing listens.
    local function unreachable() return "http://127.0.0.2:" .. emu.port end

    it("go through the proxy option", function()
      local c = helpers.client(emu, { endpoint = unreachable(), proxy = emu.url })
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      c:close()
      local direct = helpers.client(emu, { endpoint = unreachable(), proxy = "" })
      local page, err = direct:ListOTATaskByJob{ JobId = "job-1" }
      direct:close()
      assert.is_nil(page)
      helpers.assert_error(err, "SDK.ConnectionFailed")
    end)

    it("follow HTTP_PROXY and NO_PROXY from the environment", function()
      local code = string.format([[
        local helpers = require("helpers")
        local iot = require("aliyun.iot")
        local c = assert(iot.new{ endpoint = %q, access_key_id = helpers.ak.access_key_id,
                                  access_key_secret = helpers.ak.access_key_secret, rate_limit = false,
                                  max_retries = 0 })
        local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
        print(page and "OK" or err.code)
      ]], unreachable())
      local out = helpers.run_lua(code, { HTTP_PROXY = emu.url, http_proxy = false, NO_PROXY = false })
      assert.are.equal("OK", out:match("%S+"), out)
      out = helpers.run_lua(code, { HTTP_PROXY = emu.url, NO_PROXY = "127.0.0.2" })
      assert.are.equal("SDK.ConnectionFailed", out:match("%S+"), out)
    end)
  end)
end)
