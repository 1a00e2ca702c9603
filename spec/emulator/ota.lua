-- Action ListOTATaskByJob (IoT, Version 2018-01-20) over the synthetic jobs of
-- jobs.lua, with the task changes of CancelOTATaskByJob / ReupgradeOTATask
-- (jobstate.lua, stored by store.lua). Interface expected by gateway.lua:
--   name, version, is_parameter(name), check_parameters(params) -> nil | gateway error,
--   call(params, request_id) -> body (codec value), code ("OK" or the IoT error code)
-- check_parameters are the gateway-level checks (HTTP 400 gateway body);
-- call answers HTTP 200, with Success=false for IoT-level errors.

local jobs = require "jobs"
local jobstate = require "jobstate"
local codec = require "codec"
local store = require "store"
local ota_faults = require "ota_faults"

local M = {
  name = "ListOTATaskByJob",
  version = "2018-01-20",
}

local DEFAULT_PAGE_SIZE, DEFAULT_CURRENT_PAGE, MAX_PAGE_SIZE = 10, 1, 100
local MAX_DEPTH = 100000          -- CurrentPage * PageSize must not exceed this (fault option depth_cap lowers it)
M.MAX_DEPTH, M.MAX_PAGE_SIZE = MAX_DEPTH, MAX_PAGE_SIZE
local MAX_DEVICE_NAMES = 50

local PARAMETERS = { JobId = true, PageSize = true, CurrentPage = true, TaskStatus = true }

function M.is_parameter(name)
  return PARAMETERS[name] or name:find("^DeviceNames%.") ~= nil
end

local function gateway_error(code, message)
  return { status = 400, code = code, message = message }
end

local function invalid(name, why)
  return gateway_error("InvalidParameter", "The specified parameter \"" .. name .. "\" is not valid. " .. why)
end

-- An Integer parameter as the (Java) gateway parses it: optional '-', digits,
-- within 32-bit range.
local function parse_integer(s)
  if not s:match("^%-?%d+$") or #s > 11 then return nil end
  local n = tonumber(s)
  if n < -2147483648 or n > 2147483647 then return nil end
  return n
end

-- DeviceNames.1 .. DeviceNames.k from params; nil when none given.
-- Returns list or nil, gateway error.
local function device_names(params)
  local by_index, count = {}, 0
  for name, value in pairs(params) do
    local suffix = name:match("^DeviceNames%.(.*)$")
    if suffix then
      if not suffix:match("^[1-9]%d*$") or #suffix > 6 then
        return nil, invalid(name, "DeviceNames.N needs N = 1, 2, 3, ... (no leading zeros).")
      end
      if value == "" then return nil, invalid(name, "A device name must not be empty.") end
      by_index[tonumber(suffix)] = value
      count = count + 1
    end
  end
  if count == 0 then return nil end
  for i = 1, count do
    if by_index[i] == nil then
      return nil, invalid("DeviceNames." .. i,
        "DeviceNames.N must be numbered 1.." .. count .. " without gaps, DeviceNames." .. i .. " is missing.")
    end
  end
  return by_index
end

function M.check_parameters(params)
  if params.JobId == nil or params.JobId == "" then
    return gateway_error("MissingJobId", "JobId is mandatory for this action.")
  end
  for _, name in ipairs({ "PageSize", "CurrentPage" }) do
    if params[name] ~= nil and not parse_integer(params[name]) then
      return invalid(name, "It must be an Integer, got \"" .. params[name] .. "\".")
    end
  end
  local _, err = device_names(params)
  return err
end

local function iot_error(request_id, code, message)
  return codec.object({ "RequestId", "Success", "Code", "ErrorMessage" },
    { RequestId = request_id, Success = false, Code = code, ErrorMessage = message }), code
end

local function task_object(job, m, i)
  return codec.object(jobs.TASK_FIELDS, jobstate.task(job, m, i))
end

local function success(request_id, total, page_size, current_page, page_count, tasks)
  local data
  if total == 0 then
    data = {}                                           -- empty job: "Data": {}
  else
    data = codec.object({ "SimpleOTATaskInfo" }, { SimpleOTATaskInfo = codec.array(tasks) })
  end
  return codec.object(
    { "RequestId", "Success", "Total", "PageSize", "CurrentPage", "PageCount", "Data" },
    { RequestId = request_id, Success = true, Total = total, PageSize = page_size,
      CurrentPage = current_page, PageCount = page_count, Data = data }), "OK"
