--- One "machine" of scripts/redis-suite: lists a job through the library,
-- as a plain Lua process would, and prints one JSON line with what it got.
--   lua lister.lua ENDPOINT JOB STORE LABEL [required]
-- STORE: a redis:// URL, or "none" (rate_limit_store = false: the process's
-- own bucket). Credentials from ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET. Exit
-- status 0 when the listing was complete.
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local cjson = require("cjson.safe").new()

local endpoint, job, store, label, required = arg[1], arg[2], arg[3], arg[4], arg[5] == "required"

local result = { label = label, runtime = (rawget(_G, "jit") and jit.version) or _VERSION, ok = false }
local client, err = iot.new{
  endpoint = endpoint, region = "cn-shanghai", timeout = 30,
  rate_limit_store = store ~= "none" and store or false, rate_limit_store_required = required,
}
if not client then
  result.err = tostring(err)
  print(cjson.encode(result))
  os.exit(1)
end

local t0 = core.monotonic()
local seen, count, distinct, total = {}, 0, 0, nil
local ok, lerr = pcall(function()
  for page in client:pages{ JobId = job, concurrency = 4 } do
    total = page.Total
    for _, task in ipairs(page.tasks) do
      count = count + 1
      if not seen[task.TaskId] then seen[task.TaskId], distinct = true, distinct + 1 end
    end
  end
end)
result.ok, result.err = ok, not ok and tostring(lerr) or nil
result.code = not ok and type(lerr) == "table" and lerr.code or nil
result.count, result.distinct, result.total = count, distinct, total
result.seconds = core.monotonic() - t0
result.info = client:rate_limit_info()
client:close()
print(cjson.encode(result))
os.exit(ok and 0 or 1)
