--- aliyun-ota: the progress line of a listing on stderr: the part of the
-- listing, pages, tasks so far of Total, rate, ETA
-- ("[FAILED 1/2] · page 12 · 1200/3000 tasks · 1000/s · ETA 2s"); past the
-- service's paging cap, the device phase
-- ("by device · 120000/165000 devices · 3100/4600 calls · 161250 tasks · ETA 9s").
-- Drawn only when enabled (stderr is a terminal), in place with "\r" and
-- erase-line, and erased (clear()) before anything else is written to the
-- terminal.
--
--   local p = progress.new{ enabled = true, sep = " · ", stderr = io.stderr, stdout = io.stdout }
--   p.part(label, known_total); p.page(page, more); p.clear()

local concat, insert, format = table.concat, table.insert, string.format
local floor, max = math.floor, math.max
local time, difftime = os.time, os.difftime

local progress = {}

--- Seconds as "42s", "3m07s" or "2h05m".
function progress.duration(seconds)
  seconds = floor(seconds + 0.5)
  if seconds < 60 then return seconds .. "s" end
  if seconds < 3600 then return format("%dm%02ds", floor(seconds / 60), seconds % 60) end
  return format("%dh%02dm", floor(seconds / 3600), floor(seconds % 3600 / 60))
end
local duration = progress.duration

--- A progress line. opts: enabled (draw at all), sep (between items),
-- stderr (drawn on), stdout (flushed first, so rows and the line do not mix),
-- clock (epoch seconds; default os.time).
function progress.new(opts)
  local stderr, stdout, clock = opts.stderr, opts.stdout, opts.clock or time
  local enabled, sep = opts.enabled, opts.sep or ", "
  local p = { shown = false, pages = 0, done = 0, total = nil, started = clock(), label = nil }

  function p.clear()
    if p.shown then stderr:write("\r\27[K"); p.shown = false end
  end

  --- A new part of the listing (one TaskStatus of several): its label, and
  -- whether the service's Total can be trusted for it.
  function p.part(label, known_total)
    p.label, p.known_total = label, known_total
  end

  --- The library's on_progress report (the phase of the listing).
  function p.progress(info) p.info = info end

  -- The line in the device phase, from the library's report.
  local function device_phase(info)
    local parts = { "by device" }
    if info.product_devices then
      parts[#parts + 1] = format("%d/%d devices", info.devices_enumerated, info.product_devices)
    end
    local calls = info.calls.pages + info.calls.chunks + info.calls.QueryDevice
    parts[#parts + 1] = info.expected_calls and format("%d/%d calls", calls, info.calls.pages + info.expected_calls)
                        or format("%d calls", calls)
    parts[#parts + 1] = format("%d tasks", p.done)
    if info.eta then parts[#parts + 1] = "ETA " .. duration(info.eta) end
    return parts
  end

  --- Account for one page; `more` says whether another page will follow.
  function p.page(page, more)
    p.pages = p.pages + 1
    if page.CurrentPage == 1 or p.total == nil then
      -- A new walk (a part, or a TaskStatus the pager split a deep job into):
      -- its Total counts from what was listed before it.
      p.segment_base = p.done
    end
    p.done = p.done + #page.tasks
    if p.known_total ~= false and type(page.Total) == "number" then
      p.total = (p.segment_base or 0) + page.Total
    else
      p.total = false
    end
    if not enabled or not more then return end
    if p.info and p.info.phase == "devices" then
      stdout:flush()
      stderr:write("\r\27[K", concat(device_phase(p.info), sep))
      p.shown = true
      return
    end
    local parts = { format("page %d", p.pages) }
    if p.label then insert(parts, 1, p.label) end
    parts[#parts + 1] = p.total and format("%d/%d tasks", p.done, max(p.total, p.done))
                        or format("%d tasks", p.done)
    local elapsed = difftime(clock(), p.started)
    if elapsed >= 1 then
      local rate = p.done / elapsed
      parts[#parts + 1] = format("%.0f/s", rate)
      if p.total and rate > 0 then
        parts[#parts + 1] = "ETA " .. duration(max(0, p.total - p.done) / rate)
      end
    end
    stdout:flush()
    stderr:write("\r\27[K", concat(parts, sep))
    p.shown = true
  end

  return p
end

return progress
