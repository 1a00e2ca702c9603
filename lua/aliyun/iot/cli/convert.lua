--- aliyun-ota: the checks and conversions of option and argument values, as
-- argparse converters: each takes the text and returns the value, or nil and
-- why (argparse makes that a usage error, exit 2).
local iot = require("aliyun.iot")
local fields = require("aliyun.iot.cli.fields")
local writers = require("aliyun.iot.cli.writers")

local concat, format = table.concat, string.format
local tonumber, huge, floor = tonumber, math.huge, math.floor

local convert = {}

local STATUSES = iot.TASK_STATUSES   -- QUEUED NOTIFIED IN_PROGRESS SUCCEEDED FAILED CANCELED CONFIRM
local IS_STATUS = {}
for _, s in ipairs(STATUSES) do IS_STATUS[s] = true end

local function finite_positive(n) return n and n > 0 and n ~= huge and n == n end

--- A value that must not be empty ("--instance", "JOB_ID", ...).
function convert.nonempty(what)
  return function(s)
    if s == "" then return nil, what .. " must not be empty" end
    return s
  end
end

function convert.positive_seconds(what)
  return function(s)
    local n = tonumber(s)
    if not finite_positive(n) then
      return nil, format("%s must be a positive number of seconds, got '%s'", what, s)
    end
    return n
  end
end

--- --rate-limit: requests per second for every action, or "off" (false).
function convert.rate_limit(s)
  if s == "off" then return false end
  local n = tonumber(s)
  if not finite_positive(n) then
    return nil, format("--rate-limit must be requests per second (> 0) or off, got '%s'", s)
  end
  return n
end

function convert.retries(s)
  local n = tonumber(s)
  if not n or n < 0 or n > 100 or n ~= floor(n) then
    return nil, format("--retries must be an integer from 0 to 100, got '%s'", s)
  end
  return n
end

--- --endpoint as the aliyun CLI takes it, a bare host (iot.cn-shanghai.aliyuncs.com,
-- host:port), HTTPS implied; a URL with its scheme stays as it is.
function convert.endpoint(s)
  if s == "" then return nil, "--endpoint must not be empty" end
  if s:find("^%a[%w+.-]*://") then return s end
  return "https://" .. s
end

--- A TaskStatus in any case, as the API spells it (upper case).
function convert.status(s)
  local u = s:upper()
  if IS_STATUS[u] then return u end
  return nil, format("unknown status '%s' (one of %s)", s, concat(STATUSES, ", "))
end

function convert.device(s)
  if s == "" then return nil, "a device name must not be empty" end
  return s
end

--- jobs --device PRODUCT_KEY/DEVICE_NAME -> { ProductKey =, DeviceName = }
function convert.product_device(s)
  local pk, name = s:match("^([^/]+)/(.+)$")
  if not pk then return nil, format("--device must be PRODUCT_KEY/DEVICE_NAME, got '%s'", s) end
  return { ProductKey = pk, DeviceName = name }
end

-- "F1,F2" -> the fields in the API's spelling, each once.
local function field_list(set, s)
  local list, seen = {}, {}
  for item in (s .. ","):gmatch("([^,]*),") do
    local name = set.canonical(item:match("^%s*(.-)%s*$"))
    if not name then
      return nil, format("unknown field '%s' (one of %s)", item, concat(set.NAMES, ","))
    end
    if seen[name] then return nil, format("field %s given twice", name) end
    seen[name] = true
    list[#list + 1] = name
  end
  return list
end

--- --fields of records of `kind` ("tasks", "jobs").
function convert.fields(kind)
  local set = fields[kind]
  return function(s) return field_list(set, s) end
end

--- --output: table, json, jsonl or csv, or the aliyun CLI's cols=F1,F2 (a
-- table of those columns) -> the format name, or { format = "table", fields = }.
function convert.output(kind)
  local set = fields[kind]
  return function(s)
    local cols = s:match("^cols=(.*)$")
    if cols then
      local list, err = field_list(set, cols)
      if not list then return nil, err end
      return { format = "table", fields = list }
    end
    local l = s:lower()
    if writers.is_format(l) then return l end
    return nil, format("unknown output format '%s' (table, json, jsonl, csv or cols=F1,F2,...)", s)
  end
end

--- call's ACTION: an Iot API name.
function convert.action(s)
  if not s:find("^%u%w*$") then
    return nil, format("ACTION must be an API name such as QueryOTAJob, got '%s'", s)
  end
  return s
end

return convert
