-- Resilience against the emulator's faults: retries, the rate limiter,
-- clock skew, and 10,000-task listings that either list every task exactly
-- once or raise a clear error. Also: no file descriptor or memory growth.
local helpers = require("helpers")
local core = require("aliyun.iot.core")
local jobs = helpers.jobs

local JOB, N = "job-10000", 10000

-- List a job; returns the tasks seen and the error raised (if any). Asserts
-- that whatever was yielded is duplicate-free and in the job's order.
local function list(client, job)
  local tasks = {}
  local ok, err = pcall(function()
    -- One request at a time: the emulator's "every Nth request" faults then hit
    -- known pages, and a retry is never the Nth request again. (concurrent_spec
    -- covers faults with requests in flight, with faults keyed by page.)
    for task in client:tasks{ JobId = job, concurrency = 1 } do tasks[#tasks + 1] = task end
  end)
  local seen = {}
  for k, task in ipairs(tasks) do
    assert.is_nil(seen[task.TaskId], "duplicate " .. task.TaskId)
    seen[task.TaskId] = true
    assert.are.equal(jobs.task(job, k).TaskId, task.TaskId)
  end
  return tasks, (not ok) and err or nil
end

local function codes(emu)
  local counts = {}
  for _, e in ipairs(emu:log()) do counts[e.code] = (counts[e.code] or 0) + 1 end
  return counts
end

describe("resilience", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  describe("retries", function()
    it("re-sign every attempt with a new nonce and timestamp and recover", function()
      emu:faults{ error_500_every = 2 }
      local c = helpers.client(emu, { max_retries = 3 })
      local page = assert(c:ListOTATaskByJob{ JobId = "job-10" })
      assert(c:ListOTATaskByJob{ JobId = "job-10" })
      c:close()
      assert.are.equal(10, #page.tasks)
      helpers.assert_fresh_nonces(emu)
      assert.are.same({ OK = 2, InternalError = 1 }, codes(emu))
    end)

    it("never retry a signature error", function()
      local c = helpers.client(emu, { max_retries = 3, access_key_secret = "wrong" })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "SignatureDoesNotMatch")
      assert.is_nil(err.attempts)
      assert.are.equal(1, #emu:log())
    end)

    it("say how many attempts were made when they give up", function()
      emu:faults{ error_503_every = 1 }
      local c = helpers.client(emu, { max_retries = 2 })
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "ServiceUnavailable")
      assert.are.equal(3, err.attempts)
      assert.truthy(tostring(err):find("attempts 3", 1, true))
      assert.are.equal(3, #emu:log())
    end)

    it("stop at the deadline", function()
      emu:faults{ error_500_every = 1 }
      local c = helpers.client(emu, { max_retries = 50, deadline = 0.5 })
      local t0 = core.monotonic()
      local page, err = c:ListOTATaskByJob{ JobId = "job-10" }
      local elapsed = core.monotonic() - t0
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "InternalError")
      assert.truthy(elapsed < 1.5, "took " .. elapsed)
      assert.truthy(err.message:find("deadline", 1, true))
    end)

    it("back off longer after throttling, and get through", function()
      emu:faults{ qps = 2 }
      local c = helpers.client(emu, { max_retries = 5 })
      for _ = 1, 6 do assert(c:ListOTATaskByJob{ JobId = "job-1" }) end
      c:close()
      assert.are.equal(6, codes(emu).OK)
    end)
  end)

  describe("rate limiter", function()
    it("keeps two clients sharing one key under the account's 10 QPS #realtime", function()
      emu:faults{ qps = 10 }
      local a = helpers.client(emu, { rate_limit = 10 })
      local b = helpers.client(emu, { rate_limit = 10 })
      local t0 = core.monotonic()
      for _ = 1, 15 do
        assert(a:ListOTATaskByJob{ JobId = "job-1" })
        assert(b:ListOTATaskByJob{ JobId = "job-1" })
      end
      local elapsed = core.monotonic() - t0
      a:close()
      b:close()
      assert.are.same({ OK = 30 }, codes(emu))
      -- 30 requests spaced 100 ms apart take at least 2.9 s.
      assert.truthy(elapsed >= 2.8, "too fast: " .. elapsed)
    end)

    it("does not slow down a different key", function()
      -- At 1 request per second, a shared bucket would hold the second call for 1 s.
      local a = helpers.client(emu, { rate_limit = 1 })
      local b = helpers.client(emu, { rate_limit = 1, access_key_id = helpers.ak2.access_key_id,
                                      access_key_secret = helpers.ak2.access_key_secret })
      local t0 = core.monotonic()
      assert(a:ListOTATaskByJob{ JobId = "job-1" })
      assert(b:ListOTATaskByJob{ JobId = "job-1" })
      a:close()
      b:close()
      assert.truthy(core.monotonic() - t0 < 0.6)
    end)

    it("the emulator's limit is real: without the limiter the same load is throttled", function()
      emu:faults{ qps = 10 }
      local c = helpers.client(emu)
      local throttled
      for _ = 1, 30 do
        local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
        if not page then throttled = err break end
      end
      c:close()
      helpers.assert_error(throttled, "Throttling.User")
    end)
  end)

  describe("clock skew", function()
    local behind = function() return os.time() - 3600 end

    it("reports the offset measured from the server's Date header", function()
      local c = helpers.client(emu, { clock = behind })
      local page, err = c:ListOTATaskByJob{ JobId = "job-1" }
      c:close()
      assert.is_nil(page)
      helpers.assert_error(err, "InvalidTimeStamp.Expired")
      assert.truthy(math.abs(err.clock_offset - 3600) <= 3, tostring(err.clock_offset))
      assert.truthy(err.message:find("3600 s behind", 1, true) or err.message:find("3599 s behind", 1, true)
        or err.message:find("3601 s behind", 1, true), err.message)
      assert.truthy(err.message:find("correct_clock_skew", 1, true))
    end)

    it("corrects for it when asked", function()
      local c = helpers.client(emu, { clock = behind, correct_clock_skew = true })
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      assert(c:ListOTATaskByJob{ JobId = "job-1" })
      c:close()
      assert.are.same({ OK = 2, ["InvalidTimeStamp.Expired"] = 1 }, codes(emu))
    end)
  end)

  describe("a 10,000-task listing", function()
    local function retrying(extra)
      local opts = { max_retries = 3 }
      for k, v in pairs(extra or {}) do opts[k] = v end
      return helpers.client(emu, opts)
    end

    it("lists every task once through HTTP 500 on every 7th request", function()
      emu:faults{ error_500_every = 7 }
      local c = retrying()
      local tasks, err = list(c, JOB)
      c:close()
      assert.is_nil(err)
      assert.are.equal(N, #tasks)
      assert.truthy(codes(emu).InternalError >= 14)
    end)

    it("lists every task once through a connection reset on every 11th request", function()
      emu:faults{ reset_every = 11 }
      local c = retrying()
      local tasks, err = list(c, JOB)
      c:close()
      assert.is_nil(err)
      assert.are.equal(N, #tasks)
    end)

    for _, fault in ipairs({ "malformed_every", "truncated_every" }) do
      -- A read is asked again after a malformed or truncated answer.
      it("lists every task once through " .. fault .. " = 13 (a read is retried)", function()
        emu:faults{ [fault] = 13 }
        local c = retrying()
        local tasks, err = list(c, JOB)
        c:close()
        assert.is_nil(err)
        assert.are.equal(N, #tasks)
      end)

      it("raises a clear error on " .. fault .. " = 13 without retries, never a short list", function()
        emu:faults{ [fault] = 13 }
        local c = retrying{ max_retries = 0 }
        local tasks, err = list(c, JOB)
        c:close()
        helpers.assert_error(err, "SDK.BadResponse")
        assert.are.equal(1200, #tasks)
      end)
    end

    it("raises SDK.Timeout when responses are slower than the timeout", function()
      emu:faults{ latency_ms = 600 }
      local c = retrying({ timeout = 0.25, max_retries = 1 })
      local tasks, err = list(c, JOB)
      c:close()
      helpers.assert_error(err, "SDK.Timeout")
      assert.are.equal(2, err.attempts)
      assert.are.equal(0, #tasks)
    end)

    it("raises SDK.ResponseTooLarge for a body over the cap", function()
      emu:faults{ huge_body_bytes = 3 * 1024 * 1024 }
      local c = retrying({ max_body_bytes = 1024 * 1024 })
      local tasks, err = list(c, JOB)
      c:close()
      helpers.assert_error(err, "SDK.ResponseTooLarge")
      assert.are.equal(0, #tasks)
    end)

    it("two clients sharing one key at an emulator limit of 10 QPS both list everything #slow #realtime", function()
      emu:faults{ qps = 10 }
      local a = retrying({ rate_limit = 10 })
      local b = retrying({ rate_limit = 10 })
      local iter_a, iter_b = a:tasks{ JobId = JOB }, b:tasks{ JobId = JOB }
      local na, nb = 0, 0
      -- Interleave the two listings, page by page, as two scripts would.
      local done_a, done_b = false, false
      while not (done_a and done_b) do
        for _ = 1, 100 do
          if not done_a then if iter_a() then na = na + 1 else done_a = true end end
        end
        for _ = 1, 100 do
          if not done_b then if iter_b() then nb = nb + 1 else done_b = true end end
        end
      end
      a:close()
      b:close()
      assert.are.equal(N, na)
      assert.are.equal(N, nb)
      assert.is_nil(codes(emu)["Throttling.User"])
    end)
  end)

  describe("resources", function()
    -- This process's descriptors, one "fd -> target" line each, so that a failure
    -- shows what was left open. A child shell lists them, and it would also see our
    -- end of its own pipe, and for a moment the other end too, which popen closes in
    -- us only after the child started: both point to the pipe that is the shell's
    -- stdout, so those are left out, as is a descriptor closed during the listing.
    local function open_fds()
      local p = io.popen("cd /proc/" .. helpers.pid() .. "/fd && own=$(readlink /proc/$$/fd/1) && "
        .. "for f in *; do t=$(readlink $f); if [ -n \"$t\" ] && [ \"$t\" != \"$own\" ]; then "
        .. "echo \"$f -> $t\"; fi; done")
      local listing = p:read("*a")
      p:close()
      return listing
    end
    local rss_kib = helpers.rss_kib

    it("are the same before and after 1,000 requests", function()
      local c = helpers.client(emu)
      for _ = 1, 20 do assert(c:ListOTATaskByJob{ JobId = "job-100", PageSize = 100 }) end
      -- Twice: on 5.1/5.2/LuaJIT a session left by an earlier spec's client is only
      -- unreachable (and its socket closed by __gc) one cycle after that client.
      collectgarbage("collect")
      collectgarbage("collect")
      local fds, lua_kib, rss = open_fds(), collectgarbage("count"), rss_kib()
      for i = 1, 1000 do
        assert(c:ListOTATaskByJob{ JobId = "job-100", PageSize = 100, CurrentPage = 1 + i % 2 })
      end
      collectgarbage("collect")
      local fds_after = open_fds()
      c:close()
      -- Counted, not compared: the emulator's nginx closes a connection after 1,000
      -- requests, so the session's socket is a new one by now.
      local function count(listing) return select(2, listing:gsub("\n", "")) end
      assert.are.equal(count(fds), count(fds_after),
        "descriptors before 1,000 requests:\n" .. fds .. "after:\n" .. fds_after)
      assert.truthy(collectgarbage("count") < lua_kib * 1.1 + 64, "Lua heap grew")
      -- Under ASan or valgrind freed memory is held back on purpose (quarantine), so
      -- RSS says nothing there; the descriptor and Lua heap checks still hold.
      if not os.getenv("AIOT_SANITIZER") then
        assert.truthy(rss_kib() < rss + 4096, "RSS grew by " .. (rss_kib() - rss) .. " KiB")
      end
    end)
  end)
end)
