--- aliyun-ota tasks JOB_ID: stream every task of a job, each once, as a
-- table, JSON, JSON lines or CSV, written page by page as the pages arrive.
local exit = require("aliyun.iot.cli.exit")
local fields = require("aliyun.iot.cli.fields")
local layout = require("aliyun.iot.cli.layout")
local listing = require("aliyun.iot.cli.listing")

local ipairs = ipairs

local tasks = {}

-- Repeatable options arrive as lists, empty when not given; drop repeats.
local function distinct(list)
  local set, result = {}, {}
  for _, v in ipairs(list or {}) do
    if not set[v] then set[v] = true; result[#result + 1] = v end
  end
  return #result > 0 and result or nil
end

--- The command. Returns 0; raises the library's error object.
function tasks.run(client, args, ctx)
  local w = layout.writer(fields.tasks, args, ctx)
  listing.each_page(client, args.job_id, ctx, distinct(args.status), distinct(args.device), w.records)
  w.finish()
  return exit.OK
end

return tasks
