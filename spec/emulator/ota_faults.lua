-- Listing faults of ListOTATaskByJob: what a real, busy service does to a
-- client that pages through a job. Only paged listings are affected (no
-- DeviceNames). Deterministic: each fault is keyed by the listing (JobId and
-- TaskStatus) and the page asked for, never by arrival order, so a spec with
-- several pages in flight knows which pages are hit; "once" faults hit the
-- first request for their page after the fault config was set (a retry or a
-- second walk of the page gets the true content). README.md, "Listing faults".
--
--   shift_tasks K          after the first serving of a trigger page, the K last
--                          tasks of the listing's order move to its front (into
--                          pages already read); Total stays. The order is
--                          rotated: position p holds task ((p-1-r) mod Total)+1,
--                          r = shifts * K.
--   status_leave_tasks K   (TaskStatus listings) after a trigger page the first
--                          K tasks in that status move to the next status of
--                          their life (jobstate.NEXT): Total drops by K.
--   status_enter_tasks K   (TaskStatus listings) after a trigger page the first
--                          K tasks of the previous status (jobstate.PREVIOUS)
--                          move into it: Total grows by K.
--   shift_every_page M     trigger pages: every page p with p % M == 0 (default 1)
--   shift_after_page P     trigger page: only page P
--   repeat_page[_once] N   page N (>= 2) holds exactly the tasks of page N-1
--   empty_page[_once] N    page N holds no tasks (Total, PageCount unchanged)
--   wrong_page[_once] N    the answer for page N is page N+1 (content and CurrentPage)
--   page_count_zero / _one every answer says PageCount 0 / 1
--   total_grow / total_shrink D   pages >= total_from_page (default 2) report
--                          Total +/- D (PageCount follows it); content unchanged

local jobstate = require "jobstate"
local store = require "store"

local M = {}

local ceil, max = math.ceil, math.max

local LISTING_OPTIONS = {
  "shift_tasks", "status_leave_tasks", "status_enter_tasks", "repeat_page", "repeat_page_once",
  "empty_page", "empty_page_once", "wrong_page", "wrong_page_once", "page_count_zero", "page_count_one",
  "total_grow", "total_shrink",
}

function M.active(f)
  for _, name in ipairs(LISTING_OPTIONS) do
    if f[name] > 0 then return true end
  end
  return false
end

local function listing_key(params)
  return params.JobId .. "\0" .. (params.TaskStatus or "")
end

-- Does fault `name` (always) or `name_once` (first request only) hit this page?
local function hits(f, name, lkey, page)
  if f[name] > 0 and f[name] == page then return true end
  local once = f[name .. "_once"]
  return once > 0 and once == page and store.first_time(name .. "_once\0" .. lkey .. "\0" .. page)
end

-- The page as the faults make it. total is the true count of the listing.
-- Returns a plan:
--   content_page   whose tasks are served (positions (content_page-1)*size+1 ..)
--   empty          serve no tasks
--   position(p)    -> k: the k-th task of the listing at position p (rotation)
--   total, page_count, current_page   the numbers the answer reports
--   fault          name for the request log, or nil
function M.plan(f, params, total, page_size, current_page)
  local lkey = listing_key(params)
  local plan = { content_page = current_page, current_page = current_page, total = total }
  local r = 0
  if f.shift_tasks > 0 and total > 0 then
    r = (store.shifts(lkey) * f.shift_tasks) % total
    if r > 0 then plan.fault = "shift" end
  end
  plan.position = function(p) return (p - 1 - r) % total + 1 end

  if current_page >= 2 and hits(f, "repeat_page", lkey, current_page) then
    plan.content_page, plan.fault = current_page - 1, "repeat_page"
  elseif hits(f, "empty_page", lkey, current_page) then
    plan.empty, plan.fault = true, "empty_page"
  elseif hits(f, "wrong_page", lkey, current_page) then
    plan.content_page, plan.current_page, plan.fault = current_page + 1, current_page + 1, "wrong_page"
  end

  local from = f.total_from_page > 0 and f.total_from_page or 2
  if current_page >= from and (f.total_grow > 0 or f.total_shrink > 0) then
    plan.total = max(0, total + f.total_grow - f.total_shrink)
    plan.fault = plan.fault or "total_changed"
  end
  plan.page_count = ceil(plan.total / page_size)
  if f.page_count_zero > 0 then
    plan.page_count, plan.fault = 0, plan.fault or "page_count_zero"
  elseif f.page_count_one > 0 then
    plan.page_count, plan.fault = 1, plan.fault or "page_count_one"
  end
  return plan
end

-- Index range of a page's positions: first, last (last < first when none).
function M.range(plan, page_size, total)
  if plan.empty then return 1, 0 end
  local first = (plan.content_page - 1) * page_size + 1
  return first, math.min(plan.content_page * page_size, total)
end

local function is_trigger(f, page)
  if f.shift_after_page > 0 then return page == f.shift_after_page end
  local every = f.shift_every_page > 0 and f.shift_every_page or 1
  return page % every == 0
end

-- After a page was served: the first serving of a trigger page (within the
-- listing's true pages) shifts the order and/or moves tasks between statuses.
function M.after_page(f, params, job, total, page_size, current_page)
  local status = params.TaskStatus
  local moves = status and (f.status_leave_tasks > 0 or f.status_enter_tasks > 0)
  if f.shift_tasks == 0 and not moves then return end
  if current_page > ceil(total / page_size) or not is_trigger(f, current_page) then return end
  local lkey = listing_key(params)
  if not store.first_time("trigger\0" .. lkey .. "\0" .. current_page) then return end
  if f.shift_tasks > 0 then store.add_shift(lkey) end
  if not moves then return end
  local m = store.job_mutations(job.id)
  local leave_to, enter_from = jobstate.NEXT[status], jobstate.PREVIOUS[status]
  if f.status_leave_tasks > 0 and leave_to then
    m = jobstate.move(job, m, jobstate.first_in_status(job, m, status, f.status_leave_tasks), leave_to) or m
  end
  if f.status_enter_tasks > 0 and enter_from then
    m = jobstate.move(job, m, jobstate.first_in_status(job, m, enter_from, f.status_enter_tasks), status) or m
  end
  if m then store.set_job_mutations(job.id, m) end
end

return M
