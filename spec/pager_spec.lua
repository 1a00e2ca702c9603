-- The coroutine pager over real HTTP: every task exactly once, partitions
-- by DeviceNames chunks and by TaskStatus past the depth cap, and failures
-- raised from the iterator instead of a quietly short listing.
local helpers = require("helpers")
local pager = require("aliyun.iot.pager")
local jobs = helpers.jobs

local collect = helpers.collect

-- Every task once, in the emulator's order (index 1..n of the job).
local function assert_exactly_once(job_id, tasks, indices)
  local seen = {}
  for _, task in ipairs(tasks) do
    assert.is_nil(seen[task.TaskId], "duplicate " .. task.TaskId)
    seen[task.TaskId] = true
  end
  assert.are.equal(#indices, #tasks)
  for k, i in ipairs(indices) do
    local want = jobs.task(job_id, i)
    assert.are.equal(want.TaskId, tasks[k].TaskId)
  end
end

local range = helpers.range

local function requests(emu)
  local n = 0
  for _, e in ipairs(emu:log()) do if e.action == "ListOTATaskByJob" then n = n + 1 end end
  return n
end

describe("client:tasks and client:pages", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  for _, n in ipairs({ 0, 1, 100, 101, 2500 }) do
    it("lists every task of a " .. n .. "-task job exactly once", function()
      local job = "job-" .. n
      assert_exactly_once(job, collect(client:tasks{ JobId = job }), range(n))
      assert.are.equal(math.max(1, math.ceil(n / 100)), requests(emu))
    end)
  end

  it("lists a 25,000-task job exactly once in 250 pages of 100", function()
    local pages = collect(client:pages{ JobId = "job-25000" })
    assert.are.equal(250, #pages)
    local tasks = {}
    for p, page in ipairs(pages) do
      assert.are.equal(p, page.CurrentPage)
      assert.are.equal(25000, page.Total)
      for _, t in ipairs(page.tasks) do tasks[#tasks + 1] = t end
    end
    assert_exactly_once("job-25000", tasks, range(25000))
  end)

  it("is lazy: nothing is sent before the first iteration", function()
    local iter = client:tasks{ JobId = "job-10" }
    assert.are.equal(0, requests(emu))
    assert.is_table(iter())
    assert.are.equal(1, requests(emu))
  end)

  it("honours PageSize", function()
    local pages = collect(client:pages{ JobId = "job-100", PageSize = 30 })
    assert.are.equal(4, #pages)
    assert.are.same({ 30, 30, 30, 10 }, { #pages[1].tasks, #pages[2].tasks, #pages[3].tasks, #pages[4].tasks })
  end)

  it("filters by TaskStatus", function()
    local expected = {}
    for i = 1, 2500 do
      if jobs.status_of(i) == "FAILED" then expected[#expected + 1] = i end
    end
    assert.truthy(#expected > 0)
    local tasks = collect(client:tasks{ JobId = "job-2500", TaskStatus = "FAILED" })
    assert_exactly_once("job-2500", tasks, expected)
  end)

  it("splits 120 DeviceNames into calls of 50, 50 and 20", function()
    local names, indices = {}, {}
    for k = 1, 120 do
      indices[k] = k * 3
      names[k] = jobs.device_name(k * 3)
    end
    local tasks = collect(client:tasks{ JobId = "job-2500", DeviceNames = names })
    assert_exactly_once("job-2500", tasks, indices)
    local counts = {}
    for _, e in ipairs(emu:log()) do
      local n = 0
      for k in pairs(e.params) do if k:match("^DeviceNames%.%d+$") then n = n + 1 end end
      counts[#counts + 1] = n
    end
    assert.are.same({ 50, 50, 20 }, counts)
  end)

  it("splits a job past the 100,000 depth cap by TaskStatus and lists it all once", function()
    local n = 150000
    local count, seen = 0, {}
    for task in client:tasks{ JobId = "job-" .. n } do
      assert.is_nil(seen[task.TaskId])
      seen[task.TaskId] = true
      count = count + 1
    end
    assert.are.equal(n, count)
    for _, i in ipairs({ 1, 2, 77777, n }) do assert.is_true(seen[jobs.task("job-" .. n, i).TaskId]) end
    -- No request ever asked past the cap.
    for _, e in ipairs(emu:log()) do
      assert.are.equal("OK", e.code)
      local size, current = tonumber(e.params.PageSize or 10), tonumber(e.params.CurrentPage or 1)
      assert.truthy(size * current <= 100000)
    end
  end)

  it("fails up front, before any task, when a status past the cap has no devices to ask for", function()
    -- A RAM policy without QueryDevice: the product's devices cannot be enumerated.
    emu:faults{ deny_QueryDevice = 1 }
    local yielded = 0
    local ok, err = pcall(function()
      for _ in client:tasks{ JobId = "job-150000-QUEUED" } do yielded = yielded + 1 end
    end)
    assert.is_false(ok)
    assert.are.equal(0, yielded)
    helpers.assert_error(err, "SDK.DepthCapExceeded")
    assert.truthy(err.message:find("150000 tasks with TaskStatus=QUEUED", 1, true), err.message)
    assert.truthy(err.message:find("Forbidden.RAM", 1, true), err.message)
    assert.truthy(err.message:find("device_names", 1, true), err.message)
  end)

  it("fails up front when a filtered listing is too deep and its devices cannot be listed", function()
    emu:faults{ deny_QueryDevice = 1 }
    local ok, err = pcall(collect, client:tasks{ JobId = "job-150000-QUEUED", TaskStatus = "QUEUED" })
    assert.is_false(ok)
    helpers.assert_error(err, "SDK.DepthCapExceeded")
  end)

  it("raises the error object mid-listing instead of ending short", function()
    emu:faults{ error_500_every = 4 }
    local got = 0
    local ok, err = pcall(function()
      -- One request at a time, so the 4th request is page 4.
      for _ in client:tasks{ JobId = "job-1000", concurrency = 1 } do got = got + 1 end
    end)
    assert.is_false(ok)
    helpers.assert_error(err, "InternalError")
    assert.are.equal(300, got)
  end)

  it("raises from pages() too", function()
    emu:faults{ error_500_every = 2 }
    local ok, err = pcall(collect, client:pages{ JobId = "job-1000" })
    assert.is_false(ok)
    helpers.assert_error(err, "InternalError")
  end)
end)

describe("the task iterator past its end and after a failure", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  it("keeps answering nil once the listing has ended", function()
    local iter = client:tasks{ JobId = "job-10" }
    for _ = 1, 10 do assert.is_table(iter()) end
    for _ = 1, 3 do assert.is_nil(iter()) end
    assert.are.equal(1, requests(emu))
  end)

  it("raises the same error again when called after it raised", function()
    emu:faults{ error_500_every = 2 }
    local iter = client:tasks{ JobId = "job-1000", concurrency = 1 }
    local got, ok, err = 0, true, nil
    while ok do
      local task
      ok, task = pcall(iter)
      if ok then assert.is_table(task); got = got + 1 else err = task end
    end
    assert.are.equal(100, got)
    helpers.assert_error(err, "InternalError")
    for _ = 1, 2 do
      local again_ok, again = pcall(iter)
      assert.is_false(again_ok)
      assert.are.equal(err, again)
    end
  end)
end)

-- LuaJIT compiles a caller's `for t in client:tasks{...}` loop only when the
-- iterator's per-task path has no loop of its own: an inner loop aborts the
-- root trace ("inner loop in root trace"), and every task is interpreted.
-- The child's trace log (jit.v) says which happened.
describe("the task iterator under LuaJIT", function()
  local it_jit = jit and it or pending
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  it_jit("lets the caller's loop compile to a trace", function()
    local log = os.tmpname()
    local out = helpers.run_lua(string.format([[
      local helpers = require("helpers")
      require("jit.v").start(%q)
      local client = helpers.client({ url = %q })
      local n = 0
      for task in client:tasks{ JobId = "job-2500" } do
        if task.TaskId then n = n + 1 end   -- the caller's loop: line 5
      end
      client:close()
      print("listed " .. n)
    ]], log, emu.url))
    local f = assert(io.open(log))
    local trace = f:read("*a")
    f:close()
    os.remove(log)
    assert.truthy(out:find("listed 2500", 1, true), out)
    assert.is_nil(trace:find("inner loop in root trace at pager.lua", 1, true), trace)
    assert.truthy(trace:find("TRACE%s+%d+ [^\n]*:5 loop%]"), trace)
  end)
end)

describe("pager de-duplication", function()
  -- The emulator's jobs do not shift under the pager, so feed the pager's
  -- pure walk a page sequence where a task moved back one page.
  local function task(id) return { TaskId = id } end
  local pages = {
    { Total = 5, PageCount = 3, CurrentPage = 1, tasks = { task("a"), task("b") } },
    { Total = 5, PageCount = 3, CurrentPage = 2, tasks = { task("b"), task("c") } },
    { Total = 5, PageCount = 3, CurrentPage = 3, tasks = { task("d"), task("e") } },
  }
  local function fetch_all(list, each)
    for _, p in ipairs(list) do
      if each(pages[p.CurrentPage]) == false then return end
    end
  end

  it("yields every TaskId once even when pages overlap", function()
    local listing = assert(pager.validate{ JobId = "j", PageSize = 2 })
    local ids = {}
    for t in pager.tasks(listing, fetch_all) do ids[#ids + 1] = t.TaskId end
    assert.are.same({ "a", "b", "c", "d", "e" }, ids)
  end)
end)

describe("pager TaskStatus lists", function()
  local client
  helpers.use_emulator(function(_, c) client = c end)

  it("lists each status as its own part, each task once, pages labelled", function()
    local all, by_status = {}, {}
    for t in client:tasks{ JobId = "job-1000" } do
      all[t.TaskId] = t.TaskStatus
      by_status[t.TaskStatus] = (by_status[t.TaskStatus] or 0) + 1
    end
    local want = { "FAILED", "SUCCEEDED" }
    local seen, parts, lasts = {}, {}, 0
    for page in client:pages{ JobId = "job-1000", TaskStatus = { "FAILED", "SUCCEEDED", "FAILED" } } do
      assert.are.equal(2, page.part.count)
      parts[page.part.index] = page.part.TaskStatus
      if page.last_in_part then lasts = lasts + 1 end
      for _, t in ipairs(page.tasks) do
        assert.is_nil(seen[t.TaskId])
        seen[t.TaskId] = true
        assert.are.equal(all[t.TaskId], t.TaskStatus)
      end
    end
    assert.are.same(want, parts)
    assert.are.equal(2, lasts)
    local n = 0
    for _ in pairs(seen) do n = n + 1 end
    assert.are.equal((by_status.FAILED or 0) + (by_status.SUCCEEDED or 0), n)
  end)

  it("refuses a bad status in the list before any request", function()
    local ok, err = pcall(client.tasks, client, { JobId = "job-10", TaskStatus = { "FAILED", "DONE" } })
    assert.is_false(ok)
    helpers.assert_error(err, "SDK.InvalidArgument")
    assert.truthy(err.message:find("TaskStatus[2]", 1, true))
    ok, err = pcall(client.tasks, client, { JobId = "job-10", TaskStatus = {} })
    assert.is_false(ok)
    helpers.assert_error(err, "SDK.InvalidArgument")
  end)
end)
