-- bin/aliyun-ota run as a person would: as a child process against the
-- emulator, piped into a JSON parser and an RFC 4180 CSV parser, and in a
-- pseudo-terminal under tmux (progress line, aligned table, Ctrl-C).
local helpers = require("helpers")
local cjson = require("cjson")
local jobs = helpers.jobs

-- Under Lua 5.4 the script runs by its own #! line, as a person runs it;
-- under another interpreter being tested (scripts/matrix-suite sets LUA and
-- BUILD_DIR) it runs with that one, so it loads the core built for it.
local LUA = os.getenv("LUA")
local CLI = (LUA == nil or LUA == "lua5.4") and "bin/aliyun-ota" or (LUA .. " bin/aliyun-ota")
local BUILD_DIR = os.getenv("BUILD_DIR") or "build"
local DEFAULT_FIELDS = { "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion",
                         "TaskDesc", "TaskId", "UtcModified" }

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Output of a shell command, whether it exited 0, and its status. (Lua 5.1
-- pipes do not report an exit status, so the shell is asked for it.)
local function sh(cmd)
  local f = assert(io.popen(cmd .. "; echo \"<exit $?>\"", "r"))
  local out = f:read("*a")
  f:close()
  local text, code = out:match("^(.-)<exit (%d+)>\n$")
  return text, tonumber(code) == 0, tonumber(code)
end

local function sleep(seconds) os.execute(string.format("sleep %.2f", seconds)) end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

