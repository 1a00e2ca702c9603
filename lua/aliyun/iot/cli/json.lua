--- aliyun-ota: a decoded API answer as indented JSON, keys sorted, so that the
-- same answer always reads the same (cjson's own order is the hash table's).
--
--   json.encode(value) -> text (no final newline)
--
-- A table whose keys are 1..n is an array; an empty table is {} (as cjson
-- encodes it: a decoded body does not say whether it was [] or {}).
-- Strings and numbers are written by cjson (writers.json_string).
local cjson = require("cjson")
local writers = require("aliyun.iot.cli.writers")

local type, pairs, tostring, sort, concat, rep = type, pairs, tostring, table.sort, table.concat, string.rep
local json_string = writers.json_string

local json = {}

local function is_array(t)
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if type(k) ~= "number" or k < 1 or k > n or k % 1 ~= 0 then return false end
  end
  return true
end

local function encode(v, depth)
  local t = type(v)
  if v == nil or v == cjson.null then return "null" end
  if t == "boolean" then return v and "true" or "false" end
  if t == "string" or t == "number" then return json_string(v) end
  if t ~= "table" then return json_string(tostring(v)) end
  local pad, inner = rep("  ", depth), rep("  ", depth + 1)
  local parts = {}
  if is_array(v) then
    for i = 1, #v do parts[i] = inner .. encode(v[i], depth + 1) end
    return "[\n" .. concat(parts, ",\n") .. "\n" .. pad .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  if #keys == 0 then return "{}" end
  sort(keys)
  for i, k in ipairs(keys) do
    local value = v[k]
    if value == nil then value = v[tonumber(k)] end
    parts[i] = inner .. json_string(k) .. ": " .. encode(value, depth + 1)
  end
  return "{\n" .. concat(parts, ",\n") .. "\n" .. pad .. "}"
end

function json.encode(value) return encode(value, 0) end

return json
