--- The scheduler: every call the client sends, one alone or the pages of a
-- listing, goes out from here. It keeps up to N attempts in flight through a
-- transport's engine, takes each attempt's slot from the rate limiter at the
-- moment it is sent, hands every answer to request.settle (one attempt's
-- tail), waits out retries, and gives the results back in the order the
-- calls were asked for.
--
-- It knows no transport, no nginx and no action: an engine (from
-- aliyun.iot.transport.engine) is
--   start(id, req)           send req = { method, url, headers, body }
--   wait(seconds) -> list    finished attempts: { id, status, body, headers } or { id, err };
--                            sleeps up to `seconds` when nothing is in flight
--   pending() -> n           started and not yet returned by wait
--   close()                  abandon whatever is in flight
-- Nothing here runs inside a C transfer or yields across a C call: an engine's
-- wait() returns before the caller's coroutine yields a result.
local request = require("aliyun.iot.request")

local error, getmetatable, setmetatable, pairs, type = error, getmetatable, setmetatable, pairs, type
local min, max, huge = math.min, math.max, math.huge

local schedule = {}

-- Results waiting for an earlier call are kept at most this many calls ahead
-- of the next one to hand out, times the concurrency (bounds memory while a
-- page is backing off before a retry).
schedule.WINDOW_FACTOR = 4
-- Longest single wait while transfers are in flight and nothing is due.
local IDLE_WAIT = 1

-- A failed call, kept in the results table until its turn comes.
local Failure = {}
local function failure(err) return setmetatable({ err = err }, Failure) end

local Scheduler = {}
Scheduler.__index = Scheduler

--- schedule.new(state, engine, n): state is the client's (limiter,
-- monotonic; see aliyun.iot); n the most attempts in flight at once.
function schedule.new(state, engine, n)
  return setmetatable({
    state = state, engine = engine, n = n,
    inflight = {},   -- attempt id -> { batch, index, creds }
    next_id = 0, batch_no = 0,
    window = max(schedule.WINDOW_FACTOR * n, n + 1),
  }, Scheduler)
end

--- Run `calls` (each from request.call) and call `each(value, i, call)` for
-- each result in order. `calls` is a list, or a source function returning the
-- next call, nil when none is ready yet (it waits on a result still to be
-- handed out), or false when there are no more. Returns true when every
-- result was handed out or `each` returned false (the rest are not wanted;
-- what is in flight is left to finish or be abandoned), or nil, err for the
-- first call (in order) that failed for good, after the results before it
-- were handed out.
function Scheduler:run(calls, each)
  local state, engine, n, inflight = self.state, self.engine, self.n, self.inflight
  local monotonic, limiter = state.monotonic, state.limiter
  self.batch_no = self.batch_no + 1
  local batch = self.batch_no
  local source, exhausted = nil, true
  if type(calls) == "function" then source, calls, exhausted = calls, {}, false end
  -- Calls known so far; each is dropped once its result is handed out, so a
  -- long run from a source holds only what is in flight or waiting.
  local known = #calls
  local results = {}
  local retry = {}             -- index -> monotonic time it may be sent again
  local limiter_ready_at = 0   -- the limiter refused a slot before this time
  local next_new, next_emit = 1, 1
  local window = self.window

  -- Send call `index` if the limiter has a slot free now; else return the
  -- seconds until it will (nothing sent).
  local function try_send(index, now)
    local creds, err = state.credentials:get()
    if not creds then
      results[index] = failure(err)
      return 0
    end
    if limiter then
      local wait, lerr = limiter:try(creds.access_key_id, calls[index].action, now)
      if wait == nil then
        -- The limiter's shared store is down and was required: the call fails.
        results[index] = failure(lerr)
        return 0
      end
      if wait > 0 then return wait end
    end
    local req
    req, creds = request.next_attempt(calls[index], now, creds)
    if not req then
      results[index] = failure(creds)
      return 0
    end
    self.next_id = self.next_id + 1
    inflight[self.next_id] = { batch = batch, index = index, creds = creds }
    engine.start(self.next_id, req)
    return 0
  end

  local function settle(r, now)
    local entry = inflight[r.id]
    inflight[r.id] = nil
    if not entry or entry.batch ~= batch then return end -- abandoned by an earlier run
    local index = entry.index
    local value, err, delay = request.settle(calls[index], entry.creds, r, now)
    if value ~= nil then
      results[index] = value
    elseif delay == nil then
      results[index] = failure(err)
    else
      retry[index] = now + delay
    end
  end

  -- Is there a call not yet sent, within the window? Draws from the source.
  local function more_new()
    if next_new >= next_emit + window then return false end
    if next_new <= known then return true end
    if exhausted then return false end
    local call = source()
    if call == false then exhausted = true end
    if not call then return false end
    known = known + 1
    calls[known] = call
    return true
  end

  while true do
    -- Hand out every result that is ready, in order.
    local r = results[next_emit]
    while r ~= nil do
      results[next_emit] = nil
      if getmetatable(r) == Failure then return nil, r.err end
      local call = calls[next_emit]
      calls[next_emit] = nil
      if each(r, next_emit, call) == false then return true end
      next_emit = next_emit + 1
      r = results[next_emit]
    end
    if next_emit > known and not more_new() then
      if exhausted then return true end
      -- The source waits on a result, yet every result is handed out.
      error("aliyun.iot.schedule: the call source is waiting on nothing", 0)
    end

    local now = monotonic()
    -- Fill free places: retries that are due first (lowest index first), then new calls.
    while engine.pending() < n and now >= limiter_ready_at do
      local pick, from_retry
      for index, at in pairs(retry) do
        if at <= now and (pick == nil or index < pick) then pick = index end
      end
      if pick then
        from_retry = retry[pick]
        retry[pick] = nil
      elseif more_new() then
        pick = next_new
        next_new = next_new + 1
      else
        break
      end
      local wait = try_send(pick, now)
      if wait > 0 then
        -- Not sent: put it back and wait for the limiter.
        if from_retry then retry[pick] = from_retry else next_new = pick end
        limiter_ready_at = now + wait
      end
    end
    if results[next_emit] == nil then
      -- Wait for a transfer, the next limiter slot or the next retry.
      local until_at = huge
      if engine.pending() < n then
        local waiting = more_new()
        for _, at in pairs(retry) do
          until_at = min(until_at, at)
          waiting = true
        end
        if waiting and limiter_ready_at > now then until_at = max(until_at, limiter_ready_at) end
        if waiting and more_new() then until_at = min(until_at, max(now, limiter_ready_at)) end
      end
      local timeout = until_at == huge and IDLE_WAIT or max(0, until_at - now)
      local finished = engine.wait(timeout)
      now = monotonic()
      for i = 1, #finished do settle(finished[i], now) end
    end
  end
end

--- Abandon whatever is in flight (a listing ended early).
function Scheduler:close()
  self.engine.close()
end

--- One call on its own: value or nil, err.
function schedule.one(state, engine, call)
  local value
  local ok, err = schedule.new(state, engine, 1):run({ call }, function(v) value = v end)
  if not ok then return nil, err end
  return value
end

return schedule
