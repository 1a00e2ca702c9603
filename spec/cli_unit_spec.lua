-- aliyun-ota in-process: argument parsing, and cli.main against the bundled
-- emulator with its stdout and stderr captured. (spec/cli_spec.lua and
-- spec/cli_commands_spec.lua run bin/aliyun-ota itself; spec/cli_text_spec.lua
-- the writers, widths and the progress line.)
local helpers = require("helpers")
local h = require("cli_helpers")
local cjson = require("cjson")
local cli = require("aliyun.iot.cli")
local args = require("aliyun.iot.cli.args")
local fields = require("aliyun.iot.cli.fields")
local errors = require("aliyun.iot.errors")
local core = require("aliyun.iot.core")
local jobs = helpers.jobs

local buffer, lines_of = h.buffer, h.lines_of
local function sp(n) return string.rep(" ", n) end

describe("cli args", function()
  it("parses a tasks command: defaults, statuses upper-cased, fields in the API's spelling", function()
    local a = assert(args.parse{ "--region", "cn-shanghai", "tasks", "job-1", "--status", "failed",
                                 "--status", "CANCELED", "--fields", "taskid, devicename" })
    assert.are.equal("tasks", a.command)
    assert.are.equal("job-1", a.job_id)
    assert.are.equal("cn-shanghai", a.region)
    assert.are.equal("table", a.output)
    assert.are.same({ "FAILED", "CANCELED" }, a.status)
    assert.are.same({ "TaskId", "DeviceName" }, a.fields)
    assert.are.equal(5, assert(args.parse{ "watch", "job-1" }).interval)
    assert.are.equal(0.5, assert(args.parse{ "--timeout", "0.5", "summary", "job-1" }).timeout)
  end)

  local usage_cases = {
    { {}, "^Usage: aliyun%-ota ", "a command is required" },
    { { "tasks", "job-10", "--bogus" }, "^Usage: aliyun%-ota tasks", "unknown option '--bogus'" },
    { { "tasks" }, "^Usage: aliyun%-ota tasks", "missing argument 'job_id'" },
    { { "tasks", "job-10", "--output", "xml" }, "^Usage: aliyun%-ota tasks", "unknown output format 'xml'" },
    { { "tasks", "job-10", "--status", "DONE" }, "^Usage: aliyun%-ota tasks", "unknown status 'DONE'" },
    { { "tasks", "job-10", "--fields", "DeviceName,Colour" }, "^Usage: aliyun%-ota tasks", "unknown field 'Colour'" },
    { { "tasks", "job-10", "--fields", "TaskId,taskid" }, "^Usage: aliyun%-ota tasks", "field TaskId given twice" },
    { { "tasks", "job-10", "--device", "" }, "^Usage: aliyun%-ota tasks", "a device name must not be empty" },
    { { "watch", "job-10", "--interval", "0" }, "^Usage: aliyun%-ota watch",
      "--interval must be a positive number of seconds, got '0'" },
    { { "--timeout", "soon", "summary", "job-10" }, "^Usage: aliyun%-ota ",
      "--timeout must be a positive number of seconds, got 'soon'" },
    { { "watch", "job-10", "--interval", "-1" }, "^Usage: aliyun%-ota watch",
      "--interval must be a positive number of seconds, got '-1'" },
    { { "summary", "job-10", "--timeout", "-.5" }, "^Usage: aliyun%-ota summary",
      "--timeout must be a positive number of seconds, got '-.5'" },
    { { "tasks", "" }, "^Usage: aliyun%-ota tasks", "JOB_ID must not be empty" },
    { { "--instance", "", "tasks", "j" }, "^Usage: aliyun%-ota ", "--instance must not be empty" },
    { { "tasks", "j", "-p", "" }, "^Usage: aliyun%-ota tasks", "--profile must not be empty" },
    { { "tasks", "j", "--output", "cols=TaskId", "--fields", "TaskId" }, "^Usage: aliyun%-ota tasks",
      "--output cols=... and --fields both name the fields" },
    { { "jobs", "--firmware", "f", "--device", "nobody" }, "^Usage: aliyun%-ota jobs",
      "--device must be PRODUCT_KEY/DEVICE_NAME, got 'nobody'" },
    { { "jobs" }, "^Usage: aliyun%-ota jobs", "missing option '--firmware'" },
    { { "call", "queryOTAJob" }, "^Usage: aliyun%-ota call", "ACTION must be an API name such as QueryOTAJob" },
    { { "call", "QueryOTAJob", "--JobId" }, "^Usage: aliyun%-ota call", "--JobId needs a value" },
    { { "call", "--JobId", "x", "QueryOTAJob" }, "^Usage: aliyun%-ota call", "unknown option '--JobId'" },
    { { "completion", "tcsh" }, "^Usage: aliyun%-ota completion", "argument 'shell' must be one of" },
  }
  for _, case in ipairs(usage_cases) do
    local argv, usage, message = case[1], case[2], case[3]
    it("gives status 2 and the usage for: " .. message, function()
      local a, outcome = args.parse(argv)
      assert.is_nil(a)
      assert.are.equal(2, outcome.status)
      assert.are.equal("stderr", outcome.stream)
      assert.truthy(outcome.text:find(usage), outcome.text)
      assert.truthy(outcome.text:find("\n\nError: " .. message, 1, true), outcome.text)

      local out, err = buffer(), buffer()
      assert.are.equal(2, cli.main(argv, { stdout = out, stderr = err }))
      assert.are.equal("", out:text())
      assert.are.equal(outcome.text, err:text())
    end)
  end

  it("takes the global options before or after the command, -p for --profile; after wins", function()
    local a = assert(args.parse{ "-p", "before", "--region", "cn-hangzhou", "tasks", "j", "--region", "cn-shanghai",
                                 "--rate-limit", "off", "--retries", "0" })
    assert.are.equal("before", a.profile)
    assert.are.equal("cn-shanghai", a.region)
    assert.is_false(a.rate_limit)
    assert.are.equal(0, a.retries)
    a = assert(args.parse{ "summary", "j", "-p", "after" })
    assert.are.equal("after", a.profile)
    for key in pairs(a) do assert.is_nil(key:find("^after_command_"), key) end
  end)

  it("takes --endpoint as a bare host (HTTPS) or a URL, --output cols= as a table of fields", function()
    assert.are.equal("https://iot.cn-shanghai.aliyuncs.com",
                     assert(args.parse{ "--endpoint", "iot.cn-shanghai.aliyuncs.com", "summary", "j" }).endpoint)
    local function endpoint(e) return assert(args.parse{ "summary", "j", "--endpoint", e }).endpoint end
    assert.are.equal("https://127.0.0.1:8443", endpoint("127.0.0.1:8443"))
    assert.are.equal("http://127.0.0.1:1", endpoint("http://127.0.0.1:1"))
    local a = assert(args.parse{ "tasks", "j", "--output", "cols=taskid,TaskStatus" })
    assert.are.equal("table", a.output)
    assert.are.same({ "TaskId", "TaskStatus" }, a.fields)
  end)

  it("hands call its API parameters as Name=VALUE, values that look like options included", function()
    local a = assert(args.parse{ "call", "ListOTATaskByJob", "--JobId", "j", "--PageSize=-1", "--TaskId", "--x",
                                 "--dry-run", "--region", "cn-shanghai" })
    assert.are.equal("ListOTATaskByJob", a.action)
    assert.are.same({ "JobId=j", "PageSize=-1", "TaskId=--x" }, a.params)
    assert.is_true(a.dry_run)
    assert.are.equal("cn-shanghai", a.region)
  end)

  it("--version writes what it is given; completion scripts name every command", function()
    for _, argv in ipairs({ { "--version" }, { "tasks", "--version" } }) do
      local a, outcome = args.parse(argv, { version = function() return "v\n" end })
      assert.is_nil(a)
      assert.are.same({ 0, "stdout", "v\n" }, { outcome.status, outcome.stream, outcome.text })
    end
    local bash, zsh = args.completion("bash"), args.completion("zsh")
    assert.truthy(bash:find("\ncomplete %-F _aliyun%-ota %-o bashdefault %-o default aliyun%-ota\n"), bash)
    assert.truthy(zsh:find("^#compdef aliyun%-ota\n"), zsh)
    for _, command in ipairs({ "tasks", "summary", "watch", "jobs", "call", "help", "completion" }) do
      assert.truthy(bash:find("\n%s+" .. command .. "%)\n"), command)
      assert.truthy(zsh:find('"' .. command .. ":", 1, true), command)
    end
  end)

  it("gives status 0 and the help on stdout for --help, without exiting", function()
    local a, outcome = args.parse{ "tasks", "--help" }
    assert.is_nil(a)
    assert.are.equal(0, outcome.status)
    assert.are.equal("stdout", outcome.stream)
    assert.truthy(outcome.text:find("^Usage: aliyun%-ota tasks"))
    assert.truthy(outcome.text:find("\n   -h, --help            Show this help message and exit.\n", 1, true))
    local out = buffer()
    assert.are.equal(0, cli.main({ "--help" }, { stdout = out, stderr = buffer() }))
    assert.truthy(out:text():find("^Usage: aliyun%-ota"))
    assert.truthy(out:text():find("\nCommands:\n", 1, true))
  end)
end)

