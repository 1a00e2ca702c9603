--- The worker's one API client, shared by the JSON handlers (ota_handlers)
-- and the dashboard's refresher (ota_dashboard).
--
-- Created on first use, in a request handler or a timer (never in init or
-- init_worker: nothing there could use cosockets, and a client made in the
-- master would be shared by forked workers). Its calls go through cosockets.
-- Settings come from the environment, which nginx.conf's `env` directives
-- pass through to the worker:
--   ALIBABA_CLOUD_ACCESS_KEY_ID / _SECRET / _SECURITY_TOKEN   credentials
--   ALIBABA_CLOUD_REGION_ID    region (default cn-shanghai)
--   ALIYUN_IOT_ENDPOINT        an endpoint override, e.g. http://127.0.0.1:PORT (the emulator)
--   ALIYUN_IOT_INSTANCE_ID     IotInstanceId, sent with every call (Enterprise instances)
local iot = require("aliyun.iot")

local getenv = os.getenv

local ota_client = {}

local client, client_err

local function env(name)
  local v = getenv(name)
  if v == "" then return nil end
  return v
end

--- The client, or nil and an error object (bad settings, no credentials).
function ota_client.get()
  if client then return client end
  client, client_err = iot.new{
    region = env("ALIBABA_CLOUD_REGION_ID") or "cn-shanghai",
    endpoint = env("ALIYUN_IOT_ENDPOINT"),
    iot_instance_id = env("ALIYUN_IOT_INSTANCE_ID"),
    timeout = 10,
  }
  return client, client_err
end

return ota_client
