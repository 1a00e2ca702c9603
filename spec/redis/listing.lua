--- One listing of scripts/redis-suite's machines (spec/redis/lister.lua in
-- plain Lua, spec/redis/resty_lister.lua in nginx): every page of `job`
-- through `client`, 4 in flight. Returns the result table each machine
-- reports: ok, err, code, count, distinct (TaskIds), total (the service's
-- Total), seconds, info (client:rate_limit_info()). Closes the client.
local listing = {}

function listing.run(client, job, clock)
  local t0 = clock()
  local seen, count, distinct, total = {}, 0, 0, nil
  local ok, err = pcall(function()
    for page in client:pages{ JobId = job, concurrency = 4 } do
      total = page.Total
      for _, task in ipairs(page.tasks) do
        count = count + 1
        if not seen[task.TaskId] then seen[task.TaskId], distinct = true, distinct + 1 end
      end
    end
  end)
  local result = {
    ok = ok, err = not ok and tostring(err) or nil, code = not ok and type(err) == "table" and err.code or nil,
    count = count, distinct = distinct, total = total, seconds = clock() - t0, info = client:rate_limit_info(),
  }
  client:close()
  return result
end

return listing
