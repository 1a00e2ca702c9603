--- Parameter validation and flattening, one table of rules per action.
-- Everything here runs before any network I/O: a bad value comes back as an
-- SDK.InvalidArgument error naming the parameter, and nothing is sent.
local errors = require("aliyun.iot.errors")

local type, tostring, pairs, ipairs = type, tostring, pairs, ipairs
local floor, huge = math.floor, math.huge
local format, match, lower = string.format, string.match, string.lower
local sort, concat = table.sort, table.concat

local params = {}

params.TASK_STATUSES = { "QUEUED", "NOTIFIED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED", "CONFIRM" }
params.FINAL_STATUSES = { SUCCEEDED = true, FAILED = true, CANCELED = true }
params.MAX_PAGE_SIZE = 100
-- The service refuses CurrentPage x PageSize beyond this (iot.common.InvalidPageParams).
params.MAX_DEPTH = 100000
params.MAX_DEVICE_NAMES = 50
-- The service's own default when PageSize is not sent.
params.SERVICE_PAGE_SIZE = 10

local is_status = {}
for _, s in ipairs(params.TASK_STATUSES) do is_status[s] = true end

local invalid = errors.invalid

--- Integer check that accepts what users naturally pass: 100, 100.0 or "100".
local function to_integer(v)
  if type(v) == "string" then
    if not match(v, "^%d+$") then return nil end
    v = tonumber(v)
  end
  if type(v) ~= "number" or v ~= v or v == huge or v == -huge or floor(v) ~= v then return nil end
  return floor(v)
end
params.to_integer = to_integer

local function describe(v)
  if type(v) == "string" then return format("%q", v) end
  return tostring(v) .. " (" .. type(v) .. ")"
end

-- Checkers: (value, name) -> normalized value or nil, error message.
local check = {}

function check.string(v, name)
  if type(v) ~= "string" then
    return nil, format("%s must be a string, got %s", name, describe(v))
  end
  if v == "" then return nil, name .. " must not be empty" end
  return v
end

function check.page_size(v, name)
  local n = to_integer(v)
  if not n or n < 1 or n > params.MAX_PAGE_SIZE then
    return nil, format("%s must be an integer from 1 to %d, got %s", name, params.MAX_PAGE_SIZE, describe(v))
  end
  return n
end

function check.current_page(v, name)
  local n = to_integer(v)
  if not n or n < 1 then
    return nil, format("%s must be an integer >= 1, got %s", name, describe(v))
  end
  return n
end

function check.task_status(v, name)
  if not is_status[v] then
    return nil, format("%s must be one of %s, got %s", name, concat(params.TASK_STATUSES, ", "), describe(v))
  end
  return v
end

-- Any number of device names; callers that send them in one request check
-- the per-call limit themselves (the pager splits instead).
function check.device_names(v, name)
  if type(v) ~= "table" then
    return nil, format("%s must be a list of device names, got %s", name, describe(v))
  end
  local n = #v
  for k in pairs(v) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then
      return nil, format("%s must be a list (array) of device names; found key %s", name, describe(k))
    end
  end
  if n == 0 then return nil, name .. " must not be an empty list" end
  for i = 1, n do
    local d = v[i]
    if type(d) ~= "string" or d == "" then
      return nil, format("%s[%d] must be a non-empty string, got %s", name, i, describe(d))
    end
  end
  return v
end

--- Rules per action: allowed parameter names and their checkers.
local rules = {
  ListOTATaskByJob = {
    JobId = { check = check.string, required = true },
    IotInstanceId = { check = check.string },
    PageSize = { check = check.page_size },
    CurrentPage = { check = check.current_page },
    TaskStatus = { check = check.task_status },
    DeviceNames = { check = check.device_names },
  },
}
params.rules = rules

