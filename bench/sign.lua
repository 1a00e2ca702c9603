--- Signing micro-benchmark.
--   lua5.4 bench/sign.lua sts            print the V1 string-to-sign of the parameter set
--   lua5.4 bench/sign.lua v1 <n>         time n core.sign_v1 calls
--   lua5.4 bench/sign.lua v3 <n>         time n core.sign_v3 calls (same call, V3 form)
--   lua5.4 bench/sign.lua prepare <n>    time n full V1 request preparations (parameter
--                                        table, nonce, timestamp, sign, URL), as the client
--                                        does per request
-- Prints "<mode> <n> <seconds> <ops_per_s>".
local core = require("aliyun.iot.core")

local SECRET = "EmuSecret0001-do-not-leak"
-- A typical ListOTATaskByJob V1 call: every common parameter plus the API's own.
local PARAMS = {
  Action = "ListOTATaskByJob", Version = "2018-01-20", Format = "JSON",
  AccessKeyId = "LTAI5tEmuAk0001", SignatureMethod = "HMAC-SHA1", SignatureVersion = "1.0",
  SignatureNonce = "3730fb4e-293a-4745-93a8-a68803fe71cf", Timestamp = "2026-11-26T10:11:00Z",
  RegionId = "cn-shanghai",
  JobId = "7glPHmaDYLAYMD1HHutT02", PageSize = "100", CurrentPage = "37",
  IotInstanceId = "iot-06z00ax1o4qq7v8",
}
local V3_QUERY = { JobId = PARAMS.JobId, PageSize = PARAMS.PageSize, CurrentPage = PARAMS.CurrentPage,
                   IotInstanceId = PARAMS.IotInstanceId }
local V3_HEADERS = {
  host = "iot.cn-shanghai.aliyuncs.com", ["x-acs-action"] = "ListOTATaskByJob",
  ["x-acs-version"] = "2018-01-20", ["x-acs-date"] = PARAMS.Timestamp,
  ["x-acs-signature-nonce"] = PARAMS.SignatureNonce,
  ["x-acs-content-sha256"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  ["content-type"] = "application/x-www-form-urlencoded",
}

local mode, n = arg[1], tonumber(arg[2] or "0")
local sign_v1, sign_v3 = core.sign_v1, core.sign_v3
local now = core.monotonic

if mode == "sts" then
  local _, sts = sign_v1("GET", PARAMS, SECRET)
  io.write(sts)
  return
end

local body
if mode == "v1" then
  body = function()
    for _ = 1, n do sign_v1("GET", PARAMS, SECRET) end
  end
elseif mode == "v3" then
  body = function()
    for _ = 1, n do sign_v3("POST", V3_QUERY, V3_HEADERS, "", SECRET) end
  end
elseif mode == "prepare" then
  local request = require("aliyun.iot.request")
  local state = {
    base_url = "https://iot.cn-shanghai.aliyuncs.com", host = "iot.cn-shanghai.aliyuncs.com",
    region = "cn-shanghai", signature_version = "v1", iot_instance_id = PARAMS.IotInstanceId,
    credentials = { get = function() return { access_key_id = PARAMS.AccessKeyId, access_key_secret = SECRET } end },
    now = core.now,
  }
  local api = { JobId = PARAMS.JobId, PageSize = "100", CurrentPage = "37" } -- as params.for_action flattens them
  body = function()
    for _ = 1, n do request.prepare(state, "ListOTATaskByJob", api) end
  end
else
  io.stderr:write("usage: sign.lua sts | v1 N | v3 N | prepare N\n")
  os.exit(2)
end

collectgarbage()
local t0 = now()
body()
local t = now() - t0
print(string.format("%s %d %.6f %.1f", mode, n, t, n / t))
