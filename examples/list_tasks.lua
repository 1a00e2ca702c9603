-- List every task of an OTA job as an aligned table, then counts by status.
--
--   lua5.4 examples/list_tasks.lua [--region REGION] [--endpoint URL] [--instance ID] [--status STATUS] JOB_ID
--
-- Credentials come from ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET
-- (and ALIBABA_CLOUD_SECURITY_TOKEN for STS); the region from --region or
-- ALIBABA_CLOUD_REGION_ID; an enterprise instance's id from --instance or, in
-- iot.new, ALIYUN_IOT_INSTANCE_ID. `make demo` runs it against the bundled emulator.
local iot = require("aliyun.iot")

local USAGE = "usage: list_tasks.lua [--region REGION] [--endpoint URL] [--instance ID] [--status STATUS] JOB_ID"
local function usage(message)
  io.stderr:write(message, "\n", USAGE, "\n")
  os.exit(2)
end

-- Options with a value, and the iot.new option each sets.
local OPTIONS = { ["--region"] = "region", ["--endpoint"] = "endpoint", ["--instance"] = "iot_instance_id" }

local opts, job_id, status = {}, nil, nil
local i = 1
while i <= #arg do
  local a = arg[i]
  if OPTIONS[a] or a == "--status" then
    local v = arg[i + 1] or usage(a .. " needs a value")
    if a == "--status" then status = v else opts[OPTIONS[a]] = v end
    i = i + 2
  elseif a:sub(1, 2) == "--" then
    usage("unknown option " .. a)
  else
    if job_id then usage("only one JOB_ID, please") end
    job_id = a
    i = i + 1
  end
end
if not job_id then usage("JOB_ID is required") end

-- Display width of UTF-8 text: East Asian wide characters take two columns,
-- so Chinese TaskDesc values line up with ASCII ones.
local function is_wide(cp)
  return (cp >= 0x1100 and cp <= 0x115F) or (cp >= 0x2E80 and cp <= 0xA4CF)
      or (cp >= 0xAC00 and cp <= 0xD7A3) or (cp >= 0xF900 and cp <= 0xFAFF)
      or (cp >= 0xFE30 and cp <= 0xFE4F) or (cp >= 0xFF00 and cp <= 0xFF60)
      or (cp >= 0xFFE0 and cp <= 0xFFE6) or (cp >= 0x20000 and cp <= 0x3FFFD)
end

local function width(s)
  local w = 0
  local ok = pcall(function()
    for _, cp in utf8.codes(s) do w = w + (is_wide(cp) and 2 or 1) end
  end)
  return ok and w or #s
end

local function pad(s, w) return s .. string.rep(" ", w - width(s)) end

local client, err = iot.new(opts)
if not client then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end

local columns = { "DeviceName", "TaskStatus", "Progress", "Version", "TaskDesc" }
local rows, counts = {}, {}
local ok, failure = pcall(function()
  for task in client:tasks{ JobId = job_id, TaskStatus = status } do
    rows[#rows + 1] = {
      task.DeviceName or "", task.TaskStatus or "", task.Progress or "",
      (task.SrcVersion or "?") .. " -> " .. (task.DestVersion or "?"), task.TaskDesc or "",
    }
    counts[task.TaskStatus] = (counts[task.TaskStatus] or 0) + 1
  end
end)
client:close()
if not ok then
  io.stderr:write("listing failed: ", tostring(failure), "\n")
  os.exit(1)
end

local widths = {}
for c, name in ipairs(columns) do
  widths[c] = width(name)
  for _, row in ipairs(rows) do widths[c] = math.max(widths[c], width(row[c])) end
end
local function print_row(row)
  local cells = {}
  for c = 1, #columns do cells[c] = pad(row[c], widths[c]) end
  print((table.concat(cells, "  "):gsub("%s+$", "")))
end
print_row(columns)
local rule = {}
for c = 1, #columns do rule[c] = string.rep("-", widths[c]) end
print_row(rule)
for _, row in ipairs(rows) do print_row(row) end

print()
print(string.format("%d tasks in job %s", #rows, job_id))
for _, s in ipairs(iot.TASK_STATUSES) do
  if counts[s] then print(string.format("  %-12s %6d  %5.1f%%", s, counts[s], 100 * counts[s] / #rows)) end
end
