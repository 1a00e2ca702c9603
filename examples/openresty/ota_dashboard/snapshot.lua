--- A job's snapshot, built from its tasks one at a time: counts and
-- percentages by status, the failures grouped by TaskDesc, the tasks in
-- progress. Pure Lua (no ngx): spec/dashboard/snapshot_test.lua runs it in
-- plain Lua, nginx runs it in LuaJIT.
--
--   local b = snapshot.builder("job-1000", limits)
--   for task in client:tasks{ JobId = "job-1000" } do b:add(task) end
--   local snap = b:finish(started_at, finished_at)     -- a plain table, JSON-ready
--
-- The snapshot is bounded whatever the job's size, so that it fits a
-- lua_shared_dict entry: at most `max_groups` failure groups, each with at
-- most `max_group_devices` device names; at most `max_in_progress` tasks in
-- progress; every TaskDesc and DeviceName cut to a byte limit (at a UTF-8
-- character boundary). The counts are always exact.
local pairs, ipairs, tonumber, type, setmetatable = pairs, ipairs, tonumber, type, setmetatable
local floor = math.floor
local byte, sub = string.byte, string.sub
local sort = table.sort

local snapshot = {}

-- Every limit of a snapshot in one table; snapshot.builder's `limits` may override each.
snapshot.LIMITS = {
  max_groups = 50,            -- failure groups kept (the most frequent)
  max_group_devices = 20,     -- device names kept per failure group (in listing order)
  max_in_progress = 50,       -- IN_PROGRESS tasks kept (in listing order)
  max_desc_bytes = 200,       -- a TaskDesc is cut after this many bytes
  max_name_bytes = 64,        -- a DeviceName likewise (the service allows 32 characters)
  max_distinct_descs = 2000,  -- distinct TaskDescs counted apart; later new ones share one group
}

-- The documented statuses in the order a task goes through them; any other
-- status the service reports (SCHEDULED, ...) follows, by name.
snapshot.STATUS_ORDER = { "QUEUED", "NOTIFIED", "CONFIRM", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED" }
-- A device is done with the job in these (the existing /summary's percent_done).
snapshot.FINAL = { SUCCEEDED = true, FAILED = true, CANCELED = true }

snapshot.NO_DESC = "(no TaskDesc)"
snapshot.OTHER_DESCS = "(other reasons: too many distinct TaskDescs to tell apart)"

local KNOWN = {}
for i, s in ipairs(snapshot.STATUS_ORDER) do KNOWN[s] = i end

--- `s` cut to at most `max` bytes without splitting a UTF-8 sequence; a cut
-- string ends with "…" (counted in the limit).
function snapshot.truncate(s, max)
  if type(s) ~= "string" then return "" end
  if #s <= max then return s end
  local ellipsis = "\226\128\166" -- U+2026
  local stop = max - #ellipsis
  if stop < 0 then stop = 0 end
  -- Back off while the byte after the cut is a continuation byte (10xxxxxx):
  -- the cut would fall inside a character.
  while stop > 0 do
    local b = byte(s, stop + 1)
    if b == nil or b < 0x80 or b >= 0xC0 then break end
    stop = stop - 1
  end
  return sub(s, 1, stop) .. ellipsis
end

-- Seconds to the millisecond: what a snapshot's times are worth.
local function ms(t) return floor(t * 1000 + 0.5) / 1000 end

local function percent(n, total)
  if total == 0 then return 0 end
  return floor(n * 10000 / total + 0.5) / 100
end

local Builder = {}
Builder.__index = Builder

--- A builder for one listing of `job_id`; `limits` overrides snapshot.LIMITS.
function snapshot.builder(job_id, limits)
  local l = {}
  for k, v in pairs(snapshot.LIMITS) do l[k] = v end
  for k, v in pairs(limits or {}) do
    if snapshot.LIMITS[k] ~= nil then l[k] = v end
  end
  return setmetatable({
    job_id = job_id, limits = l,
    total = 0, counts = {},
    groups = {}, ngroups = 0, failed = 0,
    in_progress = {}, in_progress_total = 0,
  }, Builder)
end

--- Take one task (a table with the API's field names) into the snapshot.
function Builder:add(task)
  local l = self.limits
  local status = type(task.TaskStatus) == "string" and task.TaskStatus or "(none)"
  self.total = self.total + 1
  self.counts[status] = (self.counts[status] or 0) + 1
  if status == "FAILED" then
    self.failed = self.failed + 1
    local desc = task.TaskDesc
    if type(desc) ~= "string" or desc == "" then desc = snapshot.NO_DESC end
    desc = snapshot.truncate(desc, l.max_desc_bytes)
    local g = self.groups[desc]
    if not g then
      if self.ngroups >= l.max_distinct_descs then desc = snapshot.OTHER_DESCS end
      g = self.groups[desc]
      if not g then
        g = { desc = desc, count = 0, devices = {}, first = self.failed }
        self.groups[desc] = g
        self.ngroups = self.ngroups + 1
      end
    end
    g.count = g.count + 1
    if #g.devices < l.max_group_devices then
      g.devices[#g.devices + 1] = snapshot.truncate(task.DeviceName, l.max_name_bytes)
    end
  elseif status == "IN_PROGRESS" then
    self.in_progress_total = self.in_progress_total + 1
    local list = self.in_progress
    if #list < l.max_in_progress then
      list[#list + 1] = {
        DeviceName = snapshot.truncate(task.DeviceName, l.max_name_bytes),
        Progress = tonumber(task.Progress),
        UtcModified = snapshot.truncate(task.UtcModified, 40),
      }
    end
  end
end

local function status_rank(a, b)
  local ra, rb = KNOWN[a], KNOWN[b]
  if ra and rb then return ra < rb end
  if ra or rb then return ra ~= nil end
  return a < b
end

--- The snapshot: a JSON-ready table. started_at and finished_at are epoch
-- seconds (floats); `duration` is their difference.
function Builder:finish(started_at, finished_at)
  local total = self.total
  local names = {}
  for _, s in ipairs(snapshot.STATUS_ORDER) do names[#names + 1] = s end
  for s in pairs(self.counts) do
    if not KNOWN[s] then names[#names + 1] = s end
  end
  sort(names, status_rank)
  local statuses, done = {}, 0
  for i, s in ipairs(names) do
    local n = self.counts[s] or 0
    statuses[i] = { status = s, count = n, percent = percent(n, total) }
    if snapshot.FINAL[s] then done = done + n end
  end

  local groups = {}
  for _, g in pairs(self.groups) do groups[#groups + 1] = g end
  -- Most frequent first; a tie goes to the reason seen first in the listing.
  sort(groups, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.first < b.first
  end)
  local kept, other_groups, other_count = {}, 0, 0
  for i, g in ipairs(groups) do
    if i <= self.limits.max_groups then
      kept[i] = { desc = g.desc, count = g.count, devices = g.devices, more = g.count - #g.devices }
    else
      other_groups, other_count = other_groups + 1, other_count + g.count
    end
  end

  return {
    JobId = self.job_id,
    started_at = ms(started_at),
    taken_at = ms(finished_at),
    duration = ms(finished_at - started_at),
    total = total,
    percent_done = percent(done, total),
    statuses = statuses,
    failed = { total = self.failed, groups = kept, other_groups = other_groups, other_count = other_count },
    in_progress = { total = self.in_progress_total, tasks = self.in_progress },
  }
end

return snapshot
