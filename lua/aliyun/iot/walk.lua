--- One listing's walk: its parts, their passes and the ledger of TaskIds
-- (see aliyun.iot.pager for what a successful listing guarantees).
--
-- A listing is made of parts: the whole job, a TaskStatus part, or a chunk
-- of 50 DeviceNames. For each part the walk knows how many tasks the service
-- says exist (the latest Total: Total is the authority, PageCount is not
-- trusted) and how many distinct tasks it has seen in that part. An empty
-- page or a page of repeats is not the end; the end is the last page the
-- latest Total promises. A part that ends short is walked again (up to
-- max_passes), yielding only what is new; a part whose pages moved under the
-- walk (repeats within a pass, a Total that changed) is walked once more to
-- confirm nothing was missed. Still short: SDK.IncompleteListing, naming the
-- part, expected, got and passes.
--
-- A job deeper than the service pages (CurrentPage x PageSize <= 100,000)
-- is split by TaskStatus, and the status parts together are reconciled with
-- the job's Total the same way (a status the client does not know, or tasks
-- moving between statuses, would otherwise drop tasks silently).
local core = require("aliyun.iot.core")
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local devices = require("aliyun.iot.devices")

local error, ipairs, pairs, setmetatable = error, ipairs, pairs, setmetatable
local floor, ceil, min = math.floor, math.ceil, math.min
local format, concat = string.format, table.concat

local codes = errors.codes

local walk = {}

walk.DEFAULT_MAX_PASSES = defaults.max_passes

local function raise(err) error(err, 0) end

local Walk = {}
Walk.__index = Walk

