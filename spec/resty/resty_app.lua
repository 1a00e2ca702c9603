--- Handlers of the test nginx (spec/resty/nginx.conf.in), driven by spec/resty/run.
-- Every answer is JSON, so the driver checks it with one decode.
-- luacheck: globals ngx
local iot = require("aliyun.iot")
local resty = require("aliyun.iot.transport.resty")
local orders = require("orders")
local cjson = require("cjson.safe").new()

local ngx = ngx
local app = {}

-- What init_worker saw (per worker; the tests run one worker where it matters).
local init = {}
-- Results of listings run in ngx.timer.at timers, by id.
local timer_results = {}

local function client_for(transport, extra)
  local opts = {
    endpoint = os.getenv("AIOT_TEST_ENDPOINT"), region = "cn-shanghai",
    transport = transport, timeout = 30, connect_timeout = 2,
  }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(iot.new(opts))
end

local function reply(status, t)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(t))
  return ngx.exit(status)
end

-- Credentials come from the environment through nginx's `env` directive.
-- List a whole job through client:tasks; counts and distinct TaskIds.
local function list(job, kind, status, extra, concurrency)
  local t = kind == "curl" and "curl" or resty.new{ timeout = 30 }
  local client = client_for(t, extra)
  local started = ngx.now()
  local count, seen, distinct, statuses = 0, {}, 0, {}
  local ok, err = pcall(function()
    for task in client:tasks{ JobId = job, TaskStatus = status, concurrency = concurrency } do
      count = count + 1
      if not seen[task.TaskId] then seen[task.TaskId], distinct = true, distinct + 1 end
      statuses[task.TaskStatus] = (statuses[task.TaskStatus] or 0) + 1
    end
  end)
  ngx.update_time()
  local result = {
    ok = ok, err = not ok and tostring(err) or nil, count = count, distinct = distinct,
    statuses = statuses, seconds = ngx.now() - started, phase = ngx.get_phase(),
    transport = type(t) == "table" and t.last or "curl",
    counts = type(t) == "table" and t.counts or nil,
  }
  client:close()
  return result
end

-- Two-worker limiter test: all workers run the same listing at once
-- (spec/resty/orders.lua), whichever worker the driver's request landed on.
local work = orders.new(ngx.shared.aiot_test, function(order)
  return list(order.job, nil, nil, { rate_limit = order.rate, max_retries = 0 })
end)

function app.init_worker()
  work.start()
  init.phase = ngx.get_phase()
  init.credentials = os.getenv("ALIBABA_CLOUD_ACCESS_KEY_ID") ~= nil
  -- No cosockets here: the resty transport must fall back to libcurl ...
  local t = resty.new{ timeout = 5 }
  local client = client_for(t)
  local page, err = client:ListOTATaskByJob{ JobId = "job-5", PageSize = 5 }
  init.transport, init.count, init.err = t.last, page and #page.tasks, err and tostring(err)
  client:close()
  -- ... or refuse, when asked to.
  local strict = resty.new{ fallback = false }
  local _, err2 = client_for(strict, { max_retries = 0 }):ListOTATaskByJob{ JobId = "job-5" }
  init.refused = err2 and err2.code
  init.refused_message = err2 and err2.message
end

local function fixtures()
  local base = "http://127.0.0.1:" .. ngx.var.server_port
  local out = {}
  local function try(name, t, method, path, headers, body)
    local status, rbody, rheaders = t:request(method, base .. path, headers, body)
    if status then
      out[name] = { status = status, body = rbody, headers = rheaders, reused = t.last_reused, via = t.last }
    else
      out[name] = { code = rbody.code, message = rbody.message, retryable = rbody.retryable, via = t.last }
    end
  end
  local t = resty.new{ timeout = 2 }
  try("echo_get", t, "GET", "/fx/echo?a=1")
  try("echo_get_again", t, "GET", "/fx/echo?a=2")
  try("echo_post", t, "POST", "/fx/echo", { ["content-type"] = "text/plain", host = "example.test" }, "hello body")
  try("post_empty", t, "POST", "/fx/echo", nil, "")
  try("chunked", t, "GET", "/fx/chunked")
  try("close", t, "GET", "/fx/close")
  try("after_close", t, "GET", "/fx/echo")
  try("big", t, "GET", "/fx/big")
  try("too_large", resty.new{ max_body_bytes = 1000 }, "GET", "/fx/big")
  try("too_large_chunked", resty.new{ max_body_bytes = 10 }, "GET", "/fx/chunked")
  try("timeout", resty.new{ timeout = 0.1 }, "GET", "/fx/slow")
  local _, e = resty.new{}:request("GET", "http://127.0.0.1:1/")
  out.refused = { code = e.code, retryable = e.retryable, message = e.message }
  try("bad_header", t, "GET", "/fx/echo", { ["X-Evil"] = "a\r\nInjected: 1" })
  local forced = resty.new{}
  local _, _, _ = forced:request("GET", base .. "/fx/echo")
  out.content_phase_via = forced.last
  return out
