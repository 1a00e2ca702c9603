--- One "machine" of scripts/redis-suite: lists a job through the library,
-- as a plain Lua process would, and prints one JSON line with what it got.
--   lua lister.lua ENDPOINT JOB STORE LABEL [required]
-- STORE: a redis:// URL, or "none" (rate_limit_store = false: the process's
-- own bucket). Credentials from ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET. Exit
-- status 0 when the listing was complete.
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local listing = require("listing")
local cjson = require("cjson.safe").new()

local endpoint, job, store, label, required = arg[1], arg[2], arg[3], arg[4], arg[5] == "required"

-- max_retries 6: while Redis is down the machines' local buckets are not in
-- step, a second may see a little more than the quota, and those requests are
-- throttled and retried (README); on a loaded machine three retries with
-- jitter are sometimes not enough to ride out the outage.
local client, err = iot.new{
  endpoint = endpoint, region = "cn-shanghai", timeout = 30, max_retries = 6,
  rate_limit_store = store ~= "none" and store or false, rate_limit_store_required = required,
}
local result = client and listing.run(client, job, core.monotonic) or { ok = false, err = tostring(err) }
result.label, result.runtime = label, (rawget(_G, "jit") and jit.version) or _VERSION
print(cjson.encode(result))
os.exit(result.ok and 0 or 1)