local function lines_of(text)
  local list = {}
  for line in text:gmatch("([^\n]*)\n") do list[#list + 1] = line end
  return list
end

-- Display width, as a terminal draws it, of the text our data holds: ASCII,
-- "…" and Chinese (3-byte sequences from U+2E80 up: lead byte E2 with BA+, or above).
-- No utf8 library, so the spec also runs under Lua 5.1 and LuaJIT.
local function width(s)
  local w = 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    local b1, b2 = ch:byte(1, 2)
    local wide = #ch == 3 and (b1 > 0xE2 or (b1 == 0xE2 and b2 >= 0xBA))
    w = w + (wide and 2 or 1)
  end
  return w
end

-- A strict RFC 4180 parser: quoted fields ("" for a quote, may hold commas,
-- CR and LF), records ending in CRLF, no bare CR or LF outside quotes.
local function parse_csv(text)
  local records, record = {}, {}
  local i, n = 1, #text
  local at_field_start = true
  while i <= n do
    local c = text:sub(i, i)
    if at_field_start and c == '"' then
      local parts = {}
      i = i + 1
      while true do
        local j = text:find('"', i, true)
        assert(j, "unterminated quoted field")
        parts[#parts + 1] = text:sub(i, j - 1)
        if text:sub(j + 1, j + 1) == '"' then
          parts[#parts + 1] = '"'
          i = j + 2
        else
          i = j + 1
          break
        end
      end
      record[#record + 1] = table.concat(parts)
      local after = text:sub(i, i)
      assert(after == "," or after == "\r", "text after a closing quote at byte " .. i)
      at_field_start = false
    elseif c == "," then
      if at_field_start then record[#record + 1] = "" end
      at_field_start = true
      i = i + 1
    elseif c == "\r" then
      assert(text:sub(i + 1, i + 1) == "\n", "CR without LF at byte " .. i)
      if at_field_start then record[#record + 1] = "" end
      records[#records + 1] = record
      record, at_field_start = {}, true
      i = i + 2
    else
      assert(at_field_start, "unexpected character at byte " .. i)
      local j = text:find('[,\r\n"]', i) or n + 1
      local stop = text:sub(j, j)
      assert(stop ~= '"' and stop ~= "\n", "quote or bare LF in an unquoted field at byte " .. j)
      record[#record + 1] = text:sub(i, j - 1)
      at_field_start = false
      i = j
    end
  end
  assert(#record == 0, "the last record does not end with CRLF")
  return records
end

-- Every expected task index once, in order, with the given fields' values.
local function assert_tasks(job_id, indices, rows, fields)
  assert.are.equal(#indices, #rows)
  local seen = {}
  for k, i in ipairs(indices) do
    local want, got = jobs.task(job_id, i), rows[k]
    assert.is_nil(seen[got.TaskId], "duplicate " .. tostring(got.TaskId))
    seen[got.TaskId] = true
    for _, f in ipairs(fields) do
      local value = got[f]
      if value == cjson.null then value = nil end
      assert.are.equal(want[f], value, f .. " of task " .. i)
    end
  end
end

local range = helpers.range

describe("aliyun-ota", function()
  local emu, tmp

  -- The child's environment: only the first emulator account, no other
  -- credential source (HOME points at an empty directory).
  local function env_prefix(env)
    env = env or {}
    local parts = {
      "env",
      env.id == false and "-u ALIBABA_CLOUD_ACCESS_KEY_ID -u ALIBABA_CLOUD_ACCESS_KEY_SECRET" or "",
      "-u ALIBABA_CLOUD_SECURITY_TOKEN -u ALIBABA_CLOUD_REGION_ID -u ALIBABA_CLOUD_PROFILE",
      "-u ALIBABA_CLOUD_CONFIG_FILE -u ALIBABA_CLOUD_CREDENTIALS_FILE -u ALIBABA_CLOUD_ECS_METADATA",
      "-u LC_ALL -u LC_CTYPE",
      "HOME=" .. q(tmp),
      "LANG=" .. q(env.LANG or "C.UTF-8"),
      "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'",
      "LUA_CPATH=" .. q("./" .. BUILD_DIR .. "/?.so;;"),
    }
    if env.id ~= false then   -- (env wants its -u options before any NAME=VALUE)
      parts[#parts + 1] = "ALIBABA_CLOUD_ACCESS_KEY_ID=" .. q(env.id or helpers.ak.access_key_id)
      parts[#parts + 1] = "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" .. q(env.secret or helpers.ak.access_key_secret)
    end
    return table.concat(parts, " ")
  end

  local function command(args, env)
    local words = { env_prefix(env), CLI }
    if not (env and env.no_endpoint) then
      words[#words + 1] = "--endpoint " .. q(emu.url) .. " --region cn-shanghai"
    end
    for _, a in ipairs(args) do words[#words + 1] = q(a) end
    return table.concat(words, " ")
  end

  -- Run piped (stdout and stderr are not terminals): stdout, stderr, status.
  local function run(args, env)
    local out_file, err_file = tmp .. "/stdout", tmp .. "/stderr"
    local _, _, code = sh(command(args, env) .. " >" .. out_file .. " 2>" .. err_file .. " </dev/null")
    assert.is_true(code < 128, "the CLI was killed by a signal")
    local out, err = read_file(out_file) or "", read_file(err_file) or ""
    helpers.assert_no_secret(out)
    helpers.assert_no_secret(err)
    return out, err, code
  end

  -- One line on stderr, no traceback, nothing on stdout.
  local function assert_one_error_line(out, err)
    assert.are.equal("", out)
    local lines = lines_of(err)
    assert.are.equal(1, #lines, "expected one line on stderr, got: " .. err)
    assert.is_nil(err:find("traceback", 1, true))
    return lines[1]
  end

  -- tmux on a private socket. Each run is one session: bash runs the CLI,
  -- writes its exit status to a file (tmux's own #{pane_dead_status} proved
  -- unreliable: tmux 3.3a sometimes leaves the exited process unreaped), then
  -- keeps the pane readable for 30 s. teardown kills the server; should the
  -- spec itself be killed, finished sessions still end and the server exits.
  local socket, tmux_conf, cwd
  local sessions = 0

  local function tmux(args)
    return sh("LC_ALL=C.UTF-8 tmux -u -L " .. socket .. " -f " .. tmux_conf .. " " .. args .. " 2>&1")
  end

  local Pane = {}
  Pane.__index = Pane

  local function start_pane(args, env)
    sessions = sessions + 1
    local name = "s" .. sessions
    local status_file = tmp .. "/status-" .. name
    local script = command(args, env) .. "; echo $? > " .. q(status_file) .. "; exec sleep 30"
    local out, ok = tmux("new-session -d -s " .. name .. " -x 220 -y 50 -c " .. q(cwd) .. " "
      .. q("exec bash -c " .. q(script)))
    assert.is_truthy(ok, "tmux new-session failed: " .. tostring(out))
    return setmetatable({ name = name, status_file = status_file }, Pane)
  end

  function Pane:screen() return (tmux("capture-pane -p -J -t " .. self.name)) end
  function Pane:history() return (tmux("capture-pane -p -J -S - -E - -t " .. self.name)) end
  function Pane:keys(keys) tmux("send-keys -t " .. self.name .. " " .. keys) end

  -- Poll until `pred(screen)` holds; returns the screen, or nil at the deadline.
  function Pane:wait_for(pred, seconds)
    local deadline = os.time() + (seconds or 10)
    repeat
      local screen = self:screen()
      if pred(screen) then return screen end
      sleep(0.05)
    until os.time() > deadline
    return nil
  end

  -- Wait for the CLI to exit; returns its exit status.
  function Pane:status(seconds)
    -- Generous: it only bounds a failing run, and the suites under valgrind or
    -- ASan run the CLI many times slower.
    local deadline = os.time() + (seconds or 60)
    repeat
      local status = tonumber((read_file(self.status_file) or ""):match("^(%d+)\n"))
      if status then return status end
      sleep(0.05)
    until os.time() > deadline
    error("the CLI did not exit in time")
  end

  setup(function()
    tmp = os.tmpname()
    os.remove(tmp)
    assert(os.execute("mkdir -m 700 " .. q(tmp)))
    cwd = (sh("pwd")):match("^(.-)\n")
    -- Named after the private temporary directory: unique even when several
    -- runs of this suite start in the same second.
    socket = "aliyun-ota-spec-" .. tmp:match("([^/]+)$")
    tmux_conf = tmp .. "/tmux.conf"
    local f = assert(io.open(tmux_conf, "w"))
    f:write("set -g history-limit 50000\nset -g status off\n")
    f:close()
    emu = helpers.start_emulator()
  end)

  teardown(function()
    if tmux_conf then tmux("kill-server") end
    if emu then emu:stop() end
    if tmp then os.execute("rm -rf " .. q(tmp)) end
  end)

  before_each(function() emu:reset() end)

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
      emu:faults{ log = 0 }
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
    }
    for _, case in ipairs(usage_cases) do
      it("is 2 with the usage for " .. case[1], function()
        local out, err, code = run(case[2])
        assert.are.equal(2, code)
        assert.are.equal("", out)
        assert.truthy(err:find("^Usage: aliyun%-ota"), err)
        assert.truthy(err:find("\nError: "), err)
      end)
    end

    it("is 0 for --help, with the usage on stdout", function()
      local out, _, code = run{ "tasks", "--help" }
      assert.are.equal(0, code)
      assert.truthy(out:find("^Usage: aliyun%-ota tasks"))
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

    it("is 1 for a profile the library cannot use", function()
      local out, err, code = run{ "--profile", "no-such-profile", "tasks", "demo-job" }
      assert.are.equal(1, code)
      local line = assert_one_error_line(out, err)
      assert.truthy(line:lower():find("profile", 1, true), line)
    end)

    it("is 1 when nothing listens at the endpoint", function()
      local out, err, code = run({ "--endpoint", "http://127.0.0.1:9", "tasks", "demo-job" }, { no_endpoint = true })
      assert.are.equal(1, code)
      assert.truthy(assert_one_error_line(out, err):find("SDK.ConnectionFailed", 1, true))
    end)

    it("is 1 when the service is slower than --timeout", function()
      emu:faults{ latency_ms = 1500 }
      local out, err, code = run{ "--timeout", "0.3", "summary", "demo-job" }
      assert.are.equal(1, code)
      assert.truthy(assert_one_error_line(out, err):find("SDK.Timeout", 1, true))
    end)
  end)

  describe("in a terminal", function()
    it("shows a progress line while listing, then leaves only the aligned table", function()
      emu:faults{ latency_ms = 30 }
      local pane = start_pane{ "tasks", "job-3000" }
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
      emu:faults{ latency_ms = 30 }
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
