--- The benchmark driver behind `make bench` (scripts/bench starts the emulator and builds the
-- helpers, then runs this). Every figure is the median of several runs; the sides of each
-- comparison run alternately in the same session. Writes bench/RESULTS.md.
-- Environment (set by scripts/bench): BENCH_PORT, BENCH_EMULATOR_DIR, BENCH_ACCESS_KEY_ID,
-- BENCH_ACCESS_KEY_SECRET, BENCH_BIN (dir of hmac_floor and lua_host), LUA, BENCH_QUICK=1
-- (fewer runs: a smoke test of the harness, not figures to quote).
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local cjson = require("cjson")

local format, concat = string.format, table.concat
local stats = dofile("bench/stats.lua")
local fields = stats.fields
local median = stats.median
local list_str = stats.list_str
local read_file = stats.read_file
local PORT = assert(os.getenv("BENCH_PORT"), "BENCH_PORT")
local EMU_DIR = assert(os.getenv("BENCH_EMULATOR_DIR"), "BENCH_EMULATOR_DIR")
local BIN = os.getenv("BENCH_BIN") or "build/bench"
local LUA = os.getenv("LUA") or "lua5.4"
local QUICK = os.getenv("BENCH_QUICK") == "1"
local URL = "http://127.0.0.1:" .. PORT
local SECRET = assert(os.getenv("BENCH_ACCESS_KEY_SECRET"))
local ENV = "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;' LUA_CPATH='./" .. (os.getenv("BUILD_DIR") or "build") .. "/?.so;;'"

local RUNS = QUICK and 1 or 5        -- cheap figures
local LONG_RUNS = QUICK and 1 or 3   -- long ones
local THROUGHPUT_JOB = QUICK and "job-10000" or "job-100000"
-- Past the paging cap, listed by status and then by device: the any-size path.
local MEMORY_JOB = QUICK and "job-250000-mix-SUCCEEDED:160000,IN_PROGRESS:40000,FAILED:30000,QUEUED:20000"
  or "job-1000000-mix-SUCCEEDED:600000,IN_PROGRESS:200000,FAILED:100000,QUEUED:100000"
local started = core.monotonic()

---------------------------------------------------------------------------------------------
-- helpers

local function progress(fmt, ...)
  io.stderr:write(format("[bench %5.0fs] " .. fmt .. "\n", core.monotonic() - started, ...))
end

local function sh(cmd)
  local f = assert(io.popen(cmd .. " 2>&1", "r"))
  local out = f:read("a")
  local ok, _, code = f:close()
  return out, ok, code
end

