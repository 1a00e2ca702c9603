--- The numbers scripts/redis-suite prints and checks, from its JSON files.
--   lua report.lua merge NGINX_RESULTS LISTER...   one {"results":[...]} of every machine
--   lua report.lua rates LABEL RATES ALL SECONDS   one line: requests, rate, throttled, ...
--   lua report.lua machines ALL                    one line per machine: its limiter's counters
local cjson = require("cjson")

local function read(path)
  local f = io.open(path)
  local text = f and f:read("*a")
  if f then f:close() end
  return text and cjson.decode(text) or nil
end

local command = arg[1]
if command == "merge" then
  local out = (read(arg[2]) or {}).results or {}
  for i = 3, #arg do
    local ok, r = pcall(read, arg[i])
    out[#out + 1] = ok and r or { label = arg[i], ok = false, err = "no JSON result" }
  end
  print(cjson.encode({ results = out }))
elseif command == "rates" then
  local r, all = read(arg[3]), read(arg[4])
  local fails = 0
  for _, x in ipairs(all.results) do if not x.ok then fails = fails + 1 end end
  print(string.format("       %s: %d requests in %.1f s = %.2f req/s at the gateway, %d throttled, "
    .. "busiest second %d requests, %d of %d listings failed, run %s s",
    arg[2], r.requests, r.seconds, r.rate, r.throttled, r.max_window, fails, #all.results, arg[5]))
elseif command == "machines" then
  for _, r in ipairs(read(arg[2]).results) do
    local i = r.info or { asked = {} }
    print(string.format("       %-16s %5.1f s  asked Redis %3d times, its local bucket %3d (share %.2f), "
      .. "failures %d, recoveries %d",
      tostring(r.label), r.seconds or 0, i.asked.shared or 0, i.asked["local"] or 0, i.share or 0,
      i.failures or 0, i.recoveries or 0))
  end
else
  error("usage: report.lua merge|rates|machines ...")
end
