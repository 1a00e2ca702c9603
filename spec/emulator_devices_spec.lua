-- The emulator's side of "any job, any size", through the project client:
-- QueryDevice over a job's product (page numbers to 10,000, NextToken to the
-- end), DeviceNames queries on a 1,000,000-task mix job, exact per-status
-- Totals, the lowered depth cap, and the per-action quotas at their real
-- limits. What the client's own partitioned listing will be built on.
local helpers = require("helpers")
local cjson = require("cjson.safe")
local core = require("aliyun.iot.core")
local jobs = helpers.jobs
local products = dofile("spec/emulator/products.lua")

local MIX = "job-1000000-mix-SUCCEEDED:600000,IN_PROGRESS:200000,FAILED:100000,QUEUED:100000"
local MIX_COUNTS = { SUCCEEDED = 600000, IN_PROGRESS = 200000, FAILED = 100000, QUEUED = 100000 }

describe("emulator: products, QueryDevice and jobs of any size", function()
  local emu, client
  helpers.use_emulator(function(e, c) emu, client = e, c end)

  local function control_json(path)
    return assert(cjson.decode(emu:control("GET", path)))
  end

  describe("QueryDevice", function()
    it("enumerates every device of a 25,000-device product exactly once by NextToken", function()
      local product = products.of_job("job-22727")
      assert.are.equal(25000, product.size)
      local seen, n, pages, token = {}, 0, 0, nil
      repeat
        local page = assert(client:call("QueryDevice", { ProductKey = product.key, PageSize = 50, NextToken = token }))
        pages = pages + 1
        assert.are.equal(25000, page.Total)
        assert.are.equal(500, page.PageCount)
        assert.are.equal(pages, page.Page)
        for _, dev in ipairs(page.Data.DeviceInfo) do
          n = n + 1
          assert.is_nil(seen[dev.DeviceName], "listed twice: " .. dev.DeviceName)
          seen[dev.DeviceName] = true
          assert.are.same(products.device(product, n), dev)
        end
        token = page.NextToken
      until token == nil
      assert.are.equal(25000, n)
      assert.are.equal(500, pages)
      -- 22,727 of them are the job's devices, each mapping back to its task.
      local job_devices = 0
      for name in pairs(seen) do
        if jobs.index_of_device(product.job, name) then job_devices = job_devices + 1 end
      end
      assert.are.equal(22727, job_devices)
    end)

    it("pages by number up to PageSize x CurrentPage = 10,000 and refuses the next page", function()
      local pk = products.of_job(MIX).key
      local page = assert(client:call("QueryDevice", { ProductKey = pk, PageSize = 50, CurrentPage = 200 }))
      assert.are.equal(1100000, page.Total)
      assert.are.equal(200, page.Page)
      assert.are.equal(50, #page.Data.DeviceInfo)
      assert.is_string(page.NextToken)
      local _, err = client:call("QueryDevice", { ProductKey = pk, PageSize = 50, CurrentPage = 201 })
      helpers.assert_error(err, "iot.common.InvalidPageParams")
      -- The token of page 200 goes on past the 10,000.
      local next_page = assert(client:call("QueryDevice",
        { ProductKey = pk, PageSize = 50, NextToken = page.NextToken }))
      assert.are.equal(201, next_page.Page)
      assert.are.same(products.device(products.parse(pk), 10001), next_page.Data.DeviceInfo[1])
    end)

    it("answers an unknown product with iot.prod.NotExistedProduct", function()
      local _, err = client:call("QueryDevice", { ProductKey = "a1NoSuchPrd" })
      helpers.assert_error(err, "iot.prod.NotExistedProduct")
      _, err = client:call("QueryDevice", {})
      helpers.assert_error(err, "MissingProductKey")
    end)
  end)

  describe("a 1,000,000-task mix job", function()
    local job = jobs.parse(MIX)
    local product = products.of_job(job)

    it("has exact per-status Totals, and pages that mix statuses", function()
      assert.are.equal(product.key, assert(client:call("QueryOTAJob", { JobId = MIX })).Data.ProductKey)
      for _, status in ipairs(jobs.STATUSES) do
        local page = assert(client:call("ListOTATaskByJob", { JobId = MIX, TaskStatus = status, PageSize = 1 }))
        assert.are.equal(MIX_COUNTS[status] or 0, page.Total, status)
      end
      local page = assert(client:call("ListOTATaskByJob", { JobId = MIX, PageSize = 100, CurrentPage = 777 }))
      local kinds = {}
      for k, t in ipairs(page.tasks) do
        assert.are.same(jobs.task(job, 77600 + k), t)
        kinds[t.TaskStatus] = true
      end
      for status in pairs(MIX_COUNTS) do assert.is_true(kinds[status], status) end
      -- TaskStatus pages at the depth cap: the k-th task of a status is arithmetic.
      page = assert(client:call("ListOTATaskByJob", { JobId = MIX, TaskStatus = "IN_PROGRESS", PageSize = 100,
                                                     CurrentPage = 1000 }))
      for k, t in ipairs(page.tasks) do assert.are.same(jobs.task(job, jobs.kth(job, "IN_PROGRESS", 99900 + k)), t) end
    end)

    it("answers DeviceNames queries with the right tasks, and nothing for devices not in the job", function()
      -- Chunks of 50 product devices from the start, the middle and the end.
      for _, first in ipairs({ 1, 550001, 1099951 }) do
        local params, want, others = { JobId = MIX, DeviceNames = {} }, {}, 0
        for k = 1, 50 do
          local d = first + k - 1
          params.DeviceNames[k] = products.device_name(product, d)
          local t = products.at(product, d)
          if t then want[#want + 1] = jobs.task(job, t) else others = others + 1 end
        end
        assert.is_true(others >= 4, "each chunk holds devices without a task")
        local page = assert(client:call("ListOTATaskByJob", params))
        assert.are.equal(#want, page.Total)
        assert.are.same(want, page.tasks)
        params.TaskStatus = "FAILED"
        local failed = {}
        for _, t in ipairs(want) do if t.TaskStatus == "FAILED" then failed[#failed + 1] = t end end
        page = assert(client:call("ListOTATaskByJob", params))
        assert.are.same(failed, page.tasks)
      end
      local page = assert(client:call("ListOTATaskByJob", { JobId = MIX,
        DeviceNames = { products.device_name(product, 11), "device-9999999" } }))
      assert.are.equal(0, page.Total)
    end)
  end)

  it("refuses paging past a lowered depth cap like the real 100,000 one, and says so in /__emulator/faults", function()
    emu:faults{ depth_cap = 2000 }
    assert.are.equal(2000, control_json("faults").depth_cap)
    assert.are.equal(2000, control_json("limits").ListOTATaskByJob.depth_cap)
    assert(client:call("ListOTATaskByJob", { JobId = "job-10000", PageSize = 100, CurrentPage = 20 }))
    local _, err = client:call("ListOTATaskByJob", { JobId = "job-10000", PageSize = 100, CurrentPage = 21 })
    helpers.assert_error(err, "iot.common.InvalidPageParams")
    _, err = client:call("ListOTATaskByJob",
      { JobId = "job-10000", TaskStatus = "SUCCEEDED", PageSize = 50, CurrentPage = 41 })
    helpers.assert_error(err, "iot.common.InvalidPageParams")
    emu:faults{}
    assert.are.equal(100000, control_json("limits").ListOTATaskByJob.depth_cap)
    assert(client:call("ListOTATaskByJob", { JobId = "job-10000", PageSize = 100, CurrentPage = 21 }))
  end)

  describe("per-action quotas (qps_per_action: the documented limits)", function()
    local function query_devices(n, interval)
      local ok, throttled, t0 = 0, 0, core.monotonic()
      for i = 1, n do
        if interval then
          local wait = t0 + (i - 1) * interval - core.monotonic()
          if wait > 0 then core.sleep(wait) end
        end
        local _, err = client:call("QueryDevice", { ProductKey = "pk-job-100" })
        if err == nil then ok = ok + 1
        elseif err.code == "Throttling.User" then throttled = throttled + 1
        else error(tostring(err)) end
      end
      return ok, throttled, core.monotonic() - t0
    end

    it("throttles QueryDevice past 50 per second #realtime", function()
      emu:faults{ qps_per_action = 1, log = 0 }
      assert.are.equal(50, control_json("limits").QueryDevice.qps)
      local ok, throttled, elapsed = query_devices(75)
      assert.is_true(throttled > 0, "no request throttled")
      if elapsed < 1 then assert.are.equal(50, ok) end
      local counts = control_json("counts").QueryDevice
      assert.are.equal(75, counts.requests)
      assert.are.equal(throttled, counts.throttled)
    end)

    it("lets QueryDevice through at 40 per second, and reports the most per second #realtime", function()
      emu:faults{ qps_per_action = 1, log = 0 }
      local ok, throttled = query_devices(80, 1 / 40)
      assert.are.equal(0, throttled)
      assert.are.equal(80, ok)
      local counts = control_json("counts").QueryDevice
      assert.are.equal(80, counts.requests)
      assert.is_true(counts.max_per_second <= 41, "max_per_second " .. counts.max_per_second)
      assert.is_true(counts.max_per_second >= 35, "max_per_second " .. counts.max_per_second)
      assert.are.equal("[]", emu:control("GET", "log"))       -- log 0: counted, not logged
    end)

    it("keeps ListOTATaskByJob to 10 per second with its own bucket #realtime", function()
      emu:faults{ qps_per_action = 1 }
      local codes, t0 = {}, core.monotonic()
      for i = 1, 11 do
        local _, err = client:call("ListOTATaskByJob", { JobId = "job-10" })
        codes[i] = err and err.code or "OK"
      end
      if core.monotonic() - t0 < 1 then assert.are.equal("Throttling.User", codes[11]) end
      for i = 1, 10 do assert.are.equal("OK", codes[i]) end
      assert(client:call("QueryDevice", { ProductKey = "pk-job-10" }))
      assert.is_true(control_json("counts").ListOTATaskByJob.max_per_second >= 10)
    end)
  end)
end)
