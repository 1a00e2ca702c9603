--- Client against client through a server that costs less than either: bench/cheap_server
-- (pre-rendered pages, no signature checks) instead of the emulator. Our client and the
-- official Node SDK list the same job; each side's whole process is measured by
-- /usr/bin/time (user + sys CPU, max RSS, wall), and the server's own CPU by its
-- /__cheap/stats (getrusage) before and after each run. Then client CPU and Lua heap per page
-- of single client:ListOTATaskByJob calls against client:tasks (bench/page_cpu.lua).
--   lua5.4 bench/cheap.lua          (run from the repository root after make build, with
--                                    build/bench/cheap_server built: scripts/bench builds it, or
--                                    cc -O2 -o build/bench/cheap_server bench/cheap_server.c -lz)
-- Environment: BENCH_BIN (default build/bench), LUA, BUILD_DIR, BENCH_QUICK=1 (one short run of
-- each), BENCH_CHEAP_RUNS (rounds; default 5), BENCH_CHEAP_OUT (file for the Markdown section;
-- default stdout), BENCH_ACCESS_KEY_ID / _SECRET (any: nothing is checked).
-- Progress goes to stderr; with BENCH_CHEAP_OUT set, stdout gets "cheap ..." summary lines
-- (for bench/run.lua's goal table) and the commands run, as "command <cmd>".
local core = require("aliyun.iot.core")
local cjson = require("cjson")

local format, concat = string.format, table.concat
local stats = dofile("bench/stats.lua")
local fields = stats.fields
local median = stats.median
local list_str = stats.list_str
local BIN = os.getenv("BENCH_BIN") or "build/bench"
local LUA = os.getenv("LUA") or "lua5.4"
local QUICK = os.getenv("BENCH_QUICK") == "1"
local RUNS = tonumber(os.getenv("BENCH_CHEAP_RUNS") or "") or (QUICK and 1 or 5)
local JOB = QUICK and "job-10000" or "job-100000"
local PAGE_JOBS = QUICK and { "job-10000" } or { "job-10000", "job-100000" }
local PAGE_RUNS = QUICK and 1 or 3
local ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. (os.getenv("BUILD_DIR") or "build") .. "/?.so;;'"
local OUT = os.getenv("BENCH_CHEAP_OUT")
local started = core.monotonic()

if not os.getenv("BENCH_ACCESS_KEY_ID") then
  ENV = ENV .. " BENCH_ACCESS_KEY_ID=LTAIcheapbench BENCH_ACCESS_KEY_SECRET=cheapbench"
end

local function progress(fmt, ...)
  io.stderr:write(format("[cheap %5.0fs] " .. fmt .. "\n", core.monotonic() - started, ...))
end

local commands, command_seen = {}, {}
local function sh(cmd)
  if not command_seen[cmd] then
    command_seen[cmd] = true
    commands[#commands + 1] = cmd
  end
  local f = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = f:read("a")
  local ok = f:close()
  if not ok then error("command failed: " .. cmd .. "\n" .. out, 0) end
  return out
end

---------------------------------------------------------------------------------------------
-- the server

local timefile = os.tmpname()
local warm = "--warm job-10000:100" .. (QUICK and "" or " --warm job-100000:100")
local start_cmd = format("/usr/bin/time -f 'rusage %%U %%S %%M %%e' -o %s %s/cheap_server %s", timefile, BIN, warm)
commands[#commands + 1] = start_cmd
local f = assert(io.popen(start_cmd, "r"))
local PORT, PID = f:read("n", "n")
f:close()
assert(PORT and PID, "cheap_server did not start: " .. start_cmd)
local tf = assert(io.open(timefile))
local wu, ws = tf:read("a"):match("rusage (%S+) (%S+)")
tf:close()
os.remove(timefile)
local URL = "http://127.0.0.1:" .. PORT
progress("cheap_server on %s (pid %d), pages rendered and compressed in %.2f s CPU", URL, PID, wu + ws)

local function server_cpu()
  local s = core.new_session { proxy = "", gzip = false }
  local status, body = s:request("GET", URL .. "/__cheap/stats")
  s:close()
  assert(status == 200, "stats: " .. tostring(status))
  local j = cjson.decode(body)
  return j.user_seconds + j.sys_seconds, j
end

-- Run cmd under /usr/bin/time; returns its output and the whole process's figures.
local function timed(cmd)
  local out = sh("/usr/bin/time -f 'rusage %U %S %M %e' env " .. cmd)
  local u, s, rss, e = out:match("rusage (%S+) (%S+) (%S+) (%S+)%s*$")
  assert(u, "no rusage line from: " .. cmd .. "\n" .. out)
  return out, { cpu = tonumber(u) + tonumber(s), rss = tonumber(rss), wall = tonumber(e) }
end

local sections = {}
local function w(...) sections[#sections + 1] = format(...) end
local summary = {}

local ok, err = pcall(function()
  progress("checking its answers against the emulator's jobs.lua and codec.lua")
  local check = sh(concat({ ENV, LUA, "bench/cheap_check.lua", URL }, " "))
  local checks = check:match("cheap_check ok checks=(%d+)")
  assert(checks, check)

  -- 1. side by side ----------------------------------------------------------------------
  local sides = {
    { "ours_v3", "our client, `client:tasks`, V3, default concurrency (4), gzip on (today's default)",
      concat({ ENV, LUA, "bench/list.lua", URL, JOB, "v3" }, " ") },
    { "ours_v3_nogz", "the same, gzip off (`gzip = false`)",
      concat({ ENV, "BENCH_GZIP=0", LUA, "bench/list.lua", URL, JOB, "v3" }, " ") },
    { "ours_v3_seq", "our client, V3, concurrency = 1 (one request at a time, as the Node SDK), gzip on",
      concat({ ENV, LUA, "bench/list.lua", URL, JOB, "v3", "1" }, " ") },
    { "ours_v3_seq_nogz", "our client, V3, concurrency = 1, gzip off (like for like with the Node SDK, which asks for no gzip)",
      concat({ ENV, "BENCH_GZIP=0", LUA, "bench/list.lua", URL, JOB, "v3", "1" }, " ") },
    { "ours_v1", "our client, V1, default concurrency, gzip on",
      concat({ ENV, LUA, "bench/list.lua", URL, JOB, "v1" }, " ") },
    { "node", "official Node SDK `@alicloud/iot20180120` (V3), sequential pages, no gzip",
      concat({ ENV, "node bench/node_list.js", PORT, JOB, "100" }, " ") },
  }
  local r = {}
  for _, s in ipairs(sides) do r[s[1]] = { cpu = {}, wall = {}, rss = {}, loop = {}, loop_cpu = {}, server = {} } end
  local tasks
  progress("%s from the cheap server: %d rounds of %d sides", JOB, RUNS, #sides)
  for round = 1, RUNS do
    for _, s in ipairs(sides) do
      local before = server_cpu()
      local out, t = timed(s[3])
      local after = server_cpu()
      local line = out:match("{.-}") or out
      local fl
      if s[1] == "node" then
        local j = cjson.decode(line)
        fl = { tasks = j.tasks, seconds = j.seconds, cpu_seconds = j.cpu_seconds }
      else
        fl = fields(out)
      end
      assert(fl.tasks and fl.seconds, s[1] .. ": unexpected output:\n" .. out)
      tasks = tasks or fl.tasks
      assert(fl.tasks == tasks, s[1] .. " listed " .. tostring(fl.tasks) .. " tasks, expected " .. tasks)
      local x = r[s[1]]
      x.cpu[round], x.wall[round], x.rss[round] = t.cpu, t.wall, t.rss
      x.loop[round], x.loop_cpu[round] = fl.seconds, fl.cpu_seconds
      x.server[round] = after - before
    end
    progress("  round %d: whole-process CPU ours %.2f s, ours no gzip %.2f s, Node %.2f s; server %.3f s", round,
      r.ours_v3.cpu[round], r.ours_v3_nogz.cpu[round], r.node.cpu[round], r.ours_v3.server[round])
  end
  local m = {}
  for _, s in ipairs(sides) do
    local x = r[s[1]]
    m[s[1]] = { cpu = median(x.cpu), wall = median(x.wall), rss = median(x.rss), loop = median(x.loop),
                loop_cpu = median(x.loop_cpu), server = median(x.server) }
  end
  local pages = math.ceil(tasks / 100)

  w("## Against a cheap server: client against client")
  w("")
  w("`bench/cheap_server.c` (C, one `poll()` loop, HTTP/1.1 keep-alive, no TLS, no signature check) answers "
    .. "`ListOTATaskByJob` from pages rendered once, plain and gzip, in the emulator's JSON (`bench/cheap_check.lua`: "
    .. "%d answers byte for byte equal to `spec/emulator` rendering, V1 GET and V3 POST, plain and gzip). "
    .. "Rendering and compressing the pages of %s took %.2f s CPU at start-up, before any client ran. "
    .. "%s tasks, PageSize 100 (%d pages), loopback; our client with `rate_limit = false, max_retries = 0`. "
    .. "Whole process: `/usr/bin/time -f '%%U %%S %%M %%e'` (user + sys CPU, max RSS, wall, start-up included); "
    .. "loop: measured inside the process from the first request to the last task; server: the cheap server's "
    .. "getrusage before and after each run. Medians of %d rounds; the sides ran alternately. On a shared machine.",
    tonumber(checks), warm:gsub("%-%-warm ", ""), wu + ws, tasks, pages, RUNS)
  w("")
  w("| side | whole-process CPU (s) | wall (s) | max RSS (MB) | loop wall (s) | loop CPU (s) | CPU per page (µs, whole process) | server CPU (s) | server µs per page |")
  w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
  for _, s in ipairs(sides) do
    local x = m[s[1]]
    w("| %s | %.2f | %.2f | %.0f | %.2f | %.2f | %.0f | %.3f | %.0f |", s[2], x.cpu, x.wall, x.rss / 1024, x.loop,
      x.loop_cpu, x.cpu / pages * 1e6, x.server, x.server / pages * 1e6)
  end
  w("")
  w("Runs (whole-process CPU, s): %s.", (function()
    local parts = {}
    for _, s in ipairs(sides) do parts[#parts + 1] = format("%s %s", s[1], list_str(r[s[1]].cpu, "%.2f")) end
    return concat(parts, "; ")
  end)())
  w("")
  local n, o, og, os1 = m.node, m.ours_v3, m.ours_v3_nogz, m.ours_v3_seq_nogz
  w("- whole-process CPU, Node / ours: **%.2fx** (ours as it is, gzip on), %.2fx (ours, gzip off), %.2fx (ours one request at a time, gzip off).",
    n.cpu / o.cpu, n.cpu / og.cpu, n.cpu / os1.cpu)
  w("- wall, Node / ours: **%.2fx** (gzip on), %.2fx (gzip off); loop wall (start-up excluded): %.2fx, %.2fx.",
    n.wall / o.wall, n.wall / og.wall, n.loop / o.loop, n.loop / og.loop)
  w("- the server's CPU per listing: %.3f s serving ours, %.3f s serving Node: %.0f%% and %.0f%% of that client's whole-process CPU.",
    o.server, n.server, o.server / o.cpu * 100, n.server / n.cpu * 100)
  w("")
  summary[#summary + 1] = format("cheap side=node_over_ours_cpu value=%.2f", n.cpu / o.cpu)
  summary[#summary + 1] = format("cheap side=node_over_ours_wall value=%.2f", n.wall / o.wall)
  summary[#summary + 1] = format("cheap side=server_share_ours value=%.3f", o.server / o.cpu)

  -- 2. per page: single calls against client:tasks ------------------------------------
  progress("per page: client:ListOTATaskByJob against client:tasks, %s, %d runs", concat(PAGE_JOBS, " and "), PAGE_RUNS)
  w("### Client CPU per page: single calls against `client:tasks`")
  w("")
  w("`bench/page_cpu.lua`: one listing per run with the collector running (CPU: `os.clock()`, getrusage's user + sys "
    .. "of the Lua process, the listing only), then the same listing with the collector stopped (Lua heap allocated, "
    .. "`collectgarbage(\"count\")`). `call` = `client:ListOTATaskByJob{ PageSize = 100, CurrentPage = p }` for each page "
    .. "in turn; `tasks` = `client:tasks` (default concurrency 4); `tasks1` = `client:tasks{ concurrency = 1 }`. V3. "
    .. "Medians of %d runs.", PAGE_RUNS)
  w("")
  local per_page = {}
  w("| job | mode | gzip | CPU per page (µs) | runs (µs) | wall per page (µs) | Lua heap allocated per page (bytes) | Lua heap at the end (kB) |")
  w("|---|---|---|---:|---|---:|---:|---:|")
  for _, job in ipairs(PAGE_JOBS) do
    for _, gz in ipairs({ "1", "0" }) do
      for _, mode in ipairs({ "call", "tasks", "tasks1" }) do
        local cpu, wall, alloc, lkb = {}, {}, {}, {}
        for i = 1, PAGE_RUNS do
          local out = sh(concat({ ENV, gz == "0" and "BENCH_GZIP=0" or "", LUA, "bench/page_cpu.lua", URL, job, mode }, " "))
          local fl = fields(out:match("page_cpu [^\n]+"))
          cpu[i], wall[i], alloc[i], lkb[i] = fl.cpu_us_per_page, fl.wall_us_per_page, fl.alloc_bytes_per_page, fl.lua_kb_end
        end
        w("| %s | %s | %s | %.0f | %s | %.0f | %.0f | %.0f |", job, mode, gz == "1" and "on" or "off", median(cpu),
          list_str(cpu, "%.0f"), median(wall), median(alloc), median(lkb))
        per_page[job .. "/" .. mode .. "/" .. gz] = median(cpu)
        progress("  %s %s gzip=%s: %.0f µs per page", job, mode, gz, median(cpu))
      end
    end
  end
  w("")
  -- For the goal table: the pager against single calls on the biggest job, as the client
  -- ships (gzip on, default concurrency).
  local big = PAGE_JOBS[#PAGE_JOBS]
  local call_us, pager_us = per_page[big .. "/call/1"], per_page[big .. "/tasks/1"]
  summary[#summary + 1] = format("cheap side=pager_over_call value=%.3f", pager_us / call_us)
  summary[#summary + 1] = format("cheap side=pager_us value=%.0f", pager_us)
  summary[#summary + 1] = format("cheap side=call_us value=%.0f", call_us)
  summary[#summary + 1] = format("cheap side=page_job value=%s", big:match("%d+"))

  -- 3. the same per page in instructions (callgrind): deterministic, unlike CPU time on a
  -- shared machine
  if QUICK then return end
  progress("per page in instructions: callgrind, job-5000 minus job-100, 3 modes, gzip on and off")
  local cg_pages = 2 * 49 -- page_cpu.lua lists twice: (50 pages - 1 page) x 2
  local ir = {}
  for _, mode in ipairs({ "call", "tasks1", "tasks" }) do
    for _, gz in ipairs({ "1", "0" }) do
      local per = {}
      for _, job in ipairs({ "job-5000", "job-100" }) do
        local file = format("%s/callgrind.cheap.%s.gzip%s.%s.out", BIN, mode, gz, job)
        local out = sh(concat({ ENV, gz == "0" and "BENCH_GZIP=0" or "", "valgrind --tool=callgrind --callgrind-out-file=" .. file,
          BIN .. "/lua_host", "bench/page_cpu.lua", URL, job, mode }, " "))
        per[job] = tonumber((assert(out:match("I%s+refs:%s+([%d,]+)"), out):gsub(",", "")))
      end
      ir[mode .. "/" .. gz] = (per["job-5000"] - per["job-100"]) / cg_pages
      progress("  %s gzip=%s: %.0f instructions per page", mode, gz, ir[mode .. "/" .. gz])
    end
  end
  w("Instructions per page (`valgrind --tool=callgrind` under `%s/lua_host`: the run over `job-5000` minus the run over "
    .. "`job-100`, divided by 2 x 49 pages; start-up, warm-up and the first connection cancel out):", BIN)
  w("")
  w("| mode | gzip on | gzip off | gzip's cost |")
  w("|---|---:|---:|---:|")
  for _, mode in ipairs({ "call", "tasks1", "tasks" }) do
    local on, off = ir[mode .. "/1"], ir[mode .. "/0"]
    w("| %s | %.0f | %.0f | %.0f (%.1f%%) |", mode, on, off, on - off, (on - off) / on * 100)
  end
  w("")
  local function over(a, b) return format("%+.0f (%+.1f%%)", ir[a] - ir[b], (ir[a] / ir[b] - 1) * 100) end
  w("- `client:tasks` over single calls, instructions per page: %s with gzip, %s without; one request at a time "
    .. "(`tasks1`): %s with gzip, %s without.", over("tasks/1", "call/1"), over("tasks/0", "call/0"),
    over("tasks1/1", "call/1"), over("tasks1/0", "call/0"))
  w("")
end)

os.execute("kill " .. PID)
if not ok then error(err, 0) end

w("Commands (the server's port is $PORT):")
w("")
w("```")
for _, c in ipairs(commands) do
  w("%s", (c:gsub(":" .. PORT, ":$PORT"):gsub(" " .. PORT .. " ", " $PORT "):gsub("%-o /tmp/lua_%w+ ", "")))
end
w("```")
w("")
local text = concat(sections, "\n") .. "\n"
if OUT then
  local o = assert(io.open(OUT, "w"))
  o:write(text)
  o:close()
  for _, line in ipairs(summary) do print(line) end
else
  io.write(text)
end