end

-- The trustworthy-listing cases over cosockets: a listing (distinct tasks,
-- or the error's code) and a write (the error's code and maybe_executed).
local function trust_list(job, concurrency)
  local client = client_for(resty.new{ timeout = 5 }, { rate_limit = false, max_retries = 3 })
  local seen, distinct, dups = {}, 0, 0
  local ok, err = pcall(function()
    for task in client:tasks{ JobId = job, concurrency = concurrency } do
      if seen[task.TaskId] then dups = dups + 1 else seen[task.TaskId], distinct = true, distinct + 1 end
    end
  end)
  client:close()
  return { ok = ok, distinct = distinct, dups = dups, code = not ok and type(err) == "table" and err.code or nil,
           err = not ok and tostring(err) or nil }
end

local function trust_write(action, job)
  local client = client_for(resty.new{ timeout = 5 }, { rate_limit = false, max_retries = 3 })
  local p = action == "CancelOTATaskByJob" and { JobId = job, CancelQueuedTask = true }
    or { JobId = job, TaskId = { job .. "-T0000002" } }
  local r, err = client:call(action, p)
  client:close()
  return { ok = r ~= nil, code = err and err.code, maybe_executed = err and err.maybe_executed,
           message = err and err.message }
end

function app.handle()
  local uri, args = ngx.var.uri, ngx.req.get_uri_args()
  if uri == "/t/init" then
    return reply(200, init)
  elseif uri == "/t/list" then
    local extra = args.no_limit and { rate_limit = false } or nil
    if args.rate then extra = { rate_limit = tonumber(args.rate) } end
    return reply(200, list(args.job, args.kind, args.status, extra))
  elseif uri == "/t/timer" then
    local id = tostring(args.id)
    timer_results[id] = { running = true }
    local ok, err = ngx.timer.at(0, function(premature)
      if premature then return end
      timer_results[id] = list(args.job, args.kind, nil, { rate_limit = false }, tonumber(args.concurrency))
    end)
    return reply(ok and 202 or 500, { started = ok, err = err })
  elseif uri == "/t/timer_result" then
    return reply(200, timer_results[tostring(args.id)] or { missing = true })
  elseif uri == "/t/go" then
    local order = { gen = tonumber(args.gen), job = args.job, rate = tonumber(args.rate) }
    work.place(order)
    return reply(200, order)
  elseif uri == "/t/results" then
    return reply(200, { workers = ngx.worker.count(), results = work.results(tonumber(args.gen)) })
  elseif uri == "/t/tls" then
    local function get(t, port)
      local status, body, headers = t:request("GET", "https://127.0.0.1:" .. port .. "/")
      if not status then return { code = body.code, message = body.message, retryable = body.retryable } end
      return { status = status, body = body, headers = headers, reused = t.last_reused }
    end
    local t = resty.new{ timeout = 5 }
    local out = { trusted = get(t, args.port) }
    out.again = get(t, args.port)
    out.rogue = get(resty.new{ timeout = 5 }, args.rogue)
    out.unverified = get(resty.new{ timeout = 5, ssl_verify = false }, args.rogue)
    return reply(200, out)
  elseif uri == "/t/trust_list" then
    return reply(200, trust_list(args.job, tonumber(args.concurrency)))
  elseif uri == "/t/trust_write" then
    return reply(200, trust_write(args.action, args.job))
  elseif uri == "/t/fixtures" then
    return reply(200, fixtures())
  end
  return reply(404, { err = "no such test endpoint " .. uri })
end

return app
