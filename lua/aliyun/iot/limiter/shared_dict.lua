--- The limiter's store in an OpenResty lua_shared_dict, so every worker of
-- one nginx draws from one bucket per key. The read-modify-write runs under
-- a short lock (an `add`ed key that expires by itself should a worker die
-- holding it). Times are core.monotonic() seconds (CLOCK_MONOTONIC: one
-- clock for all workers of a machine).
--
-- This module knows no nginx: it is handed the dict (any object with the
-- methods of an OpenResty shared dict: add, get, set, delete) and a function that pauses
-- between lock attempts, or nil where the phase cannot yield. The resty
-- transport, the one place that knows nginx, finds both
-- (transport.resty.limiter_store).
local setmetatable, type = setmetatable, type

local shared_dict = {}

shared_dict.DEFAULT_NAME = "aliyun_iot_limiter"

local LOCK_TTL = 0.5        -- seconds; a lock older than this is considered abandoned
local LOCK_WAIT = 0.001     -- seconds between tries, where the phase can sleep
local LOCK_TRIES = 2000

local SharedStore = {}
SharedStore.__index = SharedStore

--- shared_dict.new(dict, name, pause): pause(seconds) or nil.
function shared_dict.new(dict, name, pause)
  return setmetatable({ dict = dict, name = name, pause = pause }, SharedStore)
end

-- limiter store interface: take(key, now, interval, tolerance) -> 0 | wait.
function SharedStore:take(key, now, interval, tolerance)
  local dict, lock = self.dict, "lock:" .. key
  local pause = self.pause
  local locked = false
  for _ = 1, LOCK_TRIES do
    local ok, err = dict:add(lock, true, LOCK_TTL)
    if ok then locked = true break end
    if err ~= "exists" then break end -- the dict is full: go on without the lock
    if pause then pause(LOCK_WAIT) end
  end
  local k = "tat:" .. key
  local tat = dict:get(k)
  if type(tat) ~= "number" or tat < now then tat = now end
  local wait = tat - tolerance - now
  if wait <= 0 then
    wait = 0
    local next_tat = tat + interval
    -- Keep the entry a little longer than it matters, then let it expire.
    dict:set(k, next_tat, next_tat - now + 60)
  end
  if locked then dict:delete(lock) end
  return wait
end

--- This store's id among the peers of a shared store (see limiter.redis):
-- one for all workers of the nginx, made by the first to ask (`make` returns a random id).
function SharedStore:peer_id(make)
  self.dict:add("peer_id", make())
  return self.dict:get("peer_id") or make()
end

return shared_dict
