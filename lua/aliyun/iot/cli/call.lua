--- aliyun-ota call ACTION --Name VALUE ...: any Iot 2018-01-20 action, like
-- `aliyun iot ACTION --Name VALUE`, its answer written as JSON (json.lua);
-- --dry-run writes the signed request instead, the token masked.
--
-- Parameters arrive from args.lua as "Name=VALUE" (the --Name VALUE pairs
-- after ACTION). Values stay text: the API takes text, and "10", "true" or
-- "1.0" reach it as written. A name given again, or numbered (Name.1,
-- Name.2, ...), makes a list; Name.Field a table (Tag.1.Key); the library
-- flattens both back to the API's Name.1 / Name.1.Key. TaskStatus values are
-- upper-cased, as `tasks --status` takes them.
local errors = require("aliyun.iot.errors")
local exit = require("aliyun.iot.cli.exit")
local convert = require("aliyun.iot.cli.convert")
local json = require("aliyun.iot.cli.json")

local format, concat, sort, tostring, pairs, ipairs, type, error =
  string.format, table.concat, table.sort, tostring, pairs, ipairs, type, error

local call = {}

-- A usage error of call (SDK.InvalidArgument: main writes the usage, exit 2).
local function misuse(message) error(errors.invalid(message), 0) end

-- A key of a parameter path: a list index (1, 2, ...; no leading zeros) or a field.
local function key_of(segment)
  if segment:find("^[1-9]%d*$") then return tonumber(segment) end
  return segment
end

--- The parameter table of "Name=VALUE" items (a list), or raises a usage error.
function call.params(items)
  local p, repeated = {}, {}
  for _, item in ipairs(items or {}) do
    local name, value = item:match("^([^=]*)=(.*)$")
    if not name or not name:find("^%a%w*[%.%w]*$") or name:find("%.%.") or name:find("%.$") then
      misuse(format("expected --Name VALUE after the action, got '%s'", item))
    end
    if name == "TaskStatus" then value = convert.status(value) or value:upper() end
    local node, segments = p, {}
    for segment in name:gmatch("[^.]+") do segments[#segments + 1] = key_of(segment) end
    for i = 1, #segments - 1 do
      local k = segments[i]
      if node[k] == nil then node[k] = {} end
      if type(node[k]) ~= "table" or repeated[node[k]] then
        misuse(format("--%s: %s is given both as a value and with parts", name, tostring(k)))
      end
      node = node[k]
    end
    local last, old = segments[#segments], node[segments[#segments]]
    if old == nil then
      node[last] = value
    elseif type(old) == "string" then
      node[last] = { old, value }
      repeated[node[last]] = true
    elseif repeated[old] then
      old[#old + 1] = value
    else
      misuse(format("--%s: given both as a value and with parts", name))
    end
  end
  -- Numbered parts must run 1..n without gaps.
  local function check(t, path)
    for k, v in pairs(t) do
      if type(k) == "number" and t[k - 1] == nil and k > 1 then
        misuse(format("--%s.%d given without --%s.%d", path, k, path, k - 1))
      end
      if type(v) == "table" then check(v, path .. "." .. tostring(k)) end
    end
  end
  for k, v in pairs(p) do
    if type(v) == "table" then check(v, k) end
  end
  return p
end

--- A signed request as text: the request line, the headers (sorted, the
-- security token masked), a blank line and the body. tostring(req) is the
-- library's, which masks the token in a V1 URL.
function call.request_text(req)
  local lines, names = { tostring(req) }, {}
  for name in pairs(req.headers or {}) do names[#names + 1] = name end
  sort(names, function(a, b) return a:lower() < b:lower() end)
  for _, name in ipairs(names) do
    local value = req.headers[name]
    if name:lower() == "x-acs-security-token" then value = "***" end
    lines[#lines + 1] = name .. ": " .. tostring(value)
  end
  if req.body and req.body ~= "" then
    lines[#lines + 1] = ""
    lines[#lines + 1] = req.body
  end
  return concat(lines, "\n") .. "\n"
end

--- The command. Returns 0; raises the library's error object.
function call.run(client, args, ctx)
  local p = call.params(args.params)
  local result, err = client:call(args.action, p, args.dry_run and { dry_run = true } or nil)
  if not result then error(err, 0) end
  ctx.out(args.dry_run and call.request_text(result) or (json.encode(result) .. "\n"))
  return exit.OK
end

return call
