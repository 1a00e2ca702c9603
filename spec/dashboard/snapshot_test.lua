-- The dashboard's snapshot builder (examples/openresty/ota_dashboard/snapshot.lua), in
-- plain Lua against the emulator's own job formulas (spec/emulator/jobs.lua).
-- Named *_test, not *_spec, so that the library's busted suites leave it alone;
-- scripts/dashboard-suite runs it: busted --pattern=_test spec/dashboard
package.path = "./examples/openresty/?.lua;" .. package.path
local snapshot = require("ota_dashboard.snapshot")
local jobs = dofile("spec/emulator/jobs.lua")

local function build(job_id, limits)
  local job = assert(jobs.parse(job_id))
  local b = snapshot.builder(job_id, limits)
  for i = 1, job.size do b:add(jobs.task(job, i)) end
  return b:finish(100.25, 101.5), job
end

local function by_status(snap)
  local t = {}
  for _, s in ipairs(snap.statuses) do t[s.status] = s end
  return t
end

describe("dashboard snapshot", function()
  it("counts every status of job-1000 exactly, with percentages", function()
    local snap, job = build("job-1000")
    assert.are.equal(1000, snap.total)
    local got = by_status(snap)
    for _, s in ipairs(jobs.STATUSES) do
      assert.are.equal(jobs.count(job, s), got[s].count, s)
      assert.are.equal(jobs.count(job, s) / 10, got[s].percent, s)
    end
    assert.are.equal(60, snap.percent_done) -- SUCCEEDED 400 + FAILED 150 + CANCELED 50
    assert.are.equal(1.25, snap.duration)
    assert.are.equal(101.5, snap.taken_at)
  end)

  it("lists the statuses in lifecycle order, zeros included, unknown ones after", function()
    local snap = build("job-40-with-PAUSED")
    local names = {}
    for i, s in ipairs(snap.statuses) do names[i] = s.status end
    assert.are.same({ "QUEUED", "NOTIFIED", "CONFIRM", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED", "PAUSED" },
      names)
    assert.are.equal(2, by_status(snap).PAUSED.count)
    local empty = build("job-0")
    assert.are.equal(0, empty.total)
    assert.are.equal(0, empty.percent_done)
    assert.are.equal(7, #empty.statuses)
  end)

  it("groups the failures by TaskDesc, most frequent first, device names in listing order", function()
    local snap, job = build("job-1000")
    local expected, order = {}, {}
    for i = 1, job.size do
      local t = jobs.task(job, i)
      if t.TaskStatus == "FAILED" then
        if not expected[t.TaskDesc] then
          expected[t.TaskDesc] = { count = 0, devices = {} }
          order[#order + 1] = t.TaskDesc
        end
        local g = expected[t.TaskDesc]
        g.count = g.count + 1
        if #g.devices < 20 then g.devices[#g.devices + 1] = t.DeviceName end
      end
    end
    assert.are.equal(150, snap.failed.total)
    assert.are.equal(#order, #snap.failed.groups)
    for k, g in ipairs(snap.failed.groups) do
      assert.are.same(expected[g.desc].devices, g.devices)
      assert.are.equal(expected[g.desc].count, g.count)
      assert.are.equal(g.count - #g.devices, g.more)
      if k > 1 then assert.is_true(snap.failed.groups[k - 1].count >= g.count) end
    end
    assert.is_truthy(expected["下载失败：固件校验错误"])
  end)

  it("keeps the first max_in_progress tasks in progress, with their progress as a number", function()
    local snap, job = build("job-1000", { max_in_progress = 5 })
    assert.are.equal(jobs.count(job, "IN_PROGRESS"), snap.in_progress.total)
    assert.are.equal(5, #snap.in_progress.tasks)
    local first = jobs.task(job, jobs.kth(job, "IN_PROGRESS", 1))
    assert.are.equal(first.DeviceName, snap.in_progress.tasks[1].DeviceName)
    assert.are.equal(tonumber(first.Progress), snap.in_progress.tasks[1].Progress)
  end)

  it("stays bounded: groups, names per group, distinct reasons, cut strings", function()
    local b = snapshot.builder("j", { max_groups = 3, max_group_devices = 2, max_distinct_descs = 10 })
    for i = 1, 100 do
      b:add{ TaskStatus = "FAILED", TaskDesc = "reason " .. (i % 20), DeviceName = "d" .. i }
    end
    local snap = b:finish(0, 0)
    assert.are.equal(100, snap.failed.total)
    assert.are.equal(3, #snap.failed.groups)
    -- 10 reasons counted apart, the 10 later ones in one group of their own (50 tasks).
    assert.are.equal(snapshot.OTHER_DESCS, snap.failed.groups[1].desc)
    assert.are.equal(50, snap.failed.groups[1].count)
    assert.are.equal(2, #snap.failed.groups[1].devices)
    local kept = 0
    for _, g in ipairs(snap.failed.groups) do kept = kept + g.count end
    assert.are.equal(100, kept + snap.failed.other_count)
    assert.are.equal(8, snap.failed.other_groups)
  end)

  it("cuts long text at a UTF-8 character boundary", function()
    local s = string.rep("下载失败", 30) -- 360 bytes, 3 per character
    local cut = snapshot.truncate(s, 200)
    assert.is_true(#cut <= 200)
    assert.are.equal("\226\128\166", cut:sub(-3))
    assert.are.equal(0, (#cut - 3) % 3)
    assert.are.equal(s:sub(1, #cut - 3), cut:sub(1, -4))
    assert.are.equal("short", snapshot.truncate("short", 200))
    assert.are.equal("", snapshot.truncate(nil, 10))
  end)

  it("names an empty TaskDesc", function()
    local b = snapshot.builder("j")
    b:add{ TaskStatus = "FAILED", TaskDesc = "", DeviceName = "a" }
    b:add{ TaskStatus = "FAILED", DeviceName = "b" }
    local snap = b:finish(0, 0)
    assert.are.equal(snapshot.NO_DESC, snap.failed.groups[1].desc)
    assert.are.equal(2, snap.failed.groups[1].count)
  end)
end)
