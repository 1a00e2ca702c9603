--- The handler of bench/openresty.conf.in: bench/page_cpu.lua's measurement, made inside an
-- nginx worker, over the client's default transport there (cosockets, from a content handler).
--   GET /bench/listing?endpoint=URL&job=JobId&mode=call|tasks|tasks1&gzip=1|0
--     call    client:ListOTATaskByJob{ JobId, PageSize = 100, CurrentPage = p }, p = 1..last
--     tasks   every task through client:tasks{ JobId } (its default concurrency)
--     tasks1  the same with concurrency = 1 (one request at a time, as `call`)
--     gzip=0  iot.new{ gzip = false }. The resty transport sends no Accept-Encoding either way
--             (README, option gzip), so both are identity bodies; kept so the table lines up
--             with the Lua 5.4 one, and to show that the two are the same route.
-- One warm-up call, then two passes over the whole job, as page_cpu.lua does: the first with
-- the collector running (CPU and wall), the second with it stopped (Lua heap allocated).
-- Answers JSON: pages, tasks, cpu_s, cpu_us_per_page, wall_us_per_page, alloc_bytes_per_page,
-- lua_kb_end, the check of os.clock against /proc/self/stat (clock_s, stat_s, clk_tck,
-- stat_pid, worker_pid), libcurl_loaded, and the versions (jit, ngx_lua).
-- Credentials: BENCH_ACCESS_KEY_ID / BENCH_ACCESS_KEY_SECRET through nginx's `env` (any
-- strings: the cheap server checks no signature).
-- luacheck: globals ngx
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local cjson = require("cjson.safe").new()
local ffi = require("ffi")

local ngx = ngx
local clock, monotonic = os.clock, core.monotonic
local ceil, tonumber = math.ceil, tonumber

local app = {}

-- sysconf(_SC_CLK_TCK): the unit of utime and stime in /proc/self/stat. pcall: a second
-- cdef of the same name raises (lua_code_cache off reloads this module).
pcall(ffi.cdef, "long sysconf(int name);")
local SC_CLK_TCK = 2 -- <bits/confname.h>
local function clk_tck() return tonumber(ffi.C.sysconf(SC_CLK_TCK)) end

-- This process's pid and utime + stime in seconds, from the kernel's own accounting.
local function proc_cpu(tck)
  local f = assert(io.open("/proc/self/stat"))
  local s = f:read("*a")
  f:close()
  -- comm may hold spaces and parentheses: the fields start after the last ')'.
  local pid = tonumber(s:match("^(%d+)"))
  local rest = s:match(".*%)%s+(.*)$")
  local fields = {}
  for v in rest:gmatch("%S+") do fields[#fields + 1] = v end
  -- fields[1] is field 3 (state); utime and stime are fields 14 and 15.
  return pid, (tonumber(fields[12]) + tonumber(fields[13])) / tck
end

-- One whole listing; returns pages, tasks (bench/page_cpu.lua's listing()).
local function listing(client, job, mode)
  local pages, tasks, sink = 0, 0, 0
  if mode == "call" then
    local p = 1
    while true do
      local page = assert(client:ListOTATaskByJob{ JobId = job, PageSize = 100, CurrentPage = p })
      pages, tasks = pages + 1, tasks + #page.tasks
      for _, t in ipairs(page.tasks) do sink = sink + #t.DeviceName end
      if p * 100 >= page.Total then break end
      p = p + 1
    end
  else
    for t in client:tasks{ JobId = job, concurrency = mode == "tasks1" and 1 or nil } do
      tasks = tasks + 1
      sink = sink + #t.DeviceName
    end
    pages = ceil(tasks / 100)
  end
  return pages, tasks, sink
end

local function measure(client, job, mode)
  assert(client:ListOTATaskByJob{ JobId = job, PageSize = 100, CurrentPage = 1 }) -- warm-up
  local tck = clk_tck()
  collectgarbage()
  local pid, s0 = proc_cpu(tck)
  -- os.clock() is LuaJIT's clock(): glibc reads CLOCK_PROCESS_CPUTIME_ID, the CPU (user +
  -- sys) of this whole process, i.e. of the worker, which is one thread. That includes what
  -- nginx itself does for the cosockets between the Lua resumes (reads, writes, the event
  -- loop), as getrusage includes libcurl's work in page_cpu.lua. Checked against the
  -- kernel's utime + stime of the same pid over both passes (clock_s against stat_s).
  local c0, t0 = clock(), monotonic()
  local pages, tasks = listing(client, job, mode)
  local cpu, wall = clock() - c0, monotonic() - t0

  collectgarbage()
  collectgarbage("stop")
  local kb0 = collectgarbage("count")
  local ok, err = pcall(listing, client, job, mode)
  local alloc = (collectgarbage("count") - kb0) * 1024
  collectgarbage("restart")
  if not ok then error(err, 0) end
  local k1 = clock()
  local _, s1 = proc_cpu(tck)
  collectgarbage()
  return {
    job = job, mode = mode, pages = pages, tasks = tasks,
    cpu_s = cpu, cpu_us_per_page = cpu / pages * 1e6, wall_us_per_page = wall / pages * 1e6,
    alloc_bytes_per_page = alloc / pages, lua_kb_end = collectgarbage("count"),
    clock_s = k1 - c0, stat_s = s1 - s0, clk_tck = tck, stat_pid = pid, worker_pid = ngx.worker.pid(),
    -- Loaded only by the resty transport's fallback: nil here means every call went over
    -- cosockets in this worker, none through libcurl.
    libcurl_loaded = package.loaded["aliyun.iot.transport.curl"] ~= nil,
    jit = jit and jit.version, ngx_lua = ngx.config.ngx_lua_version,
  }
end

local function reply(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
  return ngx.exit(status)
end

local MODES = { call = true, tasks = true, tasks1 = true }

function app.listing()
  local args = ngx.req.get_uri_args()
  local job, mode, gzip, endpoint = args.job, args.mode, args.gzip, args.endpoint
  if type(job) ~= "string" or not MODES[mode] or (gzip ~= "1" and gzip ~= "0") or type(endpoint) ~= "string" then
    return reply(400, { err = "want endpoint=URL&job=JobId&mode=call|tasks|tasks1&gzip=1|0" })
  end
  local client, err = iot.new{
    endpoint = endpoint, region = "cn-shanghai",
    access_key_id = os.getenv("BENCH_ACCESS_KEY_ID"), access_key_secret = os.getenv("BENCH_ACCESS_KEY_SECRET"),
    rate_limit = false, max_retries = 0, gzip = gzip == "1",
  }
  if not client then return reply(500, { err = tostring(err) }) end
  local ok, result = pcall(measure, client, job, mode)
  client:close()
  if not ok then return reply(500, { err = tostring(result) }) end
  result.gzip = tonumber(gzip)
  return reply(200, result)
end

return app
