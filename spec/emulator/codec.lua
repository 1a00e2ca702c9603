-- Response encoding: a small JSON encoder and a small XML serializer that share
-- one data model. Pure Lua (no ngx).
--
-- Why not cjson for encoding: Debian's lua-cjson 2.1.0 has no empty_array and
-- does not keep key order. Here key order follows the API reference, and an
-- empty array is written as [] (a page past the end) while an empty object is
-- written as {} (an empty job), as the real service does.
--
-- Data model:
--   codec.object(keys, values)  object with keys in the given order (missing keys skipped)
--   codec.array(list)           array, [] when empty
--   plain table                 object with keys sorted (for ad-hoc data such as logs)
--   string / number / boolean / codec.null

local M = {}

local OBJECT, ARRAY = {}, {}     -- metatable markers
M.null = setmetatable({}, { __tostring = function() return "null" end })

function M.object(keys, values)
  return setmetatable({ keys = keys, values = values }, OBJECT)
end

function M.array(list)
  return setmetatable({ items = list or {} }, ARRAY)
end

local function ordered_entries(v)
  local mt = getmetatable(v)
  local out = {}
  if mt == OBJECT then
    for _, k in ipairs(v.keys) do
      if v.values[k] ~= nil then out[#out + 1] = { k, v.values[k] } end
    end
  else
    local keys = {}
    for k in pairs(v) do keys[#keys + 1] = tostring(k) end
    table.sort(keys)
    for _, k in ipairs(keys) do out[#out + 1] = { k, v[k] } end
  end
  return out
end

-- JSON ----------------------------------------------------------------------

local JSON_ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f',
                       ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }

local function json_string(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return JSON_ESCAPES[c] or string.format("\\u%04x", c:byte())
  end) .. '"'
end

local function json_number(n)
  if n ~= n or n == math.huge or n == -math.huge then error("cannot encode non-finite number") end
  if n == math.floor(n) and math.abs(n) < 2^53 then return string.format("%d", n) end
  return string.format("%.14g", n)
end

local encode_json
encode_json = function(v, buf)
  local t = type(v)
  if t == "string" then buf[#buf + 1] = json_string(v)
  elseif t == "number" then buf[#buf + 1] = json_number(v)
  elseif t == "boolean" then buf[#buf + 1] = tostring(v)
  elseif v == M.null or v == nil then buf[#buf + 1] = "null"
  elseif t == "table" and getmetatable(v) == ARRAY then
    buf[#buf + 1] = "["
    for i, item in ipairs(v.items) do
      if i > 1 then buf[#buf + 1] = "," end
      encode_json(item, buf)
    end
    buf[#buf + 1] = "]"
  elseif t == "table" then
    buf[#buf + 1] = "{"
    for i, kv in ipairs(ordered_entries(v)) do
      if i > 1 then buf[#buf + 1] = "," end
      buf[#buf + 1] = json_string(kv[1])
      buf[#buf + 1] = ":"
      encode_json(kv[2], buf)
    end
    buf[#buf + 1] = "}"
  else
    error("cannot encode " .. t)
  end
end

function M.json(v)
  local buf = {}
  encode_json(v, buf)
  return table.concat(buf)
end

-- XML -----------------------------------------------------------------------
-- An array is written as one element per item, each named after the key that
-- holds the array: Data = {SimpleOTATaskInfo = [a, b]} becomes
-- <Data><SimpleOTATaskInfo>a</SimpleOTATaskInfo><SimpleOTATaskInfo>b</SimpleOTATaskInfo></Data>.

local XML_ESCAPES = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&apos;" }

local function xml_text(v)
  if type(v) == "number" then return json_number(v) end
  return (tostring(v):gsub("[&<>\"']", XML_ESCAPES))
end

local encode_xml
encode_xml = function(name, v, buf)
  if type(v) == "table" and getmetatable(v) == ARRAY then
    for _, item in ipairs(v.items) do encode_xml(name, item, buf) end
  elseif type(v) == "table" and v ~= M.null then
    buf[#buf + 1] = "<" .. name .. ">"
    for _, kv in ipairs(ordered_entries(v)) do encode_xml(kv[1], kv[2], buf) end
    buf[#buf + 1] = "</" .. name .. ">"
  elseif v == M.null then
    buf[#buf + 1] = "<" .. name .. "/>"
  else
    buf[#buf + 1] = "<" .. name .. ">" .. xml_text(v) .. "</" .. name .. ">"
  end
end

function M.xml(root_name, v)
  local buf = { '<?xml version="1.0" encoding="UTF-8" ?>' }
  encode_xml(root_name, v, buf)
  return table.concat(buf)
end

return M
