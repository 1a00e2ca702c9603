-- core.new_taskset: the listing's TaskId ledger outside the Lua heap (src/taskset.c),
-- checked against a Lua table and against Walk:take's Lua loop.
local core = require "aliyun.iot.core"
local math_type = math.type or require("helpers").math_type -- 5.1/5.2 have no math.type

local SANITIZER = os.getenv("AIOT_SANITIZER")
-- Memcheck runs about 50 times slower: the million-id checks use 200,000 ids there (the C
-- paths are the same; the bytes-per-task figure is checked at a million everywhere else).
local BIG = SANITIZER == "valgrind" and 200000 or 1000000

-- A deterministic pseudo-random generator (Park-Miller, exact in doubles on 5.1 too), so a
-- failure reproduces.
local function rng(seed)
  local x = seed
  return function(n)
    x = x * 16807 % 2147483647
    return x % n + 1
  end
end

-- Walk:take from lua/aliyun/iot/walk.lua, copied verbatim: the reference set:take must match.
local Walk = {}
function Walk:take(page, part, token)
  local ledger = self.ledger
  local seen, tasks = ledger.seen, page.tasks
  local kept, repeats, new = nil, 0, 0
  for i = 1, #tasks do
    local task = tasks[i]
    local id = task.TaskId
    local mark = id ~= nil and seen[id] or nil
    if mark == nil then
      if id ~= nil then
        seen[id] = token
        part.distinct = part.distinct + 1
      end
      new = new + 1
      if kept then kept[#kept + 1] = task end
    else
      if not kept then
        kept = {}
        for j = 1, i - 1 do kept[j] = tasks[j] end
      end
      if mark < part.first_token then
        part.distinct = part.distinct + 1
      elseif mark == token then
        repeats = repeats + 1
      end
      seen[id] = token
    end
  end
  if kept then page.tasks = kept end
  ledger.yielded = ledger.yielded + new
  part.repeats = part.repeats + repeats
  return page
end

-- The same step through set:take, as the walk will call it.
local function c_take(ledger, page, part, token)
  local new, distinct, repeats, kept = ledger.set:take(page.tasks, token, part.first_token)
  if kept then page.tasks = kept end
  ledger.yielded = ledger.yielded + new
  part.distinct = part.distinct + distinct
  part.repeats = part.repeats + repeats
  return page
end

describe("core.new_taskset", function()
  it("marks, gets and counts ids", function()
    local set = core.new_taskset()
    assert.equal(0, set:count())
    assert.is_nil(set:get("job-1-T0000001"))
    assert.is_nil(set:mark("job-1-T0000001", 1))
    assert.equal(1, set:get("job-1-T0000001"))
    assert.equal(1, set:mark("job-1-T0000001", 7))
    assert.equal(7, set:get("job-1-T0000001"))
    assert.equal(7, set:mark("job-1-T0000001", 2 ^ 31 - 1))
    assert.equal(2 ^ 31 - 1, set:get("job-1-T0000001"))
    assert.equal("integer", math_type(set:get("job-1-T0000001")))
    assert.equal(1, set:count())
    assert.is_nil(set:mark("job-1-T0000002", 3))
    assert.equal(2, set:count())
    assert.truthy(set:bytes() > 0)
    assert.truthy(tostring(set):match("^aliyun%.iot%.TaskSet %(.+, 2 ids%)$"), tostring(set))
    set:close()
  end)

  it("tells adversarial ids apart: empty, NULs, long, one byte apart, numbers, booleans", function()
    local long = string.rep("x", 100000)
    local ids = {
      "", "\0", "\0\0", "a\0b", "a\0c", "a", "a\0", long, long .. "y", long:sub(2) .. "y",
      string.rep("\255", 8), string.rep("\255", 9), string.rep("\0", 15), string.rep("\0", 16),
      "1", "1.0", 1, 2, -1, 0, 2 ^ 53, 2 ^ 63, -(2 ^ 63), 0.5, -0.5, math.huge, -math.huge,
      true, false, "true",
    }
    if math.maxinteger then ids[#ids + 1] = math.maxinteger end -- 2^63 - 1, not the float 2^63
    for n = 1, 40 do ids[#ids + 1] = string.rep("k", n) end -- every tail length of SipHash
    local set = core.new_taskset()
    for i, id in ipairs(ids) do
      assert.is_nil(set:mark(id, i), ("id %d (%q) looked seen"):format(i, tostring(id)))
    end
    assert.equal(#ids, set:count())
    for i, id in ipairs(ids) do assert.equal(i, set:get(id), tostring(id)) end
    -- Lua key equality: a float with an integer value is that integer; -0.0 is 0.
    assert.equal(set:get(1), set:get(1.0))
    assert.equal(set:get(0), set:get(-0.0))
    if math.tointeger then
      assert.equal(set:get(2 ^ 53), set:get(math.tointeger(2 ^ 53)))
      assert.equal(set:get(-(2 ^ 63)), set:get(math.mininteger))
    end
    assert.is_nil(set:get("0"))
    assert.equal(#ids, set:count())
    set:close()
  end)

  it("matches a Lua table on random ids, marks and lookups", function()
    local r = rng(12345)
    local set, ref = core.new_taskset(), {}
    local pool = {}
    for i = 1, 5000 do
      local n = r(40) - 1
      local b = {}
      for j = 1, n do b[j] = string.char(r(256) - 1) end
      pool[i] = table.concat(b)
    end
    local count = 0
    for _ = 1, 50000 do
      local id = pool[r(#pool)]
      if r(3) == 1 then
        assert.equal(ref[id], set:get(id))
      else
        local token = r(2 ^ 31 - 1)
        local prev = set:mark(id, token)
        assert.equal(ref[id], prev)
        if ref[id] == nil then count = count + 1 end
        ref[id] = token
      end
    end
    assert.equal(count, set:count())
    for id, mark in pairs(ref) do assert.equal(mark, set:get(id)) end
    set:close()
  end)

  it("grows from 1 to " .. BIG .. " ids, finding every one and no other", function()
    local set = core.new_taskset()
    local fmt = string.format
    for i = 1, BIG do
      assert(set:mark(fmt("job-1000000-T%07d", i), i % 1000 + 1) == nil, i)
      if i <= 100 or i % 9973 == 0 then
        assert.equal(i, set:count())
        assert(set:get(fmt("job-1000000-T%07d", i)) == i % 1000 + 1)
        assert(set:get(fmt("job-1000000-T%07d", i + 1)) == nil)
      end
    end
    for i = 1, BIG do
      local m = set:get(fmt("job-1000000-T%07d", i))
      if m ~= i % 1000 + 1 then error(("id %d: mark %s"):format(i, tostring(m))) end
    end
    for i = BIG + 1, BIG + 100000 do
      if set:get(fmt("job-1000000-T%07d", i)) ~= nil then error("id " .. i .. " looks seen") end
    end
    assert.equal(BIG, set:count())
    set:close()
  end)

  it("holds " .. BIG .. " ids in at most 24 bytes each, outside the Lua heap", function()
    collectgarbage()
    collectgarbage()
    local lua_before = collectgarbage("count")
    local set = core.new_taskset()
    local worst = 0
    for i = 1, BIG do
      set:mark("job-1000000-T" .. i, 1)
      if i % 10000 == 0 then
        local b = set:bytes() / set:count()
        if i >= 20000 and b > worst then worst = b end
        if i % 100000 == 0 then collectgarbage("step", 0) end
      end
    end
    local per = set:bytes() / set:count()
    collectgarbage()
    collectgarbage()
    local lua_kb = collectgarbage("count") - lua_before
    assert.equal(BIG, set:count())
    assert.truthy(per <= 24, ("bytes per task at %d: %.2f"):format(BIG, per))
    assert.truthy(worst <= 24, ("worst bytes per task from 20,000 to %d: %.2f"):format(BIG, worst))
    assert.truthy(lua_kb < 100, ("Lua heap grew by %.0f kB"):format(lua_kb))
    print(("\n    TaskSet: %.2f bytes per task at %d ids (worst %.2f from 20,000 up); "
      .. "Lua heap %+.0f kB"):format(per, BIG, worst, lua_kb))
    set:close()
  end)

  -- A set that grew among other allocations (here: small sets made while it grows, as a
  -- listing makes pages) hands its memory back to the system on close, so a long-lived nginx
  -- worker does not keep a big listing's peak. Linux's VmRSS; sanitizers map their own memory.
  local proc_status = io.open("/proc/self/status")
  if proc_status then proc_status:close() end
  local it_rss = (proc_status and not SANITIZER) and it or pending
  it_rss("gives its memory back to the system when closed", function()
    local rss_kb = require("helpers").rss_kib
    local others = {}
    local set = core.new_taskset()
    for i = 1, BIG do
      set:mark(i, 1)
      if i % 1000 == 0 then
        others[#others + 1] = core.new_taskset()
        others[#others]:mark(i, 1)
      end
    end
    local full, set_kb = rss_kb(), set:bytes() / 1024
    set:close()
    local given_back = (full - rss_kb()) / set_kb
    for _, other in ipairs(others) do other:close() end
    assert.truthy(given_back >= 0.95, ("closing a %.0f kB set gave back %.0f%% of it"):format(set_kb, given_back * 100))
  end)

  it("is sized up front for expected_count", function()
    local set = core.new_taskset(100000)
    local b0 = set:bytes()
    for i = 1, 90000 do set:mark("id" .. i, 1) end
    assert.equal(b0, set:bytes()) -- no growth before the expected count
    for i = 90001, 100000 do set:mark("id" .. i, 1) end
    assert.truthy(set:bytes() / 100000 <= 24, set:bytes() / 100000)
    for i = 100001, 300000 do set:mark("id" .. i, 1) end -- and it grows past it
    assert.equal(300000, set:count())
    for i = 1, 300000, 997 do assert.equal(1, set:get("id" .. i)) end
    set:close()
    assert.equal(0, core.new_taskset(0):count())
  end)

  it("rejects misuse", function()
    assert.has_error(function() core.new_taskset(-1) end)
    assert.has_error(function() core.new_taskset(1.5) end)
    assert.has_error(function() core.new_taskset("10") end)
    assert.has_error(function() core.new_taskset(1e13) end)
    local set = core.new_taskset()
    assert.has_error(function() set:mark("a") end)
    assert.has_error(function() set:mark("a", 0) end)
    assert.has_error(function() set:mark("a", 2 ^ 31) end)
    assert.has_error(function() set:mark("a", 1.5) end)
    assert.has_error(function() set:mark("a", 1e300) end)
    assert.has_error(function() set:mark(nil, 1) end)
    assert.has_error(function() set:mark({}, 1) end)
    assert.has_error(function() set:mark(0 / 0, 1) end, "bad argument #1 to 'mark' (id is NaN)")
    assert.has_error(function() set:get({}) end)
    assert.has_error(function() set.count({}) end)
    assert.has_error(function() set:take("x", 1, 1) end)
    assert.has_error(function() set:take({}, 0, 1) end)
    assert.has_error(function() set:take({}, 1, 1.5) end)
    assert.has_error(function() set:take({}, 1) end)
    assert.equal(0, set:count())
    set:close()
  end)

  it("closes idempotently; a closed set raises a clear error", function()
    local set = core.new_taskset()
    set:mark("a", 1)
    set:close()
    set:close()
    assert.equal("aliyun.iot.TaskSet (closed)", tostring(set))
    for _, call in ipairs({
      function() return set:mark("a", 1) end, function() return set:get("a") end,
      function() return set:count() end, function() return set:bytes() end,
      function() return set:take({}, 1, 1) end,
    }) do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.truthy(tostring(err):find("attempt to use a closed aliyun.iot.TaskSet", 1, true), err)
    end
    -- garbage collection of open and closed sets
    for _ = 1, 50 do
      local s = core.new_taskset(1000)
      s:mark("x", 1)
    end
    collectgarbage()
    collectgarbage()
  end)

  if _VERSION == "Lua 5.4" then
    it("closes a to-be-closed variable", function()
      local chunk = assert(load([[
        local core = ...
        local keep
        do
          local s <close> = core.new_taskset()
          s:mark("a", 1)
          keep = s
        end
        return keep
      ]]))
      assert.equal("aliyun.iot.TaskSet (closed)", tostring(chunk(core)))
    end)
  end
end)

describe("set:take", function()
  local function task(id) return { TaskId = id, DeviceName = "d" } end

  it("hands out new tasks without a copy, and says how many", function()
    local set = core.new_taskset()
    local tasks = { task("a"), task("b"), task("c") }
    local new, distinct, repeats, kept = set:take(tasks, 1, 1)
    assert.same({ 3, 3, 0 }, { new, distinct, repeats })
    assert.is_nil(kept)
    assert.equal(3, set:count())
    new, distinct, repeats, kept = set:take({}, 1, 1)
    assert.same({ 0, 0, 0 }, { new, distinct, repeats })
    assert.is_nil(kept)
    set:close()
  end)

  it("drops seen ids and counts repeats and other parts' ids", function()
    local set = core.new_taskset()
    set:take({ task("a"), task("b") }, 1, 1)  -- part 1, pass 1 (token 1)
    -- part 2 starts at token 2: "a" was seen only in part 1 -> distinct for part 2, not new
    local t = { task("a"), task("x"), task("x"), task(nil), task("b") }
    local new, distinct, repeats, kept = set:take(t, 2, 2)
    assert.same({ 2, 3, 1 }, { new, distinct, repeats }) -- a, x, b distinct; x twice
    assert.equal(2, #kept)
    assert.equal(t[2], kept[1])
    assert.equal(t[4], kept[2])
    -- part 2, pass 2 (token 3): everything seen in this part already, nothing repeats
    new, distinct, repeats, kept = set:take({ task("x"), task("a") }, 3, 2)
    assert.same({ 0, 0, 0 }, { new, distinct, repeats })
    assert.same({}, kept)
    assert.equal(3, set:get("x"))
    set:close()
  end)

  it("treats a table TaskId as new every time, and stores nothing for it", function()
    local set = core.new_taskset()
    local new, distinct, repeats, kept = set:take({ task({}), task("a"), task({}) }, 1, 1)
    assert.same({ 3, 3, 0 }, { new, distinct, repeats })
    assert.is_nil(kept)
    assert.equal(1, set:count())
    set:close()
  end)

  it("changes nothing when it raises", function()
    local set = core.new_taskset()
    set:take({ task("a") }, 1, 1)
    assert.has_error(function() set:take({ task("b"), "not a task" }, 2, 2) end)
    assert.has_error(function() set:take({ task("c"), task(0 / 0) }, 2, 2) end)
    assert.has_error(function() set:take({ task("d") }, 0, 1) end)
    assert.equal(1, set:count())
    assert.is_nil(set:get("b"))
    assert.is_nil(set:get("c"))
    assert.equal(1, set:get("a"))
    set:close()
  end)

  it("matches Walk:take on random listings with repeats, passes and parts", function()
    local r = rng(777)
    for round = 1, 60 do
      local pool_size = ({ 50, 300, 3000 })[round % 3 + 1]
      local page_size = ({ 1, 7, 100, 250 })[round % 4 + 1]
      local ref = { ledger = { seen = {}, token = 0, yielded = 0 } }
      local ours = { set = core.new_taskset(), yielded = 0 }
      local token = 0
      for _ = 1, r(5) do                               -- parts
        local ref_part = { distinct = 0, repeats = 0, first_token = token + 1 }
        local our_part = { distinct = 0, repeats = 0, first_token = token + 1 }
        for _ = 1, r(3) do                             -- passes
          token = token + 1
          for _ = 1, r(12) do                          -- pages
            local tasks = {}
            for i = 1, r(page_size) do
              local k = r(pool_size + math.floor(pool_size / 10))
              -- a few tasks without a TaskId, some numeric ids, the rest strings
              local id = k > pool_size and nil or (k % 17 == 0 and k or ("job-T" .. k))
              tasks[i] = task(id)
            end
            local copy = {}
            for i, t in ipairs(tasks) do copy[i] = t end
            local p1 = Walk.take(ref, { tasks = tasks }, ref_part, token)
            local p2 = c_take(ours, { tasks = copy }, our_part, token)
            assert.equal(#p1.tasks, #p2.tasks)
            for i = 1, #p1.tasks do assert(rawequal(p1.tasks[i], p2.tasks[i]), "task " .. i) end
            assert.equal(p1.tasks == tasks, p2.tasks == copy) -- copied exactly when Lua copies
            assert.equal(ref_part.distinct, our_part.distinct)
            assert.equal(ref_part.repeats, our_part.repeats)
            assert.equal(ref.ledger.yielded, ours.yielded)
          end
        end
      end
      local n = 0
      for id, mark in pairs(ref.ledger.seen) do
        n = n + 1
        assert.equal(mark, ours.set:get(id))
      end
      assert.equal(n, ours.set:count())
      ours.set:close()
    end
  end)

  it("takes a page bigger than its stack scratch", function()
    local set = core.new_taskset()
    local tasks = {}
    for i = 1, 10000 do tasks[i] = task("t" .. (i % 6000)) end
    local new, distinct, repeats, kept = set:take(tasks, 1, 1)
    assert.same({ 6000, 6000, 4000 }, { new, distinct, repeats })
    assert.equal(6000, #kept)
    assert.equal(6000, set:count())
    set:close()
  end)
end)
