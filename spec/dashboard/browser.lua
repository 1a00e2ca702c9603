-- The dashboard in a real browser: headless Chromium, driven over the DevTools protocol
-- (spec/dashboard/cdp.lua), checks the DOM against the emulator's own job formulas
-- (spec/emulator/jobs.lua), the refresh after ReupgradeOTATask, the error states, the
-- phone and desktop layouts (screenshots into the artifacts dir), and that markup in
-- TaskDesc / DeviceName / TaskStatus stays text.
--
--   lua5.4 spec/dashboard/browser.lua DEVTOOLS_PORT DASHBOARD_URL EMULATOR_URL ARTIFACTS HOSTILE_URL INTERVAL
--
-- Run from the checkout's root by spec/dashboard/run, which starts everything and counts
-- the "ok" / "FAIL" lines; the last line is "browser: N passed, N failed".
package.path = "./spec/dashboard/?.lua;./lua/?.lua;./lua/?/init.lua;./spec/?.lua;" .. package.path
package.cpath = "./" .. (os.getenv("BUILD_DIR") or "build") .. "/?.so;" .. package.cpath
local cdp = require("cdp")
local cjson = require("cjson.safe")
local socket = require("socket")
local helpers = require("helpers")
local jobs = helpers.jobs

local PORT, BASE, EMU, ARTIFACTS, HOSTILE = tonumber(arg[1]), arg[2], arg[3], arg[4], arg[5]
local INTERVAL = tonumber(arg[6]) or 2
local floor, format = math.floor, string.format

local passed, failed = 0, 0
local function check(name, cond, detail)
  if cond then
    passed = passed + 1
    print("ok   - " .. name)
  else
    failed = failed + 1
    print("FAIL - " .. name)
    if detail ~= nil then print("       " .. tostring(detail):gsub("\n", "\n       "):sub(1, 1500)) end
  end
  io.stdout:flush()
  return cond
end

local function faults(config)
  os.execute(format("curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary '%s' %s",
    cjson.encode(config), EMU .. "/__emulator/faults"))
end

local function js(v) return cjson.encode(v) end

