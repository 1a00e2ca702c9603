--- Client CPU and Lua heap per page: single client:ListOTATaskByJob calls, one per page, against
-- client:tasks over the same job (limiter off, no retries, V3).
--   lua5.4 bench/page_cpu.lua <endpoint> <JobId> call|tasks|tasks1
--     call    client:ListOTATaskByJob{ JobId, PageSize = 100, CurrentPage = p }, p = 1..last
--     tasks   every task through client:tasks{ JobId } (its default concurrency)
--     tasks1  the same with concurrency = 1 (one request at a time, as `call`)
-- BENCH_GZIP=0 turns gzip off (bench/gzip_switch.lua). Two passes in one process: the first
-- with the collector running (CPU: os.clock, which is getrusage's user + sys), the second with
-- it stopped (Lua heap allocated: collectgarbage("count")), each after one warm-up page.
-- Prints "page_cpu mode=M pages=P tasks=T cpu_us_per_page=C wall_us_per_page=W
-- alloc_bytes_per_page=A lua_kb_end=L gzip=0|1".
local gzip_off = dofile("bench/gzip_switch.lua")
local core = require("aliyun.iot.core")
local iot = require("aliyun.iot")

local endpoint, job, mode = arg[1], arg[2], arg[3]
local client = assert(iot.new{
  endpoint = endpoint, region = "cn-shanghai",
  access_key_id = assert(os.getenv("BENCH_ACCESS_KEY_ID")),
  access_key_secret = assert(os.getenv("BENCH_ACCESS_KEY_SECRET")),
  rate_limit = false, max_retries = 0,
})

-- One whole listing; returns pages, tasks.
local function listing()
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
    pages = math.ceil(tasks / 100)
  end
  return pages, tasks, sink
end

assert(client:ListOTATaskByJob{ JobId = job, PageSize = 100, CurrentPage = 1 }) -- warm-up
collectgarbage()
local c0, t0 = os.clock(), core.monotonic()
local pages, tasks = listing()
local cpu, wall = os.clock() - c0, core.monotonic() - t0

collectgarbage()
collectgarbage("stop")
local kb0 = collectgarbage("count")
listing()
local alloc = (collectgarbage("count") - kb0) * 1024
collectgarbage("restart")
collectgarbage()
print(string.format("page_cpu mode=%s pages=%d tasks=%d cpu_us_per_page=%.1f wall_us_per_page=%.1f "
  .. "alloc_bytes_per_page=%.0f lua_kb_end=%.0f gzip=%d", mode, pages, tasks, cpu / pages * 1e6,
  wall / pages * 1e6, alloc / pages, collectgarbage("count"), gzip_off and 0 or 1))
client:close()
