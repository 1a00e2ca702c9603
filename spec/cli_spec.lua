-- bin/aliyun-ota run as a person would: as a child process against the
-- emulator, piped into a JSON parser and an RFC 4180 CSV parser, and in a
-- pseudo-terminal under tmux (progress line, aligned table fitted to the
-- terminal, Ctrl-C, bash completion). Exit statuses: spec/cli_exit_spec.lua;
-- the commands jobs and call, the launcher and the instance id:
-- spec/cli_commands_spec.lua.
local helpers = require("helpers")
local h = require("cli_helpers")
local cjson = require("cjson")
local jobs = helpers.jobs

local DEFAULT_FIELDS = { "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion",
                         "TaskDesc", "TaskId", "UtcModified" }
local lines_of, parse_csv, assert_tasks, width = h.lines_of, h.parse_csv, h.assert_tasks, h.width
local range = helpers.range

describe("aliyun-ota", function()
  local H = h.use_harness()
  local function run(args, env) return H:run(args, env) end
  local function start_pane(args, env, opts) return H:start_pane(args, env, opts) end


  describe("piped", function()
    it("writes every task of job-2500 once as one JSON document, fields in order", function()
      local out, err, code = run{ "tasks", "job-2500", "--output", "json" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local doc = cjson.decode(out)
      assert_tasks("job-2500", range(2500), doc, DEFAULT_FIELDS)
      local keys = {}
      for key in out:match("\n(%b{})"):gmatch('"(%w+)":') do keys[#keys + 1] = key end
      assert.are.same(DEFAULT_FIELDS, keys)
    end)

    it("lists a job past the paging cap by device, every task once, as jsonl #slow #big", function()
      local job = "job-250000-mix-SUCCEEDED:160000,IN_PROGRESS:40000,FAILED:30000,QUEUED:20000"
      H.emu:faults{ log = 0 }
      local out, err, code = run{ "--rate-limit", "off", "tasks", job, "--output", "jsonl",
                                  "--fields", "TaskId,TaskStatus" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local seen, n, by_status = {}, 0, {}
      for line in out:gmatch("[^\n]+") do
        local t = cjson.decode(line)
        assert.is_nil(seen[t.TaskId], "twice: " .. tostring(t.TaskId))
        seen[t.TaskId] = true
        n = n + 1
        by_status[t.TaskStatus] = (by_status[t.TaskStatus] or 0) + 1
      end
      assert.are.equal(250000, n)
      assert.are.same({ SUCCEEDED = 160000, IN_PROGRESS = 40000, FAILED = 30000, QUEUED = 20000 }, by_status)
    end)

    it("writes an empty job as an empty array", function()
      local out, err, code = run{ "tasks", "job-0", "--output", "json" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      assert.are.same({}, cjson.decode(out))
    end)

    it("writes jsonl, one task per line, listing several statuses one after the other", function()
      local out, err, code = run{ "tasks", "job-2500", "--output", "jsonl", "--status", "FAILED",
                                  "--status", "in_progress", "--fields", "TaskId,TaskStatus,Timeout" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local expected = {}
      for _, status in ipairs({ "FAILED", "IN_PROGRESS" }) do
        for i = 1, 2500 do
          if jobs.status_of(i) == status then expected[#expected + 1] = i end
        end
      end
      local rows = {}
      for _, line in ipairs(lines_of(out)) do rows[#rows + 1] = cjson.decode(line) end
      assert_tasks("job-2500", expected, rows, { "TaskId", "TaskStatus", "Timeout" })
    end)

    it("writes RFC 4180 CSV: every task once, --fields order, descriptions round-trip", function()
      local fields = { "TaskId", "TaskDesc", "DeviceName", "Progress" }
      local out, err, code = run{ "tasks", "job-2500", "--output", "csv", "--fields", table.concat(fields, ",") }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local records = parse_csv(out)
      assert.are.same(fields, table.remove(records, 1))
      local rows, descriptions = {}, {}
      for k, r in ipairs(records) do
        assert.are.equal(#fields, #r, "record " .. k)
        local row = {}
        for c, f in ipairs(fields) do row[f] = r[c] end
        rows[k] = row
        descriptions[row.TaskDesc] = true
      end
      assert_tasks("job-2500", range(2500), rows, fields)
      for _, desc in ipairs(jobs.FAILED_DESCRIPTIONS) do assert.is_true(descriptions[desc], desc) end
      assert.is_truthy(out:find('"device offline, upgrade timed out (30 min)"', 1, true))
    end)

    it("lists only the tasks of the given devices", function()
      local out, _, code = run{ "tasks", "job-2500", "--output", "jsonl", "--device", "dev@5.lab",
                                "--device", "gw:000009_a-b.c", "--device", "device-002500" }
      assert.are.equal(0, code)
      local rows = {}
      for _, line in ipairs(lines_of(out)) do rows[#rows + 1] = cjson.decode(line) end
      assert_tasks("job-2500", { 5, 9, 2500 }, rows, DEFAULT_FIELDS)
    end)

    it("writes a table with a header, a rule and one row per task", function()
      local out, err, code = run{ "tasks", "demo-job" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local lines = lines_of(out)
      assert.are.equal(42, #lines)
      assert.truthy(lines[1]:match("^DeviceName%s+TaskStatus%s+Progress"))
      assert.truthy(lines[2]:match("^%-+  %-+"))
      assert.truthy(lines[3]:match("^thermostat%-lobby%-01%s+SUCCEEDED%s+100%.00"))
    end)

    it("fits the default table to COLUMNS when it is set, also piped", function()
      local out, err, code = run({ "tasks", "demo-job" }, { COLUMNS = "80" })
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local lines = lines_of(out)
      assert.are.equal(42, #lines)
      assert.are.same({ "DeviceName", "TaskStatus", "Progress", "TaskDesc" },
                      helpers.collect(lines[1]:gmatch("%S+")))
      for _, line in ipairs(lines) do assert.is_true(width(line) <= 80, line) end
    end)

    it("summarises demo-job: counts, bars, tasks in progress, failures by description", function()
      local out, err, code = run{ "summary", "demo-job" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local job = jobs.parse("demo-job")
      assert.truthy(out:find("Job demo-job: 40 tasks, 24 final (60.0%), 16 not final", 1, true))
      for _, status in ipairs(jobs.STATUSES) do
        local n = jobs.count(job, status)
        local bar, count, pct = out:match("\n  " .. status .. "%s+([^%d]-)%s+(%d+)%s+([%d.]+)%%\n")
        assert.are.equal(n, tonumber(count), status)
        assert.are.equal(string.format("%.1f", 100 * n / 40), pct)
        assert.truthy(bar:find("█", 1, true), status)
      end
      assert.truthy(out:find("In progress (6):", 1, true))
      assert.truthy(out:match("\n  thermostat%-floor1%-02 +[█▏▎▍▌▋▊▉░]+ +16%.80%%\n"))
      assert.truthy(out:find("Failures by description (6):\n  2  report version is not conform\n", 1, true))
      assert.truthy(out:find("\n  1  下载失败：固件校验错误\n", 1, true))
    end)

    it("draws ASCII bars when the locale is not UTF-8", function()
      local out, _, code = run({ "summary", "demo-job" }, { LANG = "C" })
      assert.are.equal(0, code)
      assert.truthy(out:match("\n  SUCCEEDED    ################ +16   40%.0%%\n"))
      assert.is_nil(out:find("█", 1, true))
    end)

    it("watch: exits 0 after one draw when every task is already final", function()
      local t0 = os.time()
      local out, err, code = run{ "watch", "job-30-SUCCEEDED", "--interval", "0.2" }
      assert.are.equal(0, code)
      assert.are.equal("", err)
      local _, draws = out:gsub("Job job%-30%-SUCCEEDED:", "")
      assert.are.equal(1, draws)
      assert.truthy(out:find("Every task is in a final state.", 1, true))
      -- One draw already shows it did not wait for a second interval; the
      -- bound only has to hold without memcheck's tenfold slowdown.
      assert.truthy(os.time() - t0 <= (os.getenv("AIOT_SANITIZER") and 20 or 2))
    end)
  end)

  describe("in a terminal", function()
    it("shows a progress line while listing, then leaves only the aligned table", function()
      H.emu:faults{ latency_ms = 30 }
      -- 175 columns: every default field at its own width, none grown or cut.
      local pane = start_pane({ "tasks", "job-3000" }, nil, { width = 175 })
      local progress = "\npage %d+ · %d+/3000 tasks"
      assert.truthy(pane:wait_for(function(s) return s:find(progress) end), "no progress line")
      assert.truthy(pane:wait_for(function(s) return s:find(progress .. " · %d+/s · ETA %d") end),
                    "no rate and ETA in the progress line")
      assert.are.equal(0, pane:status())

      local history = pane:history()
      assert.is_nil(history:find("\npage %d+ "), "the progress line was not cleared")
      local lines = lines_of(history)
      assert.truthy(lines[1]:match("^DeviceName%s+TaskStatus"))
      -- Every row, wide Chinese and ellipsis-truncated descriptions included,
      -- puts its TaskId at the column of the header's "TaskId".
      local column = width(lines[1]:sub(1, lines[1]:find("TaskId", 1, true) - 1))
      local rows, chinese, truncated, last = 0, 0, 0, nil
      for _, line in ipairs(lines) do
        local at = line:find("job-3000-T", 1, true)
        if at then
          rows, last = rows + 1, line
          assert.are.equal(column, width(line:sub(1, at - 1)), line)
          if line:find("下载失败", 1, true) then chinese = chinese + 1 end
          if line:find("device offline, upgrade timed out (…", 1, true) then truncated = truncated + 1 end
        end
      end
      assert.are.equal(3000, rows)
      assert.are.equal(90, chinese)      -- 450 FAILED tasks, every fifth description
      assert.are.equal(90, truncated)
      assert.truthy(last:find("job-3000-T0003000", 1, true))
    end)

    -- The lines of the pane's whole history, joined where they wrapped,
    -- without the empty rows below the last; and the widest of them.
    local function written(pane)
      local lines = lines_of(pane:history())
      while #lines > 0 and lines[#lines] == "" do lines[#lines] = nil end
      return lines
    end
    local function widest(pane)
      local most = 0
      for _, line in ipairs(written(pane)) do most = math.max(most, width(line)) end
      return most
    end

    for _, case in ipairs({
      { 80, { "DeviceName", "TaskStatus", "Progress", "TaskDesc" } },
      { 120, { "DeviceName", "TaskStatus", "Progress", "TaskDesc", "UtcModified" } },
    }) do
      local columns, header = case[1], case[2]
      it("fits the default table to a terminal " .. columns .. " columns wide", function()
        local pane = start_pane({ "tasks", "demo-job" }, nil, { width = columns })
        assert.are.equal(0, pane:status())
        local lines = written(pane)
        assert.are.same(header, helpers.collect(lines[1]:gmatch("%S+")))
        assert.are.equal(42, #lines)
        assert.is_true(widest(pane) <= columns, "a line is wider than the pane: " .. widest(pane))
        -- A description cut to fit ends with the ellipsis.
        assert.truthy(pane:history():find("device offline, upgrade timed out", 1, true) or
                      pane:history():find("…", 1, true))
      end)
    end

    it("shows every field asked for, however wide, and fits jobs too", function()
      local pane = start_pane({ "tasks", "demo-job", "--fields", "DeviceName,TaskId,UtcCreate,IotId" }, nil,
                              { width = 80 })
      assert.are.equal(0, pane:status())
      assert.are.same({ "DeviceName", "TaskId", "UtcCreate", "IotId" },
                      helpers.collect(lines_of(pane:history())[1]:gmatch("%S+")))
      pane = start_pane({ "jobs", "--firmware", "FW-EmuSensor-1.1.0" }, nil, { width = 80 })
      assert.are.equal(0, pane:status())
      assert.are.equal(102, #written(pane))
      assert.is_true(widest(pane) <= 80)
    end)

    it("completes commands and options in bash from `aliyun-ota completion bash`", function()
      -- An interactive bash with the checkout's bin/ on PATH: the launcher
      -- finds the library beside itself, no LUA_PATH needed.
      local pane = H:pane("env -u LUA_PATH -u LUA_CPATH PATH=" .. h.q(H.cwd .. "/bin:" .. os.getenv("PATH"))
        .. " PS1='$ ' HOME=" .. h.q(H.tmp) .. " bash --norc --noprofile -i", { width = 100 })
      pane:keys(h.q("source <(aliyun-ota completion bash); complete -p aliyun-ota") .. " Enter")
      assert.truthy(pane:wait_for(function(s) return s:find("%-F _aliyun%-ota aliyun%-ota\n") end),
                    "the completion was not loaded: " .. pane:screen())
      pane:keys(h.q("aliyun-ota ta") .. " Tab")
      assert.truthy(pane:wait_for(function(s) return s:find("%$ aliyun%-ota tasks \n") end),
                    "no completion of 'ta': " .. pane:screen())
      pane:keys(h.q("--out") .. " Tab")
      assert.truthy(pane:wait_for(function(s) return s:find("aliyun%-ota tasks %-%-output \n") end),
                    "no completion of '--out': " .. pane:screen())
      pane:keys("C-u " .. h.q("exit") .. " Enter")
      assert.are.equal(0, pane:status(10))
    end)

    it("watch: Ctrl-C during the wait exits 130 at once, without a traceback", function()
      local pane = start_pane{ "watch", "job-100", "--interval", "30" }
      assert.truthy(pane:wait_for(function(s) return s:find("Ctrl-C to stop", 1, true) end), "no summary drawn")
      local screen = pane:screen()
      assert.truthy(screen:find("Job job-100: 100 tasks", 1, true))
      assert.truthy(screen:find("IN_PROGRESS  ██████ ", 1, true))
      local t0 = os.time()
      pane:keys("C-c")
      assert.are.equal(130, pane:status(5))
      assert.truthy(os.time() - t0 <= (os.getenv("AIOT_SANITIZER") and 20 or 2))
      local after = pane:history()
      assert.is_nil(after:find("traceback", 1, true))
      assert.is_nil(after:find("interrupted!", 1, true))
    end)

    it("tasks: Ctrl-C in the middle of a listing exits 130 and clears the progress line", function()
      H.emu:faults{ latency_ms = 30 }
      local pane = start_pane{ "tasks", "job-20000" }
      assert.truthy(pane:wait_for(function(s) return s:find("\npage %d+ ") end), "no progress line")
      pane:keys("C-c")
      assert.are.equal(130, pane:status(5))
      local after = pane:history()
      assert.is_nil(after:find("\npage %d+ "))
      assert.is_nil(after:find("traceback", 1, true))
      assert.is_nil(after:find("interrupted!", 1, true))
      helpers.assert_no_secret(after)
    end)
  end)
end)
