--- aliyun-ota: the columns of a table, and the writer of a listing command.
--
--   layout.natural(set, names)       -> widths: each field at its own width
--   layout.fit(set, columns)         -> names, widths: the default fields that
--                                       fit a terminal `columns` wide
--   layout.writer(set, args, ctx)    -> the writer for --output / --fields
--
-- `set` is one of fields.lua's sets. Fitting takes the fields in the set's
-- PRIORITY order: each at its width while that fits; one that does not may
-- still come in cut down to its SHRINK width, taking what is left; the rest
-- stay out. What is left at the end goes to the GROW field. The kept fields
-- keep the order of the set's DEFAULT. Columns are two blanks apart.
local text = require("aliyun.iot.cli.width")
local writers = require("aliyun.iot.cli.writers")

local ipairs, max = ipairs, math.max
local width = text.width

local layout = {}

local GAP = 2

local function ideal(set, f) return max(set.WIDTH[f] or set.DEFAULT_WIDTH, width(f)) end

local function least(set, f)
  local shrink = set.SHRINK[f]
  return shrink and max(shrink, width(f)) or ideal(set, f)
end

function layout.natural(set, names)
  local widths = {}
  for i, f in ipairs(names) do widths[i] = ideal(set, f) end
  return widths
end

function layout.fit(set, columns)
  local kept, used, any = {}, 0, false
  for _, f in ipairs(set.PRIORITY) do
    local gap = any and GAP or 0
    if used + gap + ideal(set, f) <= columns then
      kept[f], used, any = ideal(set, f), used + gap + ideal(set, f), true
    elseif used + gap + least(set, f) <= columns then
      kept[f], used, any = columns - used - gap, columns, true
    end
  end
  if not any then   -- narrower than any column: the first, at its least
    local f = set.PRIORITY[1]
    kept[f], used = least(set, f), columns
  end
  if set.GROW and kept[set.GROW] and used < columns then
    kept[set.GROW] = kept[set.GROW] + columns - used
  end
  local names, widths = {}, {}
  for _, f in ipairs(set.DEFAULT) do
    if kept[f] then names[#names + 1], widths[#widths + 1] = f, kept[f] end
  end
  return names, widths
end

--- What a listing command writes its records with: records(list) for each
-- page, finish() at the end. The header goes out with the first page, so a
-- listing that fails at once leaves stdout empty rather than holding half a
-- document. args.output and args.fields as parsed (args.lua); ctx.out,
-- ctx.ellipsis, and ctx.columns() (the terminal's width, or nil: see
-- terminal.columns). Only the default table is fitted to the terminal:
-- fields that were asked for are all shown.
function layout.writer(set, args, ctx)
  local names, widths = args.fields or set.DEFAULT, nil
  if args.output == "table" then
    local columns = not args.fields and ctx.columns and ctx.columns()
    if columns then names, widths = layout.fit(set, columns) else widths = layout.natural(set, names) end
  end
  local w = writers.new(args.output, names, ctx.out,
                        { ellipsis = ctx.ellipsis, widths = widths, right = set.RIGHT_ALIGNED })
  local started = false
  local function start()
    if not started then w.header(); started = true end
  end
  return {
    records = function(list)
      start()
      for i = 1, #list do w.task(list[i]) end
    end,
    finish = function()
      start()
      w.finish()
    end,
  }
end

return layout
