--- The limiter's process-local store: one TAT number per key in a table.
local max, setmetatable = math.max, setmetatable

local LocalStore = {}
LocalStore.__index = LocalStore

local local_store = {}

function local_store.new() return setmetatable({ tat = {} }, LocalStore) end

--- take(key, now, interval, tolerance) -> 0 when a slot was taken, else the
-- seconds until one is free (nothing taken). See aliyun.iot.limiter.
function LocalStore:take(key, now, interval, tolerance)
  local tat = max(self.tat[key] or now, now)
  local wait = tat - tolerance - now
  if wait > 0 then return wait end
  self.tat[key] = tat + interval
  return 0
end

--- This store's id among the peers of a shared store (see limiter.redis):
-- made once by `make` (a random id), one per process.
function LocalStore:peer_id(make)
  if not self.id then self.id = make() end
  return self.id
end

return local_store
