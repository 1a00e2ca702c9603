--- aliyun-ota: the task fields the CLI knows, in one table: their names,
-- the default --fields list, and each field's table column.
--
-- The table streams, so widths are fixed up front instead of measured over
-- every row: a field with a documented maximum or a fixed format gets exactly
-- that (DeviceName 4-32 characters, the longest status, "100.00", ISO
-- timestamps, 11-character ProductKeys), so it is never cut; free text and
-- unbounded values (TaskDesc, versions up to 64 characters, ids) get a cap
-- and are truncated with an ellipsis. Columns are never narrower than their
-- header.

local fields = {}

-- Every field the API documents, in the order the usage lists them.
fields.NAMES = {
  "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion", "TaskDesc", "TaskId",
  "UtcModified", "UtcCreate", "IotId", "ProductKey", "ProductName", "FirmwareId", "JobId", "Timeout",
}

fields.DEFAULT = { "DeviceName", "TaskStatus", "Progress", "SrcVersion", "DestVersion",
                   "TaskDesc", "TaskId", "UtcModified" }

-- Table column width of each field; a field not listed gets DEFAULT_WIDTH.
fields.WIDTH = {
  DeviceName = 32, TaskStatus = 11, Progress = 6, SrcVersion = 12, DestVersion = 12,
  TaskDesc = 36, TaskId = 26, UtcModified = 24, UtcCreate = 24, IotId = 32,
  ProductKey = 11, ProductName = 20, FirmwareId = 26, JobId = 26, Timeout = 7,
}
fields.DEFAULT_WIDTH = 24

fields.RIGHT_ALIGNED = { Progress = true, Timeout = true }

local CANONICAL = {}
for _, name in ipairs(fields.NAMES) do CANONICAL[name:lower()] = name end

--- The API's spelling of a field name given in any case, or nil.
function fields.canonical(name)
  return CANONICAL[name:lower()]
end

return fields
