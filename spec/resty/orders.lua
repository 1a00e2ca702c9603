--- Orders that every worker of a test nginx carries out at once (the
-- two-worker limiter test of spec/resty/run, the nginx "machine" of
-- scripts/redis-suite). The driver's request places an order in a shared
-- dict; every worker polls for it from a timer (cosockets work there) and runs
-- it, so all workers start together whichever one the request reached; each
-- keeps its result in the dict for the driver to collect.
--   local o = orders.new(ngx.shared.some_dict, function(order) return result_table end)
--   o.start()               in init_worker
--   o.place(order)          order.gen: a number, higher for every new order
--   o.results(gen)          -> the results of the workers that finished it
-- luacheck: globals ngx
local cjson = require("cjson.safe").new()

local orders = {}

function orders.new(dict, run)
  local ngx = ngx
  local busy, last_gen = false, 0
  local function poll(premature)
    if premature or busy then return end
    local order = dict:get("go")
    if not order then return end
    order = cjson.decode(order)
    if order.gen <= last_gen then return end
    last_gen, busy = order.gen, true
    local ok, r = pcall(run, order)
    if not ok then r = { ok = false, err = tostring(r) } end
    r.worker = ngx.worker.id()
    dict:set(("result:%d:%d"):format(order.gen, ngx.worker.id()), cjson.encode(r))
    busy = false
  end
  return {
    start = function() assert(ngx.timer.every(0.02, poll)) end,
    place = function(order) dict:set("go", cjson.encode(order)) end,
    results = function(gen)
      local out = {}
      for w = 0, ngx.worker.count() - 1 do
        local r = dict:get(("result:%d:%d"):format(gen, w))
        if r then out[#out + 1] = cjson.decode(r) end
      end
      return out
    end,
  }
end

return orders
