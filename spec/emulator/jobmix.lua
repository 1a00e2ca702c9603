-- Status mixes of the jobs job-<N>-mix-<S1>:<c1>,<S2>:<c2>,... (jobs.lua):
-- exactly c_j tasks in status S_j, the statuses interleaved evenly over the
-- job (every page holds several), with "status of task i", "tasks 1..i in
-- status S" and "the k-th task in status S" all arithmetic: O(#statuses).
--
-- Pure Lua (no ngx), exact in doubles (LuaJIT, 5.1) as long as N*N < 2^53:
-- jobs.lua caps mix jobs at MAX_TASKS.
--
-- The layout is a cascade of Bresenham lines. Level 1 spreads S_1 evenly over
-- all N tasks: task i is S_1 when floor(i*c_1/N) steps up at i. The tasks
-- that are not S_1 (R_2 = N - c_1 of them, in task order) form level 2, over
-- which S_2 is spread the same way, and so on; the last status takes what is
-- left. Among the first m members of a level with R members, floor(m*c/R)
-- hold its status, and its k-th one is member ceil(k*R/c); the r-th member of
-- level j+1 is member floor((r-1)*R_j/(R_j-c_j))+1 of level j.
--
-- Example, job-10-mix-SUCCEEDED:6,IN_PROGRESS:2,FAILED:1,QUEUED:1:
--   Q S IP S S F S IP S S

local M = {}

local floor = math.floor

-- Parses "S1:c1,S2:c2,..." for a job of size tasks. is_status(S) says which
-- names are allowed. Returns the mix (levels[j] = { status, count, rest },
-- level_of[status] = j) or nil and a reason.
function M.parse(text, size, is_status)
  local levels, level_of, sum = {}, {}, 0
  for entry in (text .. ","):gmatch("([^,]*),") do
    local status, digits = entry:match("^([A-Z][A-Z_]*):([1-9]%d*)$")
    if not status then return nil, "mix entry " .. entry .. " is not STATUS:COUNT" end
    if not is_status(status) then return nil, "unknown status " .. status end
    if level_of[status] then return nil, "status " .. status .. " given twice" end
    if #digits > 9 then return nil, "count too large" end
    local count = tonumber(digits)
    levels[#levels + 1] = { status = status, count = count }
    level_of[status] = #levels
    sum = sum + count
  end
  if sum ~= size then return nil, "the counts add up to " .. sum .. ", not " .. size end
  local rest = size
  for _, lv in ipairs(levels) do
    lv.rest = rest
    rest = rest - lv.count
  end
  return { levels = levels, level_of = level_of }
end

-- Status of task i (1 <= i <= size).
function M.status_of(mix, i)
  local r = i
  for _, lv in ipairs(mix.levels) do
    local c, R = lv.count, lv.rest
    local here = floor(r * c / R)
    if here > floor((r - 1) * c / R) then return lv.status end
    r = r - here            -- i's rank among the tasks of the next level
  end
end

-- Number of tasks among 1..i in status (0 for a status not in the mix).
function M.prefix(mix, status, i)
  local target = mix.level_of[status]
  if not target then return 0 end
  local m = i               -- members of level j among tasks 1..i
  for j = 1, target do
    local lv = mix.levels[j]
    local here = floor(m * lv.count / lv.rest)
    if j == target then return here end
    m = m - here
  end
end

function M.count(mix, status)
  local l = mix.level_of[status]
  return l and mix.levels[l].count or 0
end

-- Index of the k-th task in status; 1 <= k <= count(mix, status).
function M.kth(mix, status, k)
  local l = mix.level_of[status]
  local lv = mix.levels[l]
  local r = floor((k * lv.rest + lv.count - 1) / lv.count)   -- ceil(k*R/c): member r of level l
  for j = l - 1, 1, -1 do
    local up = mix.levels[j]
    r = floor((r - 1) * up.rest / (up.rest - up.count)) + 1  -- member of level j
  end
  return r
end

return M
