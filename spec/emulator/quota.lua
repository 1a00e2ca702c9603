-- Per-account, per-API QPS quotas (gateway step 7), as Alibaba documents them
-- (ALIYUN_NOTES.md, "Neighbouring APIs and their quotas"). Off unless a fault
-- option turns them on (README.md, "Per-action quotas"):
--   qps_per_action 1     every action at its documented limit (DOCUMENTED)
--   qps_<Action> N       that action at N per second (with or without qps_per_action)
--   qps_QueryDevice_deep N   QueryDevice requests whose CurrentPage x PageSize
--                        >= 100,000 (by the CurrentPage they send) also share a
--                        bucket of N per second (2 once QueryDevice is limited)
-- A bucket is a sliding one-second window per account (accounts.lua `account`,
-- shared by its AccessKeys and STS sessions) and action; a request over any of
-- its buckets is refused with Throttling.User and counts in none of them.
-- The old per-AccessKeyId option `qps` is separate and applies as well.
-- Pure Lua: no ngx.

local M = {}

M.DOCUMENTED = {
  ListOTATaskByJob = 10,
  QueryDevice = 50,
  QueryOTAJob = 10,
  ListOTAJobByFirmware = 10,
  CancelOTATaskByJob = 5,
  ReupgradeOTATask = 20,
}
M.ACTIONS = { "ListOTATaskByJob", "QueryDevice", "QueryOTAJob", "ListOTAJobByFirmware",
              "CancelOTATaskByJob", "ReupgradeOTATask" }

M.DEEP_QPS = 2              -- QueryDevice, CurrentPage x PageSize >= DEEP_FROM
M.DEEP_FROM = 100000

-- The fault options of this file, for store.FAULT_NAMES.
M.OPTIONS = { "qps_per_action", "qps_QueryDevice_deep" }
for _, a in ipairs(M.ACTIONS) do M.OPTIONS[#M.OPTIONS + 1] = "qps_" .. a end
-- deny_<Action> 1: the caller's RAM policy does not grant that action (Forbidden.RAM).
for _, a in ipairs(M.ACTIONS) do M.OPTIONS[#M.OPTIONS + 1] = "deny_" .. a end

--- Is `action` refused by a deny_<Action> fault in config f?
function M.denied(f, action)
  return (f["deny_" .. action] or 0) > 0
end

-- Requests per second allowed for action under fault config f, or nil (no limit).
function M.limit(f, action)
  local own = f["qps_" .. action]
  if own and own > 0 then return own end
  if (f.qps_per_action or 0) > 0 then return M.DOCUMENTED[action] end
  return nil
end

-- The deep-paging limit of QueryDevice, or nil.
function M.deep_limit(f)
  if (f.qps_QueryDevice_deep or 0) > 0 then return f.qps_QueryDevice_deep end
  if M.limit(f, "QueryDevice") then return M.DEEP_QPS end
  return nil
end

local function integer(s, default)
  local n = s and s:match("^%d+$") and tonumber(s)
  return n or default
end

-- The buckets a request must fit: list of { key, limit } (empty: unlimited).
-- account identifies the caller's account; params are the request's.
function M.buckets(f, account, action, params)
  local out = {}
  local limit = action and M.limit(f, action)
  if limit then out[#out + 1] = { account .. "\0" .. action, limit } end
  if action == "QueryDevice" then
    local deep = M.deep_limit(f)
    local depth = integer(params.CurrentPage, 1) * integer(params.PageSize, 10)
    if deep and depth >= M.DEEP_FROM then out[#out + 1] = { account .. "\0QueryDevice.deep", deep } end
  end
  return out
end

return M
