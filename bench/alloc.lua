--- Lua heap bytes allocated per page (garbage collector stopped), for the client's pager
-- and for the bare loop's per-page work.
--   lua5.4 bench/alloc.lua <endpoint> <JobId> <pages> pager-v1|pager-v3|bare
-- Prints "alloc mode=M pages=P bytes_per_page=B [body_bytes=N]".
local core = require("aliyun.iot.core")
local iot = require("aliyun.iot")
local cjson = require("cjson")

local endpoint, job, pages, mode = arg[1], arg[2], tonumber(arg[3]), arg[4]
local key_id = assert(os.getenv("BENCH_ACCESS_KEY_ID"))
local secret = assert(os.getenv("BENCH_ACCESS_KEY_SECRET"))

local body_bytes -- of the last response (bare mode)
local step -- one page's work; called `pages` times after one warm-up call
if mode == "bare" then
  local session = core.new_session{ timeout = 10, connect_timeout = 2, proxy = "" }
  local headers = { Accept = "application/json" }
  local page = 0
  body_bytes = 0
  step = function()
    page = page + 1
    local p = {
      Action = "ListOTATaskByJob", Version = "2018-01-20", Format = "JSON", AccessKeyId = key_id,
      SignatureMethod = "HMAC-SHA1", SignatureVersion = "1.0", SignatureNonce = core.nonce(),
      Timestamp = core.timestamp(), RegionId = "cn-shanghai",
      JobId = job, PageSize = "100", CurrentPage = tostring(page),
    }
    local signature, _, query = core.sign_v1("GET", p, secret)
    local status, body = session:request("GET", endpoint .. "/?" .. query .. "&Signature="
      .. core.percent_encode(signature), headers)
    assert(status == 200)
    body_bytes = #body
    assert(#cjson.decode(body).Data.SimpleOTATaskInfo > 0)
  end
else
  local client = assert(iot.new{ endpoint = endpoint, region = "cn-shanghai", access_key_id = key_id,
    access_key_secret = secret, rate_limit = false, max_retries = 0,
    signature_version = mode == "pager-v1" and "v1" or "v3" })
  local pager = client:pages{ JobId = job }
  step = function() assert(#pager().tasks > 0) end
end

step() -- warm-up: first request, module caches, connection
collectgarbage()
collectgarbage("stop")
local before = collectgarbage("count")
for _ = 1, pages do step() end
local kb = collectgarbage("count") - before
print(string.format("alloc mode=%s pages=%d bytes_per_page=%.0f%s", mode, pages, kb * 1024 / pages,
  body_bytes and string.format(" body_bytes=%d", body_bytes) or ""))
