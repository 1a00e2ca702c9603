--- bench/page_cpu.lua's figures inside OpenResty: CPU per page in the nginx worker, single
-- client:ListOTATaskByJob calls against client:tasks, over the cosocket transport a client
-- made in a content handler uses by default. Starts bench/cheap_server and a one-worker nginx
-- (bench/openresty.conf.in, handler bench/openresty_app.lua), asks the handler for one
-- measured listing per job, mode and gzip, and stops both by PID on every exit.
--   lua5.4 bench/openresty.lua      (from the repository root, with build/bench/cheap_server
--                                    built and the core built against LuaJIT in build-luajit:
--                                    scripts/bench does both)
-- Environment: BENCH_BIN (default build/bench), RESTY_BUILD_DIR (default build-luajit), NGINX
-- (default nginx), BENCH_QUICK=1 (job-10000 only, one run), BENCH_OPENRESTY_RUNS (runs per
-- figure; default 3), BENCH_OPENRESTY_OUT (file for the Markdown section; default stdout),
-- BENCH_ACCESS_KEY_ID / _SECRET (any: the cheap server checks nothing), KEEP=1 (keep nginx's
-- temp dir, logs included).
-- Progress goes to stderr; with BENCH_OPENRESTY_OUT set, stdout gets "openresty ..." summary
-- lines for bench/run.lua's goal table.
local core = require("aliyun.iot.core")
local defaults = require("aliyun.iot.defaults")
local cjson = require("cjson")

local format, concat = string.format, table.concat
local stats = dofile("bench/stats.lua")
local read_file = stats.read_file
local median = stats.median
local list_str = stats.list_str
local BIN = os.getenv("BENCH_BIN") or "build/bench"
local BUILD = os.getenv("RESTY_BUILD_DIR") or "build-luajit"
local NGINX = os.getenv("NGINX") or "nginx"
local QUICK = os.getenv("BENCH_QUICK") == "1"
local RUNS = tonumber(os.getenv("BENCH_OPENRESTY_RUNS") or "") or (QUICK and 1 or 3)
local JOBS = QUICK and { "job-10000" } or { "job-10000", "job-100000" }
local MODES = { "call", "tasks", "tasks1" }
local GZIPS = { "1", "0" }
local OUT = os.getenv("BENCH_OPENRESTY_OUT")
local started = core.monotonic()

local function progress(fmt, ...)
  io.stderr:write(format("[openresty %5.0fs] " .. fmt .. "\n", core.monotonic() - started, ...))
end

-- Single-quoted for sh.
local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local commands = {}
local function sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = f:read("a")
  local ok = f:close()
  return out, ok
end

