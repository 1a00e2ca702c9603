--- aliyun-ota jobs --firmware ID [--device PK/NAME]: every job of a firmware
-- (ListOTAJobByFirmware), or those of one device of it (ListOTAJobByDevice,
-- which takes the firmware too), page by page, as a table, JSON, JSON lines
-- or CSV (layout.writer, as `tasks` writes).
local exit = require("aliyun.iot.cli.exit")
local fields = require("aliyun.iot.cli.fields")
local layout = require("aliyun.iot.cli.layout")

local type, tonumber, error = type, tonumber, error

local jobs = {}

--- Jobs asked for at once: both actions' maximum PageSize.
jobs.PAGE_SIZE = 100

-- The jobs of one page: Data.SimpleOTAJobInfo (no Data when there are none).
local function jobs_of(page)
  local data = type(page.Data) == "table" and page.Data or {}
  return type(data.SimpleOTAJobInfo) == "table" and data.SimpleOTAJobInfo or {}
end

--- The command. Returns 0; raises the library's error object.
function jobs.run(client, args, ctx)
  local action, p = "ListOTAJobByFirmware", { FirmwareId = args.firmware, PageSize = jobs.PAGE_SIZE }
  if args.device then
    action, p.ProductKey, p.DeviceName = "ListOTAJobByDevice", args.device.ProductKey, args.device.DeviceName
  end
  local w = layout.writer(fields.jobs, args, ctx)
  local listed, current = 0, 1
  while true do
    p.CurrentPage = current
    local page, err = client:call(action, p)
    if not page then error(err, 0) end
    local list = jobs_of(page)
    w.records(list)
    listed = listed + #list
    -- Until Total is reached; an empty page ends a listing whose Total lies.
    local total = tonumber(page.Total)
    if #list == 0 or (total and listed >= total) or (not total and #list < jobs.PAGE_SIZE) then break end
    current = current + 1
  end
  w.finish()
  return exit.OK
end

return jobs
