--- The client's own listing: every task of a job through client:tasks.
--   lua5.4 bench/list.lua <endpoint> <JobId> [v1|v3] [concurrency] [plain]
-- "plain" keeps the client's defaults (rate limiter and retries on), as a user would;
-- otherwise the limiter is off and max_retries = 0 (the throughput benchmark).
-- concurrency "-" means none given. Access key from BENCH_ACCESS_KEY_ID / _SECRET.
-- BENCH_GZIP=0: the transports ask for no gzip (bench/gzip_switch.lua).
-- Prints "tasks=N seconds=S cpu_seconds=C" or "unavailable=<why>".
dofile("bench/gzip_switch.lua")
local core = require("aliyun.iot.core")
local iot = require("aliyun.iot")

local endpoint, job, sigv, concurrency, plain = arg[1], arg[2], arg[3] or "v3", arg[4], arg[5] == "plain"
local opts = {
  endpoint = endpoint, region = "cn-shanghai",
  access_key_id = assert(os.getenv("BENCH_ACCESS_KEY_ID"), "BENCH_ACCESS_KEY_ID"),
  access_key_secret = assert(os.getenv("BENCH_ACCESS_KEY_SECRET"), "BENCH_ACCESS_KEY_SECRET"),
  signature_version = sigv,
}
if not plain then opts.rate_limit, opts.max_retries = false, 0 end
local client = assert(iot.new(opts))
local listing = { JobId = job }
if concurrency and concurrency ~= "-" then listing.concurrency = tonumber(concurrency) end

-- The concurrent pager may not exist yet: say so rather than fail the whole run.
local ok, iter = pcall(client.tasks, client, listing)
if not ok then
  print("unavailable=" .. tostring(iter):gsub("%s+", " "))
  return
end
local t0, c0 = core.monotonic(), os.clock()
local tasks, sink = 0, 0
for task in iter do
  tasks = tasks + 1
  sink = sink + #task.DeviceName
end
print(string.format("tasks=%d seconds=%.6f cpu_seconds=%.6f sink=%d", tasks, core.monotonic() - t0,
  os.clock() - c0, sink))
client:close()
