-- The concurrent pager (client:tasks{..., concurrency = N}) and the C Multi
-- under it, against the emulator over real HTTP: every task once and in
-- order, N requests in flight (timed against the emulator's latency), within
-- the rate limiter, retries of single pages, failures raised after exactly
-- the pages before them, the depth-cap split, and the Multi userdata itself.
local helpers = require("helpers")
local core = require("aliyun.iot.core")
local jobs = helpers.jobs

local collect = helpers.collect

-- Every task once, in the job's order (indices 1..n unless given).
local function assert_in_order(job_id, tasks, n)
  local seen = {}
  assert.are.equal(n, #tasks)
  for k, task in ipairs(tasks) do
    assert.is_nil(seen[task.TaskId], "duplicate " .. task.TaskId)
    seen[task.TaskId] = true
    assert.are.equal(jobs.task(job_id, k).TaskId, task.TaskId)
  end
end

local function log_count(emu, pred)
  local n = 0
  for _, e in ipairs(emu:log()) do if pred(e) then n = n + 1 end end
  return n
end

local function timed(f)
  local t0 = core.monotonic()
  local a, b = f()
  return core.monotonic() - t0, a, b
end

describe("concurrent pager", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  for _, n in ipairs({ 0, 1, 101, 2500, 25000 }) do
    it("lists every task of a " .. n .. "-task job exactly once, in order, with concurrency 4", function()
      local job = "job-" .. n
      assert_in_order(job, collect(client:tasks{ JobId = job, concurrency = 4 }), n)
      assert.are.equal(math.max(1, math.ceil(n / 100)),
        log_count(emu, function(e) return e.action == "ListOTATaskByJob" end))
    end)
  end

  it("yields pages in order under varying latency (concurrency 8)", function()
    local pages, tasks = {}, {}
    math.randomseed(7)
    for page in client:pages{ JobId = "job-3000", PageSize = 100, concurrency = 8 } do
      pages[#pages + 1] = page.CurrentPage
      for _, t in ipairs(page.tasks) do tasks[#tasks + 1] = t end
      -- Requests sent from now on get another latency: answers overtake each other.
      emu:faults{ latency_ms = math.random(0, 60) }
    end
    local want = {}
    for p = 1, 30 do want[p] = p end
    assert.are.same(want, pages)
    assert_in_order("job-3000", tasks, 3000)
  end)

  it("keeps N requests in flight: 20 pages at 200 ms take about 1 s with concurrency 4", function()
    emu:faults{ latency_ms = 200 }
    local elapsed, tasks = timed(function() return collect(client:tasks{ JobId = "job-2000", concurrency = 4 }) end)
    assert_in_order("job-2000", tasks, 2000)
    -- Page 1 alone, then 19 pages 4 at a time: 1 + 5 rounds of 200 ms. Sequentially it
    -- would be 4 s; with more than 4 in flight it would be under 1.2 s. The upper bound
    -- leaves room for a loaded machine while still telling concurrent from sequential.
    assert.is_true(elapsed >= 1.15, "too fast for 4 in flight: " .. elapsed)
    assert.is_true(elapsed < 3.0, "not concurrent: " .. elapsed)
  end)

  it("stays within the rate limiter: 10/s against an emulator allowing 10 QPS, no Throttling #realtime", function()
    local limited = helpers.client(emu, { rate_limit = 10 })
    emu:faults{ qps = 10, latency_ms = 50 } -- (reset emptied the emulator's window)
    local elapsed, tasks = timed(function() return collect(limited:tasks{ JobId = "job-1500", concurrency = 8 }) end)
    limited:close()
    assert_in_order("job-1500", tasks, 1500)
    assert.are.equal(15, log_count(emu, function() return true end))
    assert.are.equal(0, log_count(emu, function(e) return e.code:match("^Throttling") ~= nil end))
    -- 15 requests spaced 0.105 s apart: about 1.5 s, whatever the concurrency.
    assert.is_true(elapsed >= 14 * 0.1, "the limiter was not honoured: " .. elapsed)
  end)

  it("retries single pages (the first try of every 5th page fails) and lists everything once", function()
    -- A fault keyed by page, not by arrival: with 4 requests in flight, "every 5th
    -- request" could hit a page's retry again and again, and which page it hits
    -- would depend on the machine's timing.
    local retrying = helpers.client(emu, { max_retries = 3 })
    emu:faults{ error_500_once_every = 5 }
    local tasks = collect(retrying:tasks{ JobId = "job-2500", concurrency = 4 })
    retrying:close()
    assert_in_order("job-2500", tasks, 2500)
    local failed = {}
    for _, e in ipairs(emu:log()) do
      if e.code == "InternalError" then failed[#failed + 1] = tonumber(e.params.CurrentPage) end
    end
    table.sort(failed)
    assert.are.same({ 5, 10, 15, 20, 25 }, failed)
    assert.are.equal(25 + 5, #emu:log())
    helpers.assert_fresh_nonces(emu)
  end)

  describe("a clock that falls an hour behind after page 1", function()
    -- Page 1 goes out on the right time; every page in flight after it is signed an hour
    -- late and refused with InvalidTimeStamp.Expired, all at about the same moment.
    local function listing(opts)
      local jumped = false
      local c = helpers.client(emu, { clock = function() return os.time() - (jumped and 3600 or 0) end,
                                      correct_clock_skew = opts.correct_clock_skew })
      local tasks = {}
      local ok, err = pcall(function()
        for page in c:pages{ JobId = "job-1000", concurrency = 4 } do
          jumped = true
          for _, t in ipairs(page.tasks) do tasks[#tasks + 1] = t end
        end
      end)
      c:close()
      return tasks, (not ok) and err or nil
    end

    it("raises the Expired error with the measured offset", function()
      local tasks, err = listing{ correct_clock_skew = false }
      helpers.assert_error(err, "InvalidTimeStamp.Expired")
      assert.truthy(math.abs(err.clock_offset - 3600) <= 3, tostring(err.clock_offset))
      assert.truthy(err.message:find("correct_clock_skew", 1, true), err.message)
      assert.are.equal(100, #tasks)
    end)

    it("corrects it once and lists everything with correct_clock_skew", function()
      local tasks, err = listing{ correct_clock_skew = true }
      assert.is_nil(err)
      assert_in_order("job-1000", tasks, 1000)
      local expired = log_count(emu, function(e) return e.code == "InvalidTimeStamp.Expired" end)
      assert.is_true(expired >= 1 and expired <= 4, "expired: " .. expired)
      assert.are.equal(10, log_count(emu, function(e) return e.code == "OK" end))
    end)
  end)

  it("raises a final failure after yielding exactly the pages before it", function()
    -- SDK.BadResponse with no retries left: final.
    local retrying = helpers.client(emu, { max_retries = 0 })
    emu:faults{ malformed_every = 7 }
    local got = {}
    local ok, err = pcall(function()
      for task in retrying:tasks{ JobId = "job-3000", concurrency = 4 } do got[#got + 1] = task end
    end)
    retrying:close()
    assert.is_false(ok)
    helpers.assert_error(err, "SDK.BadResponse")
    -- The first page (in page order) that got the broken body.
    local first_bad = math.huge
    for _, e in ipairs(emu:log()) do
      if e.fault == "malformed" then first_bad = math.min(first_bad, tonumber(e.params.CurrentPage or 1)) end
    end
    assert.is_true(first_bad < math.huge)
    assert.are.equal((first_bad - 1) * 100, #got)
    for k, task in ipairs(got) do assert.are.equal(jobs.task("job-3000", k).TaskId, task.TaskId) end
  end)

  it("raises from pages() too, never ending short", function()
    emu:faults{ error_500_every = 3 }
    local ok, err = pcall(collect, client:pages{ JobId = "job-1000", concurrency = 4 })
    assert.is_false(ok)
    helpers.assert_error(err, "InternalError")
  end)

  it("splits 120 DeviceNames into calls of 50, 50 and 20", function()
    local names = {}
    for k = 1, 120 do names[k] = jobs.device_name(k * 3) end
    local tasks = collect(client:tasks{ JobId = "job-2500", DeviceNames = names, concurrency = 4 })
    assert.are.equal(120, #tasks)
    for k, task in ipairs(tasks) do assert.are.equal(jobs.task("job-2500", k * 3).TaskId, task.TaskId) end
    assert.are.equal(3, log_count(emu, function() return true end))
  end)

  it("splits a job past the depth cap by TaskStatus and lists it all once #slow #big", function()
    local n, count, seen = 150000, 0, {}
    for task in client:tasks{ JobId = "job-" .. n, concurrency = 4 } do
      assert.is_nil(seen[task.TaskId])
      seen[task.TaskId] = true
      count = count + 1
    end
    assert.are.equal(n, count)
    for _, e in ipairs(emu:log()) do
      assert.are.equal("OK", e.code)
      assert.truthy(tonumber(e.params.PageSize or 10) * tonumber(e.params.CurrentPage or 1) <= 100000)
    end
  end)

  it("fails up front, before any task, when one status is too deep and no device can be listed", function()
    emu:faults{ deny_QueryDevice = 1 }
    local yielded = 0
    local ok, err = pcall(function()
      for _ in client:tasks{ JobId = "job-150000-QUEUED", concurrency = 4 } do yielded = yielded + 1 end
    end)
    assert.is_false(ok)
    assert.are.equal(0, yielded)
    helpers.assert_error(err, "SDK.DepthCapExceeded")
  end)

  it("rejects a bad concurrency at the call, before any request", function()
    for _, bad in ipairs({ 0, -1, 1.5, "2", 65, true }) do
      local ok, err = pcall(client.tasks, client, { JobId = "job-10", concurrency = bad })
      assert.is_false(ok)
      helpers.assert_error(err, "SDK.InvalidArgument")
      assert.truthy(err.message:find("concurrency", 1, true))
      ok, err = pcall(client.pages, client, { JobId = "job-10", concurrency = bad })
      assert.is_false(ok)
      helpers.assert_error(err, "SDK.InvalidArgument")
    end
    assert.are.equal(0, log_count(emu, function() return true end))
  end)

  it("takes the same route for concurrency = 1, one request at a time", function()
    local iter, _, _, closer = client:tasks{ JobId = "job-150", concurrency = 1 }
    assert_in_order("job-150", collect(iter), 150)
    -- The closer of a sequential listing has nothing in flight to end.
    getmetatable(closer).__close(closer)
  end)

  it("is lazy, and a break (Lua 5.4 to-be-closed) ends what is in flight", function()
    local iter, _, _, closer = client:tasks{ JobId = "job-1000", concurrency = 4 }
    assert.are.equal(0, log_count(emu, function() return true end))
    local first = iter()
    assert.are.equal(jobs.task("job-1000", 1).TaskId, first.TaskId)
    assert.is_not_nil(getmetatable(closer).__close)
    local n = 0
    for _ in client:tasks{ JobId = "job-1000", concurrency = 4 } do
      n = n + 1
      if n == 150 then break end
    end
    assert.are.equal(150, n)
  end)
end)

describe("core.new_multi", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  local function health() return emu.url .. "/__emulator/health" end

  -- Wait until `count` results have arrived (or 5 s passed).
  local function gather(m, count)
    local out, deadline = {}, core.monotonic() + 5
    while #out < count and core.monotonic() < deadline do
      for _, r in ipairs(m:wait(1)) do out[#out + 1] = r end
    end
    return out
  end

  it("runs transfers concurrently and returns each result once, with its id", function()
    local m = core.new_multi{ size = 3 }
    for id = 1, 3 do m:add(id, "GET", health(), { Accept = "text/plain" }) end
    assert.are.equal(3, m:pending())
    local results = gather(m, 3)
    assert.are.equal(3, #results)
    local ids = {}
    for _, r in ipairs(results) do
      ids[r.id] = true
      assert.are.equal(200, r.status)
      assert.are.equal("ok", r.body:match("^%s*(.-)%s*$"))
      assert.is_table(r.headers)
      assert.is_string(r.headers["content-type"])
    end
    assert.are.same({ true, true, true }, ids)
    assert.are.equal(0, m:pending())
    assert.are.same({}, m:wait(0))
    m:close()
  end)

  it("reuses connections (keep-alive) and caps them at size", function()
    local m = core.new_multi{ size = 2 }
    for round = 1, 4 do
      m:add(round * 2 - 1, "GET", health())
      m:add(round * 2, "GET", health())
      assert.are.equal(2, #gather(m, 2))
    end
    local info = m:info()
    assert.are.equal(8, info.completed)
    assert.is_true(info.connects <= 2, "connections: " .. info.connects)
    m:close()
  end)

  it("sends a POST body and reports a refused connection as SDK.ConnectionFailed", function()
    local m = core.new_multi{ size = 2, connect_timeout = 2 }
    m:add(1, "POST", emu.url .. "/__emulator/faults", { ["Content-Type"] = "application/json" }, "{}")
    m:add(2, "GET", "http://127.0.0.1:1/")
    local byid = {}
    for _, r in ipairs(gather(m, 2)) do byid[r.id] = r end
    assert.are.equal(200, byid[1].status)
    helpers.assert_error(byid[2].err, "SDK.ConnectionFailed")
    assert.is_true(byid[2].err.retryable)
    m:close()
  end)

  it("sleeps in wait() when nothing is in flight", function()
    local m = core.new_multi()
    local elapsed = timed(function() return m:wait(0.2) end)
    assert.is_true(elapsed >= 0.18 and elapsed < 1, tostring(elapsed))
    m:close()
  end)

  it("refuses misuse: full pool, duplicate id, bad options and arguments", function()
    local m = core.new_multi{ size = 1 }
    m:add(1, "GET", health())
    assert.has_error(function() m:add(2, "GET", health()) end)
    assert.has_error(function() m:add(1, "GET", health()) end)
    gather(m, 1)
    assert.has_error(function() m:add("x", "GET", health()) end)
    assert.has_error(function() m:add(3, "GE T", health()) end)
    assert.has_error(function() m:add(3, "GET", health(), { ["Bad:Name"] = "v" }) end)
    assert.has_error(function() m:add(3, "GET", health(), { X = "a\r\nInjected: 1" }) end)
    assert.are.equal(0, m:pending())
    m:close()
    for _, bad in ipairs({ { size = 0 }, { size = 65 }, { size = 1.5 }, { timeout = -1 }, { verify = "yes" } }) do
      assert.has_error(function() core.new_multi(bad) end)
    end
  end)

  it("closes idempotently (close, __close, __gc) and says so in tostring", function()
    local m = core.new_multi{ size = 2 }
    assert.truthy(tostring(m):match("^aliyun%.iot%.Multi %(.+, 0 of 2 in flight%)$"), tostring(m))
    m:add(1, "GET", health())
    assert.truthy(tostring(m):find("1 of 2 in flight", 1, true))
    m:close()
    m:close()
    assert.are.equal("aliyun.iot.Multi (closed)", tostring(m))
    assert.has_error(function() m:add(1, "GET", health()) end)
    assert.has_error(function() m:wait(0) end)
    assert.are.equal(0, m:pending())
    getmetatable(m).__gc(m)
    if getmetatable(m).__close then getmetatable(m).__close(m) end
    -- Dropped with transfers in flight: the collector closes it.
    local dropped = core.new_multi{ size = 2 }
    dropped:add(1, "GET", health())
    dropped = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
  end)
end)
