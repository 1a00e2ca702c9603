--- The dashboard's settings: one table of defaults, each overridable by an
-- environment variable (nginx.conf's `env` directives pass them to the
-- workers; examples/openresty/run sets them from its options).
--
--   ALIYUN_OTA_DASHBOARD_INTERVAL     seconds between two listings of a watched job (10)
--   ALIYUN_OTA_DASHBOARD_IDLE         a job nobody looked at for this long stops being refreshed (300)
--   ALIYUN_OTA_DASHBOARD_LOCK_TTL     a listing's lock expires this long after its last page (30):
--                                     a worker that died mid-listing holds it no longer
--   ALIYUN_OTA_DASHBOARD_CONCURRENCY  page requests in flight in one listing (4)
--   ALIYUN_OTA_DASHBOARD_MAX_JOBS     jobs one worker refreshes at once (100)
local getenv, tonumber, floor = os.getenv, tonumber, math.floor

local config = {}

config.DEFAULTS = {
  dict = "ota_dashboard",     -- the lua_shared_dict holding snapshots, locks and last views
  interval = 10,
  idle = 300,
  lock_ttl = 30,
  concurrency = 4,
  max_jobs = 100,
  snapshot_ttl = 3600,        -- a snapshot not refreshed for an hour is dropped from the dict
  listing_deadline = 600,     -- a listing that takes longer than this fails (SDK.Timeout)
}

-- name -> environment variable, lowest and highest accepted value, integer?
local ENV = {
  interval = { "ALIYUN_OTA_DASHBOARD_INTERVAL", 1, 86400 },
  idle = { "ALIYUN_OTA_DASHBOARD_IDLE", 1, 7 * 86400 },
  lock_ttl = { "ALIYUN_OTA_DASHBOARD_LOCK_TTL", 1, 3600 },
  concurrency = { "ALIYUN_OTA_DASHBOARD_CONCURRENCY", 1, 16, true },
  max_jobs = { "ALIYUN_OTA_DASHBOARD_MAX_JOBS", 1, 10000, true },
}

--- The settings: DEFAULTS with the environment's overrides. A value that is
-- not a number in range keeps the default and is reported in `problems`
-- (a list of messages, for the error log).
function config.load(env)
  env = env or getenv
  local c, problems = {}, {}
  for k, v in pairs(config.DEFAULTS) do c[k] = v end
  for name, spec in pairs(ENV) do
    local raw = env(spec[1])
    if raw ~= nil and raw ~= "" then
      local n = tonumber(raw)
      if n == nil or n < spec[2] or n > spec[3] or (spec[4] and n ~= floor(n)) then
        problems[#problems + 1] = string.format("%s=%q is not %s from %s to %s: using %s",
          spec[1], raw, spec[4] and "an integer" or "a number", spec[2], spec[3], tostring(c[name]))
      else
        c[name] = n
      end
    end
  end
  -- The refresher looks at its jobs this often: a quarter of the interval,
  -- at most every second and at least every 0.25 s.
  c.tick = math.max(0.25, math.min(1, c.interval / 4))
  return c, problems
end

return config
