--- aliyun-ota summary JOB_ID: counts by status, tasks in progress, failures
-- by description. Also what `watch` redraws (collect, render).
-- Kept bounded for any job: the first MAX_IN_PROGRESS tasks in progress and
-- at most MAX_GROUPS distinct failure descriptions (the rest are counted).
local iot = require("aliyun.iot")
local listing = require("aliyun.iot.cli.listing")
local text = require("aliyun.iot.cli.width")

local concat, rep, format, sort = table.concat, string.rep, string.format, table.sort
local floor, max, min = math.floor, math.max, math.min
local ipairs, pairs, tostring, tonumber = ipairs, pairs, tostring, tonumber
local printable, cell, fit = text.printable, text.cell, text.fit

local STATUSES, FINAL = iot.TASK_STATUSES, iot.FINAL_STATUSES

local summary = {}

local MAX_IN_PROGRESS = 10
local MAX_GROUPS_SHOWN = 10
local MAX_GROUPS = 1000

-- Count one task into s.
local function add_task(s, t)
  local st = tostring(t.TaskStatus)
  s.total = s.total + 1
  if s.counts[st] == nil then
    s.counts[st] = 0
    s.extra_statuses[#s.extra_statuses + 1] = st
  end
  s.counts[st] = s.counts[st] + 1
  if st == "IN_PROGRESS" then
    s.in_progress_n = s.in_progress_n + 1
    if #s.in_progress < MAX_IN_PROGRESS then
      s.in_progress[#s.in_progress + 1] = { name = t.DeviceName, progress = t.Progress }
    end
  elseif st == "FAILED" then
    s.failed = s.failed + 1
    local desc = printable(t.TaskDesc)
    if desc:match("^%s*$") then desc = "(no description)" end
    if s.failures[desc] then
      s.failures[desc] = s.failures[desc] + 1
    elseif s.groups < MAX_GROUPS then
      s.failures[desc] = 1
      s.groups = s.groups + 1
    else
      s.other_failures = s.other_failures + 1
    end
  end
end

--- List the job once and count it. Raises the library's error object.
function summary.collect(client, job, ctx)
  local s = { job = job, total = 0, counts = {}, extra_statuses = {},
              in_progress = {}, in_progress_n = 0,
              failures = {}, groups = 0, other_failures = 0, failed = 0 }
  for _, st in ipairs(STATUSES) do s.counts[st] = 0 end
  listing.each_page(client, job, ctx, nil, nil, function(tasks)
    for _, t in ipairs(tasks) do add_task(s, t) end
  end)
  s.final = 0
  for st in pairs(FINAL) do s.final = s.final + (s.counts[st] or 0) end
  return s
end

local BAR_WIDTH = 40
local EIGHTHS = { "▏", "▎", "▍", "▌", "▋", "▊", "▉" }

--- A horizontal bar of `fraction` (0..1) over `cells` columns, padded with
-- `track`. Unicode bars have eighth-of-a-cell resolution; a non-zero value
-- always shows at least a sliver.
function summary.bar(fraction, cells, unicode, track)
  fraction = min(1, max(0, fraction))
  if unicode then
    local eighths = floor(fraction * cells * 8 + 0.5)
    if eighths == 0 and fraction > 0 then eighths = 1 end
    local full, part = floor(eighths / 8), eighths % 8
    local s = rep("█", full) .. (part > 0 and EIGHTHS[part] or "")
    local used = full + (part > 0 and 1 or 0)
    return s .. rep(track or " ", cells - used)
  end
  local n = floor(fraction * cells + 0.5)
  if n == 0 and fraction > 0 then n = 1 end
  return rep("#", n) .. rep(track or " ", cells - n)
end
local bar = summary.bar

local function percent(n, total)
  if total == 0 then return 0 end
  return 100 * n / total
end

--- The summary drawn as a list of lines (no line ends). ctx.unicode picks
-- block bars, ctx.ellipsis the end of cut text.
function summary.render(s, ctx)
  local u = ctx.unicode
  local lines = {}
  local function add(...) lines[#lines + 1] = concat({ ... }) end
  if s.total == 0 then
    add(format("Job %s: no tasks", printable(s.job)))
  else
    add(format("Job %s: %d tasks, %d final (%.1f%%), %d not final", printable(s.job), s.total, s.final,
               percent(s.final, s.total), s.total - s.final))
  end
  add("")
  local order = {}
  for _, st in ipairs(STATUSES) do order[#order + 1] = st end
  for _, st in ipairs(s.extra_statuses) do order[#order + 1] = st end
  local count_w = #tostring(s.total)
  for _, st in ipairs(order) do
    local n = s.counts[st]
    add("  ", cell(printable(st), 11, false, ctx.ellipsis), "  ",
        bar(s.total > 0 and n / s.total or 0, BAR_WIDTH, u),
        "  ", format("%" .. count_w .. "d  %5.1f%%", n, percent(n, s.total)))
  end
  if s.in_progress_n > 0 then
    add("")
    add(format("In progress (%d):", s.in_progress_n))
    for _, t in ipairs(s.in_progress) do
      local p = tonumber(t.progress) or 0
      add("  ", cell(printable(t.name), 32, false, ctx.ellipsis), "  ",
          u and bar(p / 100, 20, true, "░") or ("[" .. bar(p / 100, 20, false, ".") .. "]"),
          format("  %6.2f%%", p))
    end
    if s.in_progress_n > #s.in_progress then
      add(format("  %s and %d more", u and "…" or "...", s.in_progress_n - #s.in_progress))
    end
  end
  if s.failed > 0 then
    add("")
    add(format("Failures by description (%d):", s.failed))
    local groups = {}
    for desc, n in pairs(s.failures) do groups[#groups + 1] = { desc = desc, n = n } end
    sort(groups, function(a, b)
      if a.n ~= b.n then return a.n > b.n end
      return a.desc < b.desc
    end)
    local n_w = #tostring(s.failed)
    for i = 1, min(#groups, MAX_GROUPS_SHOWN) do
      add(format("  %" .. n_w .. "d  ", groups[i].n), (fit(groups[i].desc, 72, ctx.ellipsis)))
    end
    local rest_groups, rest = #groups - MAX_GROUPS_SHOWN, s.other_failures
    for i = MAX_GROUPS_SHOWN + 1, #groups do rest = rest + groups[i].n end
    if rest > 0 then
      add(format("  %" .. n_w .. "d  (%s)", rest, rest_groups > 0 and
                 format("%d other descriptions", max(rest_groups, 1)) or "other descriptions"))
    end
  end
  return lines
end

--- The command: list the job once and write its summary. Returns 0.
function summary.run(client, args, ctx)
  local s = summary.collect(client, args.job_id, ctx)
  ctx.out(concat(summary.render(s, ctx), "\n"), "\n")
  return 0
end

return summary
