-- The promise, against a hostile server: a listing that ends without an
-- error yielded every task of the job exactly once; anything else is a raised
-- error table with a code. Each case is one of the emulator's fault modes
-- (spec/emulator/README.md, "Fault options"), run with concurrency = 1 and with
-- the default concurrency. Writes whose answer was lost are executed once and
-- reported as possibly carried out; a deadline bounds a single attempt.
local helpers = require("helpers")
local core = require("aliyun.iot.core")
local cjson = require("cjson.safe")
local jobs = helpers.jobs

local format = string.format

-- Retries on, as a production client would run; no rate limiter (the
-- emulator does not throttle unless a spec asks).
local CLIENT = { max_retries = 3, rate_limit = false }

-- 12345 -> "12,345"
local function thousands(n)
  local s = tostring(n)
  local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
  return (out:gsub("^,", ""))
end

-- The TaskIds of a job (optionally only those whose status passes `keep(i)`).
local function job_ids(job_id, keep)
  local job = assert(jobs.parse(job_id))
  local set, n = {}, 0
  for i = 1, job.size do
    if not keep or keep(i) then
      set[jobs.task(job, i).TaskId] = true
      n = n + 1
    end
  end
  return set, n
end

-- Runs a listing; returns the tasks yielded and what it raised (nil when it
-- ended normally).
local function run_listing(client, p)
  local tasks = {}
  local ok, err = pcall(function()
    for task in client:tasks(p) do tasks[#tasks + 1] = task end
  end)
  return tasks, (not ok) and err or nil
end

-- What was yielded, against the expected set: distinct count, duplicates,
-- one missing and one unexpected TaskId.
local function tally(tasks, expected)
  local seen, distinct, dups, extra = {}, 0, 0, nil
  for _, t in ipairs(tasks) do
    local id = t.TaskId
    if seen[id] then
      dups = dups + 1
    else
      seen[id] = true
      distinct = distinct + 1
      if not expected[id] then extra = extra or id end
    end
  end
  local missing
  for id in pairs(expected) do
    if not seen[id] then
      if not missing or id < missing then missing = id end
    end
  end
  return { distinct = distinct, dups = dups, missing = missing, extra = extra, seen = seen }
end

local function describe_outcome(tasks, expected, n, err)
  local t = tally(tasks, expected)
  local s = format("got %s distinct tasks of %s", thousands(t.distinct), thousands(n))
  if t.dups > 0 then s = s .. format(", %s yielded twice", thousands(t.dups)) end
  if t.missing then s = s .. ", missing e.g. " .. t.missing end
  if t.extra then s = s .. ", unexpected e.g. " .. t.extra end
  if err == nil then return s .. " and no error" end
  if type(err) ~= "table" then return s .. ", then a non-table error: " .. tostring(err) end
  return s .. ", then error " .. tostring(err.code) .. ": " .. tostring(err.message)
end

-- A complete listing: each expected task exactly once, nothing else.
local function is_complete(tasks, expected, n)
  local t = tally(tasks, expected)
  return t.dups == 0 and t.distinct == n and not t.missing and not t.extra
end

local function one_of(code, codes)
  for _, c in ipairs(codes) do if c == code then return true end end
  return false
end

-- The fields of SDK.IncompleteListing.
local function assert_incomplete_fields(err)
  assert(type(err.expected) == "number", "SDK.IncompleteListing without a numeric `expected`: " .. tostring(err))
  assert(type(err.got) == "number", "SDK.IncompleteListing without a numeric `got`: " .. tostring(err))
  assert(type(err.part) == "string" and err.part ~= "",
    "SDK.IncompleteListing without a `part` description: " .. tostring(err))
  assert(type(err.passes) == "number" and err.passes >= 1,
    "SDK.IncompleteListing without a numeric `passes`: " .. tostring(err))
  assert(err.got ~= err.expected, "SDK.IncompleteListing with got == expected: " .. tostring(err))
end

-- The promise. `how`:
--   complete = false   ending normally is not acceptable (the fault cannot be
--                      worked around), else it is, with every task once
--   codes = {...}      error codes acceptable instead (nil: any code; {}: none)
-- Whatever was yielded before an error must hold no duplicate.
local function assert_promise(tasks, err, expected, n, how)
  local outcome = describe_outcome(tasks, expected, n, err)
  local wanted
  if how.codes and #how.codes == 0 then
    wanted = "every task once"
  else
    wanted = (how.complete ~= false and "every task once or " or "")
      .. (how.codes and table.concat(how.codes, " or ") or "an error with a code")
  end
  if err == nil then
    assert(how.complete ~= false, "expected " .. wanted .. ", but the listing ended normally: " .. outcome)
    assert(is_complete(tasks, expected, n), "expected " .. wanted .. ": " .. outcome)
    return
  end
  assert(type(err) == "table" and err.code, "the listing raised something other than an error table: " .. outcome)
  helpers.assert_error(err)
  assert(tally(tasks, expected).dups == 0, outcome)
  if how.codes then
    assert(one_of(err.code, how.codes), "expected " .. wanted .. ": " .. outcome)
  end
  if err.code == "SDK.IncompleteListing" then assert_incomplete_fields(err) end
end

-- Concurrency settings every listing case runs with: 1, and the default
-- (no option: the pager's DEFAULT_CONCURRENCY, 4).
local CONCURRENCY = {
  { name = "concurrency 1", opt = 1 },
  { name = "default concurrency", opt = nil },
}

local function listing_params(p, c)
  local q = {}
  for k, v in pairs(p) do q[k] = v end
  q.concurrency = c.opt
  return q
end

describe("trust: a listing yields every task once or raises", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  -- One `it` per fault case and concurrency.
  -- case = { name, faults, params, how, client (options), tags }
  local function case(c)
    for _, conc in ipairs(CONCURRENCY) do
      it(c.name .. " (" .. conc.name .. ")" .. (c.tags or ""), function()
        emu:faults(c.faults)
        local client = helpers.client(emu, c.client or CLIENT)
        local tasks, err = run_listing(client, listing_params(c.params, conc))
        client:close()
        local expected, n = job_ids(c.params.JobId)
        assert_promise(tasks, err, expected, n, c.how or {})
      end)
    end
  end

  describe("shifting pages", function()
    case{ name = "10 tasks move from the tail to the front after every page",
          faults = { shift_tasks = 10 }, params = { JobId = "job-2000" },
          how = { codes = { "SDK.IncompleteListing" } } }
    case{ name = "25 tasks move to the front after page 3 only",
          faults = { shift_tasks = 25, shift_after_page = 3 }, params = { JobId = "job-1000" },
          how = { codes = { "SDK.IncompleteListing" } } }

    -- Tasks change status while a TaskStatus listing pages. The listing must
    -- hold, once, every task in the status at the end; a task that was in it
    -- at the start and left may be there too (it may have been read before it
    -- left), and is set aside before the check.
    local function tasks_now(job_id, status)
      emu:faults{}   -- the job's changed statuses stay; no more changes
      local set, n = {}, 0
      local c = helpers.client(emu)
      for t in c:tasks{ JobId = job_id, TaskStatus = status, concurrency = 1 } do
        set[t.TaskId] = true
        n = n + 1
      end
      c:close()
      return set, n
    end

    for _, sc in ipairs({
      { name = "10 tasks leave a TaskStatus=QUEUED listing after every page", job = "job-4000", status = "QUEUED",
        faults = { status_leave_tasks = 10 } },
      { name = "10 tasks enter a TaskStatus=IN_PROGRESS listing after every page", job = "job-2000",
        status = "IN_PROGRESS", faults = { status_enter_tasks = 10 } },
    }) do
      for _, conc in ipairs(CONCURRENCY) do
        it(sc.name .. " (" .. conc.name .. ")", function()
          emu:faults(sc.faults)
          local client = helpers.client(emu, CLIENT)
          local tasks, err = run_listing(client,
            listing_params({ JobId = sc.job, TaskStatus = sc.status, PageSize = 50 }, conc))
          client:close()
          local final, n = tasks_now(sc.job, sc.status)
          local was_in, kept = job_ids(sc.job, function(i) return jobs.status_of(i) == sc.status end), {}
          for _, t in ipairs(tasks) do
            if final[t.TaskId] or not was_in[t.TaskId] then kept[#kept + 1] = t end
          end
          assert.is_true(n > 0)
          assert_promise(kept, err, final, n, { codes = { "SDK.IncompleteListing" } })
        end)
      end
    end
  end)

  describe("a page of repeats", function()
    case{ name = "page 3 holds page 2's tasks once", faults = { repeat_page_once = 3 },
          params = { JobId = "job-1000" }, how = { codes = { "SDK.IncompleteListing" } } }
    case{ name = "page 3 holds page 2's tasks every time", faults = { repeat_page = 3 },
          params = { JobId = "job-1000" }, how = { complete = false, codes = { "SDK.IncompleteListing" } } }
  end)

  describe("lying counts", function()
    case{ name = "PageCount 0 with 250 tasks", faults = { page_count_zero = 1 }, params = { JobId = "job-250" },
          how = { codes = { "SDK.IncompleteListing", "SDK.BadResponse" } } }
    case{ name = "PageCount 1 with 250 tasks", faults = { page_count_one = 1 }, params = { JobId = "job-250" },
          how = { codes = { "SDK.IncompleteListing", "SDK.BadResponse" } } }
    case{ name = "Total grows by 30 from page 2 on", faults = { total_grow = 30 }, params = { JobId = "job-1000" },
          how = { codes = { "SDK.IncompleteListing", "SDK.BadResponse" } } }
    case{ name = "Total shrinks by 150 from page 2 on", faults = { total_shrink = 150 },
          params = { JobId = "job-1000" }, how = { codes = { "SDK.IncompleteListing", "SDK.BadResponse" } } }
    case{ name = "an empty page 4 of 10, once", faults = { empty_page_once = 4 }, params = { JobId = "job-1000" },
          how = { codes = { "SDK.IncompleteListing" } } }
    case{ name = "an empty page 4 of 10, every time", faults = { empty_page = 4 }, params = { JobId = "job-1000" },
          how = { complete = false, codes = { "SDK.IncompleteListing" } } }
    case{ name = "page 3 answered as page 4 (CurrentPage 4)", faults = { wrong_page = 3 },
          params = { JobId = "job-1000" }, how = { complete = false, codes = { "SDK.BadResponse" } } }
  end)

  describe("unknown status", function()
    -- 100,020 tasks, too deep for one listing: split by TaskStatus, whose seven
    -- documented parts hold 95,019; 5,001 tasks are SCHEDULED. The device phase
    -- finds them (every task once); where the product's devices cannot be
    -- enumerated (no QueryDevice permission), the listing must say it is short.
    case{ name = "a 100,020-task job with 5,001 tasks in an undocumented status", tags = " #slow #big",
          faults = {}, params = { JobId = "job-100020-with-SCHEDULED" },
          how = { codes = { "SDK.IncompleteListing" } } }
    case{ name = "the same job where QueryDevice is denied", tags = " #slow #big",
          faults = { deny_QueryDevice = 1 }, params = { JobId = "job-100020-with-SCHEDULED" },
          how = { complete = false, codes = { "SDK.IncompleteListing" } } }
  end)

  describe("HTTP 200 without Success: true", function()
    case{ name = "Throttling.User with HTTP 200 and no Success, first try of every 2nd page",
          faults = { throttle_200_once_every = 2 }, params = { JobId = "job-1000" },
          how = { codes = { "SDK.BadResponse" } } }
    case{ name = "Success as the string \"false\", first try of every 2nd page",
          faults = { success_string_once_every = 2 }, params = { JobId = "job-1000" },
          how = { codes = { "iot.system.SystemException", "SDK.BadResponse" } } }
    case{ name = "Data without a Success field, first try of every 2nd page",
          faults = { success_missing_once_every = 2 }, params = { JobId = "job-1000" },
          how = { codes = { "SDK.BadResponse" } } }
  end)

  describe("redirects and 1xx", function()
    for _, status in ipairs({ 301, 302, 307 }) do
      case{ name = "HTTP " .. status .. " with a Location and a valid page for a body, first try of every 2nd page",
            faults = { redirect_once_every = 2, redirect_status = status }, params = { JobId = "job-1000" },
            how = { complete = false, codes = { "SDK.HttpError" } } }
    end
    case{ name = "a final HTTP 103 with the page after it, first try of every 2nd page",
          faults = { informational_once_every = 2 }, params = { JobId = "job-1000" }, how = {} }
    case{ name = "103 Early Hints before every answer", faults = { early_hints_every = 1 },
          params = { JobId = "job-1000" }, how = { codes = {} } }
  end)

  describe("reset after the nonce was recorded", function()
    -- Reads may be retried with a fresh nonce: these listings must complete.
    local must_complete = { codes = {} }
    case{ name = "first try of every 2nd page reset after its nonce was recorded",
          faults = { reset_after_nonce_once_every = 2 }, params = { JobId = "job-1000" }, how = must_complete }
    case{ name = "every 3rd request on a reused connection reset after its nonce was recorded",
          faults = { reset_reused_every = 3 }, params = { JobId = "job-1000" }, how = must_complete }
    case{ name = "every 4th request reset after its nonce was recorded",
          faults = { reset_after_nonce_every = 4 }, params = { JobId = "job-1000" }, how = must_complete }
    case{ name = "every 5th request reset before it was read (the old fault)",
          faults = { reset_every = 5 }, params = { JobId = "job-1000" }, how = must_complete }
  end)
end)

describe("trust: a write whose answer was lost", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  local function executions(action)
    local all = assert(cjson.decode(emu:control("GET", "executions")))
    return all[action] or { calls = 0, ok = 0 }
  end

  local WRITES = {
    { action = "CancelOTATaskByJob", params = { JobId = "job-1000", CancelQueuedTask = true } },
    { action = "ReupgradeOTATask", params = { JobId = "job-1000", TaskId = { jobs.task("job-1000", 2).TaskId } } },
  }
  local LOSSES = {
    { name = "HTTP 502 after it was executed", faults = { write_502_every = 1 } },
    { name = "the connection reset after it was executed (fresh connection)", faults = { write_reset_every = 1 } },
    { name = "the connection reset after it was executed (reused connection: libcurl re-sends it)",
      faults = { write_reset_every = 1 }, warm = true },
    { name = "an answer later than the client's timeout", faults = { write_timeout_every = 1,
      write_timeout_ms = 2500 }, client = { timeout = 1 }, tags = " #slow" },
  }

  for _, w in ipairs(WRITES) do
    for _, loss in ipairs(LOSSES) do
      local title = w.action .. ": " .. loss.name .. " is executed once and reported as maybe executed"
      it(title .. (loss.tags or ""), function()
        local opts = { max_retries = 3, rate_limit = false }
        for k, v in pairs(loss.client or {}) do opts[k] = v end
        local client = helpers.client(emu, opts)
        -- A read first keeps a connection alive for the write to reuse.
        if loss.warm then assert(client:call("QueryOTAJob", { JobId = "job-1000" })) end
        emu:faults(loss.faults)
        local result, err = client:call(w.action, w.params)
        client:close()
        local ex = executions(w.action)
        assert(ex.calls == 1, format("the emulator executed %s %d times (expected exactly once); the client %s",
          w.action, ex.calls, result and "returned success" or ("returned " .. tostring(err and err.code))))
        assert(result == nil, "the client returned success for a write whose answer was lost")
        helpers.assert_error(err)
        assert(err.maybe_executed == true, format("error %s without maybe_executed = true: %s", tostring(err.code),
          tostring(err)))
        local msg = tostring(err.message):lower()
        local says = false
        for _, phrase in ipairs({ "may have", "might have", "maybe", "possibly", "carried out", "unknown whether" }) do
          says = says or msg:find(phrase, 1, true) ~= nil
        end
        assert(says, "the message does not say the write may have been carried out: " .. tostring(err.message))
      end)
    end
  end
end)

describe("trust: the deadline bounds an attempt", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)

  it("deadline = 2 with timeout = 10 against an 11 s server returns within about 3 s #slow", function()
    emu:faults{ latency_ms = 11000 }
    local client = helpers.client(emu, { deadline = 2, timeout = 10, max_retries = 3 })
    local t0 = core.monotonic()
    local result, err = client:call("ListOTATaskByJob", { JobId = "job-10" })
    local elapsed = core.monotonic() - t0
    client:close()
    assert.is_nil(result)
    helpers.assert_error(err)
    assert(elapsed < 3.5, format("took %.1f s (error %s)", elapsed, tostring(err.code)))
  end)
end)
