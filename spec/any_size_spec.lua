-- Any job, any size: listings past the service's 100,000-task paging cap,
-- through DeviceNames chunks of the devices paging did not reach (from the
-- job's product, or from the caller), each action within its own QPS budget.
local helpers = require("helpers")
local jobs = helpers.jobs

local MIX_1M = "job-1000000-mix-SUCCEEDED:600000,IN_PROGRESS:200000,FAILED:100000,QUEUED:100000"

-- Lists `job` through `client`, asserting every task exactly once; returns
-- the count per status and the last on_progress report.
local function list_all(client, job, extra)
  local p = { JobId = job }
  for k, v in pairs(extra or {}) do p[k] = v end
  local last, phases = nil, {}
  p.on_progress = function(info)
    last = info
    phases[info.phase] = true
  end
  local seen, by_status, n = {}, {}, 0
  for task in client:tasks(p) do
    assert(not seen[task.TaskId], "yielded twice: " .. task.TaskId)
    seen[task.TaskId] = true
    n = n + 1
    by_status[task.TaskStatus] = (by_status[task.TaskStatus] or 0) + 1
  end
  return n, by_status, last, phases, seen
end

local function counts(emu)
  local cjson = require("cjson.safe")
  return cjson.decode(emu:control("GET", "counts"))
end

describe("any size", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  it("lists a status part past the cap by device: every task once, extra devices counted #slow #big", function()
    local n, by_status, info, phases = list_all(client, "job-150000-QUEUED")
    assert.are.equal(150000, n)
    assert.are.same({ QUEUED = 150000 }, by_status)
    assert.is_true(phases.paging and phases.devices and phases.done)
    -- 1,000 pages reach the cap; the product's 165,000 devices are enumerated
    -- 50 a call; the 50,000 tasks paging missed and the 15,000 devices not in
    -- the job are asked for 50 names a call.
    assert.are.equal(1000, info.calls.pages)
    assert.are.equal(165000, info.devices_enumerated)
    assert.are.equal(15000, info.devices_without_task)
    assert.are.equal(math.ceil(165000 / 50), info.calls.QueryDevice)
    assert.are.equal(math.ceil(65000 / 50), info.calls.chunks)
    -- Only the devices of the tasks paging saw are kept: the product's
    -- enumeration names each device once, so the chunks' devices are not.
    assert.are.equal("done", info.phase)
    assert.are.equal(100000, info.devices_remembered)
    for _, e in ipairs(emu:log()) do
      assert.are.equal("OK", e.code)
      if e.action == "ListOTATaskByJob" then
        assert.truthy(tonumber(e.params.PageSize or 10) * tonumber(e.params.CurrentPage or 1) <= 100000)
      end
    end
  end)

  it("takes the caller's device_names, a list or an iterator, where QueryDevice is not allowed #slow #big", function()
    emu:faults{ deny_QueryDevice = 1, log = 0 }
    local job = "job-120000-QUEUED"
    local names = {}
    for i = 1, 120000 do names[i] = jobs.task(job, i).DeviceName end
    names[#names + 1] = "not-a-device-of-the-job"
    local n, _, info = list_all(client, job, { device_names = names })
    assert.are.equal(120000, n)
    assert.are.equal(1, info.devices_without_task)
    -- A caller's list may repeat a name: its chunks' devices are kept too.
    assert.are.equal(120000, info.devices_remembered)
    local i = 0
    n = list_all(client, job, { device_names = function() i = i + 1 return names[i] end })
    assert.are.equal(120000, n)
  end)

  it("finds by device the tasks in a status the client does not know #slow #big", function()
    emu:faults{ log = 0 }
    local n, by_status = list_all(client, "job-100020-with-SCHEDULED")
    assert.are.equal(100020, n)
    assert.are.equal(5001, by_status.SCHEDULED)
  end)

  it("lists a 1,000,000-task job (600,000 SUCCEEDED, 200,000 IN_PROGRESS) exactly once #slow #big", function()
    emu:faults{ log = 0 }
    local n, by_status, info = list_all(client, MIX_1M)
    assert.are.equal(1000000, n)
    assert.are.same({ SUCCEEDED = 600000, IN_PROGRESS = 200000, FAILED = 100000, QUEUED = 100000 }, by_status)
    -- Paging reaches 100,000 tasks of each status; the devices it did not see
    -- (600,000 with a task, and the product's 100,000 without one) come 50 a call.
    assert.are.equal(4000, info.calls.pages)
    assert.are.equal(math.ceil((1100000 - 400000) / 50), info.calls.chunks)
    assert.are.equal(1100000, info.devices_enumerated)
    local c = counts(emu)
    assert.are.equal(0, c.ListOTATaskByJob.throttled or 0)
  end)

  it("holds each action at its own bound with the real limits on (cap lowered to 2,000) #slow #realtime", function()
    emu:faults{ qps_per_action = 1, depth_cap = 2000 }
    -- rate_limit = {}: every action at its documented rate (the defaults).
    local limited = helpers.client(emu, { rate_limit = {}, paging_depth_cap = 2000, max_retries = 3 })
    local job = "job-10000-mix-SUCCEEDED:6000,IN_PROGRESS:2000,FAILED:1000,QUEUED:1000"
    local t0 = os.time()
    local n, by_status, info = list_all(limited, job)
    local elapsed = os.time() - t0
    limited:close()
    assert.are.equal(10000, n)
    assert.are.same({ SUCCEEDED = 6000, IN_PROGRESS = 2000, FAILED = 1000, QUEUED = 1000 }, by_status)
    local c = counts(emu)
    for action, bound in pairs({ ListOTATaskByJob = 10, QueryDevice = 50, QueryOTAJob = 10 }) do
      local a = c[action]
      assert.is_table(a, action)
      assert.are.equal(0, a.throttled or 0, action .. " was throttled")
      assert.truthy(a.max_per_second <= bound, action .. ": " .. a.max_per_second .. " in one second")
    end
    -- The formula: (devices not seen by paging) / 500 s for the chunks, at 10 QPS.
    local unseen = 11000 - (2000 + 2000 + 1000 + 1000)
    assert.are.equal(math.ceil(unseen / 50), info.calls.chunks)
    assert.truthy(elapsed >= unseen / 500, "faster than the quota allows: " .. elapsed .. " s")
  end)

  it("refuses bad device_names and on_progress before any request", function()
    for _, bad in ipairs({ { device_names = "dev1" }, { device_names = { "a", "" } }, { on_progress = 1 } }) do
      local p = { JobId = "job-10" }
      for k, v in pairs(bad) do p[k] = v end
      local ok, err = pcall(client.tasks, client, p)
      assert.is_false(ok)
      helpers.assert_error(err, "SDK.InvalidArgument")
    end
    assert.are.equal(0, #emu:log())
  end)
end)