local function describe_part(w, status, names)
  local out = { "JobId " .. w.listing.JobId }
  if status then out[#out + 1] = "TaskStatus=" .. status end
  if names then out[#out + 1] = format("DeviceNames %s..%s (%d)", names[1], names[#names], #names) end
  return concat(out, ", ")
end

local function incomplete(part, expected, got, passes, hint)
  return errors.new(codes.INCOMPLETE_LISTING, format(
    "%s: the service says %d tasks, %d distinct tasks were listed after %d pass%s%s",
    part, expected, got, passes, passes == 1 and "" or "es", hint or ""),
    { retryable = true, expected = expected, got = got, part = part, passes = passes })
end

--- Take a page's tasks into the listing: the tasks not yielded before are
-- handed out. Counts, for the part walked under pass `token`, the tasks it
-- has not seen in an earlier pass (part.distinct) and the repeats within
-- this pass (the pages moved). The ledger, shared by every part of the
-- listing, marks each TaskId with the pass that saw it last (a mark below
-- the part's first pass was seen in another part); it is a C TaskSet
-- (core.new_taskset) outside the Lua heap, so the GC never walks it.
function Walk:take(page, part, token)
  local ledger = self.ledger
  local tasks = page.tasks
  local device_set = ledger.devices
  if device_set and not ledger.devices_settled then
    for i = 1, #tasks do
      local name = tasks[i].DeviceName
      if name ~= nil then device_set:mark(name, 1) end
    end
  end
  local new, distinct, repeats, kept = ledger.seen:take(tasks, token, part.first_token)
  if kept then page.tasks = kept end
  ledger.yielded = ledger.yielded + new
  part.distinct = part.distinct + distinct
  part.repeats = part.repeats + repeats
  return page
end

--- on_progress(info), when the caller gave one: the phase ("paging",
-- "devices", "done"), the calls made by action, the tasks yielded, the
-- device statistics, and for the device phase the calls expected and an
-- ETA from the pace so far.
function Walk:report(phase)
  local progress = self.listing.on_progress
  if not progress then return end
  local ledger = self.ledger
  local stats = ledger.stats
  stats.phase, stats.tasks = phase, ledger.yielded
  local now = self.clock()
  stats.elapsed = now - stats.started
  if phase == "devices" and stats.product_devices then
    -- Chunks for the devices not seen yet, and the enumeration pages left.
    local unseen = stats.product_devices - stats.devices_enumerated + (stats.queued or 0)
    local chunks_left = math.ceil(math.max(unseen, 0) / params.MAX_DEVICE_NAMES)
    stats.expected_calls = stats.calls.chunks + stats.calls.QueryDevice + chunks_left
      + math.ceil(math.max(stats.product_devices - stats.devices_enumerated, 0) / 50)
    local done = stats.calls.chunks + stats.calls.QueryDevice
    local since = now - (stats.devices_started or now)
    stats.eta = done > 0 and since / done * (stats.expected_calls - done) or nil
  end
  progress(stats)
end

function Walk:next_token()
  local ledger = self.ledger
  ledger.token = ledger.token + 1
  return ledger.token
end

function Walk:new_part()
  return { distinct = 0, repeats = 0, passes = 0, moved = false, first_token = self.ledger.token + 1 }
end

-- One pass over a paged part: page 1 alone, then the pages its Total
-- promises, in batches, until the page the latest Total promises last (or
-- the service's cap, for a part known to be deep). Returns the latest Total,
-- and true when the part turned out deeper than paging reaches (the page
-- that said so was not taken).
function Walk:pass_over(part, status)
  local token = self:next_token()
  local listing, page_size, max_pages = self.listing, self.listing.PageSize, self.max_pages
  local reachable = max_pages * page_size
  local total, first_total, split
  local page_no, last = 0, 1
  -- A deep part is paged as far as the cap; the device phase does the rest.
  local function limit() return part.deep and min(last, max_pages) or last end
  while page_no < limit() do
    local calls = {}
    for n = page_no + 1, min(last, max_pages) do
      calls[#calls + 1] = { JobId = listing.JobId, IotInstanceId = listing.IotInstanceId, TaskStatus = status,
                            PageSize = page_size, CurrentPage = n }
    end
    self.fetch_all(calls, function(page)
      page_no = page_no + 1
      total = page.Total
      first_total = first_total or total
      last = ceil(total / page_size)
      if total > reachable and not part.deep then
        -- Too deep to page (at page 1, or grown past the cap while we paged):
        -- the caller decides what comes next before anything more is taken.
        split = true
        return false
      end
      page.last_in_part = page_no >= last
      page.pass = part.passes + 1
      self.stats.calls.pages = self.stats.calls.pages + 1
      self.emit(self:take(page, part, token))
      self:report("paging")
    end, self.check)
    if split then return total, true end
  end
  if total ~= first_total then part.moved = true end
  return total
end

-- A paged part (the whole job, or one TaskStatus): walked until its
-- distinct tasks reach its latest Total and a pass saw nothing move.
function Walk:paged_part(status)
  local part = self:new_part()
  local max_passes = self.listing.max_passes or walk.DEFAULT_MAX_PASSES
  local ledger = self.ledger
  while true do
    local yielded_before = ledger.yielded
    part.repeats, part.moved = 0, false
    local total, deep = self:pass_over(part, status)
    if deep then return nil, total, part end
    part.passes = part.passes + 1
    local complete = part.distinct >= total
    local settled = part.repeats == 0 and not part.moved
    -- A re-walk that found nothing new confirms a part that moved.
    if complete and (settled or (part.passes > 1 and ledger.yielded == yielded_before)) then
      return part.distinct, total
    end
    if part.passes >= max_passes then
      if complete then return part.distinct, total end
      raise(incomplete(describe_part(self, status), total, part.distinct, part.passes))
    end
  end
end

-- DeviceNames: chunks of 50 (the per-call limit), one call each (the service
-- ignores paging when names are given); a chunk whose Total is above what
-- it listed is asked again.
function Walk:device_chunks(status)
  local names, step = self.listing.DeviceNames, params.MAX_DEVICE_NAMES
  local unique, seen_name = {}, {}
  for _, name in ipairs(names) do
    if not seen_name[name] then
      seen_name[name] = true
      unique[#unique + 1] = name
    end
  end
  local chunks = {}
  for first = 1, #unique, step do
    local chunk = {}
    for i = first, min(first + step - 1, #unique) do chunk[#chunk + 1] = unique[i] end
    chunks[#chunks + 1] = chunk
  end
  local max_passes = self.listing.max_passes or walk.DEFAULT_MAX_PASSES
  local pending = {}
  for i = 1, #chunks do
    pending[i] = { chunk = chunks[i], part = self:new_part() }
  end
  while #pending > 0 do
    local token = self:next_token()
    local calls = {}
    for i, entry in ipairs(pending) do
      calls[i] = { JobId = self.listing.JobId, IotInstanceId = self.listing.IotInstanceId, TaskStatus = status,
                   DeviceNames = entry.chunk }
    end
    local k, again = 0, {}
    self.fetch_all(calls, function(page)
      k = k + 1
      local entry = pending[k]
      local part = entry.part
      part.passes = part.passes + 1
      page.last_in_part = k == #pending
      page.pass = part.passes
      self.emit(self:take(page, part, token))
      local total = page.Total
      if total ~= nil and part.distinct < total then
        if part.passes >= max_passes then
          raise(incomplete(describe_part(self, status, entry.chunk), total, part.distinct, part.passes))
        end
        again[#again + 1] = entry
      end
    end, self.check)
    pending = again
  end
end

function Walk:run()
  local listing = self.listing
  if listing.DeviceNames then return self:device_chunks(listing.TaskStatus) end
  local got, _, part = self:paged_part(listing.TaskStatus)
  if got == nil then devices.beyond_the_cap(self, listing.TaskStatus, part) end
end

devices.bind(describe_part, incomplete)

local function new_walk(listing, fetch_all, check, emit, ledger, clock)
  return setmetatable({
    listing = listing, fetch_all = fetch_all, check = check, emit = emit, ledger = ledger,
    stats = ledger.stats, clock = clock,
    max_pages = floor((listing.depth_cap or params.MAX_DEPTH) / listing.PageSize),
  }, Walk)
end

-- The listing's parts: one walk per status of a TaskStatus list, else one.
-- Each page carries `part` = { TaskStatus = status or nil, index = i,
-- count = n } (which of the listing's parts it belongs to), `pass` (1, or
-- more when the part is walked again) and `last_in_part` (no more pages of
-- that pass follow).
--- Walk `listing` (from pager.validate), calling emit(page) for each page
-- with its new tasks only. fetch_all(list, each, check) as aliyun.iot.pager
-- describes it; `check` checks a page inside its attempt.
function walk.run(listing, emit, fetch_all, check, clock)
  clock = clock or os.time
  local statuses = listing.statuses or { listing.TaskStatus or false }
  -- The sets are released with the listing: at its end here, by the
  -- iterator's closer on a break (listing.sets), or by their __gc.
  local sets = listing.sets or {}
  local function new_set()
    local set = core.new_taskset()
    sets[#sets + 1] = set
    return set
  end
  local ledger = { seen = new_set(), new_set = new_set, token = 0, yielded = 0, stats = {
    started = clock(), calls = { pages = 0, chunks = 0, QueryDevice = 0 },
    devices_enumerated = 0, devices_without_task = 0,
  } }
  for i, status in ipairs(statuses) do
    local part = {}
    for k, v in pairs(listing) do part[k] = v end
    part.statuses, part.TaskStatus = nil, status or nil
    local label = { TaskStatus = part.TaskStatus, index = i, count = #statuses }
    local w = new_walk(part, fetch_all, check, function(page)
      page.part = label
      emit(page)
    end, ledger, clock)
    w:run()
  end
  -- How many device names the listing kept to skip in the device phase (a
  -- product's chunks add none: aliyun.iot.devices), for the done report.
  ledger.stats.devices_remembered = ledger.devices and ledger.devices:count() or 0
  for _, set in ipairs(sets) do set:close() end
  if listing.on_progress then
    ledger.stats.phase, ledger.stats.tasks = "done", ledger.yielded
    listing.on_progress(ledger.stats)
  end
end

return walk