local function sorted_names(set, extra)
  local names = {}
  for k in pairs(set) do names[#names + 1] = k end
  for k in pairs(extra or {}) do names[#names + 1] = k end
  sort(names)
  return names
end

-- Edit distance, for "did you mean": small names only, so the plain table is fine.
local function distance(a, b)
  local prev = {}
  for j = 0, #b do prev[j] = j end
  for i = 1, #a do
    local cur = { [0] = i }
    for j = 1, #b do
      local cost = a:byte(i) == b:byte(j) and 0 or 1
      cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
    end
    prev = cur
  end
  return prev[#b]
end

-- The name in `names` that `name` was probably meant to be: the same but for
-- case, "_" and "-" (dryRun, dry-run -> dry_run), else at most two edits off.
function params.did_you_mean(name, names)
  if type(name) ~= "string" then return nil end
  local function norm(s) return (lower(s):gsub("[_%-]", "")) end
  local want, best, best_d = norm(name), nil, 3
  for _, k in ipairs(names) do
    local d = norm(k) == want and 0 or distance(lower(name), lower(k))
    if d < best_d then best, best_d = k, d end
  end
  return best
end

--- "unknown <what> X for <where> (did you mean Y?); expected one of: ..."
function params.unknown_key(what, where, name, names)
  local guess = params.did_you_mean(name, names)
  return format("unknown %s %s for %s%s; expected one of: %s", what, describe(name), where,
    guess and format(" (did you mean %s?)", guess) or "", concat(names, ", "))
end

local function unknown_name_message(action, rule, name, extra)
  return params.unknown_key("parameter", action, name, sorted_names(rule, extra))
end

--- Check `p` against the action's rules.
-- `extra` lists additional names the caller accepts (pager options).
-- Returns a new table of normalized values, or nil, err.
function params.validate(action, p, extra)
  local rule = rules[action]
  if type(p) ~= "table" then
    return nil, invalid(format("%s expects a table of parameters, got %s", action, describe(p)))
  end
  local out = {}
  for name, value in pairs(p) do
    local r = rule[name]
    if r then
      local v, msg = r.check(value, name)
      if v == nil then return nil, invalid(msg) end
      out[name] = v
    elseif not (extra and extra[name]) then
      return nil, invalid(unknown_name_message(action, rule, name, extra))
    end
  end
  for name, r in pairs(rule) do
    if r.required and out[name] == nil then
      return nil, invalid(format("%s is required for %s", name, action))
    end
  end
  return out
end

--- Validate one ListOTATaskByJob call and flatten it into API parameters
-- (string -> string, DeviceNames.1..N), ready to be signed.
function params.ListOTATaskByJob(p)
  local v, err = params.validate("ListOTATaskByJob", p)
  if not v then return nil, err end
  local names = v.DeviceNames
  if names and #names > params.MAX_DEVICE_NAMES then
    return nil, invalid(format(
      "DeviceNames has %d names; at most %d are allowed in one call (client:tasks splits longer lists)",
      #names, params.MAX_DEVICE_NAMES))
  end
  local page_size = v.PageSize or params.SERVICE_PAGE_SIZE
  if v.CurrentPage and v.CurrentPage * page_size > params.MAX_DEPTH then
    return nil, invalid(format("CurrentPage x PageSize = %d x %d exceeds the service's paging depth of %d tasks",
      v.CurrentPage, page_size, params.MAX_DEPTH))
  end
  local flat = { JobId = v.JobId, IotInstanceId = v.IotInstanceId, TaskStatus = v.TaskStatus }
  if v.PageSize then flat.PageSize = format("%d", v.PageSize) end
  if v.CurrentPage then flat.CurrentPage = format("%d", v.CurrentPage) end
  if names then
    for i = 1, #names do flat["DeviceNames." .. i] = names[i] end
  end
  return flat
end

--- Render one scalar the way the official SDKs do: booleans as "true" and
-- "false", integral numbers without a fraction ("10", not "10.0"), other
-- numbers in the shortest form that reads back to the same value.
local function render(name, v)
  local t = type(v)
  if t == "string" then return v end
  if t == "boolean" then return v and "true" or "false" end
  if t == "number" then
    if v ~= v or v == huge or v == -huge then
      return nil, format("parameter %s must be a finite number, got %s", name, tostring(v))
    end
    if floor(v) == v and v > -2^53 and v < 2^53 then return format("%d", v) end
    local short = format("%.15g", v)
    if tonumber(short) == v then return short end
    return format("%.17g", v)
  end
  return nil, format("parameter %s has a %s value; expected a string, number, boolean or table", name, t)
end

local function is_list(t)
  local n = #t
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or floor(k) ~= k then return false end
  end
  return true
end

local MAX_NESTING = 8

-- Lists become Name.1..N, tables Name.Field, as the RPC APIs expect.
local function flatten_into(out, name, v, depth)
  if type(v) ~= "table" then
    local s, msg = render(name, v)
    if not s then return nil, msg end
    out[name] = s
    return true
  end
  if depth > MAX_NESTING then
    return nil, format("parameter %s is nested more than %d levels deep", name, MAX_NESTING)
  end
  if is_list(v) then
    for i = 1, #v do
      local ok, msg = flatten_into(out, name .. "." .. i, v[i], depth + 1)
      if not ok then return nil, msg end
    end
  else
    for k, item in pairs(v) do
      if type(k) ~= "string" then
        return nil, format("parameter %s mixes list items and fields (key %s)", name, describe(k))
      end
      local ok, msg = flatten_into(out, name .. "." .. k, item, depth + 1)
      if not ok then return nil, msg end
    end
  end
  return true
end

--- Flatten the parameters of any RPC action into string -> string.
function params.flatten(action, p)
  if type(action) ~= "string" or not match(action, "^%u%w*$") then
    return nil, invalid(format("action must be an API name such as ListOTATaskByJob, got %s", describe(action)))
  end
  if p == nil then return {} end
  if type(p) ~= "table" then
    return nil, invalid(format("%s expects a table of parameters, got %s", action, describe(p)))
  end
  local flat = {}
  for name, v in pairs(p) do
    if type(name) ~= "string" or not match(name, "^%a[%w%.]*$") then
      return nil, invalid(format("parameter name %s for %s is not an API parameter name", describe(name), action))
    end
    local ok, msg = flatten_into(flat, name, v, 1)
    if not ok then return nil, invalid(msg) end
  end
  return flat
end

--- Reads and writes. A read may be sent again after any transient
-- failure; a write only when it provably never reached the service (the
-- gateway sees a re-signed copy as a new request and would execute it
-- again). The rule: an action is a read when its name starts with one of
-- READ_PREFIXES followed by an upper-case letter (ListOTATaskByJob,
-- QueryOTAJob, QueryDevice, GetThingTopo, BatchQueryDeviceDetail, ...);
-- every other action is a write (Cancel*, Reupgrade*, Confirm*, Create*,
-- Update*, Delete*, Generate*, Batch* that is not BatchGet/BatchQuery, ...),
-- because treating a read as a write costs a retry while treating a write as
-- a read can run it twice. client:call(action, p, { idempotent = true })
-- overrides the rule for one call.
params.READ_PREFIXES = { "List", "Query", "Get", "Describe", "BatchQuery", "BatchGet" }

function params.is_read(action)
  for _, prefix in ipairs(params.READ_PREFIXES) do
    if action:sub(1, #prefix) == prefix and action:find("^%u", #prefix + 1) then return true end
  end
  return false
end

--- Validate (where rules exist) and flatten the parameters of one call.
function params.for_action(action, p)
  local specific = params[action]
  if rules[action] and specific then return specific(p) end
  return params.flatten(action, p)
end

return params
