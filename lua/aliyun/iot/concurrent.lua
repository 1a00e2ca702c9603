--- The concurrent pager's engine: up to N ListOTATaskByJob calls in flight,
-- each one still reserving its slot from the rate limiter and sent no
-- earlier than that slot, results handed to the pager in list order.
--
-- pager.lua keeps the partition logic (DeviceNames chunks, TaskStatus split
-- past the depth cap, de-duplication); it asks this module, through
-- `fetch_all(list, each)`, for a batch of calls (pages 2..last of a part, the
-- status probes, the DeviceNames chunks). Page 1 of each part still goes
-- through the client's ordinary sequential call: it says how many pages follow.
--
-- Three ways to have several requests in flight (an "engine": start(id, req),
-- wait(max_seconds) -> finished results, pending(), close()):
--   * plain Lua with the libcurl transport: core.new_multi (C, libcurl multi);
--     its wait() keeps every transfer moving while the limiter makes us wait;
--   * inside nginx where cosockets work: one ngx.thread per request over the
--     client's own transport (resty); ngx.sleep for waits;
--   * any other transport object: requests one at a time (no concurrency,
--     same results and ordering).
-- Nothing here runs Lua inside libcurl or yields across a C call: multi:wait()
-- returns before the pager's coroutine yields a task.
local core = require("aliyun.iot.core")
local errors = require("aliyun.iot.errors")
local params = require("aliyun.iot.params")
local request = require("aliyun.iot.request")

local getmetatable, pairs, rawget, setmetatable, type = getmetatable, pairs, rawget, setmetatable, type
local error, tostring = error, tostring
local min, max = math.min, math.max
local decode_tasks = core.decode_tasks

local concurrent = {}

-- Results waiting for an earlier page are kept at most this many pages ahead
-- of the next page to hand out, times the concurrency (bounds memory while a
-- page is backing off before a retry).
concurrent.WINDOW_FACTOR = 4
-- Longest single wait while transfers are in flight and nothing is scheduled.
local IDLE_WAIT = 1

local REQUEST_ID_HEADER = request.REQUEST_ID_HEADER
local retry_after = request.retry_after

-- ---- engines ------------------------------------------------------------

local function is_session(t)
  local mt = type(t) == "userdata" and getmetatable(t)
  return type(mt) == "table" and rawget(mt, "__name") == "aliyun.iot.Session"
end

-- libcurl multi: the C core's Multi userdata.
local function multi_engine(state, n)
  local options = require("aliyun.iot.transport.curl").options(state.transport_opts or {})
  options.size = n
  local m = core.new_multi(options)
  return {
    kind = "multi",
    multi = m,
    start = function(id, req) m:add(id, req.method, req.url, req.headers, req.body) end,
    wait = function(seconds) return m:wait(seconds) end,
    pending = function() return m:pending() end,
    close = function() m:close() end,
  }
end

