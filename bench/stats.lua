--- What the benchmark drivers (bench/run.lua, cheap.lua, openresty.lua) share: reading the
-- "key=value" lines the measured processes print, and the medians of their runs.
--   local stats = dofile("bench/stats.lua")      (run from the repository root)
local format, concat = string.format, table.concat
local stats = {}

--- "page_cpu mode=call pages=100 ..." -> { mode = "call", pages = 100, ... }
function stats.fields(line)
  local t = {}
  for k, v in line:gmatch("([%w_]+)=(%S+)") do t[k] = tonumber(v) or v end
  return t
end

--- The median of a list of numbers (nil for an empty list); the list is not reordered.
function stats.median(list)
  local s = {}
  for i, v in ipairs(list) do s[i] = v end
  table.sort(s)
  local n = #s
  if n == 0 then return nil end
  if n % 2 == 1 then return s[(n + 1) // 2] end
  return (s[n // 2] + s[n // 2 + 1]) / 2
end

--- The runs of a figure for a table cell: "1.20, 1.31, 1.18" (fmt defaults to "%.0f").
function stats.list_str(list, fmt)
  local out = {}
  for i, v in ipairs(list) do out[i] = format(fmt or "%.0f", v) end
  return concat(out, ", ")
end

--- A whole file, or nil when it cannot be opened.
function stats.read_file(path)
  local f = io.open(path)
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

return stats