-- 100000 -> "100,000"
local function thousands(n)
  return (format("%d", n):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end

local function alive(pid) return os.execute("kill -0 " .. pid .. " 2>/dev/null") == true end

---------------------------------------------------------------------------------------------
-- what runs, and its stopping

local REPO = (sh("pwd"):gsub("%s+$", ""))
assert(read_file(BUILD .. "/aliyun/iot/core.so"), "no " .. BUILD .. "/aliyun/iot/core.so: build the core against "
  .. "LuaJIT first (cmake -S . -B build-luajit -DLUA_VERSION=luajit && cmake --build build-luajit)")
assert(read_file(BIN .. "/cheap_server"), "no " .. BIN .. "/cheap_server (cc -O2 -o " .. BIN
  .. "/cheap_server bench/cheap_server.c -lz)")

local cheap_pid, ngx_pid, ngx_dir, guard_pid
local KEEP = os.getenv("KEEP") == "1"

-- The temp dir of the run: nginx's prefix, config, logs, and the PIDs the guard stops.
local function make_dir()
  ngx_dir = (sh("mktemp -d \"${TMPDIR:-/tmp}/aiot-bench-resty.XXXXXX\""):gsub("%s+$", ""))
  assert(ngx_dir:match("^/"), "mktemp -d failed: " .. ngx_dir)
end

local function remember(pid)
  local f = assert(io.open(ngx_dir .. "/pids", "a"))
  f:write(pid, "\n")
  f:close()
end

-- pcall below catches errors, and Ctrl-C (lua5.4 turns it into an error), but not a SIGTERM
-- or SIGKILL of this process; and both servers run in sessions of their own, out of reach of
-- the terminal's signals. So a guard shell waits for this process to end and then stops them,
-- by the PIDs in the run's dir, unless stop_all (which ends the guard first) has done so.
local function start_guard()
  local me = assert(sh("echo $PPID"):match("%d+")) -- the popen shell's parent: this process
  local cmd = format("(while kill -0 %s 2>/dev/null; do sleep 1; done; for p in $(cat %s/pids 2>/dev/null); "
    .. "do kill -TERM $p 2>/dev/null; done%s) </dev/null >/dev/null 2>&1 & echo $!", me, q(ngx_dir),
    KEEP and "" or "; rm -rf -- " .. q(ngx_dir))
  guard_pid = assert(sh(cmd):match("%d+"))
end

-- nginx's master by SIGTERM (it stops its worker), then SIGKILL for what is left.
local function stop_nginx()
  if not ngx_pid then return end
  local workers = sh("pgrep -P " .. ngx_pid)
  os.execute("kill -TERM " .. ngx_pid .. " 2>/dev/null")
  for _ = 1, 50 do
    if not alive(ngx_pid) then break end
    core.sleep(0.1)
  end
  if alive(ngx_pid) then os.execute("kill -KILL " .. ngx_pid .. " 2>/dev/null") end
  for w in workers:gmatch("%d+") do
    if alive(w) then os.execute("kill -KILL " .. w .. " 2>/dev/null") end
  end
  ngx_pid = nil
end

local function stop_all()
  if guard_pid then
    os.execute("kill " .. guard_pid .. " 2>/dev/null")
    guard_pid = nil
  end
  stop_nginx()
  if cheap_pid then
    os.execute("kill " .. cheap_pid .. " 2>/dev/null")
    cheap_pid = nil
  end
  if ngx_dir and not KEEP then
    os.execute("rm -rf -- " .. q(ngx_dir))
    ngx_dir = nil
  end
end

local function start_cheap()
  local cmd = format("%s/cheap_server --warm job-10000:100%s", BIN, QUICK and "" or " --warm job-100000:100")
  commands[#commands + 1] = cmd
  local f = assert(io.popen(cmd, "r"))
  local port, pid = f:read("n", "n")
  f:close()
  assert(port and pid, "cheap_server did not start: " .. cmd)
  cheap_pid = math.tointeger(pid)
  remember(cheap_pid)
  return "http://127.0.0.1:" .. math.tointeger(port)
end

-- A free loopback port is found by trying: nginx says "Address already in use" otherwise.
local function start_nginx()
  local template = assert(read_file("bench/openresty.conf.in"))
  local env = ""
  if not os.getenv("BENCH_ACCESS_KEY_ID") then
    env = "BENCH_ACCESS_KEY_ID=LTAIcheapbench BENCH_ACCESS_KEY_SECRET=cheapbench "
  end
  local cmd = format("%s%s -p %s -c %s/nginx.conf -e %s/error.log", env, NGINX, q(ngx_dir), q(ngx_dir), q(ngx_dir))
  local function lit(s) return (s:gsub("%%", "%%%%")) end
  -- nginx drops to another user only when started as root, and that one could not read a
  -- private temp dir: keep the worker as root then (as spec/resty/run does).
  local user_line = sh("id -u"):match("^0%s") and "user root;" or ""
  for _ = 1, 20 do
    local port = math.random(20000, 60999)
    local conf = template:gsub("@USER_LINE@", user_line)
      :gsub("@DIR@", lit(ngx_dir)):gsub("@PORT@", port):gsub("@REPO@", lit(REPO)):gsub("@BUILD_DIR@", lit(BUILD))
    local f = assert(io.open(ngx_dir .. "/nginx.conf", "w"))
    f:write(conf)
    f:close()
    -- Emptied each try: a port found taken leaves [emerg] lines that are not the runs' errors.
    assert(io.open(ngx_dir .. "/error.log", "w")):close()
    local out, ok = sh(cmd)
    if ok then
      commands[#commands + 1] = cmd
      for _ = 1, 50 do
        local pid = tonumber((read_file(ngx_dir .. "/nginx.pid") or ""):match("%d+"))
        if pid then
          ngx_pid = math.tointeger(pid)
          remember(ngx_pid)
          return "http://127.0.0.1:" .. port
        end
        core.sleep(0.1)
      end
      error("nginx started but wrote no pid file in " .. ngx_dir, 0)
    end
    local log = read_file(ngx_dir .. "/error.log") or ""
    if not (out .. log):find("Address already in use", 1, true) then
      error("nginx did not start: " .. cmd .. "\n" .. out .. log, 0)
    end
  end
  error("nginx found no free port in 20 tries", 0)
end

---------------------------------------------------------------------------------------------
-- the runs

local function urlencode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return format("%%%02X", c:byte()) end))
end

local sections = {}
local function w(...) sections[#sections + 1] = format(...) end
local summary = {}

local ok, err = pcall(function()
  make_dir()
  start_guard()
  local cheap = start_cheap()
  progress("cheap_server on %s (pid %d)", cheap, cheap_pid)
  local base = start_nginx()
  progress("nginx on %s (master pid %d, temp dir %s)", base, ngx_pid, ngx_dir)
  local http = core.new_session { proxy = "", gzip = false, timeout = 600 }
  local up
  for _ = 1, 50 do
    up = http:request("GET", base .. "/ping", nil, nil, { timeout = 1 }) == 200
    if up then break end
    core.sleep(0.1)
  end
  assert(up, "nginx on " .. base .. " does not answer /ping")

  local function listing(job, mode, gz)
    local path = format("/bench/listing?endpoint=%s&job=%s&mode=%s&gzip=%s", urlencode(cheap), job, mode, gz)
    local status, body = http:request("GET", base .. path)
    if status ~= 200 then
      -- A handler that failed to load says why only in the error log.
      local tail = (read_file(ngx_dir .. "/error.log") or ""):sub(-2000)
      error(format("GET %s: %s %s\n%s/error.log ends:\n%s", path, tostring(status),
        type(body) == "string" and body or tostring(body), ngx_dir, tail), 0)
    end
    local j = cjson.decode(body)
    local n = tonumber(job:match("^job%-(%d+)$"))
    assert(j.tasks == n and j.pages == math.ceil(n / 100), format("%s %s listed %s tasks in %s pages", job, mode,
      tostring(j.tasks), tostring(j.pages)))
    return j, path
  end

  -- Rounds outside, so that drift on a shared machine falls on every mode and gzip alike.
  local r, paths = {}, {}
  local check = { n = 0, clock = 0, stat = 0, pids = {}, libcurl = false }
  local versions
  for _, job in ipairs(JOBS) do
    r[job] = {}
    for _, gz in ipairs(GZIPS) do
      r[job][gz] = {}
      for _, mode in ipairs(MODES) do
        r[job][gz][mode] = { cpu = {}, wall = {}, alloc = {}, lkb = {}, cpu_s = {} }
      end
    end
    progress("%s: %d round(s) of %d modes x gzip on, off", job, RUNS, #MODES)
    for round = 1, RUNS do
      local line = {}
      for _, gz in ipairs(GZIPS) do
        for _, mode in ipairs(MODES) do
          local j, path = listing(job, mode, gz)
          paths[#paths + 1] = path
          local x = r[job][gz][mode]
          x.cpu[round], x.wall[round], x.alloc[round] = j.cpu_us_per_page, j.wall_us_per_page, j.alloc_bytes_per_page
          x.lkb[round], x.cpu_s[round] = j.lua_kb_end, j.cpu_s
          assert(j.stat_pid == j.worker_pid, format("/proc/self/stat is pid %s, the worker %s", tostring(j.stat_pid),
            tostring(j.worker_pid)))
          check.n, check.clock, check.stat = check.n + 1, check.clock + j.clock_s, check.stat + j.stat_s
          check.tick = 1 / j.clk_tck
          check.pids[j.worker_pid] = true
          check.libcurl = check.libcurl or j.libcurl_loaded
          versions = versions or { jit = j.jit, ngx_lua = j.ngx_lua }
          line[#line + 1] = format("%s/%s %.0f", mode, gz == "1" and "gz" or "plain", j.cpu_us_per_page)
        end
      end
      progress("  round %d (µs per page): %s", round, concat(line, ", "))
    end
  end
  http:close()
  stop_nginx()

  -- The worker's error log, read once it has stopped (whatever it wrote on the way out too).
  local log = read_file(ngx_dir .. "/error.log") or ""
  local _, sleep0 = log:gsub("ngx%.sleep%(0%)", "")
  local errors, warns, shown = 0, 0, {}
  for l in log:gmatch("[^\n]+") do
    if l:find("%[error%]") or l:find("%[crit%]") or l:find("%[alert%]") or l:find("%[emerg%]") then
      errors = errors + 1
      if #shown < 5 then shown[#shown + 1] = l:sub(1, 300) end
    elseif l:find("%[warn%]") then
      warns = warns + 1
    end
  end

  local m = {}
  for _, job in ipairs(JOBS) do
    m[job] = {}
    for _, gz in ipairs(GZIPS) do
      m[job][gz] = {}
      for _, mode in ipairs(MODES) do
        local x = r[job][gz][mode]
        m[job][gz][mode] = { cpu = median(x.cpu), wall = median(x.wall), alloc = median(x.alloc), lkb = median(x.lkb),
                             cpu_s = median(x.cpu_s), runs = x.cpu, cpu_s_runs = x.cpu_s }
      end
    end
  end
  local big, small = JOBS[#JOBS], JOBS[1]
  local nbig = tonumber(big:match("%d+"))
  local function ratio(job, gz, mode) return m[job][gz][mode].cpu / m[job][gz].call.cpu end
  local pids = {}
  for pid in pairs(check.pids) do pids[#pids + 1] = tostring(math.tointeger(pid) or pid) end
  local agree = math.abs(check.clock - check.stat) <= 2 * check.tick * check.n

  local nginx_v = sh(NGINX .. " -v"):gsub("%s+$", ""):gsub("^nginx version: ", "")
  w("## Inside OpenResty: CPU per page in the worker")
  w("")
  w("`bench/page_cpu.lua`'s measurement made inside nginx: `bench/openresty_app.lua` in one worker "
    .. "(`bench/openresty.conf.in`; %s, lua-nginx-module %s, %s; the core built against LuaJIT's headers in `%s`) "
    .. "lists jobs of the cheap server (`bench/cheap_server.c`) from a content handler. The client is made there "
    .. "as an application makes it, so its transport is the default one inside nginx, cosockets "
    .. "(`aliyun.iot.transport.resty`; the libcurl fallback %s in the worker during the runs); "
    .. "`rate_limit = false, max_retries = 0`, V3. Per request: one warm-up call, one listing with the collector "
    .. "running (CPU: `os.clock()` in the worker, i.e. the worker process's user + sys, nginx's own socket work "
    .. "between the Lua resumes included; wall: `core.monotonic()`), then the same listing with the collector "
    .. "stopped (Lua heap allocated, `collectgarbage(\"count\")`). `call` = `client:ListOTATaskByJob{ PageSize = 100, "
    .. "CurrentPage = p }` for each page in turn; `tasks` = `client:tasks` (default concurrency: %d `ngx.thread`s); "
    .. "`tasks1` = `client:tasks{ concurrency = 1 }`. gzip off is `iot.new{ gzip = false }`; the cosocket transport "
    .. "sends no `Accept-Encoding` with or without it (it decodes no gzip), so both rows are identity bodies on "
    .. "the same route. Medians of %d run(s); each round ran every mode and gzip in turn.",
    nginx_v, tostring(versions.ngx_lua), tostring(versions.jit), BUILD,
    check.libcurl and "**was loaded**" or "was never loaded", defaults.concurrency, RUNS)
  w("")
  w("| job | mode | gzip | worker CPU per page (µs) | runs (µs) | wall per page (µs) "
    .. "| Lua heap allocated per page (bytes) | Lua heap at the end (kB) |")
  w("|---|---|---|---:|---|---:|---:|---:|")
  for _, job in ipairs(JOBS) do
    for _, gz in ipairs(GZIPS) do
      for _, mode in ipairs(MODES) do
        local x = m[job][gz][mode]
        w("| %s | %s | %s | %.0f | %s | %.0f | %.0f | %.0f |", job, mode, gz == "1" and "on" or "off", x.cpu,
          list_str(x.runs), x.wall, x.alloc, x.lkb)
      end
    end
  end
  w("")
  local goal_ratio = ratio(big, "1", "tasks")
  w("- pager / single call, worker CPU per page, %s tasks, gzip on: **%.2fx** (%.0f vs %.0f µs; goal <= 1.15x, as for "
    .. "the Lua 5.4 process); gzip off %.2fx; one request at a time (`tasks1`) %.2fx, gzip off %.2fx.", thousands(nbig),
    goal_ratio, m[big]["1"].tasks.cpu, m[big]["1"].call.cpu, ratio(big, "0", "tasks"), ratio(big, "1", "tasks1"),
    ratio(big, "0", "tasks1"))
  summary[#summary + 1] = format("openresty figure=pager_over_call tasks=%d value=%.4f pager_us=%.1f call_us=%.1f",
    nbig, goal_ratio, m[big]["1"].tasks.cpu, m[big]["1"].call.cpu)
  if big ~= small then
    local flat = m[big]["1"].tasks.cpu / m[small]["1"].tasks.cpu
    w("- per page at %s tasks / at %s, gzip on: %.2fx for `tasks` (%.0f vs %.0f µs), %.2fx for `call`, %.2fx for "
      .. "`tasks1`: flat when near 1.", thousands(nbig), thousands(tonumber(small:match("%d+"))), flat,
      m[big]["1"].tasks.cpu, m[small]["1"].tasks.cpu, m[big]["1"].call.cpu / m[small]["1"].call.cpu,
      m[big]["1"].tasks1.cpu / m[small]["1"].tasks1.cpu)
    summary[#summary + 1] = format("openresty figure=flat value=%.4f big_us=%.1f small_us=%.1f big=%s small=%s", flat,
      m[big]["1"].tasks.cpu, m[small]["1"].tasks.cpu, big, small)
  end
  local listing_s = m[big]["1"].tasks
  w("- the worker's CPU for the whole %s-task listing (`tasks`, gzip on): **%.3f s** (runs %s s); `call`: %.3f s.",
    thousands(nbig), listing_s.cpu_s, list_str(listing_s.cpu_s_runs, "%.3f"), m[big]["1"].call.cpu_s)
  summary[#summary + 1] = format("openresty figure=listing_cpu tasks=%d value=%.4f", nbig, listing_s.cpu_s)
  w("- `os.clock()` is the worker's CPU: over the %d requests it counted %.3f s, and the kernel's utime + stime of "
    .. "the same process (`/proc/self/stat`, pid = `ngx.worker.pid()`, in ticks of %.0f ms) %.3f s, around both passes "
    .. "of each: %s (within 2 ticks a request: each reading is cut to a tick). One worker throughout (pid %s).",
    check.n, check.clock, check.tick * 1000, check.stat, agree and "they agree" or "**they disagree**",
    concat(pids, ", "))
  -- gzip on and off take the same route here, so how far apart those twin rows land is the
  -- machine's noise, measured rather than guessed.
  local spread, where = 0, ""
  for _, job in ipairs(JOBS) do
    for _, mode in ipairs(MODES) do
      local on, off = m[job]["1"][mode].cpu, m[job]["0"][mode].cpu
      local d = math.abs(on - off) / math.min(on, off)
      if d > spread then spread, where = d, format("%s `%s`: %.0f vs %.0f µs", job, mode, on, off) end
    end
  end
  w("- noise: the gzip on and off rows of a mode are the same work, and their medians differ by up to %.0f%% (%s).",
    spread * 100, where)
  w("- nginx's error.log after the runs: %d `ngx.sleep(0)` warning(s), %d error line(s) ([error], [crit], [alert], "
    .. "[emerg]), %d other warning(s).", sleep0, errors, warns)
  summary[#summary + 1] = format("openresty figure=log sleep0=%d errors=%d warns=%d clock_agrees=%s", sleep0, errors,
    warns, tostring(agree))
  if #shown > 0 then
    w("")
    w("```")
    for _, l in ipairs(shown) do w("%s", l) end
    w("```")
  end
  w("")
  w("Commands (`$DIR` nginx's temp dir, `$PORT` the cheap server's port, `$NGINX_PORT` nginx's; the driver makes the "
    .. "requests through libcurl, one at a time, as these `curl` lines would):")
  w("")
  w("```")
  w("%s", QUICK and "BENCH_QUICK=1 lua5.4 bench/openresty.lua" or "lua5.4 bench/openresty.lua")
  local cheap_port = cheap:match("%d+$")
  local dir_pattern = q(ngx_dir):gsub("%p", "%%%0")
  local function shown_cmd(c) return (c:gsub(dir_pattern, "$DIR")) end
  for _, c in ipairs(commands) do w("%s", shown_cmd(c)) end
  local seen = {}
  for _, p in ipairs(paths) do
    if not seen[p] then
      seen[p] = true
      w("curl -sS 'http://127.0.0.1:$NGINX_PORT%s'", (p:gsub("127%.0%.0%.1%%3A" .. cheap_port, "127.0.0.1%%3A$PORT")))
    end
  end
  w("```")
  w("")
end)

stop_all()
if not ok then error(err, 0) end

local text = concat(sections, "\n") .. "\n"
if OUT then
  local o = assert(io.open(OUT, "w"))
  o:write(text)
  o:close()
  for _, line in ipairs(summary) do print(line) end
else
  io.write(text)
end