end

-- faults: the gateway's fault config (store.faults()); its listing options
-- (ota_faults.lua) reshape paged answers. Returns body, code, fault name.
function M.call(params, request_id, faults)
  local status = params.TaskStatus
  if status ~= nil and not jobs.IS_STATUS[status] then
    return iot_error(request_id, "iot.common.InvalidParameter",
      "TaskStatus is invalid: " .. status .. " (one of " .. table.concat(jobs.STATUSES, ", ") .. ").")
  end
  local names = device_names(params)
  if names and #names > MAX_DEVICE_NAMES then
    return iot_error(request_id, "iot.common.InvalidParameter",
      "Too many DeviceNames: " .. #names .. " given, at most " .. MAX_DEVICE_NAMES .. ".")
  end
  local page_size = params.PageSize and parse_integer(params.PageSize) or DEFAULT_PAGE_SIZE
  local current_page = params.CurrentPage and parse_integer(params.CurrentPage) or DEFAULT_CURRENT_PAGE
  if not names then
    -- Paging is only checked when it is used: with DeviceNames it is ignored.
    if page_size < 1 or page_size > MAX_PAGE_SIZE then
      return iot_error(request_id, "iot.common.InvalidPageParams",
        "PageSize must be between 1 and " .. MAX_PAGE_SIZE .. ", got " .. page_size .. ".")
    end
    if current_page < 1 then
      return iot_error(request_id, "iot.common.InvalidPageParams",
        "CurrentPage must be at least 1, got " .. current_page .. ".")
    end
    -- Fault option depth_cap lowers the cap, so that a test of a listing
    -- past it runs in seconds.
    local max_depth = faults and faults.depth_cap > 0 and faults.depth_cap or MAX_DEPTH
    if current_page * page_size > max_depth then
      return iot_error(request_id, "iot.common.InvalidPageParams",
        "Paging too deep: CurrentPage * PageSize must not exceed " .. max_depth .. ", got " ..
        current_page .. " * " .. page_size .. ".")
    end
  end

  local job = jobs.parse(params.JobId)
  if not job then
    return iot_error(request_id, "iot.ota.OtaJobNotExist", "The OTA job does not exist: " .. params.JobId .. ".")
  end

  local m = store.job_mutations(job.id)      -- nil when never changed

  if names then
    -- DeviceNames wins over paging: every match in one answer, in task order,
    -- each device once.
    local indexes, seen = {}, {}
    for _, name in ipairs(names) do
      local i = jobs.index_of_device(job, name)
      if i and not seen[i] and (status == nil or jobstate.status(job, m, i) == status) then
        seen[i] = true
        indexes[#indexes + 1] = i
      end
    end
    table.sort(indexes)
    local tasks = {}
    for k, i in ipairs(indexes) do tasks[k] = task_object(job, m, i) end
    return success(request_id, #tasks, #names, 1, #tasks > 0 and 1 or 0, tasks)
  end

  local filter = status and jobstate.filter(job, m, status)
  local total = filter and jobstate.filter_count(filter) or job.size
  if faults and ota_faults.active(faults) then
    local plan = ota_faults.plan(faults, params, total, page_size, current_page)
    local first, last = ota_faults.range(plan, page_size, total)
    local tasks = {}
    for p = first, last do
      local k = plan.position(p)
      tasks[#tasks + 1] = task_object(job, m, filter and jobstate.filter_kth(filter, k) or k)
    end
    local body, code = success(request_id, plan.total, page_size, plan.current_page, plan.page_count, tasks)
    ota_faults.after_page(faults, params, job, total, page_size, current_page)
    return body, code, plan.fault
  end
  local page_count = math.ceil(total / page_size)
  local first = (current_page - 1) * page_size + 1
  local last = math.min(current_page * page_size, total)
  local tasks = {}
  for k = first, last do            -- empty past the end: "SimpleOTATaskInfo": []
    tasks[#tasks + 1] = task_object(job, m, filter and jobstate.filter_kth(filter, k) or k)
  end
  return success(request_id, total, page_size, current_page, page_count, tasks)
end

return M
