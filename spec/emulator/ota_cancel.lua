-- Action CancelOTATaskByJob (IoT 2018-01-20): cancels the tasks of a job that
-- are in the chosen states. Same interface as ota.lua.
--
-- Parameters: JobId (required), Booleans "true"/"false" (default false):
--   CancelQueuedTask -> QUEUED, CancelNotifiedTask -> NOTIFIED,
--   CancelInProgressTask -> IN_PROGRESS, CancelUnconfirmedTask -> CONFIRM,
--   CancelScheduledTask -> SCHEDULED (only job-<N>-with-SCHEDULED has such tasks).
-- The change is status-level (jobstate.cancel): ListOTATaskByJob then shows
-- those tasks as CANCELED with TaskDesc "canceled by user", and paging stays
-- arithmetic. Success: {"RequestId","Success":true}.
-- IoT errors: no flag "true" -> iot.common.InvalidParameter; unknown JobId ->
-- iot.ota.OtaJobNotExist.

local jobs = require "jobs"
local jobstate = require "jobstate"
local store = require "store"
local lib = require "actionlib"

local M = { name = "CancelOTATaskByJob", version = "2018-01-20" }

M.FLAGS = {
  { "CancelScheduledTask", "SCHEDULED" },
  { "CancelQueuedTask", "QUEUED" },
  { "CancelNotifiedTask", "NOTIFIED" },
  { "CancelInProgressTask", "IN_PROGRESS" },
  { "CancelUnconfirmedTask", "CONFIRM" },
}

function M.is_parameter(name)
  if name == "JobId" then return true end
  for _, f in ipairs(M.FLAGS) do if f[1] == name then return true end end
  return false
end

function M.check_parameters(params)
  local err = lib.missing(params, "JobId")
  if err then return err end
  for _, f in ipairs(M.FLAGS) do
    err = lib.check_boolean(params, f[1])
    if err then return err end
  end
end

function M.call(params, request_id)
  local any, statuses = false, {}
  for _, f in ipairs(M.FLAGS) do
    if params[f[1]] == "true" then
      any = true
      if f[2] then statuses[#statuses + 1] = f[2] end
    end
  end
  if not any then
    return lib.iot_error(request_id, "iot.common.InvalidParameter",
      "Nothing to cancel: set at least one of CancelScheduledTask, CancelQueuedTask, CancelNotifiedTask, " ..
      "CancelInProgressTask, CancelUnconfirmedTask to true.")
  end
  local job = jobs.parse(params.JobId)
  if not job then
    return lib.iot_error(request_id, "iot.ota.OtaJobNotExist", "The OTA job does not exist: " .. params.JobId .. ".")
  end
  local m = jobstate.cancel(store.job_mutations(job.id), statuses)
  local ok, err = store.set_job_mutations(job.id, m)
  if not ok then return lib.iot_error(request_id, "iot.system.SystemException", err) end
  return lib.ok(request_id)
end

return M
