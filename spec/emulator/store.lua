-- Emulator state kept in nginx shared dicts (declared in nginx.conf.in), so it
-- survives across requests: request log, used nonces, throttle windows, fault
-- config, the fault request counter and the per-job task mutations.

local cjson = require "cjson.safe"
local codec = require "codec"

local M = {}

local log_dict = ngx.shared.emu_log          -- "n" = entry count, "<i>" = JSON entry i
local nonce_dict = ngx.shared.emu_nonces     -- "<AccessKeyId>\0<nonce>" -> true, TTL 900 s
local throttle_dict = ngx.shared.emu_throttle -- list "<AccessKeyId>" of request times
local state_dict = ngx.shared.emu_state      -- "faults" (JSON), "requests" (counter), "once\0<key>"
local jobs_dict = ngx.shared.emu_jobs        -- "<JobId>" -> JSON mutation record (jobstate.lua)

M.NONCE_TTL = 900

-- Fault options; every value is a non-negative integer, 0 = off.
M.FAULT_NAMES = {
  "latency_ms", "error_500_every", "error_503_every", "reset_every",
  "malformed_every", "truncated_every", "qps", "huge_body_bytes",
  "error_500_once_every",
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

-- Faults ----------------------------------------------------------------------

function M.faults()
  local raw = state_dict:get("faults")
  local f = raw and cjson.decode(raw) or {}
  for _, name in ipairs(M.FAULT_NAMES) do f[name] = f[name] or 0 end
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
    if type(v) ~= "number" or v < 0 or v ~= math.floor(v) then
      return nil, "fault option " .. k .. " must be a non-negative integer"
    end
    clean[k] = v
  end
  state_dict:set("faults", cjson.encode(clean))
  state_dict:set("requests", 0)
  for _, key in ipairs(state_dict:get_keys(0)) do
    if key:find("^once\0") then state_dict:delete(key) end
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

-- Reset -----------------------------------------------------------------------

function M.reset()
  for _, dict in ipairs({ log_dict, nonce_dict, throttle_dict, state_dict, jobs_dict }) do
    dict:flush_all()
    dict:flush_expired()
  end
end

return M
