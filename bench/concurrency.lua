-- Latency-bound listing: emulator at latency_ms=200 and qps=10, limiter at 10/s,
-- 10,000 tasks (100 pages of 100), for each concurrency; median of RUNS runs.
local helpers = require("helpers")
local core = require("aliyun.iot.core")
local RUNS = tonumber(os.getenv("RUNS") or 3)
local LEVELS = {}
for l in (os.getenv("LEVELS") or "1,2,3,4,8"):gmatch("%d+") do LEVELS[#LEVELS + 1] = tonumber(l) end
local emu = helpers.start_emulator()
local ok, e = pcall(function()
  local client = helpers.client(emu, { rate_limit = 10, max_retries = 3 })
  print(string.format("%-12s %8s %8s %8s  %s", "concurrency", "median_s", "min_s", "max_s", "throttled/requests per run"))
  for _, n in ipairs(LEVELS) do
    local times, notes = {}, {}
    for _ = 1, RUNS do
      emu:reset()
      emu:faults{ latency_ms = tonumber(os.getenv("LATENCY_MS") or 200), qps = 10 }
      core.sleep(1.1) -- a fresh second for the emulator's window and our bucket
      local t0 = core.monotonic()
      local count = 0
      for _ in client:tasks{ JobId = "job-10000", concurrency = n } do count = count + 1 end
      local dt = core.monotonic() - t0
      assert(count == 10000, count)
      local throttled, total = 0, 0
      for _, entry in ipairs(emu:log()) do
        total = total + 1
        if entry.code:match("^Throttling") then throttled = throttled + 1 end
      end
      times[#times + 1] = dt
      notes[#notes + 1] = throttled .. "/" .. total
    end
    table.sort(times)
    print(string.format("%-12d %8.2f %8.2f %8.2f  %s", n, times[(#times + 1) // 2], times[1], times[#times], table.concat(notes, " ")))
  end
end)
if not ok then print("error:", e) end
emu:stop()
