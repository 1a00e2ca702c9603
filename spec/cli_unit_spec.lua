-- The modules of aliyun-ota (aliyun.iot.cli) in-process: text width, the
-- four writers line by line, argument parsing, the progress line, and
-- cli.main against the bundled emulator with its stdout and stderr captured.
-- (spec/cli_spec.lua runs bin/aliyun-ota itself, piped and in a terminal.)
local helpers = require("helpers")
local cjson = require("cjson")
local iot = require("aliyun.iot")
local cli = require("aliyun.iot.cli")
local args = require("aliyun.iot.cli.args")
local fields = require("aliyun.iot.cli.fields")
local progress = require("aliyun.iot.cli.progress")
local summary = require("aliyun.iot.cli.summary")
local text = require("aliyun.iot.cli.width")
local writers = require("aliyun.iot.cli.writers")
local errors = require("aliyun.iot.errors")
local core = require("aliyun.iot.core")
local jobs = helpers.jobs

-- An output handle keeping what is written; fail = "message" makes every
-- write fail the way a Lua file reports it.
local function buffer(fail)
  local b = { parts = {} }
  function b.write(self, ...)
    if fail then return nil, fail end
    for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function b.flush(self) return self end
  function b.text(self) return table.concat(self.parts) end
  return b
end

-- The lines of s, each ended by "\n".
local function lines_of(s) return helpers.collect(s:gmatch("([^\n]*)\n")) end

local function sp(n) return string.rep(" ", n) end

-- Sample tasks: plain ASCII, a Chinese description (two columns a
-- character), one to be cut, quotes and a line break, a field missing.
local TASKS = {
  { DeviceName = "thermostat-lobby-01", TaskStatus = "SUCCEEDED", Progress = "100.00",
    TaskDesc = "", TaskId = "demo-job-T0000001" },
  { DeviceName = "hvac_ctrl.north", TaskStatus = "FAILED", Progress = "0.00",
    TaskDesc = "下载失败：固件校验错误", TaskId = "demo-job-T0000009" },
  { DeviceName = "gw/floor1", TaskStatus = "FAILED", Progress = "0.00",
    TaskDesc = "升级超时，请稍后重试：设备离线超过三十分钟", TaskId = "demo-job-T0000010" },
  { DeviceName = "sensor-co2-102", TaskStatus = "IN_PROGRESS", Progress = "16.80",
    TaskDesc = 'say "retry",\nthen wait', TaskId = "demo-job-T0000022" },
}
local FIELDS = { "DeviceName", "TaskStatus", "Progress", "TaskDesc", "Timeout" }

-- Everything one writer writes for TASKS.
local function write_all(format, ellipsis)
  local out = buffer()
  local w = writers.new(format, FIELDS, function(...) out:write(...) end, ellipsis)
  w.header()
  for _, t in ipairs(TASKS) do w.task(t) end
  w.finish()
  return out:text()
end

describe("cli width", function()
  it("counts display columns: wide characters two, combining marks none", function()
    assert.are.equal(5, text.width("hello"))
    assert.are.equal(8, text.width("下载失败"))
    assert.are.equal(4, text.width("ＡＢ"))            -- fullwidth forms
    assert.are.equal(1, text.width("e\204\129"))      -- e + U+0301 combining acute
    assert.are.equal(2, text.width("😀"))
    assert.are.equal(1, text.width("…"))
  end)

  it("makes values printable: control characters a space, bad UTF-8 a question mark", function()
    assert.are.equal("a b c", text.printable("a\nb\tc"))
    assert.are.equal("x [31m", text.printable("x\27[31m"))
    assert.are.equal("a b", text.printable("a\194\133b"))   -- C1 NEL
    assert.are.equal("ab?", text.printable("ab\255"))
    assert.are.equal("", text.printable(nil))
    assert.are.equal("42", text.printable(42))
    assert.is_false(text.valid_utf8("\237\160\128"))   -- a surrogate
    assert.is_false(text.valid_utf8("\192\128"))       -- overlong
    assert.is_true(text.valid_utf8("下载"))
  end)

  it("fits text to a width, cutting whole characters before the ellipsis", function()
    assert.are.same({ "short", 5 }, { text.fit("short", 10, "…") })
    assert.are.same({ "abcdefg…", 8 }, { text.fit("abcdefghij", 8, "…") })
    assert.are.same({ "abcde...", 8 }, { text.fit("abcdefghij", 8) })
    -- 3 columns left for "下载失败": one wide character fits, the next would not.
    assert.are.same({ "下…", 3 }, { text.fit("下载失败", 4, "…") })
    assert.are.same({ "下载…", 5 }, { text.fit("下载失败", 5, "…") })
  end)

  it("pads cells to exactly their width, left or right aligned", function()
    assert.are.equal("ab   ", text.cell("ab", 5))
    assert.are.equal("   ab", text.cell("ab", 5, true))
    assert.are.equal("下载 ", text.cell("下载", 5))
    assert.are.equal("下载…", text.cell("下载失败", 5, false, "…"))
  end)
end)

