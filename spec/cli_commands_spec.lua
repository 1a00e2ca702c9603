-- bin/aliyun-ota as a child process: the commands call and jobs against the
-- emulator, the instance id from the environment (the CLI and
-- examples/list_tasks.lua), and the launcher finding its library from its
-- own real path.
local helpers = require("helpers")
local h = require("cli_helpers")
local cjson = require("cjson")
local iot = require("aliyun.iot")
local jobs = helpers.jobs

local lines_of, q = h.lines_of, h.q

describe("aliyun-ota", function()
  local H = h.use_harness()
  local function run(args, env) return H:run(args, env) end
  -- The parameters of the only request the emulator saw.
  local function sent()
    local log = H.emu:log()
    assert.are.equal(1, #log, "requests: " .. #log)
    return log[1].params, log[1].action
  end


  describe("call", function()
    it("writes the answer of any action as JSON, keys sorted, like `aliyun iot ACTION`", function()
      local out, err, code = run{ "call", "QueryOTAJob", "--JobId", "demo-job" }
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local doc = cjson.decode(out)
      assert.is_true(doc.Success)
      assert.are.equal("demo-job", doc.Data.JobId)
      assert.are.same({ "2.3.1" }, doc.Data.SrcVersions.SrcVersion)
      assert.truthy(out:find('^{\n  "Data": {\n    "DestVersion": "2.4.0",\n'), out)
      assert.are.same({ JobId = "demo-job" }, (sent()))
    end)

    it("makes lists of a name given again or numbered; values pass as text; TaskStatus in any case", function()
      local failed = {}
      for i = 1, 100 do
        if jobs.status_of(i) == "FAILED" and #failed < 2 then failed[#failed + 1] = jobs.task("job-100", i).TaskId end
      end
      local _, err, code = run{ "call", "ReupgradeOTATask", "--JobId", "job-100", "--TaskId", failed[1],
                                "--TaskId", failed[2] }
      assert.are.equal(0, code, err)
      assert.are.same({ JobId = "job-100", ["TaskId.1"] = failed[1], ["TaskId.2"] = failed[2] }, (sent()))

      H.emu:reset()
      local out
      out, err, code = run{ "call", "ListOTATaskByJob", "--JobId=job-2500", "--DeviceNames.1", "dev@5.lab",
                            "--DeviceNames.2", "device-002500", "--TaskStatus", "failed", "--PageSize", "10" }
      assert.are.equal(0, code, err)
      assert.are.same({ JobId = "job-2500", ["DeviceNames.1"] = "dev@5.lab", ["DeviceNames.2"] = "device-002500",
                        TaskStatus = "FAILED", PageSize = "10" }, (sent()))
      assert.are.equal(cjson.decode(out).Total, #cjson.decode(out).tasks)
    end)

    it("--dry-run writes the signed request and sends nothing, the security token masked", function()
      local sts = helpers.sts
      local env = { id = sts.access_key_id, secret = sts.access_key_secret,
                    ALIBABA_CLOUD_SECURITY_TOKEN = sts.security_token }
      for _, flag in ipairs({ "--dry-run", "--cli-dry-run" }) do
        local out, err, code = run({ "call", "QueryOTAJob", "--JobId", "demo-job", flag }, env)
        assert.are.equal(0, code, err)
        assert.truthy(out:find("^POST " .. H.emu.url:gsub("%p", "%%%0") .. "/%?JobId=demo%-job\n"), out)
        assert.truthy(out:find("\nAuthorization: ACS3%-HMAC%-SHA256 Credential=" .. sts.access_key_id), out)
        assert.truthy(out:find("\nx-acs-security-token: ***\n", 1, true), out)
      end
      assert.are.same({}, H.emu:log())
    end)

    it("takes --endpoint as a bare host, HTTPS implied, as the aliyun CLI does", function()
      local out, err, code = run({ "--endpoint", "iot.cn-shanghai.aliyuncs.com", "call", "QueryOTAJob",
                                   "--JobId", "x", "--dry-run" }, { no_endpoint = true })
      assert.are.equal(0, code, err)
      assert.truthy(out:find("^POST https://iot%.cn%-shanghai%.aliyuncs%.com/%?JobId=x\n"), out)
      assert.truthy(out:find("\nhost: iot.cn-shanghai.aliyuncs.com\n", 1, true), out)
    end)

    it("an API error: status 1, one line with the code, message and RequestId", function()
      local out, err, code = run{ "call", "QueryOTAJob", "--JobId", "no-such-job" }
      assert.are.equal(1, code)
      local line = h.assert_one_error_line(out, err)
      assert.truthy(line:find("^aliyun%-ota: iot%.ota%.OtaJobNotExist: .*RequestId [%x-]+%)$"), line)
    end)
  end)

  describe("jobs", function()
    it("lists every job of a firmware, page by page, in each output format", function()
      local out, err, code = run{ "jobs", "--firmware", jobs.SHARED_FIRMWARE, "--output", "csv" }
      assert.are.equal(0, code, err)
      local records = h.parse_csv(out)
      assert.are.same({ "JobId", "JobStatus", "JobType", "SelectionType", "TargetSelection", "ProductKey",
                        "UtcCreate", "UtcEndTime" }, table.remove(records, 1))
      assert.are.equal(jobs.SHARED_FIRMWARE_JOBS, #records)
      for k, r in ipairs(records) do assert.are.equal("job-" .. (k - 1), r[1]) end

      out = run{ "jobs", "--firmware", jobs.SHARED_FIRMWARE, "--output", "cols=JobId,FirmwareId" }
      local lines = lines_of(out)
      assert.are.same({ "JobId", "FirmwareId" }, helpers.collect(lines[1]:gmatch("%S+")))
      assert.are.equal(jobs.SHARED_FIRMWARE_JOBS + 2, #lines)

      out = run{ "jobs", "--firmware", "FW-demo-job", "--output", "jsonl", "--fields", "jobid,productkey" }
      assert.are.same({ JobId = "demo-job", ProductKey = "a1DemoThrm9" }, cjson.decode(out))
    end)

    it("--device asks ListOTAJobByDevice, which the emulator lacks: one error line, status 1", function()
      local out, err, code = run{ "jobs", "--firmware", "FW-demo-job", "--device", "a1DemoThrm9/hvac_ctrl.north" }
      assert.are.equal(1, code)
      assert.truthy(h.assert_one_error_line(out, err):find("InvalidAction.NotFound", 1, true))
      local params, action = sent()
      assert.are.equal("ListOTAJobByDevice", action)
      assert.are.same({ FirmwareId = "FW-demo-job", ProductKey = "a1DemoThrm9", DeviceName = "hvac_ctrl.north",
                        PageSize = "100", CurrentPage = "1" }, params)
    end)

    it("an unknown firmware: status 1, one line", function()
      local out, err, code = run{ "jobs", "--firmware", "FW-nothing" }
      assert.are.equal(1, code)
      assert.truthy(h.assert_one_error_line(out, err):find("iot.ota.OtaFirmwareNotExist", 1, true))
    end)
  end)

  describe("the instance id", function()
    local ARGS = { "call", "QueryOTAJob", "--JobId", "demo-job" }

    it("comes from ALIYUN_IOT_INSTANCE_ID; --instance overrides it; an empty value means none", function()
      for _, case in ipairs({
        { { ALIYUN_IOT_INSTANCE_ID = "iot-emu-env" }, {}, "iot-emu-env" },
        { { ALIYUN_IOT_INSTANCE_ID = "iot-emu-env" }, { "--instance", "iot-emu-flag" }, "iot-emu-flag" },
        { { ALIYUN_IOT_INSTANCE_ID = "" }, {}, nil },
      }) do
        H.emu:reset()
        local argv = {}
        for _, a in ipairs(case[2]) do argv[#argv + 1] = a end
        for _, a in ipairs(ARGS) do argv[#argv + 1] = a end
        local _, err, code = run(argv, case[1])
        assert.are.equal(0, code, err)
        assert.are.equal(case[3], sent().IotInstanceId)
      end
    end)

    it("reaches examples/list_tasks.lua through iot.new, and its --instance", function()
      local example = (os.getenv("LUA") or "lua5.4") .. " examples/list_tasks.lua"
      local out, err, code = run({ "--endpoint", H.emu.url, "--region", "cn-shanghai", "job-10" },
                                 { cli = example, no_endpoint = true, ALIYUN_IOT_INSTANCE_ID = "iot-emu-env" })
      local _
      assert.are.equal(0, code, err)
      assert.truthy(out:find("\n10 tasks in job job-10\n", 1, true), out)
      assert.are.equal("iot-emu-env", sent().IotInstanceId)
      H.emu:reset()
      _, err, code = run({ "--endpoint", H.emu.url, "--instance", "iot-emu-flag", "job-10" },
                         { cli = example, no_endpoint = true, ALIYUN_IOT_INSTANCE_ID = "iot-emu-env" })
      assert.are.equal(0, code, err)
      assert.are.equal("iot-emu-flag", sent().IotInstanceId)
    end)
  end)

  describe("the launcher", function()
    -- bin/aliyun-ota run by the interpreter under test (its #! line under 5.4),
    -- from another directory, with no LUA_PATH or LUA_CPATH.
    local function launch(script, args)
      local lua = os.getenv("LUA")
      local runner = (lua == nil or lua == "lua5.4") and "" or (lua .. " ")
      return h.sh("cd " .. q(H.tmp) .. " && env -u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_4 -u LUA_CPATH_5_4 "
        .. runner .. q(script) .. " " .. args .. " 2>&1")
    end

    it("finds the library from its real path, through a symbolic link", function()
      assert(os.execute("mkdir -p " .. q(H.tmp .. "/bin") .. " && ln -sf " .. q(H.cwd .. "/bin/aliyun-ota") .. " "
        .. q(H.tmp .. "/bin/ota")))
      local out, ok = launch(H.tmp .. "/bin/ota", "--version")
      assert.is_true(ok, out)
      local lines = lines_of(out)
      assert.are.equal("aliyun-ota " .. iot.VERSION, lines[1])
      assert.truthy(lines[2]:find("(" .. H.cwd .. "/lua/aliyun/iot.lua)", 1, true), lines[2])
      assert.truthy(lines[3]:find("(" .. H.cwd .. "/build", 1, true), lines[3])
    end)

    it("says every path it tried when it cannot find the library", function()
      assert(os.execute("mkdir -p " .. q(H.tmp .. "/lonely") .. " && cp bin/aliyun-ota " .. q(H.tmp .. "/lonely/")))
      local out, ok, code = launch(H.tmp .. "/lonely/aliyun-ota", "tasks job-1")
      assert.is_false(ok)
      assert.are.equal(1, code)
      local lines = lines_of(out)
      assert.are.equal("aliyun-ota: cannot load the aliyun.iot library:", lines[1])
      assert.truthy(lines[2]:find("module 'aliyun.iot.cli' not found:", 1, true), out)
      local tried = 0
      for _, line in ipairs(lines) do
        if line:find("^    no file '.-aliyun/iot/cli") then tried = tried + 1 end
      end
      assert.is_true(tried >= 4, out)
      assert.truthy(out:find("set LUA_PATH and LUA_CPATH", 1, true), out)
    end)
  end)
end)