-- What the dashboard of `job_id` must show, from the job's formulas, with `overrides`
-- (task index -> status) for the tasks a test changed.
local function expected(job_id, overrides)
  local job = assert(jobs.parse(job_id))
  local e = { total = job.size, counts = {}, groups = {}, order = {}, in_progress = {}, in_progress_total = 0 }
  for _, s in ipairs(jobs.STATUSES) do e.counts[s] = 0 end
  for i = 1, job.size do
    local t = jobs.task(job, i)
    local status = overrides and overrides[i] or t.TaskStatus
    e.counts[status] = (e.counts[status] or 0) + 1
    if status == "FAILED" then
      local g = e.groups[t.TaskDesc]
      if not g then
        g = { count = 0, devices = {} }
        e.groups[t.TaskDesc] = g
        e.order[#e.order + 1] = t.TaskDesc
      end
      g.count = g.count + 1
      if #g.devices < 20 then g.devices[#g.devices + 1] = t.DeviceName end
    elseif status == "IN_PROGRESS" then
      e.in_progress_total = e.in_progress_total + 1
      if #e.in_progress < 50 then e.in_progress[#e.in_progress + 1] = t end
    end
  end
  return e
end

local function pct_text(n, total)
  local p = floor(n * 10000 / total + 0.5) / 100
  return format("%.1f%%", floor(p * 10 + 0.5) / 10)
end

local function digits(s) return tonumber((tostring(s or ""):gsub("[^%d]", ""))) end

local READ_STATUSES = [=[(() => { const o = {};
  document.querySelectorAll('#statuses li.status').forEach(li => { o[li.dataset.status] = {
    count: li.querySelector('.count').textContent, percent: li.querySelector('.percent').textContent,
    data: li.dataset.count, name: li.querySelector('.name').textContent } });
  return o; })()]=]

local READ_GROUPS = [=[[...document.querySelectorAll('#failure-groups details.group')].map(d => ({
  desc: d.querySelector('.desc').textContent, count: d.querySelector('.count').textContent, open: d.open,
  devices: [...d.querySelectorAll('li.device')].map(li => li.textContent),
  visible: [...d.querySelectorAll('li.device')].some(li => li.checkVisibility()),
  more: d.querySelector('.more') ? d.querySelector('.more').textContent : '' }))]=]

local READ_IN_PROGRESS = [=[[...document.querySelectorAll('#in-progress-rows tr.task')].map(tr => ({
  device: tr.querySelector('.device').textContent, progress: tr.querySelector('.progress-value').textContent,
  bar: tr.querySelector('progress').value }))]=]

-- The DOM's statuses against `e`.
local function check_counts(page, label, e)
  local got = page:eval(READ_STATUSES) or {}
  local bad = {}
  for _, s in ipairs(jobs.STATUSES) do
    local g = got[s]
    if not g or digits(g.count) ~= e.counts[s] or tonumber(g.data) ~= e.counts[s]
        or g.percent ~= pct_text(e.counts[s], e.total) then
      bad[#bad + 1] = format("%s: shows %s (%s), want %d (%s)", s, g and g.count or "nothing",
        g and g.percent or "-", e.counts[s], pct_text(e.counts[s], e.total))
    end
  end
  check(label .. ": every status count and percentage equals the emulator's job", #bad == 0, table.concat(bad, "\n"))
  check(label .. ": the total", digits(page:eval("document.getElementById('total').textContent")) == e.total)
end

local function check_groups(page, label, e)
  local got = page:eval(READ_GROUPS) or {}
  local bad = {}
  if #got ~= #e.order then bad[#bad + 1] = format("%d groups shown, want %d", #got, #e.order) end
  local sum = 0
  for k, g in ipairs(got) do
    local want = e.groups[g.desc]
    sum = sum + (digits(g.count) or 0)
    if not want then
      bad[#bad + 1] = "unexpected group " .. g.desc
    elseif digits(g.count) ~= want.count then
      bad[#bad + 1] = format("%s: %s, want %d", g.desc, g.count, want.count)
    end
    if k > 1 and (digits(got[k - 1].count) or 0) < (digits(g.count) or 0) then
      bad[#bad + 1] = "not most frequent first at " .. k
    end
  end
  check(label .. ": the failures grouped by TaskDesc, counts exact, most frequent first", #bad == 0,
    table.concat(bad, "\n") .. "\n" .. js(got):sub(1, 600))
  return got
end

local function screenshot(page, file, full)
  local params = { format = "png" }
  if full then
    local size = page:eval("[Math.max(innerWidth, document.documentElement.scrollWidth), " ..
      "document.documentElement.scrollHeight]")
    params.captureBeyondViewport = true
    params.clip = { x = 0, y = 0, width = size[1], height = size[2], scale = 1 }
  end
  local r = page:call("Page.captureScreenshot", params)
  local tmp = file .. ".b64"
  local f = assert(io.open(tmp, "wb"))
  f:write(r.data)
  f:close()
  local ok = os.execute(format("base64 -d '%s' > '%s' && rm -f '%s'", tmp, file, tmp))
  return ok and file
end

local function png_size(file)
  local f = io.open(file, "rb")
  if not f then return nil end
  local head = f:read(24)
  f:close()
  if not head or head:sub(2, 4) ~= "PNG" then return nil end
  local function u32(i) local a, b, c, d = head:byte(i, i + 3) return ((a * 256 + b) * 256 + c) * 256 + d end
  return u32(17), u32(21)
end

local function viewport(page, width, height, mobile)
  page:call("Emulation.setDeviceMetricsOverride", {
    width = width, height = height, deviceScaleFactor = 1, mobile = mobile, screenWidth = width, screenHeight = height,
  })
end

local page = cdp.open_page(PORT)
page:call("Runtime.enable")
page:call("Log.enable")
viewport(page, 1280, 900, false)

-- ---- the first snapshot: "listing..." while it is built, then the job ----
faults{ latency_ms = 400 }
local JOB = "job-1000"
page:navigate(BASE .. "/ota/" .. JOB .. "/", 10)
local listing_text = page:wait_for([=[document.body.dataset.state === 'listing' &&
  document.getElementById('state').textContent.startsWith('Listing') &&
  document.getElementById('state').textContent]=], 5)
check("a new job's page says it is listing while the first snapshot is built", listing_text, listing_text)
local ready = page:wait_for("document.body.dataset.state === 'ready'", 20)
faults{}
check("... then shows the snapshot, without a reload", ready,
  page:eval("document.body.dataset.state + ': ' + document.getElementById('state').textContent"))

local e = expected(JOB)
check_counts(page, JOB, e)
check(JOB .. ": percent done (SUCCEEDED + FAILED + CANCELED)",
  page:eval("document.getElementById('done').textContent") == "60.0%")
local groups = check_groups(page, JOB, e)
local first = groups[1] or {}
check(JOB .. ": the device names stay behind a click (<details> closed, names not rendered)",
  first.open == false and first.visible == false and #(first.devices or {}) == 20, js(first):sub(1, 300))
page:eval("document.querySelector('#failure-groups details.group summary').click()")
local opened = (page:eval(READ_GROUPS) or {})[1] or {}
local want_group = e.groups[opened.desc or ""] or { devices = {}, count = 0 }
check(JOB .. ": a click shows the group's first 20 device names, in listing order, and how many more",
  opened.open == true and opened.visible == true and js(opened.devices) == js(want_group.devices)
    and opened.more == format("and %d more devices", want_group.count - 20),
  js(opened):sub(1, 400) .. "\nwant " .. js(want_group.devices))
local chinese = false
for _, g in ipairs(groups) do if g.desc == "下载失败：固件校验错误" then chinese = true end end
check("Chinese TaskDesc renders as sent (UTF-8 end to end; document.characterSet " ..
  tostring(page:eval("document.characterSet")) .. ")", chinese and page:eval("document.characterSet") == "UTF-8")

local rows = page:eval(READ_IN_PROGRESS) or {}
local first_ip = e.in_progress[1]
check(JOB .. ": the first 50 of 150 tasks in progress, with their progress",
  #rows == 50 and rows[1].device == first_ip.DeviceName
    and rows[1].progress == format("%.2f%%", tonumber(first_ip.Progress))
    and math.abs(rows[1].bar - tonumber(first_ip.Progress)) < 0.01
    and page:eval("document.getElementById('in-progress-sub').textContent") == "the first 50 of 150",
  js(rows[1]) .. " want " .. first_ip.DeviceName .. " " .. first_ip.Progress)
local meta = page:eval([=[[document.getElementById('taken-at').textContent,
  document.getElementById('duration').textContent,
  document.getElementById('interval').textContent, document.getElementById('age').textContent]]=]) or {}
check("the snapshot's time, the listing's duration and the interval are shown",
  (meta[1] or ""):match("^%d%d%d%d%-%d%d%-%d%d %d%d:%d%d:%d%d UTC[+-]%d%d:%d%d$")
    and ((meta[2] or ""):match("^%d+ ms$") or (meta[2] or ""):match("^%d+%.%d%d s$"))
    and meta[3] == INTERVAL .. " s" and (meta[4] or ""):match("ago%)$"),
  js(meta))

-- ---- the page refreshes itself after the emulator's tasks change ----
page:eval("window.__same_page = 1")
local taken_before = page:eval("document.body.dataset.takenAt")
local job = jobs.parse(JOB)
local ids, overrides = {}, {}
for k = 1, 10 do
  local i = jobs.kth(job, "FAILED", k)
  ids[k] = format("%s-T%07d", JOB, i)
  overrides[i] = "QUEUED"
end
local client = helpers.client({ url = EMU })
local res, err = client:call("ReupgradeOTATask", { JobId = JOB, TaskId = ids })
check("ReupgradeOTATask of 10 FAILED tasks (through the project's client)", res and res.Success == true, tostring(err))
local t0 = socket.gettime()
local refreshed = page:wait_for([=[(() => { const li = document.querySelector('#statuses [data-status=FAILED]');
  return li && li.dataset.count === '140'; })()]=], 3 * INTERVAL + 5)
local waited = socket.gettime() - t0
check(format("the open page shows the change by itself, %.1f s later (interval %d s), same page",
  waited, INTERVAL), refreshed and page:eval("window.__same_page") == 1
    and page:eval("document.body.dataset.takenAt") ~= taken_before)
local e2 = expected(JOB, overrides)
check_counts(page, JOB .. " after ReupgradeOTATask", e2)
check_groups(page, JOB .. " after ReupgradeOTATask", e2)

-- ---- a later listing fails: the error over the older numbers ----
faults{ redirect_every = 1 }
local stale = page:wait_for([=[document.body.dataset.state === 'stale' && !document.getElementById('error').hidden &&
  document.getElementById('error-code').textContent]=], 3 * INTERVAL + 5)
faults{}
check("a failed refresh shows its error (code " .. tostring(stale) .. ") over the last good numbers",
  stale and stale ~= "" and not page:eval("document.getElementById('overview').hidden")
    and page:eval("document.querySelector('#statuses [data-status=FAILED]').dataset.count") == "140",
  page:eval("document.getElementById('error').textContent"))
check("... and the error goes away with the next good listing",
  page:wait_for("document.body.dataset.state === 'ready' && document.getElementById('error').hidden", 3 * INTERVAL + 5))

-- ---- a listing that fails from the start: code, message, RequestId ----
page:navigate(BASE .. "/ota/no-such-job/", 10)
local shown = page:wait_for([=[document.body.dataset.state === 'error' && [
  document.getElementById('error-code').textContent, document.getElementById('error-message').textContent,
  document.getElementById('error-request-id').textContent]]=], 10) or {}
check("an unknown job: the error's code, message and RequestId, no numbers",
  shown[1] == "iot.ota.OtaJobNotExist" and #(shown[2] or "") > 0
    and (shown[3] or ""):match("^%x+%-%x+%-%x+%-%x+%-%x+$")
    and page:eval("document.getElementById('overview').hidden"), js(shown))

-- ---- phone width and desktop width: screenshots to look at ----
viewport(page, 390, 844, true)
page:navigate(BASE .. "/ota/demo-job/", 10)
page:wait_for("document.body.dataset.state === 'ready'", 15)
page:eval("document.querySelector('#failure-groups details.group summary').click()")
socket.sleep(0.3)
local fit = page:eval([=[(() => { const w = window.innerWidth; const over = [...document.querySelectorAll('body *')]
  .filter(n => n.checkVisibility() && n.getBoundingClientRect().right > w + 0.5)
  .map(n => n.tagName + '.' + n.className);
  return { w: w, scroll: document.documentElement.scrollWidth, over: over.slice(0, 5) }; })()]=]) or {}
check(format("phone width (390 px): nothing wider than the screen (scrollWidth %s)", tostring(fit.scroll)),
  fit.w == 390 and fit.scroll <= 390 and #(fit.over or {}) == 0, js(fit))
local phone = screenshot(page, ARTIFACTS .. "/phone-390.png", false)
local phone_full = screenshot(page, ARTIFACTS .. "/phone-390-full.png", true)
local pw, ph = png_size(phone or "")
check("phone screenshot " .. tostring(phone) .. " (" .. tostring(pw) .. "x" .. tostring(ph) .. ")",
  pw == 390 and ph == 844 and png_size(phone_full or ""))

viewport(page, 1280, 900, false)
page:navigate(BASE .. "/ota/" .. JOB .. "/", 10)
page:wait_for("document.body.dataset.state === 'ready'", 15)
page:eval("document.querySelector('#failure-groups details.group summary').click()")
socket.sleep(0.3)
local desktop = screenshot(page, ARTIFACTS .. "/desktop-1280.png", true)
local dw = png_size(desktop or "")
check("desktop screenshot " .. tostring(desktop) .. " (" .. tostring(dw) .. " px wide)", dw == 1280)

-- ---- markup from the API stays text ----
page:navigate(HOSTILE .. "/ota/xss-job/", 10)
page:wait_for("document.body.dataset.state === 'ready'", 15)
page:eval("document.querySelectorAll('#failure-groups details.group summary').forEach(s => s.click())")
socket.sleep(1)
local hostile = cjson.decode(io.open("spec/dashboard/hostile.json"):read("a")).Data.SimpleOTATaskInfo
local dom = page:eval([=[({ xss: typeof window.__xss,
  elements: document.querySelectorAll('main img, main svg, main b, main i, main script').length,
  scripts: document.scripts.length,
  desc: (document.querySelector('#failure-groups .desc') || {}).textContent,
  failed_device: (document.querySelector('#failure-groups li.device') || {}).textContent,
  ip_device: (document.querySelector('#in-progress-rows .device') || {}).textContent,
  statuses: [...document.querySelectorAll('#statuses .name')].map(n => n.textContent) })]=]) or {}
local has_status = false
for _, s in ipairs(dom.statuses or {}) do if s == hostile[3].TaskStatus then has_status = true end end
check("markup in TaskDesc, DeviceName and TaskStatus is shown as text, never run or parsed",
  dom.xss == "undefined" and dom.elements == 0 and dom.scripts == 1 and dom.desc == hostile[1].TaskDesc
    and dom.failed_device == hostile[1].DeviceName and dom.ip_device == hostile[2].DeviceName and has_status,
  js(dom))
screenshot(page, ARTIFACTS .. "/hostile-1280.png", true)

-- ---- nothing went wrong in the page itself ----
page:call("Runtime.evaluate", { expression = "1" }) -- collect the last events
local problems = {}
for _, ev in ipairs(page.events) do
  if ev.method == "Runtime.exceptionThrown" then
    problems[#problems + 1] = "exception: " .. js(ev.params.exceptionDetails):sub(1, 300)
  elseif ev.method == "Runtime.consoleAPICalled" and (ev.params.type == "error" or ev.params.type == "warning") then
    problems[#problems + 1] = "console." .. ev.params.type .. ": " .. js(ev.params.args):sub(1, 300)
  elseif ev.method == "Log.entryAdded" and ev.params.entry.level == "error" then
    problems[#problems + 1] = "log: " .. tostring(ev.params.entry.text) .. " " .. tostring(ev.params.entry.url)
  end
end
check("no script error, console error or blocked resource (CSP) in the page", #problems == 0,
  table.concat(problems, "\n"))

page:close()
print(format("browser: %d passed, %d failed", passed, failed))
os.exit(failed == 0 and 0 or 1)
