--- aliyun-ota: its command line, parsed with argparse, without exiting:
--
--   local a, outcome = args.parse(argv)
--
-- gives the arguments table (a.command is "tasks", "summary" or "watch"),
-- or nil and what to do instead: outcome.status (0 for --help, 2 for a
-- usage error, 1 when argparse is missing), outcome.stream ("stdout" or
-- "stderr") and outcome.text to write there.
local exit = require("aliyun.iot.cli.exit")
local fields = require("aliyun.iot.cli.fields")
local writers = require("aliyun.iot.cli.writers")
local iot = require("aliyun.iot")

local has_argparse, argparse = pcall(require, "argparse")

local concat, format = table.concat, string.format
local setmetatable, getmetatable, error, pcall = setmetatable, getmetatable, error, pcall

local STATUSES = iot.TASK_STATUSES   -- QUEUED NOTIFIED IN_PROGRESS SUCCEEDED FAILED CANCELED CONFIRM
local IS_STATUS = {}
for _, s in ipairs(STATUSES) do IS_STATUS[s] = true end

local args = {}

-- What argparse would have ended the process with, raised from inside it
-- and caught by args.parse instead.
local Stop = {}

local function stop(status, stream, text)
  error(setmetatable({ status = status, stream = stream, text = text }, Stop), 0)
end

-- -h/--help writes the help of the parser it belongs to and stops (argparse
-- itself would print it and call os.exit). Same flag, same place in the help.
local function with_help(p)
  p:add_help{ action = function() stop(exit.OK, "stdout", p:get_help() .. "\n") end }
  return p
end

local function positive_number(what)
  return function(s)
    local n = tonumber(s)
    if not n or n <= 0 or n ~= n or n == math.huge then
      return nil, format("%s must be a positive number of seconds, got '%s'", what, s)
    end
    return n
  end
end

-- --rate-limit: requests per second for every action, or "off".
local function rate_limit(s)
  if s == "off" then return false end
  local n = tonumber(s)
  if not n or n <= 0 or n ~= n or n == math.huge then
    return nil, format("--rate-limit must be requests per second (> 0) or off, got '%s'", s)
  end
  return n
end

local function retries(s)
  local n = tonumber(s)
  if not n or n < 0 or n > 100 or n ~= math.floor(n) then
    return nil, format("--retries must be an integer from 0 to 100, got '%s'", s)
  end
  return n
end

local function status(s)
  local u = s:upper()
  if IS_STATUS[u] then return u end
  return nil, format("unknown status '%s' (one of %s)", s, concat(STATUSES, ", "))
end

local function device(s)
  if s == "" then return nil, "a device name must not be empty" end
  return s
end

local function output_format(s)
  local l = s:lower()
  if writers.is_format(l) then return l end
  return nil, format("unknown output format '%s' (table, json, jsonl or csv)", s)
end

local function field_list(s)
  local list, seen = {}, {}
  for item in (s .. ","):gmatch("([^,]*),") do
    local name = fields.canonical(item:match("^%s*(.-)%s*$"))
    if not name then
      return nil, format("unknown field '%s' (one of %s)", item, concat(fields.NAMES, ","))
    end
    if seen[name] then return nil, format("field %s given twice", name) end
    seen[name] = true
    list[#list + 1] = name
  end
  return list
end

--- The argparse parser of the whole command line.
function args.parser()
  local parser = with_help(argparse("aliyun-ota",
    "Watch and export the device tasks of Alibaba Cloud IoT OTA jobs."))
    :epilog("Credentials come from the library's chain: ALIBABA_CLOUD_ACCESS_KEY_ID and\n"
      .. "ALIBABA_CLOUD_ACCESS_KEY_SECRET (plus ALIBABA_CLOUD_SECURITY_TOKEN for STS), or --profile.\n"
      .. "Exit status: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.")
  parser:command_target("command")
  parser:require_command(true)
  parser:option("--region", "Region id, e.g. cn-shanghai (default: ALIBABA_CLOUD_REGION_ID).")
  parser:option("--profile", "Credentials profile name.")
  parser:option("--endpoint", "Endpoint override, http(s)://host[:port].")
  parser:option("--instance", "IoT instance id (enterprise instances).")
  parser:option("--timeout", "Request timeout in seconds.")
    :convert(positive_number("--timeout"))
  parser:option("--rate-limit", "Requests per second for every action, or off "
    .. "(default: each action's documented quota, e.g. ListOTATaskByJob 10).")
    :convert(rate_limit)
  parser:option("--retries", "Retries of a failed read (default 3).")
    :convert(retries)

  local tasks = with_help(parser:command("tasks",
    "Stream every task of a job as a table, JSON, JSON lines or CSV."))
  tasks:argument("job_id", "OTA job id.")
  tasks:option("--status", "Only tasks in this status (repeatable): " .. concat(STATUSES, ", ") .. ".")
    :count("*")
    :convert(status)
  tasks:option("--device", "Only the task of this device (repeatable).")
    :count("*")
    :convert(device)
  tasks:option("--output", "Output format: table, json, jsonl or csv.")
    :default("table")
    :convert(output_format)
  tasks:option("--fields", "Comma-separated fields, in order (default: " .. concat(fields.DEFAULT, ",") .. ").")
    :convert(field_list)

  local summary = with_help(parser:command("summary", "Counts by status, tasks in progress, failures by description."))
  summary:argument("job_id", "OTA job id.")

  local watch = with_help(parser:command("watch", "Redraw the summary until every task is final (or Ctrl-C)."))
  watch:argument("job_id", "OTA job id.")
  watch:option("--interval", "Seconds between refreshes.")
    :default("5")
    :convert(positive_number("--interval"))

  -- A usage error: the usage of the (sub)command that went wrong, and why.
  parser.error = function(p, message)
    stop(exit.USAGE, "stderr", p:get_usage() .. "\n\nError: " .. message .. "\n")
  end
  return parser
end

--- Parse argv (a list of strings). See the top of this file.
function args.parse(argv)
  if not has_argparse then
    return nil, { status = exit.FAILED, stream = "stderr",
                  text = "aliyun-ota: cannot load argparse (Debian: apt-get install lua-argparse)\n" }
  end
  local parser = args.parser()
  local ok, result = pcall(parser.parse, parser, argv)
  if ok then return result end
  if getmetatable(result) == Stop then return nil, result end
  error(result, 0)
end

return args
