--- aliyun-ota: the fields of the records the CLI lists, one set per kind
-- (fields.tasks, fields.jobs): their names, the default --fields list, and
-- each field's table column.
--
-- The table streams, so widths are fixed up front instead of measured over
-- every row: a field with a documented maximum or a fixed format gets exactly
-- that (DeviceName 4-32 characters, the longest status, "100.00", ISO
-- timestamps, 11-character ProductKeys), so it is never cut; free text and
-- unbounded values (TaskDesc, versions up to 64 characters, ids) get a cap
-- and are truncated with an ellipsis. Columns are never narrower than their
-- header.
--
-- To fit a terminal, the default table keeps the columns of PRIORITY that fit
-- (layout.lua): each at its width, except the SHRINK ones, which may be cut
-- down to the width given there, and GROW, which takes what is left.

local function set(s)
  local canonical = {}
  for _, name in ipairs(s.NAMES) do canonical[name:lower()] = name end
  --- The API's spelling of a field name given in any case, or nil.
  function s.canonical(name) return canonical[name:lower()] end
  s.DEFAULT_WIDTH = 24
  return s
end

local fields = {}

fields.tasks = set{
  -- Every field the API documents, in the order the usage lists them.
  NAMES = { "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion", "TaskDesc", "TaskId",
            "UtcModified", "UtcCreate", "IotId", "ProductKey", "ProductName", "FirmwareId", "JobId", "Timeout" },
  DEFAULT = { "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion",
              "TaskDesc", "TaskId", "UtcModified" },
  WIDTH = {
    DeviceName = 32, TaskStatus = 11, Progress = 6, SrcVersion = 12, DestVersion = 12,
    TaskDesc = 36, TaskId = 26, UtcModified = 24, UtcCreate = 24, IotId = 32,
    ProductKey = 11, ProductName = 20, FirmwareId = 26, JobId = 26, Timeout = 7,
  },
  RIGHT_ALIGNED = { Progress = true, Timeout = true },
  -- A rollout at a glance first: who, how far, why not; then when, from
  -- which version, the id to act on, and the target version (one per job).
  PRIORITY = { "DeviceName", "TaskStatus", "Progress", "TaskDesc", "UtcModified", "SrcVersion",
               "TaskId", "DestVersion" },
  SHRINK = { DeviceName = 20, TaskDesc = 16, SrcVersion = 10, DestVersion = 11, TaskId = 17 },
  GROW = "TaskDesc",
}

fields.jobs = set{
  -- SimpleOTAJobInfo of ListOTAJobByFirmware and ListOTAJobByDevice.
  NAMES = { "JobId", "JobStatus", "JobType", "SelectionType", "TargetSelection", "ProductKey", "FirmwareId",
            "UtcCreate", "UtcModified", "UtcStartTime", "UtcEndTime" },
  DEFAULT = { "JobId", "JobStatus", "JobType", "SelectionType", "TargetSelection", "ProductKey",
              "UtcCreate", "UtcEndTime" },
  WIDTH = {
    JobId = 26, JobStatus = 11, JobType = 16, SelectionType = 13, TargetSelection = 15,
    ProductKey = 11, FirmwareId = 26, UtcCreate = 24, UtcModified = 24, UtcStartTime = 24, UtcEndTime = 24,
  },
  RIGHT_ALIGNED = {},
  PRIORITY = { "JobId", "JobStatus", "UtcCreate", "ProductKey", "JobType", "UtcEndTime", "SelectionType",
               "TargetSelection" },
  SHRINK = { JobId = 17, JobType = 10 },
}

return fields
