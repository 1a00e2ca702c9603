--- What the listing's de-duplication set alone costs for a job of n tasks, taken page by page
-- (100 tasks a page, TaskIds as the emulator names them):
--   lua5.4 bench/dedup_set.lua <JobId> <n> [lua|taskset]
--     lua      (the default) a Lua table TaskId -> pass, with Walk:take's loop (walk.lua)
--     taskset  core.new_taskset() and set:take, the same step in C, memory outside the Lua heap
-- Prints "dedup_set kind=K tasks=N lua_kb=K rss_growth_kb=R bytes_per_task=B
-- take_us_per_page=T [set_bytes=S]": lua_kb is the Lua heap the set holds, bytes_per_task
-- the set's own memory per task (the Lua heap for `lua`, set:bytes() for `taskset`), and
-- take_us_per_page the CPU of the take step alone (os.clock around each call).
local job, n, kind = arg[1], tonumber(arg[2]), arg[3] or "lua"
local format = string.format
local function rss()
  local f = assert(io.open("/proc/self/status"))
  local kb = tonumber(f:read("a"):match("VmRSS:%s*(%d+)"))
  f:close()
  return kb
end

-- Walk:take's loop over a plain table (lua/aliyun/iot/walk.lua).
local function lua_take(seen, tasks, token, first_token)
  local kept, repeats, new, distinct = nil, 0, 0, 0
  for i = 1, #tasks do
    local task = tasks[i]
    local id = task.TaskId
    local mark = id ~= nil and seen[id] or nil
    if mark == nil then
      if id ~= nil then
        seen[id] = token
        distinct = distinct + 1
      end
      new = new + 1
      if kept then kept[#kept + 1] = task end
    else
      if not kept then
        kept = {}
        for j = 1, i - 1 do kept[j] = tasks[j] end
      end
      if mark < first_token then distinct = distinct + 1 elseif mark == token then repeats = repeats + 1 end
      seen[id] = token
    end
  end
  return new, distinct, repeats, kept
end

local set, take
if kind == "taskset" then
  set = require("aliyun.iot.core").new_taskset()
  take = function(tasks) return set:take(tasks, 1, 1) end
else
  set = {}
  take = function(tasks) return lua_take(set, tasks, 1, 1) end
end

collectgarbage()
collectgarbage()
local lua0, rss0 = collectgarbage("count"), rss()
local cpu = 0
for first = 1, n, 100 do
  local tasks = {}
  for i = first, math.min(first + 99, n) do tasks[#tasks + 1] = { TaskId = format("%s-T%07d", job, i) } end
  local c0 = os.clock()
  local new = take(tasks)
  cpu = cpu + os.clock() - c0
  assert(new == #tasks)
end
collectgarbage()
collectgarbage()
local kb = collectgarbage("count") - lua0
local own = kind == "taskset" and set:bytes() or kb * 1024
print(format("dedup_set kind=%s tasks=%d lua_kb=%.0f rss_growth_kb=%d bytes_per_task=%.1f take_us_per_page=%.1f%s",
  kind, n, kb, rss() - rss0, own / n, cpu / math.ceil(n / 100) * 1e6,
  kind == "taskset" and format(" set_bytes=%d", set:bytes()) or ""))
