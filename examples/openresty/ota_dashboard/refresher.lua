--- The refresher: at most one listing of a job at a time across all
-- workers, one per refresh interval, for as long as somebody looks at it.
--
-- Everything the workers share lives in one lua_shared_dict (config.dict),
-- per job:
--   seen:<JobId>   set by every request for the job, expiring after `idle`:
--                  its absence means nobody looked for that long
--   start:<JobId>  when the latest listing started (epoch seconds)
--   lock:<JobId>   "<pid>:<n>" of the listing running now; added (so only one
--                  worker gets it), renewed on every page, expiring `lock_ttl`
--                  after the last one: a worker that died mid-listing holds it
--                  no longer than that
--   prog:<JobId>   {"listed":n,"total":n} while a listing runs
--   snap:<JobId>   the latest good snapshot, as JSON (ota_dashboard.snapshot:
--                  bounded, a few KB, under 100 KB whatever the job)
--   err:<JobId>    the latest listing's error, as JSON; gone after a good one
--
-- Each worker keeps the jobs it was asked about (`watched`) and looks at them
-- every `tick` seconds from one ngx.timer.every. A job is due when its latest
-- listing started `interval` seconds ago or more; the worker that adds the
-- lock first checks again under the lock (another may have just finished),
-- records the start and lists the job in an ngx.timer.at timer, over the
-- library's pager and cosockets. A job whose seen: key expired is dropped.
-- Requests never wait on a listing: they read the dict (ota_dashboard).
-- luacheck: globals ngx
local snapshot = require("ota_dashboard.snapshot")
local ota_client = require("ota_client")
local cjson = require("cjson.safe").new()

local ngx = ngx
local pairs, pcall, tostring, type, getmetatable = pairs, pcall, tostring, type, getmetatable
local format = string.format

local refresher = {}

local cfg, dict
local watched, nwatched = {}, 0
local serial = 0

local function now()
  ngx.update_time()
  return ngx.now()
end

--- Start the worker's refresher (init_worker_by_lua). `c` is ota_dashboard.config's.
function refresher.init(c)
  cfg = c
  dict = ngx.shared[cfg.dict]
  if not dict then
    return nil, format("no lua_shared_dict %s: declare it in nginx.conf's http block", cfg.dict)
  end
  local ok, err = ngx.timer.every(cfg.tick, refresher.tick)
  if not ok then return nil, "cannot start the refresher's timer: " .. tostring(err) end
  return true
end

function refresher.dict() return dict end

local function release(job, token)
  -- Only our own lock: after a renewal failed it may be another worker's.
  if dict:get("lock:" .. job) == token then dict:delete("lock:" .. job) end
end

-- The error object (or a Lua error) as the JSON the page shows.
local function error_json(err, at)
  local e
  if type(err) == "table" then
    e = { code = err.code, message = err.message, request_id = err.request_id, http_status = err.http_status }
  else
    e = { code = "Dashboard.InternalError", message = tostring(err) }
  end
  e.code = snapshot.truncate(tostring(e.code or "SDK.Error"), 100)
  e.message = snapshot.truncate(tostring(e.message or ""), 500)
  if e.request_id ~= nil then e.request_id = snapshot.truncate(tostring(e.request_id), 100) end
  e.at = at
  return cjson.encode(e)
end

