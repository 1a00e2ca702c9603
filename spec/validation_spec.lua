-- Every validation error is reported before any network I/O: each case has
-- its own message, and the emulator's request log stays empty.
local helpers = require("helpers")
local iot = require("aliyun.iot")

local INVALID = "SDK.InvalidArgument"

describe("validation before any request", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  after_each(function()
    assert.are.same({}, emu:log(), "a request reached the emulator")
  end)

  local names51 = {}
  for i = 1, 51 do names51[i] = "d" .. i end

  local cases = {
    { "no JobId", {}, "JobId is required" },
    { "empty JobId", { JobId = "" }, "JobId must not be empty" },
    { "JobId not a string", { JobId = 42 }, "JobId must be a string" },
    { "PageSize 0", { JobId = "j", PageSize = 0 }, "PageSize must be an integer from 1 to 100" },
    { "PageSize 101", { JobId = "j", PageSize = 101 }, "PageSize must be an integer from 1 to 100" },
    { "PageSize fractional", { JobId = "j", PageSize = 1.5 }, "PageSize must be an integer" },
    { "PageSize not numeric", { JobId = "j", PageSize = "ten" }, "PageSize must be an integer" },
    { "CurrentPage 0", { JobId = "j", CurrentPage = 0 }, "CurrentPage must be an integer >= 1" },
    { "CurrentPage negative string", { JobId = "j", CurrentPage = "-1" }, "CurrentPage must be an integer >= 1" },
    { "past the depth cap", { JobId = "j", PageSize = 100, CurrentPage = 1001 },
      "CurrentPage x PageSize = 1001 x 100 exceeds the service's paging depth of 100000" },
    { "past the depth cap at the default PageSize", { JobId = "j", CurrentPage = 10001 },
      "10001 x 10 exceeds" },
    { "unknown TaskStatus", { JobId = "j", TaskStatus = "DONE" }, "TaskStatus must be one of QUEUED, NOTIFIED" },
    { "lower-case TaskStatus", { JobId = "j", TaskStatus = "failed" }, "TaskStatus must be one of" },
    { "DeviceNames a string", { JobId = "j", DeviceNames = "d1" }, "DeviceNames must be a list of device names" },
    { "DeviceNames empty", { JobId = "j", DeviceNames = {} }, "DeviceNames must not be an empty list" },
    { "DeviceNames with an empty name", { JobId = "j", DeviceNames = { "a", "" } },
      "DeviceNames[2] must be a non-empty string" },
    { "DeviceNames with a number", { JobId = "j", DeviceNames = { "a", 5 } },
      "DeviceNames[2] must be a non-empty string" },
    { "DeviceNames as a map", { JobId = "j", DeviceNames = { a = "x" } }, "must be a list (array)" },
    { "51 DeviceNames in one call", { JobId = "j", DeviceNames = names51 },
      "DeviceNames has 51 names; at most 50" },
    { "unknown parameter", { JobId = "j", Foo = 1 }, "unknown parameter \"Foo\" for ListOTATaskByJob" },
    { "wrong case", { jobid = "j" }, "did you mean JobId?" },
  }

  for _, case in ipairs(cases) do
    local name, p, expected = case[1], case[2], case[3]
    it("ListOTATaskByJob rejects " .. name, function()
      local page, err = client:ListOTATaskByJob(p)
      assert.is_nil(page)
      helpers.assert_error(err, INVALID)
      assert.is_false(err.retryable)
      assert.truthy(err.message:find(expected, 1, true), err.message)
    end)
  end

  it("ListOTATaskByJob rejects a non-table argument", function()
    local page, err = client:ListOTATaskByJob("job")
    assert.is_nil(page)
    helpers.assert_error(err, INVALID)
  end)

  it("tasks{} raises the error object at call time, before any request", function()
    local ok, err = pcall(client.tasks, client, { TaskStatus = "FAILED" })
    assert.is_false(ok)
    helpers.assert_error(err, INVALID)
    assert.truthy(err.message:find("JobId is required", 1, true))
  end)

  it("pages{} refuses CurrentPage: the pager walks every page", function()
    local ok, err = pcall(client.pages, client, { JobId = "job-10", CurrentPage = 2 })
    assert.is_false(ok)
    helpers.assert_error(err, INVALID)
    assert.truthy(err.message:find("CurrentPage is not accepted", 1, true))
  end)

  it("tasks{} accepts more than 50 DeviceNames and is lazy", function()
    local names = {}
    for i = 1, 120 do names[i] = "d" .. i end
    local iter = client:tasks{ JobId = "job-10", DeviceNames = names }
    assert.is_function(iter)
  end)

  describe("iot.new", function()
    local base = { endpoint = "http://127.0.0.1:1", access_key_id = "id", access_key_secret = "s" }
    local function with(changes)
      local o = {}
      for k, v in pairs(base) do o[k] = v end
      for k, v in pairs(changes) do o[k] = v end
      return o
    end

    local bad = {
      { "an unknown option", with{ acces_key_id = "x" }, INVALID, "unknown option \"acces_key_id\"" },
      { "a malformed region", with{ region = "cn shanghai" }, INVALID, "is not a region id" },
      { "an endpoint with a path", with{ endpoint = "http://127.0.0.1:1/api" }, INVALID,
        "must look like https://host" },
      { "a non-http endpoint", with{ endpoint = "ftp://127.0.0.1" }, INVALID, "must look like https://host" },
      { "a negative timeout", with{ timeout = -1 }, INVALID, "timeout must be a positive number" },
      { "a string timeout", with{ timeout = "10" }, INVALID, "option timeout must be a number" },
      { "a missing secret", with{ access_key_secret = false }, "SDK.MissingCredentials",
        "access_key_secret is missing" },
      { "an empty key id", with{ access_key_id = "" }, "SDK.MissingCredentials", "access_key_id is missing" },
      { "an empty instance id", with{ iot_instance_id = "" }, INVALID, "iot_instance_id must not be empty" },
    }
    for _, case in ipairs(bad) do
      it("rejects " .. case[1], function()
        local opts = case[2]
        for k, v in pairs(opts) do if v == false then opts[k] = nil end end
        local c, err = iot.new(opts)
        assert.is_nil(c)
        helpers.assert_error(err, case[3])
        assert.truthy(err.message:find(case[4], 1, true), err.message)
      end)
    end

    it("requires a region or an endpoint", function()
      local out = helpers.run_lua([[
        local iot = require("aliyun.iot")
        local c, err = iot.new{ access_key_id = "id", access_key_secret = "s" }
        print(c, err.code, err.message)
      ]], { ALIBABA_CLOUD_REGION_ID = false })
      assert.truthy(out:find("nil\tSDK.InvalidArgument\tregion is required", 1, true), out)
    end)

    it("reports missing credentials when neither options nor environment have them", function()
      local out = helpers.run_lua([[
        local iot = require("aliyun.iot")
        local c, err = iot.new{ region = "cn-shanghai" }
        print(c, err.code, err.message)
      ]], { ALIBABA_CLOUD_ACCESS_KEY_ID = false, ALIBABA_CLOUD_ACCESS_KEY_SECRET = false })
      assert.truthy(out:find("nil\tSDK.MissingCredentials\tno credentials", 1, true), out)
    end)

    it("takes credentials from the environment the official SDKs read", function()
      local out = helpers.run_lua([[
        local iot = require("aliyun.iot")
        local c = assert(iot.new{ region = "cn-shanghai" })
        print(c.credentials.source, tostring(c))
      ]], { ALIBABA_CLOUD_ACCESS_KEY_ID = "LTAI5tEnvKey0001", ALIBABA_CLOUD_ACCESS_KEY_SECRET = "env-secret-value" })
      local want = "environment\taliyun.iot.Client (https://iot.cn-shanghai.aliyuncs.com, "
        .. "aliyun.iot.Credentials (environment, AccessKeyId LTAI****0001))"
      assert.truthy(out:find(want, 1, true), out)
      assert.falsy(out:find("env-secret-value", 1, true))
    end)

    it("raises on a non-table argument (programmer error)", function()
      assert.has_error(function() iot.new("cn-shanghai") end)
    end)
  end)
end)
