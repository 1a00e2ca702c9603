--- The device partition of a listing: what paging cannot reach (a status
-- part deeper than the service's 100,000-task cap, tasks in a status the
-- client does not know), found by asking for the job's tasks by device.
--
-- ListOTATaskByJob with DeviceNames.N (up to 50 names, combinable with
-- TaskStatus) answers those devices' tasks with no depth limit. The names
-- come from the job's product (QueryOTAJob gives its ProductKey, QueryDevice
-- pages its devices by NextToken) or from the caller (`device_names =` a
-- list or an iterator function). Only devices the listing has not seen yet
-- are asked for; devices of the product that are not in the job answer
-- nothing and are counted in the listing's statistics.
--
-- The enumeration and the chunks go out in one stream through the walk's
-- fetch_all, each call within its own action's budget (QueryDevice 50 per
-- second, ListOTATaskByJob 10): a QueryDevice page is asked for whenever
-- fewer than a chunk's worth of unseen names is waiting, so the chunks keep
-- ListOTATaskByJob at its bound.
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")

local error, ipairs, pcall, type, tostring = error, ipairs, pcall, type, tostring
local format, concat = string.format, table.concat

local codes = errors.codes

local devices = {}

devices.QUERY_PAGE_SIZE = 50   -- QueryDevice's largest PageSize
local CHUNK = params.MAX_DEVICE_NAMES

-- The source's queue of names waiting for a chunk: queue[head..tail].
local function push(source, name)
  local tail = (source.tail or 0) + 1
  source.queue = source.queue or {}
  source.queue[tail] = name
  source.tail = tail
  source.head = source.head or 1
end

local function waiting(source)
  return (source.tail or 0) - (source.head or 1) + 1
end

local function no_devices(w, why, cause)
  return errors.new(codes.DEPTH_CAP_EXCEEDED, format(
    "JobId %s has %s, but the service pages only the first %d (CurrentPage x PageSize <= %d), and %s; "
    .. "pass device_names = a list or an iterator of the job's DeviceNames", w.listing.JobId, w.deep_note or
    "more tasks than that", w.max_pages * w.listing.PageSize, w.listing.depth_cap or params.MAX_DEPTH, why),
    { retryable = false, cause = cause })
end

-- fetch_all, turning a final answer that says the product cannot be
-- enumerated (no such action or product, no permission) into the error
-- that says what to do; transient failures stay what they are.
local function enumerate(w, entries, each)
  local ok, err = pcall(w.fetch_all, entries, each)
  if ok then return end
  if type(err) == "table" and not err.retryable then
    error(no_devices(w, format("its product's devices could not be enumerated (%s: %s)", tostring(err.code),
      tostring(err.message)), err), 0)
  end
  error(err, 0)
end

--- Where the device names come from, decided before any task is yielded:
-- { names = list } | { iterate = function } | { product = ProductKey }.
-- A product is checked with a first QueryDevice page; what cannot be
-- enumerated raises a clear error now.
function devices.source(w)
  local listing = w.listing
  local given = listing.device_names
  if type(given) == "table" then return { names = given, index = 0 } end
  if type(given) == "function" then return { iterate = given } end
  local job
  local query_job = { action = "QueryOTAJob",
                      params = { JobId = listing.JobId, IotInstanceId = listing.IotInstanceId } }
  enumerate(w, { query_job }, function(value) job = value end)
  local product = type(job.Data) == "table" and job.Data.ProductKey
  if type(product) ~= "string" or product == "" then
    error(no_devices(w, "QueryOTAJob gave no ProductKey to enumerate its devices by"), 0)
  end
  local source = { product = product }
  enumerate(w, { devices.query_entry(w, source) }, function(value)
    w.ledger.stats.calls.QueryDevice = w.ledger.stats.calls.QueryDevice + 1
    devices.take_devices(w, source, value)
  end)
  return source
end

function devices.query_entry(w, source)
  return { action = "QueryDevice", params = { ProductKey = source.product, PageSize = devices.QUERY_PAGE_SIZE,
    NextToken = source.token, IotInstanceId = w.listing.IotInstanceId } }
