--- Memory while streaming a big job through client:tasks (limiter off, no retries).
--   lua5.4 bench/memory.lua <endpoint> <JobId> [sample_every_tasks]
-- Reads VmRSS / VmHWM from /proc/self/status after the first page (first task), every
-- sample_every_tasks tasks and at the end, with collectgarbage("count") beside them.
-- Prints "sample tasks=N rss_kb=R hwm_kb=H anon_kb=A file_kb=F lua_kb=L" lines, then one
-- "result tasks=N first_rss_kb=.. peak_hwm_kb=.. final_rss_kb=.. final_lua_kb=.. seconds=.. ..."
local core = require("aliyun.iot.core")
local iot = require("aliyun.iot")

local endpoint, job, every = arg[1], arg[2], tonumber(arg[3] or "100000")

local function status()
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")), tonumber(text:match("VmHWM:%s*(%d+)")),
    tonumber(text:match("RssAnon:%s*(%d+)")), tonumber(text:match("RssFile:%s*(%d+)"))
end

-- The split of the largest RSS sampled: private memory (RssAnon) and file-backed pages
-- (RssFile: mostly the shared libraries' code, which every process mapping them shares).
local top_rss, top_anon, top_file = 0, 0, 0
local function sample(n)
  local rss, hwm, anon, file = status()
  local lua_kb = collectgarbage("count")
  if rss > top_rss then top_rss, top_anon, top_file = rss, anon, file end
  print(string.format("sample tasks=%d rss_kb=%d hwm_kb=%d anon_kb=%d file_kb=%d lua_kb=%.0f", n, rss, hwm, anon, file,
    lua_kb))
  return rss, hwm, lua_kb
end

local client = assert(iot.new{
  endpoint = endpoint, region = "cn-shanghai",
  access_key_id = assert(os.getenv("BENCH_ACCESS_KEY_ID")),
  access_key_secret = assert(os.getenv("BENCH_ACCESS_KEY_SECRET")),
  rate_limit = false, max_retries = 0,
})
local t0 = core.monotonic()
local n, first_rss = 0, nil
local calls, devices_remembered = 0, 0
local cpu0 = os.clock()
local function count_calls(info)
  local c = info.calls
  calls = c.pages + c.chunks + c.QueryDevice
  devices_remembered = info.devices_remembered or devices_remembered
end
for _ in client:tasks{ JobId = job, on_progress = count_calls } do
  n = n + 1
  if n == 1 then first_rss = sample(n) elseif n % every == 0 then sample(n) end
end
local rss, hwm, lua_kb = sample(n)
print(string.format("result tasks=%d first_rss_kb=%d peak_hwm_kb=%d final_rss_kb=%d final_lua_kb=%.0f seconds=%.3f "
  .. "cpu_seconds=%.3f calls=%d devices_remembered=%d top_rss_kb=%d top_anon_kb=%d top_file_kb=%d", n, first_rss, hwm,
  rss, lua_kb, core.monotonic() - t0, os.clock() - cpu0, calls, devices_remembered, top_rss, top_anon, top_file))
client:close()
