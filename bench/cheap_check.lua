--- Does bench/cheap_server answer what the emulator would? Renders the expected answers with
-- the emulator's own jobs.lua and codec.lua (the JSON spec/emulator/ota.lua writes) and
-- compares them byte for byte with the cheap server's (RequestId aside), over V1 GET and V3
-- POST, plain and gzip.
--   lua5.4 bench/cheap_check.lua <endpoint>
-- Prints "cheap_check ok checks=N" or raises on the first difference.
local core = require("aliyun.iot.core")

local endpoint = assert(arg[1], "usage: cheap_check.lua <endpoint>")
local jobs = dofile("spec/emulator/jobs.lua")
local codec = dofile("spec/emulator/codec.lua")

-- ota.lua's success() and iot_error(), over jobs.lua's tasks.
local function expected_page(job_id, status, page_size, current_page)
  local job = assert(jobs.parse(job_id))
  local total = jobs.count(job, status)
  local tasks = {}
  for k = (current_page - 1) * page_size + 1, math.min(current_page * page_size, total) do
    tasks[#tasks + 1] = codec.object(jobs.TASK_FIELDS, jobs.task(job, jobs.kth(job, status, k)))
  end
  local data = total == 0 and {} or codec.object({ "SimpleOTATaskInfo" }, { SimpleOTATaskInfo = codec.array(tasks) })
  return codec.json(codec.object(
    { "RequestId", "Success", "Total", "PageSize", "CurrentPage", "PageCount", "Data" },
    { RequestId = "RID", Success = true, Total = total, PageSize = page_size, CurrentPage = current_page,
      PageCount = math.ceil(total / page_size), Data = data }))
end

local function expected_error(code, message)
  return codec.json(codec.object({ "RequestId", "Success", "Code", "ErrorMessage" },
    { RequestId = "RID", Success = false, Code = code, ErrorMessage = message }))
end

local plain = core.new_session { gzip = false, proxy = "" }
local gzip = core.new_session { proxy = "" }
local checks = 0

local function query(p)
  local out = {}
  for k, v in pairs(p) do out[#out + 1] = core.percent_encode(k) .. "=" .. core.percent_encode(tostring(v)) end
  table.sort(out)
  return table.concat(out, "&")
end

local function fetch(p, want, what)
  local q = query(p)
  local v3 = { ["x-acs-action"] = "ListOTATaskByJob", ["content-type"] = "application/x-www-form-urlencoded" }
  local tries = {
    { plain, "GET", "/?Action=ListOTATaskByJob&Signature=x&" .. q, nil },
    { gzip, "GET", "/?Action=ListOTATaskByJob&" .. q, nil },
    { plain, "POST", "/?" .. q, v3 },
    { gzip, "POST", "/", v3, q }, -- the parameters in a form body
  }
  for i, t in ipairs(tries) do
    local status, body, headers = t[1]:request(t[2], endpoint .. t[3], t[4], t[5] or (t[2] == "POST" and "" or nil))
    assert(status == 200, what .. ": HTTP " .. tostring(status) .. " " .. tostring(body))
    -- Pages come compressed when asked for; errors (made per request) never do.
    local gz = headers["content-encoding"] == "gzip"
    assert(gz == (t[1] == gzip and want:find('"Success":true', 1, true) ~= nil), what .. ": content-encoding")
    local rid = body:match('^{"RequestId":"([^"]+)"')
    assert(rid and headers["x-acs-request-id"] == rid, what .. ": RequestId")
    local got = body:gsub('^{"RequestId":"[^"]+"', '{"RequestId":"RID"', 1)
    if got ~= want then
      local n = 1
      while got:sub(n, n) == want:sub(n, n) do n = n + 1 end
      error(("%s (request shape %d): differs at byte %d:\n  got      %s\n  expected %s"):format(what, i,
        n, got:sub(math.max(1, n - 60), n + 60), want:sub(math.max(1, n - 60), n + 60)), 0)
    end
    checks = checks + 1
  end
end

local cases = {
  { "job-25", nil, 10, 1 }, { "job-25", nil, 10, 3 }, { "job-25", nil, 10, 4 }, { "job-25", nil, 3, 2 },
  { "job-0", nil, 10, 1 }, { "job-99", nil, 100, 1 }, { "job-100", nil, 100, 1 },
  { "job-100000", nil, 100, 1 }, { "job-100000", nil, 100, 1000 }, { "job-100000", nil, 100, 537 },
  { "job-250000", "FAILED", 100, 7 }, { "job-250000", "SUCCEEDED", 100, 1000 }, { "job-250000", "CONFIRM", 37, 11 },
  { "job-1000", "IN_PROGRESS", 50, 2 }, { "job-30-FAILED", nil, 100, 1 }, { "job-30-FAILED", "FAILED", 7, 3 },
  { "job-30-FAILED", "QUEUED", 10, 1 }, { "job-12345678", nil, 100, 1000 },
}
for _, c in ipairs(cases) do
  local p = { JobId = c[1], TaskStatus = c[2], PageSize = c[3], CurrentPage = c[4] }
  local what = ("%s %s PageSize=%d CurrentPage=%d"):format(c[1], tostring(c[2]), c[3], c[4])
  fetch(p, expected_page(c[1], c[2], c[3], c[4]), what)
end
-- Defaults (PageSize 10, CurrentPage 1) and the iot.* errors of ota.lua.
fetch({ JobId = "job-25" }, expected_page("job-25", nil, 10, 1), "defaults")
fetch({ JobId = "job-25", PageSize = 101 }, expected_error("iot.common.InvalidPageParams",
  "PageSize must be between 1 and 100, got 101."), "PageSize 101")
fetch({ JobId = "job-25", PageSize = 100, CurrentPage = 1001 }, expected_error("iot.common.InvalidPageParams",
  "Paging too deep: CurrentPage * PageSize must not exceed 100000, got 1001 * 100."), "too deep")
fetch({ JobId = "job-25", CurrentPage = 0 }, expected_error("iot.common.InvalidPageParams",
  "CurrentPage must be at least 1, got 0."), "CurrentPage 0")
fetch({ JobId = "nope" }, expected_error("iot.ota.OtaJobNotExist", "The OTA job does not exist: nope."), "no such job")
fetch({ JobId = "job-25", TaskStatus = "DONE" }, expected_error("iot.common.InvalidParameter",
  "TaskStatus is invalid: DONE (one of " .. table.concat(jobs.STATUSES, ", ") .. ")."), "unknown status")
plain:close()
gzip:close()
print(("cheap_check ok checks=%d"):format(checks))