end

-- A QueryDevice answer: its names into the source's queue, the next token.
function devices.take_devices(w, source, value)
  local data = type(value.Data) == "table" and value.Data.DeviceInfo
  local list = type(data) == "table" and data or {}
  local stats = w.ledger.stats
  if type(value.Total) == "number" then stats.product_devices = value.Total end
  for _, device in ipairs(list) do
    local name = type(device) == "table" and device.DeviceName
    if type(name) == "string" and name ~= "" then
      stats.devices_enumerated = stats.devices_enumerated + 1
      if not w.ledger.devices:get(name) then push(source, name) end
    end
  end
  local token = value.NextToken
  source.token = type(token) == "string" and token ~= "" and token or nil
  source.done = source.token == nil or #list == 0
end

-- Up to `want` names from a caller's source into the queue (names seen are
-- skipped); marks the source done when it runs out.
local function pull(w, source, want)
  local seen = w.ledger.devices
  while waiting(source) < want do
    local name
    if source.names then
      source.index = source.index + 1
      name = source.names[source.index]
    else
      name = source.iterate()
    end
    if name == nil then
      source.done = true
      return
    end
    if type(name) ~= "string" or name == "" then
      error(errors.invalid(format("device_names gave %s, not a device name", tostring(name))), 0)
    end
    w.ledger.stats.devices_enumerated = w.ledger.stats.devices_enumerated + 1
    if not seen:get(name) then push(source, name) end
  end
end

