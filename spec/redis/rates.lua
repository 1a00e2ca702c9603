--- Request rates in the emulator's log (GET /__emulator/log, on stdin), for
-- scripts/redis-suite: one JSON object on stdout with
--   requests, throttled (Throttling* codes), seconds (first to last arrival),
--   rate (requests per second over that span), max_window (the most arrivals
--   in any one-second window), max_window_ok (the same, counting only
--   requests the gateway admitted).
-- Only requests of access key arg[1] count (all, without an argument).
local cjson = require("cjson.safe")
local entries = assert(cjson.decode(io.read("*a")), "the log is not JSON")
local key = arg[1]

local all, admitted, throttled = {}, {}, 0
for _, e in ipairs(entries) do
  if (not key or e.access_key_id == key) and type(e.at) == "number" then
    all[#all + 1] = e.at
    if type(e.code) == "string" and e.code:find("^Throttling") then
      throttled = throttled + 1
    else
      admitted[#admitted + 1] = e.at
    end
  end
end

-- The most times in any window (t - 1, t]: two pointers over the sorted times.
local function max_window(times)
  table.sort(times)
  local best, first = 0, 1
  for last = 1, #times do
    while times[last] - times[first] >= 1 do first = first + 1 end
    if last - first + 1 > best then best = last - first + 1 end
  end
  return best
end

table.sort(all)
local span = #all > 1 and all[#all] - all[1] or 0
print(cjson.encode{
  requests = #all, throttled = throttled, seconds = span,
  rate = span > 0 and (#all - 1) / span or 0,
  max_window = max_window(all), max_window_ok = max_window(admitted),
})