describe("cli.main", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  local new_client = h.new_client
  local function main(argv, env) return h.main(emu, argv, env) end

  local function decode_lines(s)
    local rows = {}
    for _, line in ipairs(lines_of(s)) do rows[#rows + 1] = cjson.decode(line) end
    return rows
  end

  it("tasks --output jsonl: every task once, in order, the default fields", function()
    local status, out, err = main{ "tasks", "job-250", "--output", "jsonl" }
    assert.are.equal(0, status)
    assert.are.equal("", err)
    local rows = decode_lines(out)
    assert.are.equal(250, #rows)
    for i, row in ipairs(rows) do
      local want = jobs.task("job-250", i)
      for _, f in ipairs(fields.tasks.DEFAULT) do
        assert.are.equal(want[f], row[f], f .. " of task " .. i)
      end
    end
  end)

  it("--status FAILED --status CANCELED: both parts, every task once, though tasks move between them", function()
    local failed_before, moved = {}, {}
    for t in client:tasks{ JobId = "job-100", TaskStatus = "FAILED" } do
      failed_before[#failed_before + 1] = t.TaskId
    end
    for i = 1, 10 do moved[i] = failed_before[i] end
    -- Once the FAILED part has been listed, ten of its tasks become CANCELED
    -- (re-upgraded, then canceled in the queue): the CANCELED part lists them again.
    local wrap = function(c)
      return {
        pages = function(_, p)
          local next_page, s, ctl, close = c:pages(p)
          return function(...)
            local page = next_page(...)
            if page and page.part.index == 1 and page.last_in_part then
              assert(client:call("ReupgradeOTATask", { JobId = "job-100", TaskId = moved }))
              assert(client:call("CancelOTATaskByJob", { JobId = "job-100", CancelQueuedTask = true }))
            end
            return page
          end, s, ctl, close
        end,
        close = function() c:close() end,
      }
    end
    local status, out, err = main({ "tasks", "job-100", "--status", "FAILED", "--status", "CANCELED",
                                    "--output", "jsonl", "--fields", "TaskId,TaskStatus" },
                                  { new_client = new_client(wrap) })
    assert.are.equal(0, status)
    assert.are.equal("", err)

    local want, canceled_after = {}, {}
    for _, id in ipairs(failed_before) do want[id] = "FAILED" end
    for t in client:tasks{ JobId = "job-100", TaskStatus = "CANCELED" } do
      canceled_after[t.TaskId] = true
      want[t.TaskId] = want[t.TaskId] or "CANCELED"
    end
    for _, id in ipairs(moved) do assert.is_true(canceled_after[id], id .. " did not move") end

    -- The FAILED part first, then the CANCELED one without the tasks already written.
    local rows, seen, expected = decode_lines(out), {}, 0
    for _ in pairs(want) do expected = expected + 1 end
    assert.are.equal(expected, #rows)
    for k, row in ipairs(rows) do
      assert.is_nil(seen[row.TaskId], "written twice: " .. row.TaskId)
      seen[row.TaskId] = true
      assert.are.equal(want[row.TaskId], row.TaskStatus, row.TaskId)
      assert.are.equal(k <= #failed_before and "FAILED" or "CANCELED", row.TaskStatus, row.TaskId)
    end
  end)

  it("labels the progress line with the part while stderr is a terminal", function()
    local status, out, err = main({ "tasks", "job-2500", "--status", "CANCELED", "--status", "FAILED",
                                    "--output", "csv", "--fields", "TaskId" },
                                  { isatty = function(fd) return fd == 2 end })
    assert.are.equal(0, status)
    assert.are.equal(125 + 375 + 1, #lines_of((out:gsub("\r\n", "\n"))))
    assert.truthy(err:find("\r\27[K[CANCELED 1/2] · page 1 · 100/125 tasks", 1, true), err)
    assert.truthy(err:find("\r\27[K[CANCELED 1/2] · page 2 · 125/125 tasks", 1, true), err)
    assert.truthy(err:find("\r\27[K[FAILED 2/2] · page 3 · 225/500 tasks", 1, true), err)
    assert.truthy(err:find("\r\27[K[FAILED 2/2] · page 5 · 425/500 tasks", 1, true), err)
    assert.is_nil(err:find("page 6", 1, true))     -- the last page: nothing more to come
    assert.are.equal("\r\27[K", err:sub(-4))     -- and the line erased at the end
  end)

  it("summary: counts of demo-job, ASCII bars outside a UTF-8 locale", function()
    local status, out = main({ "summary", "demo-job" }, { getenv = function() return nil end })
    assert.are.equal(0, status)
    assert.truthy(out:find("^Job demo%-job: 40 tasks, 24 final %(60%.0%%%), 16 not final\n"))
    assert.truthy(out:find("\n  SUCCEEDED    ################" .. sp(24) .. "  16   40.0%\n", 1, true))
    assert.is_nil(out:find("█", 1, true))
  end)

  it("watch: one draw, then 130 when the wait is interrupted", function()
    local slept
    local status, out = main({ "watch", "job-100", "--interval", "7" },
                             { sleep = function(s) slept = s; return false end })
    assert.are.equal(130, status)
    assert.are.equal(7, slept)
    local _, draws = out:gsub("Job job%-100:", "")
    assert.are.equal(1, draws)
    assert.truthy(out:find("every 7s. Ctrl-C to stop.\n", 1, true))
  end)

  it("API errors: status 1, one line on stderr, nothing on stdout", function()
    local status, out, err = main{ "summary", "no-such-job" }
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.truthy(err:find("^aliyun%-ota: iot%.ota%.OtaJobNotExist: .*RequestId [%x-]+%)\n$"), err)
  end)

  -- A client whose listing fails with `e`.
  local function failing(e)
    return function()
      return { pages = function() return function() error(e, 0) end end, close = function() end }
    end
  end

  it("masks the environment's secrets in errors, raw and percent-encoded; not values under 4 characters", function()
    local secret, token = "s3cret/+=value", "abc"
    local e = errors.new("Throttling.User", "echoed " .. secret .. " and " .. core.percent_encode(secret)
      .. "\nand " .. token, { retryable = true })
    local env = {
      new_client = failing(e),
      getenv = function(name)
        return ({ ALIBABA_CLOUD_ACCESS_KEY_SECRET = secret, ALIBABA_CLOUD_SECURITY_TOKEN = token })[name]
      end,
    }
    local status, _, err = main({ "tasks", "job-10" }, env)
    assert.are.equal(1, status)
    assert.are.equal("aliyun-ota: Throttling.User: echoed *** and *** and abc\n", err)
  end)

  it("a failed write: status 1 and why; a reader gone away is raised for the launcher", function()
    local status, _, err = main({ "tasks", "job-10" }, { stdout = buffer("No space left on device") })
    assert.are.equal(1, status)
    assert.are.equal("aliyun-ota: cannot write output: No space left on device\n", err)
    local ok, e = pcall(main, { "tasks", "job-10" }, { stdout = buffer("Broken pipe") })
    assert.is_false(ok)
    assert.is_true(cli.is_broken_pipe(e))
  end)

  it("Ctrl-C (the interpreter's 'interrupted!') is raised for the launcher", function()
    local ok, e = pcall(main, { "tasks", "job-10" }, { new_client = failing("stdin:1: interrupted!") })
    assert.is_false(ok)
    assert.is_true(cli.is_interrupt(e))
  end)

  it("a bug: status 1, 'internal error' in one line, the traceback only with ALIYUN_OTA_DEBUG", function()
    local status, _, err = main({ "tasks", "job-10" }, { new_client = failing("oops\nsecond line") })
    assert.are.equal(1, status)
    assert.are.equal("aliyun-ota: internal error: oops second line\n", err)
    status, _, err = main({ "tasks", "job-10" }, {
      new_client = failing("oops"),
      getenv = function(name) if name == "ALIYUN_OTA_DEBUG" then return "1" end end,
    })
    assert.are.equal(1, status)
    assert.truthy(err:find("stack traceback", 1, true), err)
  end)
end)
