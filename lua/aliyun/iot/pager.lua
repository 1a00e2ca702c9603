--- The coroutine pager: every task of a listing, exactly once, or an error.
-- The loop lives in Lua and asks the pipeline for one page at a time, so a
-- cosocket transport may yield inside it (no C frame is ever between the
-- coroutine and the yield). Failures are raised as the error object, the way
-- io.lines raises, so a `for` loop can never end quietly on a partial list.
--
-- Every call goes through `fetch_all(list, each)` (aliyun.iot's, over the
-- scheduler): the calls of `list` in order, each result handed to `each`,
-- the first failure raised. Page 1 and the rest take the same route.
--
-- Partitions, decided before anything is yielded:
--   * TaskStatus given as a list: each status is its own listing, one after
--     the other, de-duplicated across them (a task can change status).
--   * DeviceNames: chunks of 50 (the per-call limit), one call each; the
--     service ignores paging when names are given.
--   * otherwise pages of PageSize (default 100). The service refuses
--     CurrentPage x PageSize > 100,000; a larger job is split by TaskStatus
--     after probing every status's Total, and if one status alone is still too
--     deep the listing fails up front, before the first task is yielded.
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")

local error, ipairs, pairs, type, tostring = error, ipairs, pairs, type, tostring
local floor, ceil = math.floor, math.ceil
local format = string.format
local yield, create, resume, costatus = coroutine.yield, coroutine.create, coroutine.resume, coroutine.status

-- coroutine.wrap, except that an error inside the coroutine is re-raised
-- from the caller's own frame with its value untouched: inside nginx,
-- lua-nginx-module aborts the whole request ("unknown reason") when a
-- wrapped coroutine dies with a table, and a pcall around the loop cannot
-- catch it; Lua 5.1's wrap also prefixes string errors with a position.
local function wrap(body)
  local co = create(body)
  return function()
    if costatus(co) == "dead" then return nil end
    local ok, value = resume(co)
    if not ok then error(value, 0) end
    return value
  end
end

local pager = {}

pager.DEFAULT_PAGE_SIZE = defaults.page_size
pager.MAX_CONCURRENCY = defaults.max_concurrency
-- Page requests in flight when tasks{}/pages{} get no `concurrency`.
pager.DEFAULT_CONCURRENCY = defaults.concurrency

-- Names accepted by tasks{}/pages{} besides the API's own.
local PAGER_OPTIONS = { concurrency = true }

local function raise(err) error(err, 0) end


