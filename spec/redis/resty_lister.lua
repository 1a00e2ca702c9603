--- The nginx "machine" of scripts/redis-suite (spec/redis/nginx.conf.in):
-- every worker polls a shared dict for an order and then lists the job from
-- a timer, so both workers list at once whichever one the order reached.
--   GET /go?gen=N&job=JOB&store=env|none[&required=1]   store=env: ALIYUN_IOT_RATE_LIMIT_STORE
--   GET /results?gen=N   -> {"results":[...]} one per worker that finished
-- luacheck: globals ngx
local iot = require("aliyun.iot")
local cjson = require("cjson.safe").new()

local ngx = ngx
local shared = ngx.shared.redis_suite
local app = {}
local busy, last_gen = false, 0

local function list(order)
  local result = { label = "nginx worker " .. ngx.worker.id(), runtime = "nginx", worker = ngx.worker.id() }
  local opts = { endpoint = os.getenv("AIOT_TEST_ENDPOINT"), region = "cn-shanghai", timeout = 30,
                 rate_limit_store_required = order.required }
  -- store=env: ALIYUN_IOT_RATE_LIMIT_STORE decides; none: this nginx's own bucket.
  if order.store == "none" then opts.rate_limit_store = false end
  local client, err = iot.new(opts)
  if not client then
    result.ok, result.err = false, tostring(err)
    return result
  end
  local started = ngx.now()
  local seen, count, distinct, total = {}, 0, 0, nil
  local ok, lerr = pcall(function()
    for page in client:pages{ JobId = order.job, concurrency = 4 } do
      total = page.Total
      for _, task in ipairs(page.tasks) do
        count = count + 1
        if not seen[task.TaskId] then seen[task.TaskId], distinct = true, distinct + 1 end
      end
    end
  end)
  ngx.update_time()
  result.ok, result.err = ok, not ok and tostring(lerr) or nil
  result.count, result.distinct, result.total, result.seconds = count, distinct, total, ngx.now() - started
  result.info = client:rate_limit_info()
  client:close()
  return result
end

local function poll(premature)
  if premature or busy then return end
  local order = shared:get("go")
  if not order then return end
  order = cjson.decode(order)
  if order.gen <= last_gen then return end
  last_gen, busy = order.gen, true
  local ok, r = pcall(list, order)
  if not ok then r = { ok = false, err = tostring(r), worker = ngx.worker.id() } end
  shared:set(("result:%d:%d"):format(order.gen, ngx.worker.id()), cjson.encode(r))
  busy = false
end

function app.init_worker()
  assert(ngx.timer.every(0.02, poll))
end

function app.handle()
  local args = ngx.req.get_uri_args()
  local gen = tonumber(args.gen) or 0
  if ngx.var.uri == "/go" then
    shared:set("go", cjson.encode{ gen = gen, job = args.job, store = args.store, required = args.required == "1" })
    return ngx.say("ok")
  end
  local results = {}
  for w = 0, 15 do
    local r = shared:get(("result:%d:%d"):format(gen, w))
    if r then results[#results + 1] = cjson.decode(r) end
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode{ results = results })
end

return app
