-- Task state changes layered over the synthetic jobs of jobs.lua.
--
-- Pure Lua (no ngx): the gateway keeps one mutation record per job in a shared
-- dict (store.lua), tests may dofile this file to predict answers.
--
-- A mutation record m:
--   m.canceled          set of base statuses canceled by CancelOTATaskByJob
--                       (status-level: every task whose base status is in it
--                       shows CANCELED), e.g. { QUEUED = true }
--   m.overrides         per-task overrides from ReupgradeOTATask (and a later
--                       cancel of such a task): map task index -> "QUEUED"|"CANCELED"
--   m.cancel_requested  true once a cancel was accepted (JobStatus CANCELED
--                       when nothing is active any more)
--
-- Effective status of task i:
--   overrides[i]  if set,
--   "CANCELED"    if the base status is in m.canceled,
--   base status   otherwise.
--
-- Cost: task i and an unfiltered page are O(1) per task. count(S) is
-- O(#overrides); kth(S, k) is arithmetic without overrides and a binary search
-- over the task index (O(log size * log #overrides)) with them: any page stays
-- O(PageSize * log), whatever the job size. Mix jobs (jobmix.lua) the same,
-- with O(#statuses) arithmetic per step.

local jobs = require "jobs"

local M = {}

local floor = math.floor

M.CANCELED_DESC = "canceled by user"
M.ACTIVE = { "QUEUED", "NOTIFIED", "IN_PROGRESS", "CONFIRM" }
M.FINAL = { SUCCEEDED = true, FAILED = true, CANCELED = true }
M.REUPGRADABLE = { FAILED = true, CANCELED = true }
M.MAX_OVERRIDES = 10000          -- per job

local PERIOD = #jobs.STATUS_PATTERN

function M.new()
  return { canceled = {}, overrides = {}, cancel_requested = false }
end

function M.is_pristine(m)
  return m == nil or (next(m.canceled) == nil and next(m.overrides) == nil and not m.cancel_requested)
end

-- Effective status of task i.
function M.status(job, m, i)
  local base = jobs.job_status_of(job, i)
  if not m then return base end
  local o = m.overrides[i]
  if o then return o end
  if m.canceled[base] then return "CANCELED" end
  return base
end

-- Task record of task i with its effective status. A task whose status changed
-- gets Progress "0.00" and TaskDesc "canceled by user" (CANCELED) or "" (QUEUED);
-- all other fields (UtcModified included) stay as in jobs.task.
function M.task(job, m, i)
  local t = jobs.task(job, i)
  local s = M.status(job, m, i)
  if s ~= t.TaskStatus then
    t.TaskStatus = s
    t.Progress = "0.00"
    t.TaskDesc = s == "CANCELED" and M.CANCELED_DESC or ""
  end
  return t
end

-- Base statuses whose tasks (without override) show status S.
local function base_set(m, status)
  local set = {}
  if status == "CANCELED" then
    set.CANCELED = true
    for s in pairs(m and m.canceled or {}) do set[s] = true end
  elseif not (m and m.canceled[status]) then
    set[status] = true
  end
  return set
end

-- Sorted pattern positions (1..PERIOD) of the job whose status is in set.
local function positions(job, set)
  local pos = {}
  if job.kind ~= "mixed" then return pos end       -- uniform and mix jobs need no positions
  for p, s in ipairs(job.pattern) do
    if set[s] then pos[#pos + 1] = p end
  end
  return pos
end

-- Number of tasks 1..i whose base status is in set (overrides ignored).
local function base_prefix(job, set, pos, i)
  if job.kind == "uniform" then return set[job.status] and i or 0 end
  if job.kind == "mix" then
    local c = 0
    for s in pairs(set) do c = c + jobs.prefix(job, s, i) end
    return c
  end
  local c = floor(i / PERIOD) * #pos
  local rest = i % PERIOD
  for _, p in ipairs(pos) do
    if p <= rest then c = c + 1 else break end
  end
  return c
end

-- Index of the k-th task whose base status is in set (overrides ignored).
-- A mix job: arithmetic for one status; for several (CANCELED after a
-- cancel) a binary search over the task index, O(log size * #set).
local function base_kth(job, set, pos, k)
  if job.kind == "uniform" then return k end
  if job.kind == "mix" then
    local only, n = nil, 0
    for s in pairs(set) do only, n = s, n + 1 end
    if n == 1 then return jobs.kth(job, only, k) end
    local lo, hi = 1, job.size
    while lo < hi do
      local mid = floor((lo + hi) / 2)
      if base_prefix(job, set, pos, mid) >= k then hi = mid else lo = mid + 1 end
    end
    return lo
  end
  local per = #pos
  return floor((k - 1) / per) * PERIOD + pos[(k - 1) % per + 1]
end

-- Number of entries of sorted list <= i.
local function upper_bound(list, i)
  local lo, hi = 1, #list + 1
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if list[mid] <= i then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

-- A filter for status S: everything count/kth need, computed once per request.
function M.filter(job, m, status)
  local set = base_set(m, status)
  local f = { job = job, set = set, pos = positions(job, set), removed = {}, added = {} }
  for i, o in pairs(m and m.overrides or {}) do
    if i <= job.size then
      if set[jobs.job_status_of(job, i)] then f.removed[#f.removed + 1] = i end
      if o == status then f.added[#f.added + 1] = i end
    end
  end
  table.sort(f.removed)
  table.sort(f.added)
  f.plain = #f.removed == 0 and #f.added == 0
  return f
end

-- Number of tasks 1..i with the filter's status.
local function prefix(f, i)
  return base_prefix(f.job, f.set, f.pos, i) - upper_bound(f.removed, i) + upper_bound(f.added, i)
end

-- Number of tasks of the job with status (nil = all).
function M.count(job, m, status)
  if status == nil then return job.size end
  return prefix(M.filter(job, m, status), job.size)
end

function M.filter_count(f)
  return prefix(f, f.job.size)
end

-- Index of the k-th task having the filter's status; 1 <= k <= filter_count(f).
function M.filter_kth(f, k)
  if f.plain then return base_kth(f.job, f.set, f.pos, k) end
  local lo, hi = 1, f.job.size
  while lo < hi do
    local mid = floor((lo + hi) / 2)
    if prefix(f, mid) >= k then hi = mid else lo = mid + 1 end
  end
  return lo
end

function M.kth(job, m, status, k)
  if status == nil then return k end
  return M.filter_kth(M.filter(job, m, status), k)
end

-- JobStatus: IN_PROGRESS while any task is QUEUED, NOTIFIED, IN_PROGRESS or
-- CONFIRM (or in the undocumented status of a job-<N>-with-<X>, unless X is
-- final); else CANCELED once a cancel was accepted; else COMPLETE (the value the
-- API reference documents).
function M.job_status(job, m)
  for _, s in ipairs(M.ACTIVE) do
    if M.count(job, m, s) > 0 then return "IN_PROGRESS" end
  end
  local x = job.extra_status
  if x and not M.FINAL[x] and M.count(job, m, x) > 0 then return "IN_PROGRESS" end
  if m and m.cancel_requested then return "CANCELED" end
  return "COMPLETE"
end

-- Job record (jobs.job_record plus JobStatus, and UtcEndTime when finished).
function M.job(job, m)
  local r = jobs.job_record(job)
  r.JobStatus = M.job_status(job, m)
  if r.JobStatus ~= "IN_PROGRESS" then r.UtcEndTime = jobs.job_end_time(job) end
  return r
end

-- Mutations -----------------------------------------------------------------

-- Cancels the tasks in the given base statuses (list), and overridden tasks
-- now in one of them. Returns m (created when nil).
function M.cancel(m, statuses)
  m = m or M.new()
  local set = {}
  for _, s in ipairs(statuses) do set[s] = true; m.canceled[s] = true end
  for i, o in pairs(m.overrides) do
    if set[o] then m.overrides[i] = "CANCELED" end
  end
  m.cancel_requested = true
  return m
end

-- Index of the task with TaskId in job, or nil (TaskId = "<JobId>-T%07d").
function M.task_index(job, task_id)
  local prefix_str = job.id .. "-T"
  if task_id:sub(1, #prefix_str) ~= prefix_str then return nil end
  local digits = task_id:sub(#prefix_str + 1)
  if not digits:match("^%d+$") or #digits > 12 then return nil end
  local i = tonumber(digits)
  if i < 1 or i > job.size or string.format("%s-T%07d", job.id, i) ~= task_id then return nil end
  return i
end

-- Sets the tasks (list of indexes) to status. Returns m (created when nil),
-- or nil and a reason when the job would exceed MAX_OVERRIDES.
function M.move(job, m, indexes, status)
  m = m or M.new()
  local n = 0
  for _ in pairs(m.overrides) do n = n + 1 end
  for _, i in ipairs(indexes) do
    if not m.overrides[i] then n = n + 1 end
  end
  if n > M.MAX_OVERRIDES then
    return nil, "a job keeps at most " .. M.MAX_OVERRIDES .. " changed tasks in the emulator"
  end
  for _, i in ipairs(indexes) do
    -- An override equal to what the task shows without it is dropped, which
    -- keeps the map small; the result is the same.
    local without = jobs.job_status_of(job, i)
    if m.canceled[without] then without = "CANCELED" end
    if without == status then m.overrides[i] = nil else m.overrides[i] = status end
  end
  return m
end

-- Puts the tasks (list of indexes, each FAILED or CANCELED: checked by the
-- caller) back to QUEUED. Same results as move.
function M.reupgrade(job, m, indexes)
  return M.move(job, m, indexes, "QUEUED")
end

-- Where a task goes next in its life, and where a task in a status came
-- from (the listing faults status_leave_tasks / status_enter_tasks). A
-- SUCCEEDED task never leaves; nothing enters CONFIRM.
M.NEXT = { QUEUED = "NOTIFIED", NOTIFIED = "IN_PROGRESS", IN_PROGRESS = "SUCCEEDED", CONFIRM = "QUEUED",
           FAILED = "QUEUED", CANCELED = "QUEUED" }
M.PREVIOUS = { QUEUED = "CONFIRM", NOTIFIED = "QUEUED", IN_PROGRESS = "NOTIFIED", SUCCEEDED = "IN_PROGRESS",
               FAILED = "IN_PROGRESS", CANCELED = "QUEUED" }

-- The first k tasks (indexes, in task order) now in status.
function M.first_in_status(job, m, status, k)
  local f = M.filter(job, m, status)
  local out = {}
  for j = 1, math.min(k, M.filter_count(f)) do out[j] = M.filter_kth(f, j) end
  return out
end

-- Serialization for the shared dict (plain tables, string keys) --------------

function M.to_plain(m)
  local canceled, overrides = {}, {}
  for s in pairs(m.canceled) do canceled[#canceled + 1] = s end
  table.sort(canceled)
  for i, o in pairs(m.overrides) do overrides[tostring(i)] = o end
  return { canceled = canceled, overrides = overrides, cancel_requested = m.cancel_requested }
end

function M.from_plain(p)
  local m = M.new()
  for _, s in ipairs(p.canceled or {}) do m.canceled[s] = true end
  for k, o in pairs(p.overrides or {}) do m.overrides[tonumber(k)] = o end
  m.cancel_requested = p.cancel_requested == true
  return m
end

return M