-- TaskStatus as a list of statuses (the pager only): each one checked,
-- repeats dropped. Returns the list or nil, err.
local function status_list(list)
  local n = #list
  for k in pairs(list) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then n = 0 end
  end
  if n == 0 then return nil, errors.invalid("TaskStatus must be a status or a non-empty list of statuses") end
  local out, seen = {}, {}
  for i = 1, n do
    local _, err = params.validate("ListOTATaskByJob", { JobId = "-", TaskStatus = list[i] })
    if err then return nil, errors.invalid(format("TaskStatus[%d]: %s", i, err.message)) end
    if not seen[list[i]] then
      seen[list[i]] = true
      out[#out + 1] = list[i]
    end
  end
  return out
end

--- Validate listing parameters; returns the normalized listing or nil, err.
function pager.validate(p)
  local statuses, serr
  if type(p) == "table" and type(p.TaskStatus) == "table" then
    statuses, serr = status_list(p.TaskStatus)
    if not statuses then return nil, serr end
    local copy = {}
    for k, v in pairs(p) do copy[k] = v end
    copy.TaskStatus = nil
    p = copy
  end
  local listing, err = params.validate("ListOTATaskByJob", p, PAGER_OPTIONS)
  if not listing then return nil, err end
  if statuses and #statuses == 1 then listing.TaskStatus = statuses[1] else listing.statuses = statuses end
  if listing.CurrentPage then
    return nil, errors.invalid("CurrentPage is not accepted by the pager: it walks every page itself "
      .. "(call client:ListOTATaskByJob for a single page)")
  end
  listing.PageSize = listing.PageSize or pager.DEFAULT_PAGE_SIZE
  local n = p.concurrency
  if n ~= nil then
    if type(n) ~= "number" or n ~= floor(n) or n < 1 or n > pager.MAX_CONCURRENCY then
      return nil, errors.invalid(format("concurrency must be an integer from 1 to %d, got %s",
        pager.MAX_CONCURRENCY, tostring(n)))
    end
    listing.concurrency = n
  end
  return listing
end

local function too_deep(listing, status, total, reachable)
  local part = status and ("with TaskStatus=" .. status) or "in total"
  return errors.new(errors.codes.DEPTH_CAP_EXCEEDED, format(
    "JobId %s has %d tasks %s, but the service pages only the first %d "
    .. "(CurrentPage x PageSize <= %d); narrow the listing with DeviceNames",
    listing.JobId, total, part, reachable, params.MAX_DEPTH), { retryable = false })
end

-- The last page number a response promises, from PageCount, else Total.
local function last_page_of(page, page_no, page_size)
  if type(page.PageCount) == "number" then return page.PageCount end
  if type(page.Total) == "number" then return ceil(page.Total / page_size) end
  -- Neither: a short page is the last one.
  return #page.tasks < page_size and page_no or page_no + 1
end

--- Walk a listing, calling `emit(page)` for each page in order.
-- `fetch_all(list, each)` performs the ListOTATaskByJob calls of `list` (each
-- a parameter table as for that method) and calls `each(page)` in list
-- order, raising the first failure (in that order) after the pages before
-- it; `each` returning false means the rest are not wanted.
local function walk(listing, emit, fetch_all)
  local job, instance, page_size = listing.JobId, listing.IotInstanceId, listing.PageSize

  local names = listing.DeviceNames
  if names then
    local step = params.MAX_DEVICE_NAMES
    local calls = {}
    for first = 1, #names, step do
      local chunk = {}
      for i = first, math.min(first + step - 1, #names) do chunk[#chunk + 1] = names[i] end
      calls[#calls + 1] = { JobId = job, IotInstanceId = instance, TaskStatus = listing.TaskStatus,
                            DeviceNames = chunk }
    end
    local k = 0
    fetch_all(calls, function(p)
      k = k + 1
      p.last_in_part = k == #calls
      emit(p)
    end)
    return
  end

  local max_pages = floor(params.MAX_DEPTH / page_size)
  local reachable = max_pages * page_size

  local function page_call(status, page_no, size)
    return { JobId = job, IotInstanceId = instance, TaskStatus = status,
             PageSize = size or page_size, CurrentPage = page_no }
  end
  local function fetch_page(status, page_no, size)
    local page
    fetch_all({ page_call(status, page_no, size) }, function(p) page = p end)
    return page
  end

  -- Pages 2.. of a part, in batches up to the last page the latest page
  -- promises (the same stop rules as one page after the other: an empty
  -- page or a page at or past the promised last one ends the part).
  local function is_last(p, page_no)
    return page_no >= last_page_of(p, page_no, page_size) or #p.tasks == 0
  end

  local function walk_pages(status, page)
    local page_no = 1
    page.last_in_part = is_last(page, 1)
    emit(page)
    while true do
      local last = last_page_of(page, page_no, page_size)
      if page_no >= last or #page.tasks == 0 then return end
      if page_no + 1 > max_pages then
        -- The job grew past the cap while we paged: say so rather than stop short.
        raise(too_deep(listing, status, page.Total or reachable + 1, reachable))
      end
      local calls = {}
      for n = page_no + 1, math.min(last, max_pages) do calls[#calls + 1] = page_call(status, n) end
      local done = false
      fetch_all(calls, function(p)
        page_no, page = page_no + 1, p
        p.last_in_part = is_last(p, page_no)
        emit(p)
        if p.last_in_part then
          done = true
          return false
        end
      end)
      if done then return end
    end
  end

  local first = fetch_page(listing.TaskStatus, 1)
  local total = first.Total or 0
  if total <= reachable then return walk_pages(listing.TaskStatus, first) end
  if listing.TaskStatus then raise(too_deep(listing, listing.TaskStatus, total, reachable)) end

  -- Too deep as a whole: probe each status with one-task pages first, so the
  -- caller hears about a part that can never be listed before any task.
  local parts, probes = {}, {}
  for i, status in ipairs(params.TASK_STATUSES) do probes[i] = page_call(status, 1, 1) end
  local k = 0
  fetch_all(probes, function(probe)
    k = k + 1
    local status, n = params.TASK_STATUSES[k], probe.Total or 0
    if n > reachable then raise(too_deep(listing, status, n, reachable)) end
    if n > 0 then parts[#parts + 1] = status end
  end)
  for _, status in ipairs(parts) do
    walk_pages(status, fetch_page(status, 1))
  end
end

-- Drop tasks already seen (pages shift while tasks change status); copies
-- the page's task array only when there is something to drop.
local function dedup(page, seen)
  local tasks = page.tasks
  local kept
  for i = 1, #tasks do
    local task = tasks[i]
    local id = task.TaskId
    if id ~= nil and seen[id] then
      if not kept then
        kept = {}
        for j = 1, i - 1 do kept[j] = tasks[j] end
      end
    else
      if id ~= nil then seen[id] = true end
      if kept then kept[#kept + 1] = task end
    end
  end
  if kept then page.tasks = kept end
  return page
end

-- The listing's parts: one walk per status of a TaskStatus list, else one.
-- Each page carries `part` = { TaskStatus = status or nil, index = i,
-- count = n } (which of the listing's parts it belongs to) and
-- `last_in_part` (no more pages of that part will follow).
local function walk_all(listing, emit, fetch_all)
  local statuses = listing.statuses or { listing.TaskStatus or false }
  for i, status in ipairs(statuses) do
    local part = {}
    for k, v in pairs(listing) do part[k] = v end
    part.statuses, part.TaskStatus = nil, status or nil
    local label = { TaskStatus = part.TaskStatus, index = i, count = #statuses }
    walk(part, function(page)
      page.part = label
      emit(page)
    end, fetch_all)
  end
end

--- Iterator over pages (each page's `tasks` already de-duplicated).
-- `listing` must come from pager.validate.
function pager.pages(listing, fetch_all)
  return wrap(function()
    local seen = {}
    walk_all(listing, function(page) yield(dedup(page, seen)) end, fetch_all)
  end)
end

--- Iterator over tasks.
function pager.tasks(listing, fetch_all)
  return wrap(function()
    local seen = {}
    walk_all(listing, function(page)
      local tasks = dedup(page, seen).tasks
      for i = 1, #tasks do yield(tasks[i]) end
    end, fetch_all)
  end)
end

return pager
