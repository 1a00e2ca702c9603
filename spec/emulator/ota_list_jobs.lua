-- Action ListOTAJobByFirmware (IoT 2018-01-20): the jobs of a firmware, paged.
-- Firmware -> jobs mapping: jobs.firmware_jobs (FW-EmuSensor-1.1.0 has job-0 ..
-- job-99 in that order, FW-<JobId> has that one job). Same interface as ota.lua.
--
-- Success: {"RequestId","Success":true,"Total","PageSize","CurrentPage","PageCount",
--   "Data":{"SimpleOTAJobInfo":[{JobId, FirmwareId, ProductKey, JobStatus, JobType,
--   SelectionType, TargetSelection, UtcCreate, UtcModified, UtcStartTime,
--   UtcEndTime (finished jobs only)}]}}; a page past the end has "SimpleOTAJobInfo":[].
-- Unknown FirmwareId: Success false, iot.ota.OtaFirmwareNotExist.

local jobs = require "jobs"
local jobstate = require "jobstate"
local codec = require "codec"
local store = require "store"
local lib = require "actionlib"

local M = { name = "ListOTAJobByFirmware", version = "2018-01-20" }

M.JOB_FIELDS = {
  "JobId", "FirmwareId", "ProductKey", "JobStatus", "JobType", "SelectionType", "TargetSelection",
  "UtcCreate", "UtcModified", "UtcStartTime", "UtcEndTime",
}

local PARAMETERS = { FirmwareId = true, PageSize = true, CurrentPage = true }

function M.is_parameter(name)
  return PARAMETERS[name] ~= nil
end

function M.check_parameters(params)
  return lib.missing(params, "FirmwareId") or lib.check_integer(params, "PageSize")
         or lib.check_integer(params, "CurrentPage")
end

function M.call(params, request_id)
  local page_size, current_page, err_code = lib.paging(params, request_id, 10)
  if not page_size then return current_page, err_code end     -- error body, code
  local list = jobs.firmware_jobs(params.FirmwareId)
  if not list then
    return lib.iot_error(request_id, "iot.ota.OtaFirmwareNotExist",
      "The OTA firmware does not exist: " .. params.FirmwareId .. ".")
  end
  local total = list.count
  local items = {}
  for k = (current_page - 1) * page_size + 1, math.min(current_page * page_size, total) do
    local job = jobs.parse(list.job_id(k))
    items[#items + 1] = codec.object(M.JOB_FIELDS, jobstate.job(job, store.job_mutations(job.id)))
  end
  return codec.object(
    { "RequestId", "Success", "Total", "PageSize", "CurrentPage", "PageCount", "Data" },
    { RequestId = request_id, Success = true, Total = total, PageSize = page_size,
      CurrentPage = current_page, PageCount = math.ceil(total / page_size),
      Data = codec.object({ "SimpleOTAJobInfo" }, { SimpleOTAJobInfo = codec.array(items) }) }), "OK"
end

return M