-- nginx: a light thread per request over the client's transport.
local function ngx_engine(state, ngx)
  local transport = state.transport
  local threads, count = {}, 0
  local spawn, wait, kill = ngx.thread.spawn, ngx.thread.wait, ngx.thread.kill
  local unpack = rawget(table, "unpack") or rawget(_G, "unpack")
  local function run(id, req)
    local ok, status, body, headers = pcall(transport.request, transport, req.method, req.url, req.headers, req.body)
    if not ok then
      return id, nil, errors.new(errors.codes.TRANSPORT_ERROR, tostring(status), { retryable = false })
    end
    return id, status, body, headers
  end
  local function sleeper(seconds) ngx.sleep(seconds) return false end
  return {
    kind = "ngx.thread",
    start = function(id, req)
      threads[id] = spawn(run, id, req)
      count = count + 1
    end,
    wait = function(seconds)
      if count == 0 then
        if seconds > 0 then ngx.sleep(seconds) end
        return {}
      end
      local list = {}
      for _, th in pairs(threads) do list[#list + 1] = th end
      local timer
      if seconds < IDLE_WAIT then
        timer = spawn(sleeper, max(seconds, 0.001))
        list[#list + 1] = timer
      end
      local ok, id, status, body, headers = wait(unpack(list))
      if timer then kill(timer) end
      if not ok or id == false or threads[id] == nil then return {} end
      threads[id] = nil
      count = count - 1
      if status == nil then return { { id = id, err = body } } end
      return { { id = id, status = status, body = body, headers = headers or {} } }
    end,
    pending = function() return count end,
    close = function()
      for id, th in pairs(threads) do
        kill(th)
        threads[id] = nil
      end
      count = 0
    end,
  }
end

-- Any other transport: one request at a time, inside start().
local function sync_engine(state)
  local transport = state.transport
  local done = {}
  return {
    kind = "sequential",
    start = function(id, req)
      local status, body, headers = transport:request(req.method, req.url, req.headers, req.body)
      if status == nil then
        done[#done + 1] = { id = id, err = body }
      else
        done[#done + 1] = { id = id, status = status, body = body, headers = headers or {} }
      end
    end,
    wait = function(seconds)
      if #done == 0 then
        if seconds > 0 then state.sleep(seconds) end
        return {}
      end
      local out = done
      done = {}
      return out
    end,
    pending = function() return #done end,
    close = function() done = {} end,
  }
end

local function cosocket_ngx()
  local ngx = rawget(_G, "ngx")
  if not (ngx and ngx.thread and ngx.get_phase) then return nil end
  local ok, resty = pcall(require, "aliyun.iot.transport.resty")
  if ok and type(resty.cosockets_available) == "function" and resty.cosockets_available() then return ngx end
  return nil
end

--- The engine for a client state and a concurrency.
function concurrent.engine(state, n)
  local ngx = cosocket_ngx()
  if ngx then return ngx_engine(state, ngx) end
  if is_session(state.transport) then return multi_engine(state, n) end
  return sync_engine(state)
end

-- ---- the batch fetcher ------------------------------------------------

-- A failed call, kept in the results table.
local Failure = {}
local function failure(err) return setmetatable({ err = err }, Failure) end

--- fetch_all for pager.walk over a client state, with up to n in flight.
-- Returns fetch_all and the engine (whose close() ends everything in flight).
function concurrent.fetcher(state, n)
  local engine = concurrent.engine(state, n)
  local inflight = {}          -- request id -> { batch, index, creds }
  local next_id = 0
  local batch_no = 0
  local window = max(concurrent.WINDOW_FACTOR * n, n + 1)
  local monotonic = state.monotonic

  local function fetch_all(list, each)
    batch_no = batch_no + 1
    local batch = batch_no
    local count = #list
    local flat, results, attempts, started, skew_corrected = {}, {}, {}, {}, {}
    local retry = {}             -- index -> time it may be sent again
    local limiter_ready_at = 0   -- the limiter refused a slot before this time
    local next_new, next_emit = 1, 1

    for i = 1, count do
      local f, err = params.for_action("ListOTATaskByJob", list[i])
      if f then flat[i] = f else results[i] = failure(err) end
    end

    -- Send `index` now if the limiter has a slot free now; else return the
    -- seconds until it will. Slots are never reserved ahead: a reservation
    -- made while the caller holds the iterator would be sent late, bunched
    -- with the next ones, and a gateway counting per second sees a burst.
    local function try_send(index, now)
      local req, creds = request.prepare(state, "ListOTATaskByJob", flat[index])
      if not req then
        results[index] = failure(creds)
        return 0
      end
      if state.limiter then
        local wait = state.limiter:try(creds.access_key_id, now)
        if wait > 0 then return wait end
      end
      attempts[index] = (attempts[index] or 0) + 1
      started[index] = started[index] or now
      next_id = next_id + 1
      inflight[next_id] = { batch = batch, index = index, creds = creds }
      engine.start(next_id, req)
      return 0
    end

    -- A finished transfer of this batch: a page, a final failure, or a retry.
    local function settle(r, now)
      local entry = inflight[r.id]
      inflight[r.id] = nil
      if not entry or entry.batch ~= batch then return end -- abandoned by an earlier batch
      local index, creds = entry.index, entry.creds
      local page, err
      if r.err then
        err = r.err
      else
        page, err = decode_tasks(r.body, r.status)
        if page == nil and err.request_id == nil then err.request_id = r.headers[REQUEST_ID_HEADER] end
      end
      if page ~= nil then
        results[index] = page
        return
      end
      errors.redact(err, { creds.access_key_secret, creds.security_token })
      local attempt = attempts[index]
      if attempt > 1 then err.attempts = attempt end
      local delay, corrected = retry_after(state, err, r.headers, attempt, started[index], now,
        skew_corrected[index])
      if delay == nil then
        results[index] = failure(err)
        return
      end
      if corrected then skew_corrected[index] = true end
      retry[index] = now + delay
    end

    while next_emit <= count do
      -- Hand out every page that is ready, in order.
      local r = results[next_emit]
      while r ~= nil do
        results[next_emit] = nil
        if getmetatable(r) == Failure then error(r.err, 0) end
        next_emit = next_emit + 1
        if each(r) == false then return end
        r = results[next_emit]
      end
      if next_emit > count then return end

      local now = monotonic()
      -- Fill free places: retries that are due first (lowest page first), then new pages.
      while engine.pending() < n and now >= limiter_ready_at do
        local pick, from_retry
        for index, at in pairs(retry) do
          if at <= now and (pick == nil or index < pick) then pick = index end
        end
        if pick then
          from_retry = retry[pick]
          retry[pick] = nil
        elseif next_new <= count and next_new < next_emit + window then
          pick = next_new
          next_new = next_new + 1
        else
          break
        end
        if results[pick] == nil then -- (failed validation: nothing to send)
          local wait = try_send(pick, now)
          if wait > 0 then
            -- Not sent: put it back and wait for the limiter.
            if from_retry then retry[pick] = from_retry else next_new = pick end
            limiter_ready_at = now + wait
          end
        end
      end
      if results[next_emit] == nil then
        -- Wait for a transfer, the next limiter slot or the next retry.
        local until_at = math.huge
        if engine.pending() < n then
          local waiting = next_new <= count and next_new < next_emit + window
          for _, at in pairs(retry) do
            until_at = min(until_at, at)
            waiting = true
          end
          if waiting and limiter_ready_at > now then until_at = max(until_at, limiter_ready_at) end
          if waiting and next_new <= count and next_new < next_emit + window then
            until_at = min(until_at, max(now, limiter_ready_at))
          end
        end
        local timeout = until_at == math.huge and IDLE_WAIT or max(0, until_at - now)
        local finished = engine.wait(timeout)
        now = monotonic()
        for i = 1, #finished do settle(finished[i], now) end
      end
    end
  end

  return fetch_all, engine
end

--- Iterator closer for Lua 5.4's generic for (4th value): a `break` out of
-- the loop ends what is still in flight at once instead of at collection.
-- (No __gc here: a caller may drop it while the iterator runs on; the Multi
-- userdata has its own __gc.)
function concurrent.closer(engine)
  return setmetatable({}, { __close = function() engine.close() end })
end

return concurrent
