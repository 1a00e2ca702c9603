--- Handlers for examples/openresty/nginx.conf:
--   GET /ota/<JobId>/summary   task counts by status and the percentage done
--   GET /ota/<JobId>/failed    the failed tasks with their TaskDesc
--
-- The client is the worker's one client (ota_client), shared with the
-- dashboard. Its calls go through cosockets, so while one request pages
-- through a job of any size, the worker keeps serving every other request.
-- Each request here lists the job anew: these answers are exact and
-- current, and cost one listing each (the dashboard's page and
-- snapshot.json are the way for many viewers).
-- luacheck: globals ngx
local iot = require("aliyun.iot")
local ota_client = require("ota_client")
local cjson = require("cjson.safe").new() -- a private instance: the app's cjson settings stay its own

local ngx = ngx

local handlers = {}

-- Terminal states: the device is done with this job, one way or another.
local DONE = { SUCCEEDED = true, FAILED = true, CANCELED = true }

local function send(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json; charset=utf-8"
  local body = cjson.encode(t)
  -- lua-cjson writes an empty table as {}; the task list is an array.
  if t.tasks and #t.tasks == 0 then body = body:gsub('"tasks":{}', '"tasks":[]') end
  ngx.say(body)
  return ngx.exit(status)
end

-- HTTP status for an API error: the caller's mistake, a missing job, or upstream trouble.
local function error_status(err)
  if err.code == "SDK.InvalidArgument" then return 400 end
  if err.code == "iot.ota.OtaJobNotExist" then return 404 end
  if err.code == "SDK.Timeout" then return 504 end
  return 502
end

local function fail(err)
  if type(err) ~= "table" then error(err, 0) end -- a bug, not an API error: let nginx log it
  ngx.log(ngx.WARN, "OTA listing failed: ", tostring(err)) -- the error object never holds a secret
  return send(error_status(err), { code = err.code, message = err.message, request_id = err.request_id })
end

--- Walk every task of a job (`status` filters), calling fn(task); nil, err on failure.
local function each_task(c, job_id, status, fn)
  local ok, err = pcall(function()
    for task in c:tasks{ JobId = job_id, TaskStatus = status } do fn(task) end
  end)
  if not ok then return nil, err end
  return true
end

local function summary(c, job_id)
  local counts, total, done = {}, 0, 0
  for _, s in ipairs(iot.TASK_STATUSES) do counts[s] = 0 end
  local ok, err = each_task(c, job_id, nil, function(task)
    local s = task.TaskStatus
    counts[s] = (counts[s] or 0) + 1
    total = total + 1
    if DONE[s] then done = done + 1 end
  end)
  if not ok then return fail(err) end
  return send(200, {
    JobId = job_id,
    total = total,
    counts = counts,
    percent_done = total > 0 and math.floor(done * 10000 / total + 0.5) / 100 or 0,
  })
end

local function failed(c, job_id)
  local tasks = {}
  local ok, err = each_task(c, job_id, "FAILED", function(task)
    tasks[#tasks + 1] = {
      DeviceName = task.DeviceName, TaskId = task.TaskId, TaskDesc = task.TaskDesc or "",
      SrcVersion = task.SrcVersion, DestVersion = task.DestVersion, UtcModified = task.UtcModified,
    }
  end)
  if not ok then return fail(err) end
  return send(200, { JobId = job_id, count = #tasks, tasks = tasks })
end

--- content_by_lua entry: handle(job_id, "summary" | "failed").
function handlers.handle(job_id, what)
  if ngx.req.get_method() ~= "GET" and ngx.req.get_method() ~= "HEAD" then
    ngx.header["Allow"] = "GET, HEAD"
    return send(405, { code = "MethodNotAllowed", message = "use GET" })
  end
  local c, err = ota_client.get()
  if not c then return fail(err) end
  -- job_id is the location's capture of the decoded $uri: decoding it again
  -- would turn a JobId holding "%41" into another one.
  if what == "summary" then return summary(c, job_id) end
  return failed(c, job_id)
end

return handlers
