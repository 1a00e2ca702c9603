-- Control endpoints under /__emulator/ (plain HTTP, no signature). Used by
-- tests to inspect what the client sent and to inject faults.
--   GET  /__emulator/health   -> ok
--   GET  /__emulator/log      -> JSON array of API requests since the last reset
--   POST /__emulator/reset    -> clears log, nonces, throttle windows, faults, counters
--   GET  /__emulator/faults   -> current fault config (JSON object)
--   POST /__emulator/faults   -> replace the fault config with the JSON body
--   GET  /__emulator/executions -> how often each action's code ran since the last reset
--   GET  /__emulator/counts   -> requests, throttled and most per second, per action and AccessKeyId
--   GET  /__emulator/limits   -> the paging caps and QPS quotas now in force, per action
--   GET  /__emulator/credentials-uri -> fresh STS credentials, as a credentials URI serves them

local cjson = require "cjson.safe"
local codec = require "codec"
local store = require "store"
local counts = require "counts"
local quota = require "quota"

local M = {}

local function reply(status, content_type, body)
  ngx.status = status
  ngx.header["Content-Type"] = content_type
  ngx.header["Content-Length"] = #body
  ngx.print(body)
end

local function faults_json()
  local f = store.faults()
  local parts = {}
  for _, name in ipairs(store.FAULT_NAMES) do
    parts[#parts + 1] = string.format("%q:%d", name, f[name])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- The limits in force under the current fault config: what a client test
-- reads to know the depth cap and quotas it runs against (0 = no quota).
local function limits_json()
  local f = store.faults()
  local function qps(action) return quota.limit(f, action) or 0 end
  local out = {
    qps_per_access_key = f.qps,
    log = f.log,
    ListOTATaskByJob = codec.object({ "page_size_max", "depth_cap", "device_names_max", "qps" },
      { page_size_max = 100, depth_cap = f.depth_cap > 0 and f.depth_cap or 100000, device_names_max = 50,
        qps = qps("ListOTATaskByJob") }),
    QueryDevice = codec.object({ "page_size_max", "depth_cap", "qps", "qps_deep", "deep_from" },
      { page_size_max = 50, depth_cap = f.device_depth_cap > 0 and f.device_depth_cap or 10000,
        qps = qps("QueryDevice"), qps_deep = quota.deep_limit(f) or 0, deep_from = quota.DEEP_FROM }),
  }
  for _, action in ipairs(quota.ACTIONS) do
    if not out[action] then out[action] = codec.object({ "qps" }, { qps = qps(action) }) end
  end
  return codec.json(out)
end

local ROUTES = {
  ["GET /__emulator/health"] = function()
    reply(200, "text/plain", "ok")
  end,
  ["GET /__emulator/log"] = function()
    reply(200, "application/json", store.log_json())
  end,
  ["POST /__emulator/reset"] = function()
    store.reset()
    reply(200, "text/plain", "ok")
  end,
  ["GET /__emulator/faults"] = function()
    reply(200, "application/json", faults_json())
  end,
  ["GET /__emulator/executions"] = function()
    -- {"<Action>":{"calls":n,"ok":n,"by_params":{"<name=value&...>":{"calls":n,"ok":n}}}}
    local out = {}
    for action, a in pairs(store.executions()) do
      local by = {}
      for text, b in pairs(a.by_params) do
        by[text] = codec.object({ "calls", "ok" }, b)
      end
      out[action] = codec.object({ "calls", "ok", "by_params" }, { calls = a.calls, ok = a.ok, by_params = by })
    end
    reply(200, "application/json", codec.json(out))
  end,
  ["GET /__emulator/counts"] = function()
    -- {"<Action>":{"requests":n,"throttled":n,"max_per_second":n,"by_key":{"<AccessKeyId>":{...}}}}
    local fields = { "requests", "throttled", "max_per_second" }
    local out = {}
    for action, a in pairs(counts.all()) do
      local by = {}
      for key, b in pairs(a.by_key) do by[key] = codec.object(fields, b) end
      a.by_key = by
      out[action] = codec.object({ "requests", "throttled", "max_per_second", "by_key" }, a)
    end
    reply(200, "application/json", codec.json(out))
  end,
  ["GET /__emulator/limits"] = function()
    reply(200, "application/json", limits_json())
  end,
  ["GET /__emulator/credentials-uri"] = function()
    -- STS credentials as a credentials URI serves them (sts.lua, credentials_uri).
    local status, body = require("sts").credentials_uri(ngx.req.get_uri_args(), store.faults())
    reply(status, status == 200 and "application/json" or "text/plain", body)
  end,
  ["POST /__emulator/faults"] = function()
    ngx.req.read_body()
    local raw = ngx.req.get_body_data() or ""
    local config, err = cjson.decode(raw)
    if config == nil then
      return reply(400, "text/plain", "invalid JSON body: " .. tostring(err))
    end
    local ok, msg = store.set_faults(config)
    if not ok then return reply(400, "text/plain", msg) end
    reply(200, "application/json", faults_json())
  end,
}

function M.handle()
  local route = ROUTES[ngx.req.get_method() .. " " .. ngx.var.uri]
  if not route then
    return reply(404, "text/plain", "unknown control endpoint " .. ngx.req.get_method() .. " " .. ngx.var.uri)
  end
  route()
end

return M
