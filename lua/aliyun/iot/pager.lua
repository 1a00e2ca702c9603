--- The coroutine pager: every task of a listing, exactly once, or an error.
-- The loop lives in Lua and asks for pages through `fetch_all(list, each,
-- check)` (aliyun.iot's, over the scheduler: the calls of `list` in order,
-- each page checked by `check` inside the attempt, so a malformed page is
-- retried like any bad answer, handed to `each`, the first failure raised).
-- Page 1 and the rest take the same route, and a cosocket transport may
-- yield inside it (no C frame is ever between the coroutine and the yield).
-- Failures are raised as the error object, the way io.lines raises, so a
-- `for` loop can never end quietly on a partial list.
--
-- Completeness is checked, never assumed: aliyun.iot.walk walks the
-- listing's parts and checks each against the service's Total. A successful
-- listing has yielded every task that stayed in the listing's filter for the
-- whole listing exactly once; tasks that entered or left the filter meanwhile
-- may or may not be among them, never twice.
local defaults = require("aliyun.iot.defaults")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local walk = require("aliyun.iot.walk")

local error, ipairs, pairs, type, tostring = error, ipairs, pairs, type, tostring
local floor = math.floor
local format = string.format
local yield, create, resume, costatus = coroutine.yield, coroutine.create, coroutine.resume, coroutine.status

local codes = errors.codes

-- coroutine.wrap, except that an error inside the coroutine is re-raised
-- from the caller's own frame with its value untouched: inside nginx,
-- lua-nginx-module aborts the whole request ("unknown reason") when a
-- wrapped coroutine dies with a table, and a pcall around the loop cannot
-- catch it; Lua 5.1's wrap also prefixes string errors with a position.
-- Called again after it raised, it raises the same error again: a caller
-- that caught the first one and went on never sees a quiet end.
local function wrap(body)
  local co = create(body)
  local failure
  return function()
    if failure ~= nil then error(failure, 0) end
    if costatus(co) == "dead" then return nil end
    local ok, value = resume(co)
    if not ok then
      failure = value
      error(value, 0)
    end
    return value
  end
end

local pager = {}

pager.DEFAULT_PAGE_SIZE = defaults.page_size
pager.MAX_CONCURRENCY = defaults.max_concurrency
-- Page requests in flight when tasks{}/pages{} get no `concurrency`.
pager.DEFAULT_CONCURRENCY = defaults.concurrency
pager.DEFAULT_MAX_PASSES = walk.DEFAULT_MAX_PASSES
pager.MAX_PASSES = 20

-- Names accepted by tasks{}/pages{} besides the API's own.
local PAGER_OPTIONS = { concurrency = true, max_passes = true, deadline = true, device_names = true,
                        on_progress = true }

-- The largest count taken at face value: beyond it a double stops being exact.
local MAX_COUNT = 2 ^ 53

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

local function integer_option(p, name, lo, hi)
  local n = p[name]
  if n ~= nil and (type(n) ~= "number" or n ~= floor(n) or n < lo or n > hi) then
    return nil, errors.invalid(format("%s must be an integer from %d to %d, got %s", name, lo, hi, tostring(n)))
  end
  return true
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
  local ok
  ok, err = integer_option(p, "concurrency", 1, pager.MAX_CONCURRENCY)
  if not ok then return nil, err end
  ok, err = integer_option(p, "max_passes", 1, pager.MAX_PASSES)
  if not ok then return nil, err end
  local deadline = p.deadline
  if deadline ~= nil and (type(deadline) ~= "number" or not (deadline > 0 and deadline < math.huge)) then
    return nil, errors.invalid(format("deadline must be a positive number of seconds, got %s", tostring(deadline)))
  end
  listing.concurrency, listing.max_passes, listing.deadline = p.concurrency, p.max_passes, deadline
  local names = p.device_names
  if names ~= nil and type(names) ~= "function" then
    local ok_names, nerr = params.rules.ListOTATaskByJob.DeviceNames.check(names, "device_names")
    if not ok_names then return nil, errors.invalid(nerr) end
  end
  if p.on_progress ~= nil and type(p.on_progress) ~= "function" then
    return nil, errors.invalid("on_progress must be a function, got " .. type(p.on_progress))
  end
  listing.device_names, listing.on_progress = names, p.on_progress
  return listing
end

local function bad_page(message)
  return errors.new(codes.BAD_RESPONSE, message, { retryable = false })
end

local function valid_count(v)
  return type(v) == "number" and v >= 0 and v <= MAX_COUNT and floor(v) == v
end

-- check(page, p) for fetch_all: what makes a page unusable, inside the
-- attempt (so a read is retried): counts that are not counts, and a page
-- that answers for another page than the one asked (a cache or proxy).
local function check_page(page, p)
  for _, field in ipairs({ "Total", "PageCount", "CurrentPage", "PageSize" }) do
    local v = page[field]
    if v ~= nil and not valid_count(v) then
      return nil, bad_page(format("%s in the response is not a count: %s", field, tostring(v)))
    end
  end
  local asked = p.CurrentPage
  if asked ~= nil then
    if page.Total == nil then
      return nil, bad_page("a page of the listing has no Total: the pager cannot tell when it is complete")
    end
    if page.CurrentPage ~= nil and page.CurrentPage ~= asked then
      return nil, bad_page(format("asked for page %d, the response is page %d", asked, page.CurrentPage))
    end
  end
  return true
end
pager.check_page = check_page

--- Iterator over pages (each page's `tasks` already de-duplicated).
-- `listing` must come from pager.validate.
function pager.pages(listing, fetch_all, clock)
  return wrap(function()
    walk.run(listing, function(page) yield(page) end, fetch_all, check_page, clock)
  end)
end

--- Iterator over tasks. The coroutine yields a page's tasks at a time and
-- the iterator walks them, so a task costs no coroutine switch. The per-task
-- path has no loop: a loop inside an iterator aborts the caller's `for` trace
-- under LuaJIT ("inner loop in root trace"), and then every task runs in the
-- interpreter. A yielded page is never empty, so a new page starts at its
-- first task. Past the end it keeps answering nil (wrap's dead coroutine).
function pager.tasks(listing, fetch_all, clock)
  local next_page = wrap(function()
    walk.run(listing, function(page)
      if #page.tasks > 0 then yield(page.tasks) end
    end, fetch_all, check_page, clock)
  end)
  local tasks, i, n = nil, 0, 0
  return function()
    if i < n then
      i = i + 1
      return tasks[i]
    end
    tasks = next_page()
    if tasks == nil then
      i, n = 0, 0
      return nil
    end
    i, n = 1, #tasks
    return tasks[1]
  end
end

return pager
