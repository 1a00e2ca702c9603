--- aliyun-ota: its command line, parsed with argparse, without exiting:
--
--   local a, outcome = args.parse(argv, { version = function() return text end })
--
-- gives the arguments table (a.command names the command; a.usage_text is
-- that command's usage, for usage errors found later), or nil and what to do
-- instead: outcome.status (0 for --help and --version, 2 for a usage error, 1
-- when argparse is missing), outcome.stream ("stdout" or "stderr") and
-- outcome.text to write there. args.help(command), args.usage(command) and
-- args.completion(shell) give the texts of the help and completion commands.
--
-- The global options (--region, -p/--profile, ...) belong to every command
-- too, so they may come before or after it, as the aliyun CLI takes them.
local exit = require("aliyun.iot.cli.exit")
local convert = require("aliyun.iot.cli.convert")
local fields = require("aliyun.iot.cli.fields")
local iot = require("aliyun.iot")

local has_argparse, argparse = pcall(require, "argparse")

local concat, unpack = table.concat, table.unpack or unpack
local setmetatable, getmetatable, error, pcall, pairs, type = setmetatable, getmetatable, error, pcall, pairs, type

local args = {}

local SHELLS = { "bash", "zsh", "fish" }
local AFTER = "after_command_"

-- What argparse would have ended the process with, raised from inside it
-- and caught by args.parse instead.
local Stop = {}

local function stop(status, stream, text)
  error(setmetatable({ status = status, stream = stream, text = text }, Stop), 0)
end

-- The parser and what the argv passes need to know of it: every option name
-- that takes a value, and each command's parser. Each parser's help lists
-- its own options, then the global ones.
local function new_parser(opts)
  local takes_value, commands, own = {}, {}, {}
  local function option_of(p, names, description, argname)
    for name in names:gmatch("%S+") do takes_value[name] = true end
    if names == "--profile" then takes_value["-p"] = true end
    local o = p:option(names, description):argname(argname)
    own[p][#own[p] + 1] = o
    return o
  end
  local option = option_of
  local function flag(p, names, description)
    local f = p:flag(names, description)
    own[p][#own[p] + 1] = f
    return f
  end
  -- -h/--help writes the help of the parser it belongs to and stops (argparse
  -- itself would print it and call os.exit).
  local function with_help(p)
    own[p] = {}
    p:add_help(false)
    flag(p, "-h --help", "Show this help message and exit.")
      :action(function() stop(exit.OK, "stdout", p:get_help() .. "\n") end)
    return p
  end

  -- A command's copy of a global option stores its value apart (argparse
  -- would reset the target when it enters the command); settle() merges it.
  local function globals(p)
    local before = #own[p]
    local function global(q, names, description, argname)
      local o = option_of(q, names, description, argname)
      if q ~= commands.root then o:target(AFTER .. names:match("%-%-(%S+)$"):gsub("%-", "_")) end
      return o
    end
    global(p, "--region", "Region id such as cn-shanghai (default: the profile's, then ALIBABA_CLOUD_REGION_ID).",
           "<id>"):convert(convert.nonempty("--region"))
    -- -p is shown in the description: argparse draws an option with two names
    -- on two lines, which help2man takes for two options.
    global(p, "--profile", "Credentials profile, of the aliyun CLI's config or ~/.alibabacloud/credentials "
      .. "(also -p <name>).", "<name>"):hidden_name("-p"):convert(convert.nonempty("--profile"))
    global(p, "--endpoint", "Endpoint: a host, as the aliyun CLI takes it (iot.cn-shanghai.aliyuncs.com, "
      .. "HTTPS), or a URL http(s)://host[:port].", "<host>"):convert(convert.endpoint)
    global(p, "--instance", "IoT instance id, for an enterprise instance (default: ALIYUN_IOT_INSTANCE_ID).",
           "<id>"):convert(convert.nonempty("--instance"))
    global(p, "--timeout", "Request timeout in seconds.", "<seconds>")
      :convert(convert.positive_seconds("--timeout"))
    global(p, "--rate-limit", "Requests per second for every action, or off "
      .. "(default: each action's documented quota; ListOTATaskByJob 10).", "<rps>")
      :convert(convert.rate_limit)
    global(p, "--retries", "Retries of a failed read (default 3).", "<n>")
      :convert(convert.retries)
    local list = {}
    for i = before + 1, #own[p] do list[#list + 1], own[p][i] = own[p][i], nil end
    p:group("Options", unpack(own[p]))
    p:group("Global options (before or after the command)", unpack(list))
  end

  local function command(name, description)
    local p = with_help(commands.root:command(name, description))
    commands[name] = p
    return p
  end

  local function listing_options(p, kind)
    option(p, "--output", "Output format: table, json, jsonl or csv, or cols=F1,F2 (a table of those fields).",
           "<format>")
      :default("table")
      :convert(convert.output(kind))
    option(p, "--fields", "Comma-separated fields, in order (default: " .. concat(fields[kind].DEFAULT, ",") .. ").",
           "<F1,F2,...>")
      :convert(convert.fields(kind))
  end

  local root = with_help(argparse("aliyun-ota",
    "Watch and export the device tasks of Alibaba Cloud IoT OTA jobs, and call any Iot API."))
    :help_max_width(80)
    :usage("Usage: aliyun-ota [-h] [--version] [global options] <command> ...")
    :epilog("Credentials come from the library's chain: ALIBABA_CLOUD_ACCESS_KEY_ID and\n"
      .. "ALIBABA_CLOUD_ACCESS_KEY_SECRET (plus ALIBABA_CLOUD_SECURITY_TOKEN for STS), or --profile.\n\n"
      .. "Exit status: 0 ok, 1 API or network error, 2 usage error, 130 interrupted.")
  commands.root = root
  root:command_target("command")
  root:require_command(true)
  flag(root, "--version", "Show the versions of aliyun-ota, the library, Lua and libcurl, and exit.")
    :action(function() stop(exit.OK, "stdout", opts.version and opts.version() or iot.VERSION .. "\n") end)

  local tasks = command("tasks", "Stream every task of a job as a table, JSON, JSON lines or CSV.")
  tasks:argument("job_id", "OTA job id."):convert(convert.nonempty("JOB_ID"))
  option(tasks, "--status", "Only tasks in this status, in any case (repeatable): "
    .. concat(iot.TASK_STATUSES, ", ") .. ".", "<status>")
    :count("*")
    :convert(convert.status)
  option(tasks, "--device", "Only the task of this device (repeatable).", "<name>")
    :count("*")
    :convert(convert.device)
  listing_options(tasks, "tasks")

  command("summary", "Counts by status, tasks in progress, failures by description.")
    :argument("job_id", "OTA job id."):convert(convert.nonempty("JOB_ID"))

  local watch = command("watch", "Redraw the summary until every task is final (or Ctrl-C).")
  watch:argument("job_id", "OTA job id."):convert(convert.nonempty("JOB_ID"))
  option(watch, "--interval", "Seconds between refreshes.", "<seconds>")
    :default("5")
    :convert(convert.positive_seconds("--interval"))

  local jobs = command("jobs", "The jobs of a firmware (ListOTAJobByFirmware), or of one device of it "
    .. "(ListOTAJobByDevice), every page.")
  option(jobs, "--firmware", "Firmware id (FirmwareId).", "<id>")
    :count(1)
    :convert(convert.nonempty("--firmware"))
  option(jobs, "--device", "Only the jobs of this device.", "<PRODUCT_KEY/DEVICE_NAME>")
    :convert(convert.product_device)
  listing_options(jobs, "jobs")

  local call = command("call", "Call any Iot API action and write its answer as JSON, like `aliyun iot ACTION`.")
  call:argument("action", "API action such as QueryOTAJob."):convert(convert.action)
  call:argument("params", "API parameters: --Name VALUE (a name starts with a capital letter); a name given "
    .. "again, or numbered (Name.1, Name.2), makes a list. Values pass as text.")
    :args("*")
    :argname("--Name VALUE")
  flag(call, "--dry-run", "Print the signed request (the token masked) instead of sending it.")
    :hidden_name("--cli-dry-run")

  -- Every command so far takes the global options too.
  globals(root)
  for name, p in pairs(commands) do
    if name ~= "root" then globals(p) end
  end

  local help = command("help", "Show the help of aliyun-ota or of a command.")
  help:argument("topic", "Command."):args("?")
    :choices{ "tasks", "summary", "watch", "jobs", "call", "help", "completion" }
  command("completion", "Write the shell completion script (bash, zsh or fish) to stdout.")
    :argument("shell", "Shell."):choices(SHELLS)

  -- A usage error: the usage of the (sub)command that went wrong, and why.
  root.error = function(p, message)
    stop(exit.USAGE, "stderr", p:get_usage() .. "\n\nError: " .. message .. "\n")
  end
  return root, commands, takes_value
end

-- argv as argparse should see it. A negative number after an option that
-- takes a value (`--interval -1`) is that option's value, not an unknown
-- option "-1": joined as --interval=-1, it meets the option's own check. And
-- call's API parameters (--Name VALUE, --Name=VALUE after ACTION) become its
-- "Name=VALUE" arguments, so argparse takes only the CLI's own options.
local function prepare(argv, takes_value, call_usage)
  local out, i, command, action = {}, 1, nil, false
  while i <= #argv do
    local a, nxt = argv[i], argv[i + 1]
    if takes_value[a] and nxt and nxt:find("^%-%.?%d") then
      out[#out + 1] = a .. "=" .. nxt
      i = i + 2
    elseif action and a:find("^%-%-%u") then
      local name, value = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name, value, i = a:sub(3), nxt, i + 1 end
      if value == nil then stop(exit.USAGE, "stderr", call_usage() .. "\n\nError: " .. a .. " needs a value\n") end
      out[#out + 1] = name .. "=" .. value
      i = i + 1
    else
      out[#out + 1] = a
      if a:sub(1, 1) ~= "-" then
        action = command == "call"
        command = command or a
      elseif takes_value[a] and nxt then
        out[#out + 1] = nxt
        i = i + 1
      end
      i = i + 1
    end
  end
  return out
end

-- After argparse: a global option given after the command counts (over
-- one given before it); --output cols=... names the fields too.
local function settle(a, usage_text)
  local after = {}
  for key, value in pairs(a) do
    if key:sub(1, #AFTER) == AFTER then after[key:sub(#AFTER + 1)] = value end
  end
  for key, value in pairs(after) do a[AFTER .. key], a[key] = nil, value end
  if type(a.output) == "table" then
    if a.fields then
      stop(exit.USAGE, "stderr", usage_text .. "\n\nError: --output cols=... and --fields both name the fields\n")
    end
    a.output, a.fields = a.output.format, a.output.fields
  end
  a.usage_text = usage_text
  return a
end

--- Parse argv (a list of strings). See the top of this file.
function args.parse(argv, opts)
  if not has_argparse then
    return nil, { status = exit.FAILED, stream = "stderr",
                  text = "aliyun-ota: cannot load argparse (Debian: apt-get install lua-argparse)\n" }
  end
  local ok, result = pcall(function()
    local root, commands, takes_value = new_parser(opts or {})
    local a = root:parse(prepare(argv, takes_value, function() return commands.call:get_usage() end))
    return settle(a, commands[a.command]:get_usage())
  end)
  if ok then return result end
  if getmetatable(result) == Stop then return nil, result end
  error(result, 0)
end

local function parser_of(command)
  local root, commands = new_parser({})
  return commands[command or "root"] or root, root
end

--- The help of `command` (nil: of aliyun-ota itself).
function args.help(command) return parser_of(command):get_help() .. "\n" end

--- The usage of `command` (nil: of aliyun-ota itself).
function args.usage(command) return parser_of(command):get_usage() end

--- The completion script for `shell` (bash, zsh or fish).
function args.completion(shell)
  local _, root = parser_of()
  return root["get_" .. shell .. "_complete"](root)
end

return args
