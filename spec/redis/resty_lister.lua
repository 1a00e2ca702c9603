--- The nginx "machine" of scripts/redis-suite (spec/redis/nginx.conf.in):
-- both workers list the job at once, from a timer (spec/resty/orders.lua).
--   GET /go?gen=N&job=JOB&store=env|none[&required=1]   store=env: ALIYUN_IOT_RATE_LIMIT_STORE
--   GET /results?gen=N   -> {"results":[...]} one per worker that finished
-- luacheck: globals ngx
local iot = require("aliyun.iot")
local listing = require("listing")
local orders = require("orders")
local cjson = require("cjson.safe").new()

local ngx = ngx
local app = {}

local function now()
  ngx.update_time()
  return ngx.now()
end

local work = orders.new(ngx.shared.redis_suite, function(order)
  -- max_retries 6: as spec/redis/lister.lua, to ride out the Redis outage.
  local opts = { endpoint = os.getenv("AIOT_TEST_ENDPOINT"), region = "cn-shanghai", timeout = 30, max_retries = 6,
                 rate_limit_store_required = order.required }
  -- store=env: ALIYUN_IOT_RATE_LIMIT_STORE decides; none: this nginx's own bucket.
  if order.store == "none" then opts.rate_limit_store = false end
  local client, err = iot.new(opts)
  local result = client and listing.run(client, order.job, now) or { ok = false, err = tostring(err) }
  result.label, result.runtime = "nginx worker " .. ngx.worker.id(), "nginx"
  return result
end)

function app.init_worker() work.start() end

function app.handle()
  local args = ngx.req.get_uri_args()
  local gen = tonumber(args.gen) or 0
  if ngx.var.uri == "/go" then
    work.place{ gen = gen, job = args.job, store = args.store, required = args.required == "1" }
    return ngx.say("ok")
  end
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode{ results = work.results(gen) })
end

return app
