--- aliyun-ota: the four output formats of `tasks` and `jobs`, each written a
-- record at a time as the pages arrive (nothing is kept, so memory stays flat).
--
--   local w = writers.new("csv", { "TaskId", "TaskDesc" }, out, opts)
--   w.header(); w.task(t) ...; w.finish()
--
-- `out(...)` writes text (see output.lua). opts (all optional): ellipsis ends
-- a cut table cell ("…" in a UTF-8 locale, "..." by default), widths the
-- table's column widths (a list parallel to the fields: layout.lua), right
-- the set of right-aligned fields.
--   table  aligned by display width
--   json   one document, an array written element by element
--   jsonl  one object per line
--   csv    RFC 4180: a header record, CRLF, quoted where needed
-- JSON keys and CSV columns follow `fields`; an absent field is null (empty
-- in CSV).
local text = require("aliyun.iot.cli.width")
local cjson = require("cjson").new()

local concat, rep = table.concat, string.rep
local ipairs, tostring, max = ipairs, tostring, math.max
local printable, cell, width = text.printable, text.cell, text.width
local NONE = {}

local writers = {}

function writers.json_string(v)
  -- cjson escapes "/" as "\/": valid JSON, but noisy in URLs and device names.
  -- Every "/" in its output comes from such an escape, so undoing it is safe.
  return (cjson.encode(v):gsub("\\/", "/"))
end
local json_string = writers.json_string

-- The '"Name":' prefix of each field's JSON member.
local function json_keys(fields)
  local keys = {}
  for i, f in ipairs(fields) do keys[i] = json_string(f) .. ":" end
  return keys
end

-- One task as a JSON object, keys in the order of `fields`; absent -> null.
local function json_object(task, fields, keys)
  local parts = {}
  for i, f in ipairs(fields) do
    local v = task[f]
    parts[i] = keys[i] .. (v == nil and "null" or json_string(v))
  end
  return "{" .. concat(parts, ",") .. "}"
end

-- RFC 4180: fields with a comma, quote, CR or LF are quoted, quotes doubled;
-- records end with CRLF.
local function csv_field(v)
  if v == nil then return "" end
  local s = tostring(v)
  if s:find('[,"\r\n]') then return '"' .. s:gsub('"', '""') .. '"' end
  return s
end

--- One CSV record of values[1..n]; a nil value is an empty field.
function writers.csv_record(values, n)
  local parts = {}
  for i = 1, n do parts[i] = csv_field(values[i]) end
  return concat(parts, ",") .. "\r\n"
end
local csv_record = writers.csv_record

-- The values of `fields` in task t, in order.
local function values_of(t, fields)
  local values = {}
  for i, f in ipairs(fields) do values[i] = t[f] end
  return values
end

local makers = {}

function makers.table(fields, out, opts)
  local widths, right, ellipsis = {}, opts.right or NONE, opts.ellipsis
  -- Never narrower than the header; 24 where no width is given.
  for i, f in ipairs(fields) do widths[i] = max((opts.widths or NONE)[i] or 24, width(f)) end
  local function line(values)
    local cells = {}
    for i, f in ipairs(fields) do cells[i] = cell(printable(values[i]), widths[i], right[f], ellipsis) end
    return (concat(cells, "  "):gsub("%s+$", "")) .. "\n"
  end
  return {
    header = function()
      local rule = {}
      for i = 1, #fields do rule[i] = rep("-", widths[i]) end
      out(line(fields), (concat(rule, "  ")), "\n")
    end,
    task = function(t) out(line(values_of(t, fields))) end,
    finish = function() end,
  }
end

function makers.json(fields, out)
  local keys, first = json_keys(fields), true
  return {
    header = function() out("[") end,
    task = function(t)
      out(first and "\n" or ",\n", json_object(t, fields, keys))
      first = false
    end,
    finish = function() out(first and "]\n" or "\n]\n") end,
  }
end

function makers.jsonl(fields, out)
  local keys = json_keys(fields)
  return {
    header = function() end,
    task = function(t) out(json_object(t, fields, keys), "\n") end,
    finish = function() end,
  }
end

function makers.csv(fields, out)
  local n = #fields
  return {
    header = function() out(csv_record(fields, n)) end,
    -- values_of has holes where a task lacks a field: count by fields.
    task = function(t) out(csv_record(values_of(t, fields), n)) end,
    finish = function() end,
  }
end

--- Is `name` one of the formats (table, json, jsonl, csv)?
function writers.is_format(name)
  return makers[name] ~= nil
end

--- A writer of format `name` for `fields`, writing through `out`.
function writers.new(name, fields, out, opts)
  local make = makers[name]
  if not make then error("unknown output format '" .. tostring(name) .. "'", 2) end
  return make(fields, out, opts or NONE)
end

return writers
