-- Emulator state kept in nginx shared dicts (declared in nginx.conf.in), so it
-- survives across requests: request log, used nonces, throttle windows, fault
-- config, the fault request counter and the per-job task mutations.

local cjson = require "cjson.safe"
local codec = require "codec"
local quota = require "quota"

local M = {}

local log_dict = ngx.shared.emu_log          -- "n" = entry count, "<i>" = JSON entry i
local nonce_dict = ngx.shared.emu_nonces     -- "<AccessKeyId>\0<nonce>" -> true, TTL 900 s
local throttle_dict = ngx.shared.emu_throttle -- list "<AccessKeyId>" of request times
local state_dict = ngx.shared.emu_state      -- "faults" (JSON), "requests", "writes" (counters),
                                             -- "once\0<key>", "shift\0<listing>" (fault state),
                                             -- "exec\0<action>[\0<params>]\0calls|ok" (executions)
local jobs_dict = ngx.shared.emu_jobs        -- "<JobId>" -> JSON mutation record (jobstate.lua)
local counts_dict = ngx.shared.emu_counts    -- counts.lua

M.NONCE_TTL = 900

-- Fault options; every value is a non-negative integer, 0 = off unless
-- DEFAULTS says otherwise (README.md, "Fault options"; faults.lua,
-- ota_faults.lua, quota.lua and the actions apply them).
M.FAULT_NAMES = {
  "latency_ms", "error_500_every", "error_503_every", "reset_every",
  "malformed_every", "truncated_every", "qps", "huge_body_bytes",
  "error_500_once_every",
  -- listings of ListOTATaskByJob (ota_faults.lua)
  "shift_tasks", "status_leave_tasks", "status_enter_tasks", "shift_every_page", "shift_after_page",
  "repeat_page", "repeat_page_once", "empty_page", "empty_page_once", "wrong_page", "wrong_page_once",
  "page_count_zero", "page_count_one", "total_grow", "total_shrink", "total_from_page",
  -- answers (faults.lua)
  "throttle_200_every", "throttle_200_once_every", "success_string_every", "success_string_once_every",
  -- hostile answers for the hardening specs: secrets echoed back, a server wait, a bogus Date
  "echo_secrets", "retry_after_every", "retry_after_once_every", "retry_after_ms", "retry_after_s", "date_year",
  "success_missing_every", "success_missing_once_every",
  "redirect_every", "redirect_once_every", "redirect_status",
  "informational_every", "informational_once_every", "early_hints_every", "early_hints_once_every",
  "reset_after_nonce_every", "reset_after_nonce_once_every", "reset_reused_every",
  "write_502_every", "write_timeout_every", "write_reset_every", "write_timeout_ms",
  -- limits: the request log on/off, lowered paging caps (ota.lua, query_device.lua)
  "log", "depth_cap", "device_depth_cap",
  -- STS (sts.lua): issued credentials' lifetime whatever DurationSeconds asks; STS down (503)
  "sts_duration_seconds", "sts_unavailable",
}
-- per-action quotas (quota.lua)
for _, name in ipairs(quota.OPTIONS) do M.FAULT_NAMES[#M.FAULT_NAMES + 1] = name end

-- Values of options left out of a config.
M.DEFAULTS = { log = 1 }

-- Options with a range beyond "non-negative integer".
local RANGES = {
  redirect_status = { 300, 399 },
  log = { 0, 1 },
  qps_per_action = { 0, 1 },
  depth_cap = { 1, 100000 },          -- only lowers the real cap
  device_depth_cap = { 1, 10000 },
  sts_duration_seconds = { 1, 43200 },
  sts_unavailable = { 0, 1 },
}

-- Request log ---------------------------------------------------------------

function M.log_append(entry)
  local n = log_dict:incr("n", 1, 0)
  local ok, err = log_dict:safe_set(tostring(n), codec.json(entry))
  if not ok then ngx.log(ngx.ERR, "emulator log full: ", err) end
end

-- The log as a JSON array text (entries are stored already encoded).
function M.log_json()
  local n = log_dict:get("n") or 0
  local parts = {}
  for i = 1, n do
    parts[#parts + 1] = log_dict:get(tostring(i)) or "null"
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

-- Nonces --------------------------------------------------------------------

-- Records the nonce; false when it was already used by this AccessKeyId
-- within the TTL. add() is atomic, so two racing requests cannot both pass.
function M.use_nonce(access_key_id, nonce)
  local ok, err = nonce_dict:add(access_key_id .. "\0" .. nonce, true, M.NONCE_TTL)
  if ok then return true end
  if err == "exists" then return false end
  ngx.log(ngx.ERR, "nonce store: ", err)
  return true
end

-- Throttling: sliding 1-second window per AccessKeyId --------------------------

-- True when this request is within the limit (and counts it), false when it
-- must be throttled (a throttled request does not count).
function M.throttle_admit(access_key_id, qps)
  ngx.update_time()
  local now = ngx.now()
  -- Drop timestamps older than 1 s. Lists have no peek: pop and push back the
  -- first one still inside the window. No yield happens in between, and there
  -- is one worker, so this is not racy.
  while true do
    local t = throttle_dict:lpop(access_key_id)
    if t == nil then break end
    if t > now - 1 then
      throttle_dict:lpush(access_key_id, t)
      break
    end
  end
  if (throttle_dict:llen(access_key_id) or 0) >= qps then return false end
  throttle_dict:rpush(access_key_id, now)
  return true
end

-- The per-action quotas (quota.buckets): true when the request fits every
-- bucket (and is then counted in each), false when it fits not all (and is
-- counted in none). Keys "a\0<account>\0<action>" are apart from the qps ones.
function M.throttle_admit_buckets(buckets)
  if #buckets == 0 then return true end
  ngx.update_time()
  local now = ngx.now()
  for _, b in ipairs(buckets) do
    local key = "a\0" .. b[1]
    while true do
      local t = throttle_dict:lpop(key)
      if t == nil then break end
      if t > now - 1 then
        throttle_dict:lpush(key, t)
        break
      end
    end
    if (throttle_dict:llen(key) or 0) >= b[2] then return false end
  end
  for _, b in ipairs(buckets) do throttle_dict:rpush("a\0" .. b[1], now) end
  return true
end

-- Faults ----------------------------------------------------------------------

function M.faults()
  local raw = state_dict:get("faults")
  local f = raw and cjson.decode(raw) or {}
  for _, name in ipairs(M.FAULT_NAMES) do f[name] = f[name] or M.DEFAULTS[name] or 0 end
  return f
end

-- Validates and stores a fault config (a decoded JSON object); restarts the
-- request counter. Returns true or nil and a message.
function M.set_faults(config)
  if type(config) ~= "table" then return nil, "body must be a JSON object" end
  local known = {}
  for _, name in ipairs(M.FAULT_NAMES) do known[name] = true end
  local clean = {}
  for k, v in pairs(config) do
    if not known[k] then
      return nil, "unknown fault option " .. tostring(k) .. " (known: " .. table.concat(M.FAULT_NAMES, ", ") .. ")"
    end
    if type(v) ~= "number" or v < 0 or v ~= math.floor(v) or v > 2147483647 then
      return nil, "fault option " .. k .. " must be a non-negative integer"
    end
    local range = RANGES[k]
    if range and v ~= 0 and (v < range[1] or v > range[2]) then
      return nil, "fault option " .. k .. " must be 0 or from " .. range[1] .. " to " .. range[2]
    end
    clean[k] = v
  end
  state_dict:set("faults", cjson.encode(clean))
  state_dict:set("requests", 0)
  state_dict:set("writes", 0)
  for _, key in ipairs(state_dict:get_keys(0)) do
    if key:find("^once\0") or key:find("^shift\0") then state_dict:delete(key) end
  end
  return true
end

-- True the first time `key` is seen since the fault config was last set.
function M.first_time(key)
  return (state_dict:add("once\0" .. key, true)) == true
end

-- Number of this API request since the fault config was last set (1-based).
function M.next_request_number()
  return state_dict:incr("requests", 1, 0)
end

-- Number of this executed write (CancelOTATaskByJob, ReupgradeOTATask) since
-- the fault config was last set (1-based).
function M.next_write_number()
  return state_dict:incr("writes", 1, 0)
end

-- Shifts of a listing's order (fault shift_tasks) since the config was set.
function M.shifts(listing)
  return state_dict:get("shift\0" .. listing) or 0
end

function M.add_shift(listing)
  return state_dict:incr("shift\0" .. listing, 1, 0)
end

-- Executions ------------------------------------------------------------------
-- Every time an action's code ran (the request passed every gateway check),
-- per action and per distinct parameter set; "ok" counts those that
-- answered Success. Kept until reset, not cleared by a new fault config.
-- params_text nil: the action's totals only (the gateway passes nil for
-- reads while the request log is off, so that a listing of a million tasks
-- cannot fill the dict with one key per page).

function M.count_execution(action, params_text, ok)
  local keys = { "exec\0" .. action }
  if params_text then keys[2] = "exec\0" .. action .. "\0" .. params_text end
  for _, key in ipairs(keys) do
    state_dict:incr(key .. "\0calls", 1, 0)
    state_dict:incr(key .. "\0ok", ok and 1 or 0, 0)
  end
end

-- { [action] = { calls, ok, by_params = { [params_text] = { calls, ok } } } }
function M.executions()
  local out = {}
  for _, key in ipairs(state_dict:get_keys(0)) do
    local rest, field = key:match("^exec%z(.*)%z(%a+)$")
    if rest then
      local action, params_text = rest:match("^([^%z]*)%z(.*)$")
      action = action or rest
      local a = out[action] or { calls = 0, ok = 0, by_params = {} }
      out[action] = a
      if params_text then
        local b = a.by_params[params_text] or { calls = 0, ok = 0 }
        a.by_params[params_text] = b
        b[field] = state_dict:get(key)
      else
        a[field] = state_dict:get(key)
      end
    end
  end
  return out
end

-- Job mutations (CancelOTATaskByJob, ReupgradeOTATask) ----------------------------

-- The mutation record of a job (jobstate.lua), or nil when it was never changed.
function M.job_mutations(job_id)
  local raw = jobs_dict:get(job_id)
  if not raw then return nil end
  return require("jobstate").from_plain(cjson.decode(raw))
end

-- Stores a mutation record. Returns true, or nil and a message when the dict is full.
function M.set_job_mutations(job_id, m)
  local plain = require("jobstate").to_plain(m)
  -- cjson would write an empty map as [] or {} inconsistently: encode by hand.
  local parts = {}
  for k, v in pairs(plain.overrides) do parts[#parts + 1] = string.format("%q:%q", k, v) end
  local canceled = {}
  for i, st in ipairs(plain.canceled) do canceled[i] = string.format("%q", st) end
  local raw = '{"canceled":[' .. table.concat(canceled, ",") .. '],"overrides":{' ..
              table.concat(parts, ",") .. '},"cancel_requested":' .. tostring(plain.cancel_requested) .. "}"
  local ok, err = jobs_dict:safe_set(job_id, raw)
  if not ok then return nil, "emulator job state full: " .. tostring(err) end
  return true
end

-- STS credentials issued by sts.lua ------------------------------------------------
-- "sts\0<AccessKeyId>" -> JSON { access_key_secret, security_token, account, role,
-- expires_at }, kept 900 s past expiry (so that a late use answers Expired, not
-- NotFound); "sts_issued" counts them. Cleared by reset, not by a new fault config.

-- The number of the next credentials to issue (1-based, since the last reset).
function M.sts_next()
  return state_dict:incr("sts_issued", 1, 0)
end

function M.sts_issue(access_key_id, record)
  local ttl = math.max(1, record.expires_at - ngx.time() + M.NONCE_TTL)
  local ok, err = state_dict:safe_set("sts\0" .. access_key_id, cjson.encode(record), ttl)
  if not ok then ngx.log(ngx.ERR, "emulator STS store full: ", err) end
end

function M.sts_issued(access_key_id)
  local raw = access_key_id and state_dict:get("sts\0" .. access_key_id)
  return raw and cjson.decode(raw) or nil
end

-- Reset -----------------------------------------------------------------------

function M.reset()
  for _, dict in ipairs({ log_dict, nonce_dict, throttle_dict, state_dict, jobs_dict, counts_dict }) do
    dict:flush_all()
    dict:flush_expired()
  end
end

return M