local commands, command_seen = {}, {}
-- Record a command for RESULTS.md with the port and the secret as placeholders.
local function record(cmd)
  local shown = cmd:gsub(PORT, "$PORT"):gsub("/tmp/lua_%w+", "$STS_FILE"):gsub(SECRET:gsub("%p", "%%%0"), "$SECRET")
  shown = shown:gsub(ENV:gsub("%p", "%%%0"), "$LUA_ENV")
  if not command_seen[shown] then
    command_seen[shown] = true
    commands[#commands + 1] = shown
  end
end

-- Run a command, fail loudly if it fails; returns its output.
local function run(cmd)
  record(cmd)
  local out, ok = sh(cmd)
  if not ok then error("command failed: " .. cmd .. "\n" .. out, 0) end
  return out
end

local function lua(script, ...)
  return run(concat({ ENV, LUA, script, ... }, " "))
end

local function emu(method, path, body)
  local cmd = format("curl -sS -X %s %s %s/__emulator/%s", method,
    body and ("-H 'Content-Type: application/json' --data-binary '" .. body .. "'") or "", URL, path)
  record(cmd)
  local out, ok = sh(cmd)
  assert(ok, "emulator control failed: " .. cmd .. " " .. out)
  return out
end

-- Log entries and "log full" errors, checked after each section.
local log_checks = {}
local function check_emulator(section)
  local n = #assert(cjson.decode(emu("GET", "log")))
  local f = io.open(EMU_DIR .. "/error.log")
  local text = f and f:read("a") or ""
  if f then f:close() end
  local _, full = text:gsub("emulator log full", "")
  local _, nonce = text:gsub("nonce store", "")
  log_checks[#log_checks + 1] = format("| %s | %d | %d | %d |", section, n, full, nonce)
end

local function first_line(text, prefix)
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #prefix) == prefix then return line end
  end
  error("no line starting with " .. prefix .. " in:\n" .. text, 0)
end

local out = {}   -- RESULTS.md lines
local summary = {} -- goal table rows
local function w(...) out[#out + 1] = format(...) end
local function goal(what, measured, target, met)
  summary[#summary + 1] = format("| %s | %s | %s | %s |", what, measured, target,
    met == nil and "n/a" or (met and "**met**" or "**missed**"))
end

---------------------------------------------------------------------------------------------
-- machine and versions

local function machine()
  local cpuinfo = read_file("/proc/cpuinfo") or ""
  local model = cpuinfo:match("model name%s*:%s*([^\n]+)") or "unknown"
  local cores = select(2, cpuinfo:gsub("\nprocessor%s*:", "")) + (cpuinfo:match("^processor") and 1 or 0)
  local mem = (read_file("/proc/meminfo") or ""):match("MemTotal:%s*(%d+)")
  local sdk = cjson.decode(read_file("bench/node_modules/@alicloud/iot20180120/package.json") or "{}") or {}
  local oac = cjson.decode(read_file("bench/node_modules/@alicloud/openapi-client/package.json") or "{}") or {}
  local git = sh("git rev-parse --short HEAD"):gsub("%s+$", "")
  local dirty = sh("git status --porcelain -- src lua"):gsub("%s+$", "")
  return {
    { "CPU", format("%s, %d cores", model, cores) },
    { "memory", mem and format("%.1f GiB", tonumber(mem) / 1048576) or "?" },
    { "kernel", sh("uname -sr"):gsub("%s+$", "") },
    { "OS", (read_file("/etc/os-release") or ""):match('PRETTY_NAME="([^"]+)"') or "?" },
    { "aliyun-iot", format("%s (git %s%s)", iot.VERSION, git, dirty ~= "" and ", with uncommitted changes in src/ or lua/" or "") },
    { "Lua", sh(LUA .. " -v"):gsub("%s+$", ""):gsub("%s+Copyright.*", "") },
    { "lua-cjson", tostring(cjson._VERSION) },
    { "libcurl (client)", core.user_agent },
    { "OpenSSL", sh("openssl version"):gsub("%s+$", "") },
    { "C compiler", sh("cc --version"):match("[^\n]+") },
    { "nginx (emulator)", sh("nginx -v"):gsub("%s+$", ""):gsub("^nginx version: ", "") },
    { "node", sh("node --version"):gsub("%s+$", "") },
    { "official SDK", format("@alicloud/iot20180120 %s, @alicloud/openapi-client %s", tostring(sdk.version),
      tostring(oac.version)) },
    { "valgrind", sh("valgrind --version"):gsub("%s+$", "") },
  }
end

---------------------------------------------------------------------------------------------
-- 1. signing

local function bench_signing()
  progress("1/8 signing: core.sign_v1 vs the HMAC-SHA1 + Base64 floor, %d runs", RUNS)
  local sts_file = os.tmpname()
  run(format("%s %s bench/sign.lua sts > %s", ENV, LUA, sts_file))
  local r = { v1 = {}, v3 = {}, prepare = {}, evp_mac = {}, hmac = {} }
  local N = QUICK and 50000 or 300000
  for i = 1, RUNS do
    r.v1[i] = fields(lua("bench/sign.lua", "v1", N):gsub("^v1 (%d+) (%S+) (%S+)", "n=%1 s=%2 ops=%3")).ops
    local floor = run(format("%s/hmac_floor %d '%s&' < %s", BIN, N * 2, SECRET, sts_file))
    r.evp_mac[i] = tonumber(first_line(floor, "evp_mac"):match("(%S+)$"))
    r.hmac[i] = tonumber(first_line(floor, "hmac "):match("(%S+)$"))
    r.v3[i] = tonumber(lua("bench/sign.lua", "v3", N // 2):match("(%S+)%s*$"))
    r.prepare[i] = tonumber(lua("bench/sign.lua", "prepare", N // 2):match("(%S+)%s*$"))
    progress("  run %d: sign_v1 %.0f/s, floor %.0f/s", i, r.v1[i], r.evp_mac[i])
  end
  os.remove(sts_file)
  local m = {}
  for k, v in pairs(r) do m[k] = median(v) end
  local ratio = m.v1 / m.evp_mac
  w("## 1. Signing")
  w("")
  w("One typical V1 `ListOTATaskByJob` parameter set (13 parameters: the common ones, JobId, PageSize, CurrentPage, IotInstanceId; string-to-sign %d bytes), signed in a loop. "
    .. "The floor is `bench/hmac_floor.c` (cc -O2, libcrypto) computing only HMAC-SHA1 + Base64 of the same string-to-sign: "
    .. "`evp_mac` re-keys one cached `EVP_MAC_CTX` per signature (the fastest OpenSSL 3 API), `hmac` is the one-shot `HMAC()`.",
    #sh(format("%s %s bench/sign.lua sts", ENV, LUA)))
  w("")
  w("| loop | median ops/s | runs (ops/s) |")
  w("|---|---:|---|")
  w("| `core.sign_v1` (Lua loop) | %.0f | %s |", m.v1, list_str(r.v1))
  w("| floor: C `EVP_MAC` HMAC-SHA1 + Base64 | %.0f | %s |", m.evp_mac, list_str(r.evp_mac))
  w("| floor, one-shot `HMAC()` variant | %.0f | %s |", m.hmac, list_str(r.hmac))
  w("| `core.sign_v3` (info) | %.0f | %s |", m.v3, list_str(r.v3))
  w("| full V1 request preparation (`request.prepare`: table, nonce, timestamp, sign, URL; info) | %.0f | %s |", m.prepare, list_str(r.prepare))
  w("")
  w("sign_v1 / floor = **%.0f%%** (goal >= 40%%); against the one-shot `HMAC()` floor: %.0f%%.", ratio * 100, m.v1 / m.hmac * 100)
  w("")
  goal("Signing: `core.sign_v1` / C HMAC-SHA1+Base64 floor", format("%.0f%% (%.0f vs %.0f ops/s)", ratio * 100, m.v1, m.evp_mac),
    ">= 40%", ratio >= 0.40)
  return m
end

---------------------------------------------------------------------------------------------
-- 2. listing throughput

local function node(...)
  return run(concat({ "node bench/node_list.js", ... }, " "))
end

local function bench_throughput()
  progress("2/8 listing throughput: %s, PageSize 100, %d rounds of pager v1 / pager v3 / bare / Node", THROUGHPUT_JOB, RUNS)
  emu("POST", "reset")
  local sides = { "pager_v1", "pager_v1_seq", "pager_v3", "bare", "node" }
  local r = {}
  for _, s in ipairs(sides) do r[s] = { tps = {}, cpu = {}, seconds = {} } end
  local tasks
  for i = 1, RUNS do
    for _, s in ipairs(sides) do
      local line
      if s == "pager_v1" then line = lua("bench/list.lua", URL, THROUGHPUT_JOB, "v1")
      elseif s == "pager_v1_seq" then line = lua("bench/list.lua", URL, THROUGHPUT_JOB, "v1", "1")
      elseif s == "pager_v3" then line = lua("bench/list.lua", URL, THROUGHPUT_JOB, "v3")
      elseif s == "bare" then line = lua("bench/bare_loop.lua", URL, THROUGHPUT_JOB, "100")
      else
        local j = cjson.decode(first_line(node(PORT, THROUGHPUT_JOB, "100"), "{"))
        line = format("tasks=%d seconds=%f cpu_seconds=%f", j.tasks, j.seconds, j.cpu_seconds)
      end
      local f = fields(line)
      assert(f.tasks and f.seconds, "unexpected output: " .. line)
      tasks = tasks or f.tasks
      assert(f.tasks == tasks, s .. " listed " .. tostring(f.tasks) .. " tasks, expected " .. tasks)
      r[s].tps[i] = f.tasks / f.seconds
      r[s].cpu[i] = f.cpu_seconds / (f.tasks / 100) * 1e6 -- client CPU microseconds per page
      r[s].seconds[i] = f.seconds
    end
    progress("  round %d: pager v1 %.0f (sequential %.0f), v3 %.0f, bare %.0f, node %.0f tasks/s", i,
      r.pager_v1.tps[i], r.pager_v1_seq.tps[i], r.pager_v3.tps[i], r.bare.tps[i], r.node.tps[i])
    if i == RUNS then check_emulator(format("throughput, round %d (%d requests)", i, #sides * tasks // 100)) end
    emu("POST", "reset") -- the log and the nonce store stay small
  end
  local m = {}
  for _, s in ipairs(sides) do m[s] = { tps = median(r[s].tps), cpu = median(r[s].cpu) } end
  local names = {
    pager_v1 = "(a) our pager, `client:tasks`, V1 signing",
    pager_v1_seq = "(a') our pager with `concurrency = 1` (one request at a time, like the others), V1",
    pager_v3 = "(a) our pager, `client:tasks`, V3 signing (the default)",
    bare = "(b) bare loop (`bench/bare_loop.lua`: session reuse + `sign_v1` + `cjson.decode`)",
    node = "(c) official Node SDK `@alicloud/iot20180120` (V3), sequential pages",
  }
  w("## 2. Listing throughput")
  w("")
  w("%s tasks, PageSize 100 (%d pages), emulator on loopback, no latency; our client with `rate_limit = false, max_retries = 0`. "
    .. "Wall time is measured inside each process from the first request to the last task (start-up excluded). "
    .. "The emulator (one nginx worker verifying every signature in Lua) serves both sides, so wall time = client time + server time; "
    .. "client CPU per page (getrusage: `os.clock()`, `process.cpuUsage()`) shows the client's own cost.", tasks, tasks // 100)
  w("")
  w("| side | median tasks/s (wall) | runs | median client CPU per page |")
  w("|---|---:|---|---:|")
  for _, s in ipairs(sides) do
    w("| %s | %.0f | %s | %.0f µs |", names[s], m[s].tps, list_str(r[s].tps), m[s].cpu)
  end
  w("")
  local rb, rn = m.pager_v1.tps / m.bare.tps, m.pager_v3.tps / m.node.tps
  w("- ours (V1) / bare, wall: **%.0f%%** (goal >= 90%%); client CPU: the bare loop uses %.0f%% of ours.", rb * 100,
    m.bare.cpu / m.pager_v1.cpu * 100)
  w("- ours (V3) / Node SDK, wall: **%.2fx** (goal >= 3x); client CPU per page: Node uses %.2fx ours.", rn,
    m.node.cpu / m.pager_v3.cpu)
  w("- ours (V1) / Node SDK, wall: %.2fx.", m.pager_v1.tps / m.node.tps)
  w("- like for like, one request at a time: ours (V1, concurrency = 1) / bare, wall: %.0f%%. The default "
    .. "pager keeps 4 requests in flight, so on 2 cores its client work overlaps the server's.",
    m.pager_v1_seq.tps / m.bare.tps * 100)
  w("")
  goal("Throughput: our pager (V1) / bare loop, tasks/s", format("%.0f%% (%.0f vs %.0f)", rb * 100, m.pager_v1.tps, m.bare.tps), ">= 90%", rb >= 0.9)
  goal("Throughput: our pager (V3) / official Node SDK, tasks/s", format("%.2fx (%.0f vs %.0f)", rn, m.pager_v3.tps, m.node.tps), ">= 3x", rn >= 3)
  goal("(info) sequential pager (concurrency = 1, V1) / bare loop, tasks/s",
    format("%.0f%% (%.0f vs %.0f)", m.pager_v1_seq.tps / m.bare.tps * 100, m.pager_v1_seq.tps, m.bare.tps), "-", nil)
  goal("(info) client CPU per page: Node SDK / our pager (V3)", format("%.2fx (%.0f vs %.0f µs)", m.node.cpu / m.pager_v3.cpu, m.node.cpu, m.pager_v3.cpu), "-", nil)
  return m
end

---------------------------------------------------------------------------------------------
-- 3. memory

local function bench_memory()
  -- One run: the 1,000,000-task listing takes minutes against the emulator.
  local MEMORY_RUNS = 1
  progress("3/8 memory: streaming %s through client:tasks, %d run", MEMORY_JOB, MEMORY_RUNS)
  local r = { ratio = {}, first = {}, peak = {}, final_lua = {}, cpu_per_call = {}, cpu_per_page_10k = {} }
  local samples
  for i = 1, MEMORY_RUNS do
    emu("POST", "reset")
    local text = lua("bench/memory.lua", URL, MEMORY_JOB, QUICK and "5000" or "50000")
    local f = fields(first_line(text, "result"))
    r.first[i], r.peak[i], r.final_lua[i] = f.first_rss_kb, f.peak_hwm_kb, f.final_lua_kb
    r.run1 = r.run1 or f -- its device-name count and RSS split, for the account of the peak
    r.ratio[i] = f.peak_hwm_kb / f.first_rss_kb
    r.cpu_per_call[i] = f.cpu_seconds / f.calls * 1e6
    local small = fields(first_line(lua("bench/memory.lua", URL, "job-10000", "5000"), "result"))
    r.cpu_per_page_10k[i] = small.cpu_seconds / small.calls * 1e6
    if i == MEMORY_RUNS then check_emulator(format("memory, run %d", i)) end
    samples = samples or text
    progress("  run %d: first page %d kB, peak %d kB (%.2fx)", i, f.first_rss_kb, f.peak_hwm_kb, r.ratio[i])
  end
  local n = tonumber(MEMORY_JOB:match("%d+"))
  local set_n = fields(lua("bench/dedup_set.lua", MEMORY_JOB, tostring(n)))
  local set_1m = fields(lua("bench/dedup_set.lua", "job-1000000", "1000000"))
  local ratio = median(r.ratio)
  w("## 3. Memory")
  w("")
  w("`%s` streamed through `client:tasks` from the emulator (limiter off): every status paged as far as the "
    .. "service's 100,000-task cap, then the rest by device (QueryDevice, DeviceNames chunks of 50). VmRSS/VmHWM from "
    .. "`/proc/self/status` inside the Lua process; CPU from `os.clock()` (the client process only: the emulator is "
    .. "another process).", MEMORY_JOB)
  w("")
  w("| %s | median | runs |", MEMORY_JOB)
  w("|---|---:|---|")
  w("| RSS after the first page | %.0f kB | %s |", median(r.first), list_str(r.first))
  w("| peak RSS (VmHWM) | %.0f kB | %s |", median(r.peak), list_str(r.peak))
  w("| peak / first page | **%.2fx** | %s |", ratio, list_str(r.ratio, "%.2f"))
  w("| Lua heap at the end (`collectgarbage('count')`) | %.0f kB | %s |", median(r.final_lua), list_str(r.final_lua))
  w("| client CPU per call (pages, QueryDevice pages, chunks) | %.0f µs | %s |", median(r.cpu_per_call),
    list_str(r.cpu_per_call, "%.0f"))
  w("| client CPU per page, `job-10000` (paging only) | %.0f µs | %s |", median(r.cpu_per_page_10k),
    list_str(r.cpu_per_page_10k, "%.0f"))
  w("")
  w("Samples of the first run:")
  w("")
  for line in samples:gmatch("[^\n]+") do w("    %s", line) end
  w("")
  -- The same ledger as a core.new_taskset (src/taskset.c), memory outside the Lua heap, and
  -- what the listing's peak is made of: the first page's RSS (interpreter, libcurl, OpenSSL),
  -- the TaskId ledger, the device-name set (the same kind of set, one id per device name the
  -- listing remembered) and the rest (Lua heap, transfers, malloc).
  local ts_n = fields(lua("bench/dedup_set.lua", MEMORY_JOB, tostring(n), "taskset"))
  local ts_1m = fields(lua("bench/dedup_set.lua", "job-1000000", "1000000", "taskset"))
  local remembered = r.run1.devices_remembered
  local ledger_kb = ts_n.set_bytes / 1024
  local devices_kb = remembered * ts_n.bytes_per_task / 1024
  local rest_kb = median(r.peak) - median(r.first) - ledger_kb - devices_kb
  w("What the peak is made of (run 1): %.0f kB RSS after the first page (the interpreter, libcurl, OpenSSL and "
    .. "their libraries); the TaskId ledger, a `core.new_taskset()` (`src/taskset.c`: keyed 118-bit fingerprints and "
    .. "marks outside the Lua heap), %.0f kB for %d TaskIds (%.1f bytes per task; `bench/dedup_set.lua ... taskset`); "
    .. "the device-name set (the same kind of set, for the devices the paging phase saw, so the device phase skips "
    .. "them), %d names, about %.0f kB at the same bytes per id; the rest, %.0f kB: the Lua heap, the transfers, "
    .. "malloc's slack.", median(r.first), ledger_kb, ts_n.tasks, ts_n.bytes_per_task, remembered, devices_kb, rest_kb)
  w("")
  w("Of the largest RSS sampled (%d kB), %d kB was private memory (`RssAnon`) and %d kB file-backed pages (`RssFile`: "
    .. "mostly the code of libcrypto, libcurl and the libraries libcurl links, shared with every process that maps "
    .. "them).", r.run1.top_rss_kb, r.run1.top_anon_kb, r.run1.top_file_kb)
  w("")
  w("The ledger as a Lua table instead (`seen[TaskId] = true`, `bench/dedup_set.lua`): this job's %d TaskIds take %.0f "
    .. "kB of Lua heap (%.0f bytes per task; RSS +%d kB), which every GC cycle walks; the 1,000,000 shorter TaskIds of "
    .. "`job-1000000` %.0f kB (%.0f bytes per task). The TaskSet: those 1,000,000 in %d bytes (%.1f bytes per task, "
    .. "goal <= 24; RSS +%d kB). Taking them 100 a page: `set:take` %.1f µs per page, Walk:take's Lua loop over a table %.1f µs per page (at 1,000,000).",
    set_n.tasks, set_n.lua_kb, set_n.bytes_per_task, set_n.rss_growth_kb, set_1m.lua_kb, set_1m.bytes_per_task,
    ts_1m.set_bytes, ts_1m.bytes_per_task, ts_1m.rss_growth_kb, ts_1m.take_us_per_page, set_1m.take_us_per_page)
  w("")
  goal("TaskSet: bytes per task at 1,000,000 TaskIds (`set:bytes() / set:count()`)", format("%.1f", ts_1m.bytes_per_task),
    "<= 24", ts_1m.bytes_per_task <= 24)
  goal(format("Memory: peak RSS listing %s", MEMORY_JOB:match("^job%-%d+")), format("%.1f MB", median(r.peak) / 1024),
    "< 40 MB", median(r.peak) / 1024 < 40)
  goal("(info) memory: peak RSS / RSS after the first page", format("%.2fx (%.0f / %.0f kB)", ratio, median(r.peak),
    median(r.first)), "-", nil)
  goal("Pager CPU per call at 1,000,000 tasks / per page at 10,000", format("%.2fx (%.0f vs %.0f µs)",
    median(r.cpu_per_call) / median(r.cpu_per_page_10k), median(r.cpu_per_call), median(r.cpu_per_page_10k)),
    "<= 1.10x", median(r.cpu_per_call) / median(r.cpu_per_page_10k) <= 1.10)
end

---------------------------------------------------------------------------------------------
-- 4. latency-bound listing

local LAT_JOB = "job-10000"
local FAULTS = '{"latency_ms":200,"qps":10}'

local function latency_run(kind, concurrency)
  emu("POST", "reset")
  emu("POST", "faults", FAULTS)
  if kind == "node" then
    local j = cjson.decode(first_line(node(PORT, LAT_JOB, "100"), "{"))
    return j.seconds, j.tasks
  end
  local line = lua("bench/list.lua", URL, LAT_JOB, "v3", concurrency or "-", "plain")
  local f = fields(line)
  if f.unavailable then return nil, line:match("unavailable=(.*)") end
  return f.seconds, f.tasks
end

local function bench_latency()
  progress("4/8 latency-bound: %s, latency_ms=200, qps=10, %d runs per side", LAT_JOB, LONG_RUNS)
  local bound = 100 / 10 -- 100 pages at 10 requests per second
  -- The concurrent pager: is it there? (client:tasks{concurrency = N})
  local probe, why = latency_run("pager", QUICK and "2" or "2")
  local conc = { available = probe ~= nil, sweep = {} }
  local pager_mod = require("aliyun.iot.pager")
  conc.default_n = pager_mod.DEFAULT_CONCURRENCY
  -- The default (no option) is measured on its own; "sequential" is concurrency = 1 then.
  local run_default = conc.available
  local r = { seq = {}, node = {}, default = {}, best = {} }
  if conc.available then
    -- Default (no option given) is the pager's own choice; sweep N once each, then re-run the best.
    conc.sweep[2] = probe
    for _, n in ipairs({ 4, 8, 16 }) do conc.sweep[n] = latency_run("pager", tostring(n)) end
    local best_n, best_t = nil, math.huge
    for n, t in pairs(conc.sweep) do if t < best_t then best_n, best_t = n, t end end
    conc.best_n = best_n
    progress("  concurrency sweep: best %d (%.2f s)", best_n, best_t)
  else
    progress("  concurrent pager not available: %s", tostring(why))
  end
  for i = 1, LONG_RUNS do
    r.seq[i] = latency_run("pager", conc.available and "1" or "-")
    r.node[i] = latency_run("node")
    if run_default then r.default[i] = latency_run("pager", "-") end
    if conc.available then r.best[i] = latency_run("pager", tostring(conc.best_n)) end
    if i == LONG_RUNS then check_emulator(format("latency-bound, run %d", i)) end
    progress("  run %d: sequential %.2f s, node %.2f s%s%s", i, r.seq[i], r.node[i],
      run_default and format(", concurrent default %.2f s", r.default[i]) or "",
      conc.available and format(", concurrent best %.2f s", r.best[i]) or "")
  end
  emu("POST", "reset")
  w("## 4. Latency-bound listing")
  w("")
  w("Emulator faults `%s` (every answer 200 ms late, 10 requests per second per AccessKeyId), %s (10,000 tasks, 100 pages): "
    .. "the bound is 100 pages / 10 QPS = %.0f s. Our client as a user creates it (rate limiter and retries on), V3.", FAULTS, LAT_JOB, bound)
  w("")
  w("| side | median seconds | x bound | runs (s) |")
  w("|---|---:|---:|---|")
  if conc.available then
    if run_default then
      w("| concurrent pager, default concurrency (%s) | %.2f | %.2f | %s |", tostring(conc.default_n), median(r.default),
        median(r.default) / bound, list_str(r.default, "%.2f"))
    else
      w("| concurrent pager, default concurrency (`pager.DEFAULT_CONCURRENCY` = %s: the sequential pager below) | | | |",
        tostring(conc.default_n))
    end
    w("| concurrent pager, concurrency = %d (best of the sweep) | %.2f | %.2f | %s |", conc.best_n, median(r.best), median(r.best) / bound, list_str(r.best, "%.2f"))
  else
    w("| concurrent pager (`client:tasks{concurrency = N}`) | not available | | `%s` |", tostring(why))
  end
  w("| sequential pager (`client:tasks`%s) | %.2f | %.2f | %s |", conc.available and ", concurrency = 1" or "", median(r.seq), median(r.seq) / bound, list_str(r.seq, "%.2f"))
  w("| official Node SDK, sequential pages | %.2f | %.2f | %s |", median(r.node), median(r.node) / bound, list_str(r.node, "%.2f"))
  w("")
  if conc.available then
    local sweep = {}
    for _, n in ipairs({ 2, 4, 8, 16 }) do sweep[#sweep + 1] = format("%d: %.2f s", n, conc.sweep[n]) end
    w("Concurrency sweep (one run each): %s.", concat(sweep, ", "))
    w("")
    local best = median(r.best) / bound
    goal(format("Latency-bound: concurrent pager (concurrency = %d) / 10 s bound", conc.best_n), format("%.2fx (%.2f s)", best, median(r.best)),
      "<= 1.2x", best <= 1.2)
    local dflt = run_default and median(r.default) or median(r.seq)
    goal(format("Latency-bound: pager with its default concurrency (%s) / 10 s bound", tostring(conc.default_n)),
      format("%.2fx (%.2f s)", dflt / bound, dflt), "<= 1.2x", dflt / bound <= 1.2)
  else
    goal("Latency-bound: concurrent pager / 10 s bound", "concurrent pager not available", "<= 1.2x", nil)
  end
  goal("(info) latency-bound: sequential pager / 10 s bound", format("%.2fx (%.2f s)", median(r.seq) / bound, median(r.seq)), "-", nil)
  goal("(info) latency-bound: Node SDK / 10 s bound", format("%.2fx (%.2f s)", median(r.node) / bound, median(r.node)), "-", nil)
end

---------------------------------------------------------------------------------------------
-- 5. and 6. callgrind: instructions per page, and the profile

local CG_DIR = os.getenv("BENCH_CG_DIR") or "build/bench"

local function callgrind(name, script, ...)
  local file = format("%s/callgrind.%s.out", CG_DIR, name)
  local cmd = concat({ ENV, "valgrind --tool=callgrind --callgrind-out-file=" .. file, BIN .. "/lua_host", script, ... }, " ")
  local text = run(cmd)
  local ir = text:match("I%s+refs:%s+([%d,]+)")
  assert(ir, "no instruction count from callgrind:\n" .. text)
  return tonumber((ir:gsub(",", ""))), file
end

-- Exclusive instruction counts by function from callgrind_annotate.
local function annotate(file)
  local text = run("callgrind_annotate --auto=no --threshold=100 " .. file)
  local by = {}
  for line in text:gmatch("[^\n]+") do
    local n, name = line:match("^%s*([%d,]+) %(%s*[%d.]+%%%)%s+(.+)$")
    if n and not name:find("PROGRAM TOTALS", 1, true) then
      name = name:gsub(" %[.-%]$", ""):gsub("'%d+", ""):gsub("^%?%?%?:", "")
      by[name] = (by[name] or 0) + tonumber((n:gsub(",", "")))
    end
  end
  return by, text
end

local function bench_callgrind()
  progress("5/8 callgrind: instructions per page (50 pages of job-5000 minus 1 page of job-100)")
  local per = {}
  local files = {}
  for _, side in ipairs({ "pager_v3", "pager_v1", "bare" }) do
    emu("POST", "reset")
    local script, extra = "bench/list.lua", side == "pager_v1" and "v1" or "v3"
    if side == "bare" then script, extra = "bench/bare_loop.lua", "100" end
    local big, fbig = callgrind(side .. ".50", script, URL, "job-5000", extra)
    local small, fsmall = callgrind(side .. ".1", script, URL, "job-100", extra)
    per[side] = (big - small) / 49
    files[side] = { fbig, fsmall }
    progress("  %s: %.0f instructions per page", side, per[side])
  end
  w("## 5. Per-request CPU (callgrind)")
  w("")
  w("Instructions per page fetched and decoded (100 tasks): `valgrind --tool=callgrind` on listing `job-5000` (50 pages) minus "
    .. "listing `job-100` (1 page), divided by 49; start-up and the first connection cancel out. Run under `build/bench/lua_host` "
    .. "(`bench/lua_host.c`: Lua 5.4 linked statically from Debian's liblua5.4.a, which keeps function names; lua5.4 is stripped). "
    .. "Deterministic up to the random nonces, so it shows regressions regardless of machine noise.")
  w("")
  w("| side | instructions per page |")
  w("|---|---:|")
  w("| our pager, V3 (default) | %.0f |", per.pager_v3)
  w("| our pager, V1 | %.0f |", per.pager_v1)
  w("| bare loop (V1) | %.0f |", per.bare)
  w("")
  goal("(info) instructions per page, pager V3 / V1 / bare", format("%.0f / %.0f / %.0f", per.pager_v3, per.pager_v1, per.bare), "regression figure", nil)

  progress("6/8 profile: where our pager spends more than the bare loop")
  local a50 = annotate(files.pager_v1[1])
  local a1 = annotate(files.pager_v1[2])
  local b50 = annotate(files.bare[1])
  local b1 = annotate(files.bare[2])
  w("Top functions (exclusive instructions, `callgrind_annotate %s`, pager V3, 50 pages; cjson's library is stripped, so its "
    .. "functions show as addresses):", files.pager_v3[1])
  w("")
  w("```")
  local _, t3 = annotate(files.pager_v3[1])
  local shown = 0
  for line in t3:gmatch("[^\n]+") do
    if line:match("^%s*[%d,]+ %(") and shown < 26 then
      w("%s", line:sub(1, 140))
      shown = shown + 1
    end
  end
  w("```")
  w("")
  w("## 6. Profile: what our pager (V1) spends per page beyond the bare loop")
  w("")
  w("Per page = (50-page run - 1-page run) / 49, for each function, ours minus bare (positive: only we spend it). "
    .. "Total difference: %.0f instructions per page (%.0f%% over the bare loop).", per.pager_v1 - per.bare,
    (per.pager_v1 / per.bare - 1) * 100)
  w("")
  local diff = {}
  local names = {}
  for _, t in ipairs({ a50, a1, b50, b1 }) do for k in pairs(t) do names[k] = true end end
  for k in pairs(names) do
    local ours = ((a50[k] or 0) - (a1[k] or 0)) / 49
    local bare = ((b50[k] or 0) - (b1[k] or 0)) / 49
    diff[#diff + 1] = { k, ours - bare, ours, bare }
  end
  table.sort(diff, function(x, y) return x[2] > y[2] end)
  w("| function | ours - bare | ours | bare |")
  w("|---|---:|---:|---:|")
  for i = 1, 20 do
    local d = diff[i]
    if d then w("| `%s` | %.0f | %.0f | %.0f |", d[1]:sub(1, 90), d[2], d[3], d[4]) end
  end
  w("")
  -- Lua heap allocated per page.
  local alloc, body_bytes = {}, nil
  for _, m in ipairs({ "pager-v1", "pager-v3", "bare" }) do
    emu("POST", "reset")
    local f = fields(lua("bench/alloc.lua", URL, "job-5000", "40", m))
    alloc[m] = f.bytes_per_page
    body_bytes = body_bytes or f.body_bytes
  end
  w("Lua heap allocated per page (GC stopped, 40 pages of `job-5000`, `bench/alloc.lua`): pager V1 %.0f bytes, pager V3 %.0f bytes, "
    .. "bare loop %.0f bytes (the response body alone is about %d bytes).", alloc["pager-v1"], alloc["pager-v3"], alloc.bare,
    body_bytes or 0)
  w("")
  return per, alloc
end

---------------------------------------------------------------------------------------------
-- 7. against the cheap server (bench/cheap.lua): client against client, without the
-- emulator's cost in the way

local function bench_cheap()
  progress("7/8 against the cheap server: ours and the Node SDK side by side, per-page CPU")
  local file = BIN .. "/cheap.md"
  local text = run(format("BENCH_CHEAP_OUT=%s %s %s bench/cheap.lua", file, ENV, LUA))
  local v = {}
  for k, x in text:gmatch("cheap side=(%S+) value=(%S+)") do v[k] = tonumber(x) end
  local md = read_file(file) or ""
  os.remove(file)
  for line in (md .. "\n"):gmatch("(.-)\n") do w("%s", line) end
  assert(v.node_over_ours_cpu and v.node_over_ours_wall and v.pager_over_call,
    "bench/cheap.lua printed no summary:\n" .. text)
  goal("Whole-process CPU for 100,000 tasks, Node SDK / ours (cheap server)",
    format("%.2fx", v.node_over_ours_cpu), ">= 2.5x", v.node_over_ours_cpu >= 2.5)
  goal("Wall-clock against the cheap server, ours (default concurrency) / Node SDK",
    format("%.2fx", v.node_over_ours_wall), ">= 3x", v.node_over_ours_wall >= 3)
  goal(format("Pager CPU per page / single call's, %d tasks, gzip on (cheap server)", v.page_job),
    format("%.2fx (%.0f vs %.0f µs)", v.pager_over_call, v.pager_us, v.call_us), "<= 1.15x", v.pager_over_call <= 1.15)
  goal("(info) the cheap server's CPU / our client's whole-process CPU",
    format("%.0f%%", (v.server_share_ours or 0) * 100), "well below 100%", nil)
end

---------------------------------------------------------------------------------------------
-- 8. the same per page inside OpenResty (bench/openresty.lua): the worker's CPU over cosockets

local function bench_openresty()
  progress("8/8 inside OpenResty: CPU per page in the nginx worker")
  local file = BIN .. "/openresty.md"
  local text = run(format("BENCH_OPENRESTY_OUT=%s %s %s bench/openresty.lua", file, ENV, LUA))
  local v = {}
  -- (its progress lines, on stderr, are in `text` too: "[openresty ...")
  for line in text:gmatch("[^\n]+") do
    if line:find("^openresty figure=") then
      local f = fields(line)
      v[f.figure] = f
    end
  end
  local md = read_file(file) or ""
  os.remove(file)
  for line in (md .. "\n"):gmatch("(.-)\n") do w("%s", line) end
  local pc, flat, cpu, log = v.pager_over_call, v.flat, v.listing_cpu, v.log
  assert(pc and cpu and log, "bench/openresty.lua printed no summary:\n" .. text)
  local tasks = format("%d", pc.tasks):reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", "")
  goal(format("OpenResty worker: pager CPU per page / single call's (%s tasks, gzip on)", tasks),
    format("%.2fx (%.0f vs %.0f µs)", pc.value, pc.pager_us, pc.call_us), "<= 1.15x", pc.value <= 1.15)
  if flat then
    goal(format("(info) OpenResty worker: pager CPU per page, %s / %s (flat)", flat.big, flat.small),
      format("%.2fx (%.0f vs %.0f µs)", flat.value, flat.big_us, flat.small_us), "-", nil)
  end
  goal(format("(info) OpenResty worker: CPU for the %s-task listing (`client:tasks`, gzip on)", tasks),
    format("%.3f s", cpu.value), "-", nil)
  -- Not a speed: a busy-waiting worker (ngx.sleep(0)) or a logged error would make the figures above moot.
  goal("OpenResty: `ngx.sleep(0)` warnings, errors in the worker's error.log after the runs",
    format("%d, %d", log.sleep0, log.errors), "0, 0", log.sleep0 == 0 and log.errors == 0)
end

---------------------------------------------------------------------------------------------

local sections = {}
local function section(fn)
  local ok, err = pcall(fn)
  if not ok then
    progress("section failed: %s", tostring(err))
    w("**This section failed:**")
    w("")
    w("```")
    w("%s", tostring(err))
    w("```")
    w("")
  end
  sections[#sections + 1] = out
end

local function loadavg() return ((read_file("/proc/loadavg") or "?"):match("^(%S+ %S+ %S+)")) end
local load_start = loadavg()
local m = machine()
local body = {}
out = body
section(bench_signing)
section(bench_throughput)
section(bench_memory)
section(bench_latency)
section(bench_callgrind)
section(bench_cheap)
section(bench_openresty)

local doc = {}
local function d(...) doc[#doc + 1] = format(...) end
d("# Benchmarks")
d("")
d("Written by `make bench` (`scripts/bench`) on %s UTC in %.0f s%s. Figures are medians; the sides of each comparison ran "
  .. "alternately in the same session. Not tuned to any figure: rerun `make bench` to reproduce.", os.date("!%Y-%m-%d %H:%M"),
  core.monotonic() - started, QUICK and " — **BENCH_QUICK=1: one short run each, not figures to quote**" or "")
d("")
d("## Machine and versions")
d("")
d("| | |")
d("|---|---|")
for _, row in ipairs(m) do d("| %s | %s |", row[1], row[2]) end
d("| load average (1, 5, 15 min) | at the start %s, at the end %s (other work on the machine shows here: it widens the spread of the wall-clock runs, not the callgrind counts) |",
  load_start, loadavg())
d("")
d("## Goals")
d("")
d("| figure | measured | goal | |")
d("|---|---|---|---|")
for _, row in ipairs(summary) do d("%s", row) end
d("")
for _, line in ipairs(body) do d("%s", line) end
d("## Emulator log")
d("")
d("The emulator logs every request in a 128 MB shared dict and an access log; it was reset between runs. After each section:")
d("")
d("| after | log entries | \"emulator log full\" errors | nonce store errors |")
d("|---|---:|---:|---:|")
for _, row in ipairs(log_checks) do d("%s", row) end
d("")
d("## Commands")
d("")
d("`$LUA_ENV` is `%s`; `$PORT` the emulator's port, `$SECRET` the emulator's first AccessKey secret "
  .. "(`spec/emulator/accounts.lua`; also `BENCH_ACCESS_KEY_ID` / `BENCH_ACCESS_KEY_SECRET` in the environment).", ENV)
d("")
d("```")
d("make bench    # = scripts/bench")
for _, c in ipairs(commands) do d("%s", c) end
d("```")
d("")
local f = assert(io.open(os.getenv("BENCH_RESULTS") or "bench/RESULTS.md", "w"))
f:write(concat(doc, "\n"))
f:close()
progress("wrote %s", os.getenv("BENCH_RESULTS") or "bench/RESULTS.md")