describe("cli writers", function()
  it("csv: RFC 4180 records, CRLF, quoted where needed, absent fields empty", function()
    assert.are.equal(table.concat({
      "DeviceName,TaskStatus,Progress,TaskDesc,Timeout\r\n",
      "thermostat-lobby-01,SUCCEEDED,100.00,,\r\n",
      "hvac_ctrl.north,FAILED,0.00,下载失败：固件校验错误,\r\n",
      "gw/floor1,FAILED,0.00,升级超时，请稍后重试：设备离线超过三十分钟,\r\n",
      'sensor-co2-102,IN_PROGRESS,16.80,"say ""retry"",\nthen wait",\r\n',
    }), write_all("csv"))
  end)

  it("jsonl: one object per line, keys in --fields order, absent fields null, / unescaped", function()
    assert.are.same({
      '{"DeviceName":"thermostat-lobby-01","TaskStatus":"SUCCEEDED","Progress":"100.00",'
        .. '"TaskDesc":"","Timeout":null}',
      '{"DeviceName":"hvac_ctrl.north","TaskStatus":"FAILED","Progress":"0.00",'
        .. '"TaskDesc":"下载失败：固件校验错误","Timeout":null}',
      '{"DeviceName":"gw/floor1","TaskStatus":"FAILED","Progress":"0.00",'
        .. '"TaskDesc":"升级超时，请稍后重试：设备离线超过三十分钟","Timeout":null}',
      '{"DeviceName":"sensor-co2-102","TaskStatus":"IN_PROGRESS","Progress":"16.80",'
        .. '"TaskDesc":"say \\"retry\\",\\nthen wait","Timeout":null}',
    }, lines_of(write_all("jsonl")))
  end)

  it("json: one array written element by element; empty is []", function()
    local out = write_all("json")
    local lines = lines_of(out)
    assert.are.equal(6, #lines)
    assert.are.equal("[", lines[1])
    assert.are.equal("]", lines[6])
    for i = 2, 4 do assert.are.equal(",", lines[i]:sub(-1)) end
    local doc = cjson.decode(out)
    assert.are.equal("下载失败：固件校验错误", doc[2].TaskDesc)
    assert.are.equal(cjson.null, doc[4].Timeout)
    local empty = buffer()
    local w = writers.new("json", FIELDS, function(...) empty:write(...) end)
    w.header(); w.finish()
    assert.are.equal("[]\n", empty:text())
  end)

  it("table: columns by display width, wide text cut with the ellipsis, no trailing blanks", function()
    -- DeviceName 32, TaskStatus 11, Progress 8 (its header), TaskDesc 36, Timeout 7; two blanks between.
    assert.are.same({
      "DeviceName" .. sp(22) .. "  TaskStatus   Progress  TaskDesc" .. sp(28) .. "  Timeout",
      string.rep("-", 32) .. "  " .. string.rep("-", 11) .. "  " .. string.rep("-", 8) .. "  "
        .. string.rep("-", 36) .. "  " .. string.rep("-", 7),
      "thermostat-lobby-01" .. sp(13) .. "  SUCCEEDED      100.00",
      "hvac_ctrl.north" .. sp(17) .. "  FAILED           0.00  下载失败：固件校验错误",
      -- 42 columns of Chinese into 36: 17 characters (34 columns) and "…".
      "gw/floor1" .. sp(23) .. "  FAILED           0.00  升级超时，请稍后重试：设备离线超过…",
      -- The line break shown as a space, so the row stays one line.
      "sensor-co2-102" .. sp(18) .. "  IN_PROGRESS     16.80  say \"retry\", then wait",
    }, lines_of(write_all("table", "…")))
  end)

  it("table: the same cut outside a UTF-8 locale ends with ...", function()
    local lines = lines_of(write_all("table", "..."))
    -- 16 characters (32 columns) and "...", 3 more columns.
    assert.are.equal("gw/floor1" .. sp(23) .. "  FAILED           0.00  升级超时，请稍后重试：设备离线超...", lines[5])
  end)
end)

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

describe("cli progress", function()
  it("draws the part, page, tasks of Total in place, only while more follows", function()
    local err, out = buffer(), buffer()
    local now = 1000
    local p = progress.new{ enabled = true, sep = " · ", stderr = err, stdout = out,
                            clock = function() return now end }
    p.part("[FAILED 1/2]", true)
    p.page({ CurrentPage = 1, Total = 250, tasks = { {}, {} } }, true)
    assert.are.equal("\r\27[K[FAILED 1/2] · page 1 · 2/250 tasks", err:text())
    now = 1002
    p.clear()
    p.page({ CurrentPage = 2, Total = 250, tasks = { {}, {} } }, true)
    assert.are.equal("\r\27[K[FAILED 1/2] · page 1 · 2/250 tasks\r\27[K"
      .. "\r\27[K[FAILED 1/2] · page 2 · 4/250 tasks · 2/s · ETA 2m03s", err:text())
    local before = #err:text()
    p.clear()
    p.page({ CurrentPage = 3, Total = 250, tasks = {} }, false)   -- the last page: nothing drawn
    assert.are.equal(before + #"\r\27[K", #err:text())
    assert.is_false(p.shown)
  end)

  it("formats durations", function()
    assert.are.equal("42s", progress.duration(42))
    assert.are.equal("3m07s", progress.duration(187))
    assert.are.equal("2h05m", progress.duration(2 * 3600 + 5 * 60 + 10))
  end)
end)

describe("cli summary", function()
  it("draws bars with eighths in Unicode, # otherwise, a sliver for any non-zero value", function()
    assert.are.equal("████▌     ", summary.bar(0.45, 10, true))
    assert.are.equal("▏         ", summary.bar(0.001, 10, true))
    assert.are.equal("#####.....", summary.bar(0.45, 10, false, "."))
    assert.are.equal("#         ", summary.bar(0.001, 10, false))
  end)
end)

describe("cli.main", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  -- main's client factory: the options main builds, plus the emulator
  -- account's keys; `wrap(client)` may stand in front of the client.
  local function new_client(wrap)
    return function(opts)
      opts.access_key_id = helpers.ak.access_key_id
      opts.access_key_secret = helpers.ak.access_key_secret
      opts.max_retries, opts.rate_limit = 0, false
      local c, err = iot.new(opts)
      if c and wrap then return wrap(c) end
      return c, err
    end
  end

  -- Run main in-process: status, stdout, stderr. env fields override.
  local function main(argv, env)
    local out, err = buffer(), buffer()
    local full = { "--endpoint", emu.url, "--region", "cn-shanghai" }
    for _, a in ipairs(argv) do full[#full + 1] = a end
    local e = {
      stdout = out, stderr = err,
      getenv = function(name) if name == "LANG" then return "C.UTF-8" end end,
      isatty = function() return false end,
      sleep = function() return false end,
      new_client = new_client(),
    }
    for k, v in pairs(env or {}) do e[k] = v end
    local status = cli.main(full, e)
    helpers.assert_no_secret(out:text())
    helpers.assert_no_secret(err:text())
    return status, out:text(), err:text()
  end

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
      for _, f in ipairs(fields.DEFAULT) do
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
