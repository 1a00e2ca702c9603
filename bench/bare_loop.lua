--- The bare floor of a listing: one libcurl session reused, core.sign_v1 of the same
-- parameters the client sends, cjson.decode of each body. No validation, no pager, no
-- de-duplication, no decode_tasks, no retries, no limiter.
--   lua5.4 bench/bare_loop.lua <endpoint> <JobId> [PageSize]
-- Access key from BENCH_ACCESS_KEY_ID / BENCH_ACCESS_KEY_SECRET.
-- Prints "tasks=N pages=P seconds=S cpu_seconds=C".
local core = require("aliyun.iot.core")
local cjson = require("cjson")

local endpoint, job, page_size = arg[1], arg[2], arg[3] or "100"
local key_id = assert(os.getenv("BENCH_ACCESS_KEY_ID"), "BENCH_ACCESS_KEY_ID")
local secret = assert(os.getenv("BENCH_ACCESS_KEY_SECRET"), "BENCH_ACCESS_KEY_SECRET")
local sign_v1, percent_encode, nonce, timestamp = core.sign_v1, core.percent_encode, core.nonce, core.timestamp
local decode = cjson.decode
local session = core.new_session{ timeout = 10, connect_timeout = 2, proxy = "" }
local headers = { Accept = "application/json" }
local base = endpoint .. "/?"

local t0, c0 = core.monotonic(), os.clock()
local tasks, pages, page = 0, 0, 1
while true do
  local p = {
    Action = "ListOTATaskByJob", Version = "2018-01-20", Format = "JSON", AccessKeyId = key_id,
    SignatureMethod = "HMAC-SHA1", SignatureVersion = "1.0", SignatureNonce = nonce(),
    Timestamp = timestamp(), RegionId = "cn-shanghai",
    JobId = job, PageSize = page_size, CurrentPage = tostring(page),
  }
  local signature, _, query = sign_v1("GET", p, secret)
  local status, body = session:request("GET", base .. query .. "&Signature=" .. percent_encode(signature), headers)
  assert(status == 200, body)
  local resp = decode(body)
  local list = resp.Data.SimpleOTATaskInfo or {}
  pages = pages + 1
  tasks = tasks + #list
  if #list == 0 or page >= resp.PageCount then break end
  page = page + 1
end
print(string.format("tasks=%d pages=%d seconds=%.6f cpu_seconds=%.6f", tasks, pages,
  core.monotonic() - t0, os.clock() - c0))
