-- Request counts per action and per AccessKeyId, kept whether or not the
-- request log is on (fault option log): how many requests arrived, how many
-- the quotas throttled (gateway step 7: qps, qps_per_action, qps_<Action>),
-- and the most that arrived within any one second (a sliding window:
-- arrivals t with now - 1 < t <= now, millisecond clock). A test asserts
-- "ListOTATaskByJob never went over 10 per second" from GET /__emulator/counts
-- without reading a log of a million entries. Cleared by reset (store.reset).
--
-- Shared dict emu_counts:
--   "n\0<action>[\0<key>]"   requests         "t\0<action>[\0<key>]"  throttled
--   "m\0<action>[\0<key>]"   max in a second  "w\0<action>[\0<key>]"  list: arrival times in the last second
-- <action> is the Action the request named ("(none)" without one), <key> its
-- AccessKeyId (V3: the Credential), "(none)" without one.

local dict = ngx.shared.emu_counts

local M = {}

local function name(s)
  if s == nil or s == "" then return "(none)" end
  return (s:gsub("%z", "?"))
end

local function keys(action, key)
  action, key = name(action), name(key)
  return { action, action .. "\0" .. key }
end

-- One arrival at time now (seconds, ngx.now()). One worker and no yield
-- between the list operations: not racy.
function M.arrival(action, key, now)
  for _, k in ipairs(keys(action, key)) do
    dict:incr("n\0" .. k, 1, 0)
    local w = "w\0" .. k
    while true do
      local t = dict:lpop(w)
      if t == nil then break end
      if t > now - 1 then
        dict:lpush(w, t)
        break
      end
    end
    local len, err = dict:rpush(w, now)
    if not len then
      ngx.log(ngx.ERR, "emulator counts full: ", err)
    elseif len > (dict:get("m\0" .. k) or 0) then
      dict:set("m\0" .. k, len)
    end
  end
end

function M.throttled(action, key)
  for _, k in ipairs(keys(action, key)) do dict:incr("t\0" .. k, 1, 0) end
end

-- { [action] = { requests, throttled, max_per_second, by_key = { [key] = { requests, throttled, max_per_second } } } }
function M.all()
  local out = {}
  local field = { n = "requests", t = "throttled", m = "max_per_second" }
  for _, k in ipairs(dict:get_keys(0)) do
    local kind, rest = k:match("^([ntm])%z(.*)$")
    if kind then
      local action, key = rest:match("^([^%z]*)%z(.*)$")
      action = action or rest
      local a = out[action] or { requests = 0, throttled = 0, max_per_second = 0, by_key = {} }
      out[action] = a
      local target = a
      if key then
        target = a.by_key[key] or { requests = 0, throttled = 0, max_per_second = 0 }
        a.by_key[key] = target
      end
      target[field[kind]] = dict:get(k)
    end
  end
  return out
end

return M