--- List, by DeviceNames chunks, every device of `source` the listing has not
-- seen, with TaskStatus `status` (nil: any), taking the tasks into `part`.
function devices.list_unseen(w, source, status, part)
  local listing, ledger = w.listing, w.ledger
  local stats = ledger.stats
  local token = w:next_token()
  local in_flight = false
  -- The next chunk of names still unseen (a name queued before paging saw
  -- its task is dropped here), or nil while fewer than 50 wait and more are
  -- coming: chunks go out full, so the calls are (unseen devices) / 50.
  local seen = ledger.devices
  -- A product's enumeration names each device once, so the devices its
  -- chunks find need not be remembered: the set stops growing here (at
  -- 1,000,000 tasks it would otherwise hold 600,000 more names, some 14 MB).
  -- A caller's list may name a device twice; its chunks' devices are marked.
  -- Should a hostile enumeration repeat a device, it costs one more chunk
  -- slot; its tasks are still taken once (the TaskSet).
  ledger.devices_settled = source.product ~= nil
  local function next_chunk()
    local queue, head, tail = source.queue, source.head or 1, source.tail or 0
    local unseen = 0
    for i = head, tail do
      if not seen:get(queue[i]) then unseen = unseen + 1 end
    end
    if unseen == 0 or (unseen < CHUNK and not source.done) then return nil end
    local chunk = {}
    while head <= tail and #chunk < CHUNK do
      local name = queue[head]
      queue[head] = nil
      head = head + 1
      if not seen:get(name) then chunk[#chunk + 1] = name end
    end
    source.head = head
    if head > tail then
      -- Drained: a fresh table, so the queue's array does not grow with every
      -- device the product has.
      source.queue, source.head, source.tail = {}, 1, 0
    end
    return { JobId = listing.JobId, IotInstanceId = listing.IotInstanceId, TaskStatus = status, DeviceNames = chunk }
  end
  local function next_entry()
    if not source.product and not source.done then pull(w, source, CHUNK) end
    local chunk = next_chunk()
    if chunk then return chunk end
    if source.done then return false end
    if not source.product or in_flight then return nil end
    in_flight = true
    return devices.query_entry(w, source)
  end
  w.fetch_all(next_entry, function(value, entry)
    if entry.action == "QueryDevice" then
      in_flight = false
      stats.calls.QueryDevice = stats.calls.QueryDevice + 1
      devices.take_devices(w, source, value)
    else
      stats.calls.chunks = stats.calls.chunks + 1
      local asked = #entry.DeviceNames
      stats.devices_without_task = stats.devices_without_task + (asked > #value.tasks and asked - #value.tasks or 0)
      value.last_in_part, value.pass = false, 1
      w.emit(w:take(value, part, token))
    end
    w:report("devices")
  end, w.check)
end

-- ---- past the cap --------------------------------------------------------

-- Set by aliyun.iot.walk when it loads (it requires this module first).
local walk_describe, walk_incomplete
function devices.bind(describe, incomplete)
  walk_describe, walk_incomplete = describe, incomplete
end

local function raise(err) error(err, 0) end

local UNKNOWN_STATUS_HINT = " (tasks in a status the client does not list: %s; "
  .. "or tasks moving between statuses faster than the listing)"

-- The service's Total for the job, or one of its statuses, now.
local function probe_total(self, status)
  local probe
  self.fetch_all({ { JobId = self.listing.JobId, IotInstanceId = self.listing.IotInstanceId, TaskStatus = status,
                     PageSize = 1, CurrentPage = 1 } }, function(page) probe = page end, self.check)
  return probe.Total
end

-- Every status's Total, probed with one-task pages: the deep ones (past the
-- cap) and the others.
local function probe_statuses(self)
  local listing, reachable = self.listing, self.max_pages * self.listing.PageSize
  local probes = {}
  for i, s in ipairs(params.TASK_STATUSES) do
    probes[i] = { JobId = listing.JobId, IotInstanceId = listing.IotInstanceId, TaskStatus = s,
                  PageSize = 1, CurrentPage = 1 }
  end
  local deep, shallow, totals = {}, {}, {}
  self.fetch_all(probes, function(probe, entry)
    totals[entry.TaskStatus] = probe.Total
    if probe.Total > reachable then deep[#deep + 1] = entry.TaskStatus
    elseif probe.Total > 0 then shallow[#shallow + 1] = entry.TaskStatus end
  end, self.check)
  return deep, shallow, totals
end

-- A listing too deep to page as a whole. The job (no TaskStatus) is split
-- by status: the statuses paging reaches are walked as parts, the deep ones
-- paged as far as the cap; then, where the job's Total is still not met,
-- the devices not seen yet are asked for by name (aliyun.iot.devices). A
-- deep TaskStatus listing is paged as far as the cap, then the same.
function devices.beyond_the_cap(self, status, part)
  local ledger, start = self.ledger, self.ledger.yielded
  local deep, shallow, totals
  if status then
    deep, shallow, totals = { status }, {}, { [status] = probe_total(self, status) }
  else
    deep, shallow, totals = probe_statuses(self)
  end
  if #deep > 0 then
    self.deep_note = format("%d tasks with TaskStatus=%s", totals[deep[1]], deep[1])
  end
  -- From now on the listing also remembers which devices it has seen, for
  -- the device phase to skip (another set outside the Lua heap).
  ledger.devices = ledger.devices or ledger.new_set()
  -- Up front, before any task: where the device names come from.
  local source = #deep > 0 and devices.source(self) or nil
  for _, s in ipairs(shallow) do self:paged_part(s) end
  for _, s in ipairs(deep) do
    local p = status and part or self:new_part()
    p.deep = true
    self:pass_over(p, s)
  end
  local expected = probe_total(self, status)
  local function got() return status and part.distinct or ledger.yielded - start end
  if got() >= expected then return end
  -- What paging did not reach: deep parts, or statuses the client does not know.
  local hint = status and "" or format(UNKNOWN_STATUS_HINT, concat(params.TASK_STATUSES, ", "))
  local where = walk_describe(self, status) .. (status and " (by device)" or " (by status and device)")
  if not source then
    local ok, err = pcall(devices.source, self)
    if not ok then
      raise(walk_incomplete(walk_describe(self, status) .. " (by status)", expected, got(), 1,
        hint .. "; looking them up by device failed: " .. tostring(type(err) == "table" and err.message or err)))
    end
    source = err
  end
  ledger.stats.devices_started = self.clock()
  devices.list_unseen(self, source, status, part or self:new_part())
  expected = probe_total(self, status)
  if got() < expected then raise(walk_incomplete(where, expected, got(), 1, hint)) end
end

return devices
