-- Action QueryOTAJob (IoT 2018-01-20): the details of one synthetic job, with
-- JobStatus from its task state (jobstate.lua). Same interface as ota.lua.
--
-- Success: {"RequestId","Success":true,"Data":{JobId, Name, JobDesc, JobStatus,
--   JobType, SelectionType, TargetSelection, ProductKey, FirmwareId,
--   SrcVersions:{SrcVersion:[...]}, DestVersion, MaximumPerMinute, OverwriteMode,
--   UtcCreate, UtcModified, UtcStartTime, UtcEndTime (finished jobs only)}}
-- Unknown JobId: Success false, iot.ota.OtaJobNotExist.

local jobs = require "jobs"
local jobstate = require "jobstate"
local codec = require "codec"
local store = require "store"
local lib = require "actionlib"

local M = { name = "QueryOTAJob", version = "2018-01-20" }

M.DATA_FIELDS = {
  "JobId", "Name", "JobDesc", "JobStatus", "JobType", "SelectionType", "TargetSelection",
  "ProductKey", "FirmwareId", "SrcVersions", "DestVersion", "MaximumPerMinute", "OverwriteMode",
  "UtcCreate", "UtcModified", "UtcStartTime", "UtcEndTime",
}

function M.is_parameter(name)
  return name == "JobId"
end

function M.check_parameters(params)
  return lib.missing(params, "JobId")
end

function M.call(params, request_id)
  local job = jobs.parse(params.JobId)
  if not job then
    return lib.iot_error(request_id, "iot.ota.OtaJobNotExist", "The OTA job does not exist: " .. params.JobId .. ".")
  end
  local record = jobstate.job(job, store.job_mutations(job.id))
  record.SrcVersions = codec.object({ "SrcVersion" }, { SrcVersion = codec.array(record.SrcVersions) })
  return codec.object({ "RequestId", "Success", "Data" },
    { RequestId = request_id, Success = true, Data = codec.object(M.DATA_FIELDS, record) }), "OK"
end

return M
