--- What the pager's de-duplication set alone costs for a job of n tasks: a table holding
-- n TaskId strings (as the emulator names them) -> true, as pager.lua's `seen` does.
--   lua5.4 bench/dedup_set.lua <JobId> <n>
-- Prints "dedup_set tasks=N lua_kb=K rss_growth_kb=R bytes_per_task=B".
local job, n = arg[1], tonumber(arg[2])
local function rss()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end
collectgarbage()
local lua0, rss0 = collectgarbage("count"), rss()
local seen = {}
for i = 1, n do seen[string.format("%s-T%07d", job, i)] = true end
collectgarbage()
local kb = collectgarbage("count") - lua0
print(string.format("dedup_set tasks=%d lua_kb=%.0f rss_growth_kb=%d bytes_per_task=%.1f", n, kb, rss() - rss0,
  kb * 1024 / n))