-- The pager's iterator returns a 4th value that closes its in-flight
-- requests (Lua 5.4's generic for does so on `break`); under LuaJIT we call
-- it ourselves when we leave a listing early.
local function close_listing(closing)
  local mt = closing and getmetatable(closing)
  if mt and mt.__close then pcall(mt.__close, closing) end
end

local LOST_LOCK = {}

--- One listing of `job` (an ngx.timer.at callback), holding the lock `token`.
local function run_listing(premature, job, token)
  if premature then return release(job, token) end
  local lock_key = "lock:" .. job
  local started = now()
  local client, err = ota_client.get()
  local ok, b = false, nil
  if client then
    b = snapshot.builder(job)
    local listed, total = 0, nil
    local iter, state, control, closing
    ok, err = pcall(function()
      iter, state, control, closing = client:pages{
        JobId = job, concurrency = cfg.concurrency, deadline = cfg.listing_deadline,
      }
      for page in iter, state, control do
        -- Still ours? A listing stalled past lock_ttl may have been taken
        -- over by another worker: stop, so two never run at once.
        if dict:get(lock_key) ~= token then error(LOST_LOCK, 0) end
        dict:expire(lock_key, cfg.lock_ttl)
        local tasks = page.tasks
        for i = 1, #tasks do b:add(tasks[i]) end
        listed = listed + #tasks
        total = total or page.Total
        dict:set("prog:" .. job, format('{"listed":%d,"total":%d}', listed, total or listed), cfg.lock_ttl)
      end
    end)
    if not ok then close_listing(closing) end
  end
  local finished = now()
  dict:delete("prog:" .. job)
  if ok then
    local fits, serr = dict:safe_set("snap:" .. job, cjson.encode(b:finish(started, finished)), cfg.snapshot_ttl)
    if fits then
      dict:delete("err:" .. job)
    else
      ngx.log(ngx.ERR, "dashboard: the snapshot of ", job, " does not fit lua_shared_dict ", cfg.dict, ": ", serr)
      dict:set("err:" .. job, error_json({ code = "Dashboard.NoMemory", message = "the snapshot does not fit "
        .. "lua_shared_dict " .. cfg.dict .. " (" .. tostring(serr) .. "): make it larger" }, finished),
        cfg.snapshot_ttl)
    end
  elseif err == LOST_LOCK then
    ngx.log(ngx.WARN, "dashboard: the listing of ", job, " lost its lock (a page took over ",
      cfg.lock_ttl, " s); its result is dropped")
    return
  else
    -- The error object's text never holds a secret (the library scrubs it).
    ngx.log(ngx.WARN, "dashboard: listing ", job, " failed: ", tostring(err))
    dict:set("err:" .. job, error_json(err, finished), cfg.snapshot_ttl)
  end
  release(job, token)
end

--- Start a listing of `job` if it is due and no worker lists it now.
-- Returns true when this call started one.
function refresher.maybe_start(job)
  local t = now()
  local start_key = "start:" .. job
  local last = dict:get(start_key)
  if last and t - last < cfg.interval then return false end
  serial = serial + 1
  local token = ngx.worker.pid() .. ":" .. serial
  local added, err = dict:add("lock:" .. job, token, cfg.lock_ttl)
  if not added then
    if err ~= "exists" then ngx.log(ngx.WARN, "dashboard: cannot lock ", job, ": ", err) end
    return false
  end
  -- Under the lock, again: a listing may have started and ended since we looked.
  last = dict:get(start_key)
  if last and t - last < cfg.interval then
    release(job, token)
    return false
  end
  dict:set(start_key, t, cfg.snapshot_ttl)
  local ok, terr = ngx.timer.at(0, run_listing, job, token)
  if not ok then
    ngx.log(ngx.ERR, "dashboard: cannot start a listing of ", job, ": ", terr)
    release(job, token)
    return false
  end
  return true
end

--- The refresher's tick (ngx.timer.every): each watched job is dropped when
-- nobody looked at it for `idle` seconds, else listed when due.
function refresher.tick(premature)
  if premature or ngx.worker.exiting() then return end
  for job in pairs(watched) do
    if dict:get("seen:" .. job) == nil then
      watched[job] = nil
      nwatched = nwatched - 1
      ngx.log(ngx.INFO, "dashboard: nobody looked at ", job, " for ", cfg.idle, " s: no longer refreshed")
    else
      refresher.maybe_start(job)
    end
  end
end

--- A request for `job` arrived: note it (the idle clock starts again) and
-- make sure this worker refreshes it. nil, message when the worker already
-- refreshes max_jobs other jobs.
function refresher.watch(job)
  dict:set("seen:" .. job, true, cfg.idle)
  if not watched[job] then
    if nwatched >= cfg.max_jobs then
      return nil, format("this server already refreshes %d jobs (ALIYUN_OTA_DASHBOARD_MAX_JOBS)", cfg.max_jobs)
    end
    watched[job], nwatched = true, nwatched + 1
  end
  refresher.maybe_start(job) -- at once when due: the first snapshot waits for no tick
  return true
end

--- What the dict holds for `job`: snapshot JSON, error JSON, progress JSON
-- (each nil when absent) and whether a listing runs now.
function refresher.state(job)
  return dict:get("snap:" .. job), dict:get("err:" .. job), dict:get("prog:" .. job),
    dict:get("lock:" .. job) ~= nil
end

return refresher
