-- bin/aliyun-ota's exit status as a child process against the emulator: 2
-- with the usage for every usage error (nothing sent), 0 for the help, 1 with
-- one line for what the API, the network or the credentials refuse.
local helpers = require("helpers")
local h = require("cli_helpers")

local assert_one_error_line = h.assert_one_error_line

describe("aliyun-ota", function()
  local H = h.use_harness()
  local function run(args, env) return H:run(args, env) end

  describe("exit status", function()
    local usage_cases = {
      { "no command", {} },
      { "an unknown flag", { "tasks", "job-10", "--bogus" } },
      { "a missing JOB_ID", { "tasks" } },
      { "an unknown output format", { "tasks", "job-10", "--output", "xml" } },
      { "an unknown status", { "tasks", "job-10", "--status", "DONE" } },
      { "an unknown field", { "tasks", "job-10", "--fields", "DeviceName,Colour" } },
      { "a non-positive interval", { "watch", "job-10", "--interval", "0" } },
      { "a bad timeout", { "--timeout", "soon", "summary", "job-10" } },
      { "an empty JOB_ID", { "tasks", "" } },
      { "an empty instance id", { "--instance", "", "tasks", "job-10" } },
      { "a negative interval (not an option '-1')", { "watch", "job-10", "--interval", "-1" } },
      { "a region the library refuses, given after the command", { "summary", "job-10", "--region", "CN_X" } },
      { "jobs without --firmware", { "jobs" } },
      { "a jobs --device without its product", { "jobs", "--firmware", "FW-x", "--device", "dev-1" } },
      { "an API parameter without a value", { "call", "QueryOTAJob", "--JobId" } },
      { "a list parameter with a gap", { "call", "ReupgradeOTATask", "--TaskId.1", "a", "--TaskId.3", "b" } },
      { "help on an unknown command", { "help", "deploy" } },
      { "an unknown shell", { "completion", "tcsh" } },
    }
    for _, case in ipairs(usage_cases) do
      it("is 2 with the usage for " .. case[1], function()
        h.assert_usage(run(case[2]))
        assert.are.same({}, H.emu:log())   -- nothing was sent
      end)
    end

    it("is 0 for --help and help, each command's help listing the global options too", function()
      local out, _, code = run{ "tasks", "--help" }
      assert.are.equal(0, code)
      assert.truthy(out:find("^Usage: aliyun%-ota tasks"))
      assert.truthy(out:find("\nGlobal options (before or after the command):\n", 1, true), out)
      assert.truthy(out:find("\n   --profile <name>", 1, true), out)
      local again, _, code2 = run{ "help", "tasks" }
      assert.are.equal(0, code2)
      assert.are.equal(out, again)
      local top = run{ "help" }
      assert.truthy(top:find("^Usage: aliyun%-ota "))
      for _, command in ipairs({ "tasks", "summary", "watch", "jobs", "call", "help", "completion" }) do
        assert.truthy(top:find("\n   " .. command .. " ", 1, true), command)
      end
    end)

    it("is 1 with one line (code, message, RequestId, no secret) for a wrong secret", function()
      local out, err, code = run({ "tasks", "demo-job" }, { secret = "wrong-" .. helpers.ak.access_key_secret })
      assert.are.equal(1, code)
      local line = assert_one_error_line(out, err)
      assert.truthy(line:find("^aliyun%-ota: SignatureDoesNotMatch: "), line)
      assert.truthy(line:find("RequestId %x+%-"), line)
      assert.is_nil(line:find("wrong-", 1, true))
    end)

    it("is 1 for an unknown job", function()
      local out, err, code = run{ "summary", "no-such-job" }
      assert.are.equal(1, code)
      local line = assert_one_error_line(out, err)
      assert.truthy(line:find("OtaJobNotExist", 1, true), line)
      assert.truthy(line:find("RequestId", 1, true), line)
    end)

    it("is 1 without credentials", function()
      local out, err, code = run({ "tasks", "demo-job" }, { id = false })
      assert.are.equal(1, code)
      assert.truthy(assert_one_error_line(out, err):find("SDK.MissingCredentials", 1, true))
    end)

    it("is 1 for a profile the library cannot use, -p or --profile, before or after the command", function()
      for _, argv in ipairs({ { "--profile", "no-such-profile", "tasks", "demo-job" },
                              { "tasks", "demo-job", "-p", "no-such-profile" } }) do
        local out, err, code = run(argv)
        assert.are.equal(1, code)
        local line = assert_one_error_line(out, err)
        assert.truthy(line:find('profile "no-such-profile" not found', 1, true), line)
      end
    end)

    it("is 1 when nothing listens at the endpoint", function()
      local out, err, code = run({ "--endpoint", "http://127.0.0.1:9", "tasks", "demo-job" }, { no_endpoint = true })
      assert.are.equal(1, code)
      assert.truthy(assert_one_error_line(out, err):find("SDK.ConnectionFailed", 1, true))
    end)

    it("is 1 when the service is slower than --timeout", function()
      H.emu:faults{ latency_ms = 1500 }
      local out, err, code = run{ "--timeout", "0.3", "summary", "demo-job" }
      assert.are.equal(1, code)
      assert.truthy(assert_one_error_line(out, err):find("SDK.Timeout", 1, true))
    end)
  end)

end)
