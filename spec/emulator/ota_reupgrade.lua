-- Action ReupgradeOTATask (IoT 2018-01-20): puts FAILED or CANCELED tasks of a
-- job back to QUEUED. Same interface as ota.lua.
--
-- Parameters: JobId (required), TaskId.1 .. TaskId.N (required, N <= MAX_TASK_IDS).
-- All-or-nothing: every TaskId must belong to the job and be FAILED or CANCELED
-- (its current, effective status), else nothing changes.
-- Per-task overrides (jobstate.reupgrade). Success: {"RequestId","Success":true}.
-- IoT errors, in this order: more than MAX_TASK_IDS -> iot.common.InvalidParameter;
-- unknown JobId -> iot.ota.OtaJobNotExist; a TaskId not in the job ->
-- iot.ota.OtaTaskNotExist; a task not FAILED/CANCELED -> iot.ota.OtaTaskStatusNotSupportReupgrade;
-- too many re-upgraded tasks kept for the job (jobstate.MAX_OVERRIDES) -> iot.common.LimitExceeded.

local jobs = require "jobs"
local jobstate = require "jobstate"
local store = require "store"
local lib = require "actionlib"

local M = { name = "ReupgradeOTATask", version = "2018-01-20" }

M.MAX_TASK_IDS = 10

function M.is_parameter(name)
  return name == "JobId" or name:find("^TaskId%.") ~= nil
end

function M.check_parameters(params)
  local err = lib.missing(params, "JobId")
  if err then return err end
  local list
  list, err = lib.indexed_list(params, "TaskId")
  if err then return err end
  if not list then return lib.gateway_error("MissingTaskId", "TaskId is mandatory for this action.") end
end

function M.call(params, request_id)
  local ids = lib.indexed_list(params, "TaskId")
  if #ids > M.MAX_TASK_IDS then
    return lib.iot_error(request_id, "iot.common.InvalidParameter",
      "Too many TaskId: " .. #ids .. " given, at most " .. M.MAX_TASK_IDS .. ".")
  end
  local job = jobs.parse(params.JobId)
  if not job then
    return lib.iot_error(request_id, "iot.ota.OtaJobNotExist", "The OTA job does not exist: " .. params.JobId .. ".")
  end
  local m = store.job_mutations(job.id)
  local indexes = {}
  for k, task_id in ipairs(ids) do
    local i = jobstate.task_index(job, task_id)
    if not i then
      return lib.iot_error(request_id, "iot.ota.OtaTaskNotExist",
        "TaskId." .. k .. " is not a task of job " .. job.id .. ": " .. task_id .. ".")
    end
    local status = jobstate.status(job, m, i)
    if not jobstate.REUPGRADABLE[status] then
      return lib.iot_error(request_id, "iot.ota.OtaTaskStatusNotSupportReupgrade",
        "Task " .. task_id .. " is " .. status .. "; only FAILED or CANCELED tasks can be upgraded again.")
    end
    indexes[#indexes + 1] = i
  end
  local new_m, why = jobstate.reupgrade(job, m, indexes)
  if not new_m then return lib.iot_error(request_id, "iot.common.LimitExceeded", why) end
  local ok, err = store.set_job_mutations(job.id, new_m)
  if not ok then return lib.iot_error(request_id, "iot.system.SystemException", err) end
  return lib.ok(request_id)
end

return M
