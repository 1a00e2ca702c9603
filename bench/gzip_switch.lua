--- BENCH_GZIP=0: the client's transports ask for no gzip (core.new_session / core.new_multi
-- with gzip = false), until iot.new has an option of its own for it. Any other value, or
-- none: as the client is (gzip asked for and decoded). Loaded by the bench scripts before
-- they make a client; returns true when gzip is off.
local core = require("aliyun.iot.core")

if os.getenv("BENCH_GZIP") ~= "0" then return false end
for _, name in ipairs({ "new_session", "new_multi" }) do
  local make = core[name]
  core[name] = function(opts)
    local o = {}
    for k, v in pairs(opts or {}) do o[k] = v end
    o.gzip = false
    return make(o)
  end
end
return true
