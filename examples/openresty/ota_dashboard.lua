--- The rollout dashboard of examples/openresty/nginx.conf:
--   GET /ota/<JobId>/                the page (HTML; static/dashboard.js fills it)
--   GET /ota/<JobId>/snapshot.json   what the page polls: the job's latest snapshot
--
-- Both answer at once from the lua_shared_dict, never waiting on a listing:
-- ota_dashboard.refresher lists each job nobody stopped looking at, once
-- per interval, whatever the number of viewers. snapshot.json is
--   {"JobId":..., "state":"listing"|"ready"|"error", "listing":bool, "interval":s, "now":t,
--    "progress":{"listed":n,"total":n}?,     -- while a listing runs
--    "snapshot":{...}?,                      -- the latest good one (ota_dashboard.snapshot)
--    "error":{"code","message","request_id","at"}?}   -- the latest listing failed
-- state "listing": no snapshot yet; "error": no snapshot and the latest
-- listing failed (`listing` says whether another one runs); "ready": a
-- snapshot, maybe with the error of a later listing.
-- luacheck: globals ngx
local config = require("ota_dashboard.config")
local refresher = require("ota_dashboard.refresher")
local page = require("ota_dashboard.page")
local cjson = require("cjson.safe").new()

local ngx = ngx
local format = string.format

local dashboard = {}

local cfg

-- A JobId as the service spells them (letters, digits, - _ .), bounded:
-- anything else never reaches the dict, the API or the page. The location's
-- capture is already percent-decoded (nginx matches the decoded $uri).
local function valid_job(job)
  if #job == 0 or #job > 128 or job:find("[^%w%-_%.]") then return nil end
  return job
end

-- Headers of every dashboard answer: no script, style or connection but
-- our own (a TaskDesc can never run as code, even if escaping were missed).
local CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
  .. "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

local function headers(content_type, cache)
  ngx.header["Content-Type"] = content_type
  ngx.header["Cache-Control"] = cache
  ngx.header["X-Content-Type-Options"] = "nosniff"
  ngx.header["Referrer-Policy"] = "no-referrer"
  ngx.header["Content-Security-Policy"] = CSP
end

local function only_get()
  local method = ngx.req.get_method()
  if method == "GET" or method == "HEAD" then return true end
  ngx.header["Allow"] = "GET, HEAD"
  ngx.status = 405
  headers("text/plain; charset=utf-8", "no-store")
  ngx.say("use GET")
  return false
end

--- init_worker_by_lua: read the settings, start the worker's refresher.
function dashboard.init_worker()
  local problems
  cfg, problems = config.load()
  for _, p in ipairs(problems) do ngx.log(ngx.WARN, "dashboard: ", p) end
  local ok, err = refresher.init(cfg)
  if not ok then ngx.log(ngx.ERR, "dashboard: ", err) end
end

--- content_by_lua: the page of a job.
function dashboard.page(raw_job)
  if not only_get() then return end
  local job = valid_job(raw_job)
  if not job then
    ngx.status = 400
    headers("text/html; charset=utf-8", "no-store")
    ngx.print(page.error("Not a JobId", "A JobId has 1 to 128 letters, digits, '-', '_' or '.'."))
    return
  end
  -- Start the first listing now, while the browser loads the page's assets.
  if refresher.dict() then refresher.watch(job) end
  headers("text/html; charset=utf-8", "no-cache")
  ngx.print(page.render(job))
end

local function send_json(status, body)
  ngx.status = status
  headers("application/json; charset=utf-8", "no-store")
  ngx.print(body)
end

--- content_by_lua: a job's snapshot.json.
function dashboard.snapshot(raw_job)
  if not only_get() then return end
  local job = valid_job(raw_job)
  if not job then
    return send_json(400, cjson.encode{ state = "error", error = {
      code = "Dashboard.InvalidJobId", message = "a JobId has 1 to 128 letters, digits, '-', '_' or '.'" } })
  end
  if not refresher.dict() then
    return send_json(500, cjson.encode{ JobId = job, state = "error", error = { code = "Dashboard.NotStarted",
      message = "the refresher is not running: nginx.conf needs lua_shared_dict " .. config.DEFAULTS.dict
        .. " and init_worker_by_lua_block { require(\"ota_dashboard\").init_worker() }" } })
  end
  local watching, why = refresher.watch(job)
  local snap, err, progress, listing = refresher.state(job)
  if not watching and not snap then
    return send_json(503, cjson.encode{ JobId = job, state = "error",
      error = { code = "Dashboard.TooManyJobs", message = why } })
  end
  local state = snap and "ready" or (err and "error") or "listing"
  ngx.update_time()
  -- The stored parts are JSON already: put them together, no decoding.
  local parts = {
    format('{"JobId":%s,"state":"%s","listing":%s,"interval":%s,"idle":%s,"now":%.3f',
      cjson.encode(job), state, tostring(listing), cjson.encode(cfg.interval), cjson.encode(cfg.idle), ngx.now()),
  }
  if progress then parts[#parts + 1] = ',"progress":' .. progress end
  if snap then parts[#parts + 1] = ',"snapshot":' .. snap end
  if err then parts[#parts + 1] = ',"error":' .. err end
  parts[#parts + 1] = "}"
  return send_json(200, table.concat(parts))
end

return dashboard
