-- Synthetic OTA jobs for the emulator's ListOTATaskByJob.
--
-- Pure Lua, no ngx dependency: works in nginx's LuaJIT and in plain Lua 5.1/5.4,
-- so the client's specs can `dofile("spec/emulator/jobs.lua")` and compute the
-- exact tasks the emulator will return.
--
-- Every job is a formula, never a stored list: task i (1-based) of a job is
-- computed from (job, i), and "the k-th task having status S" is computed
-- arithmetically, so any page of a job with millions of tasks costs O(PageSize).
--
-- Job ids:
--   job-<N>            N tasks, statuses follow STATUS_PATTERN (period 20)
--   job-<N>-<STATUS>   N tasks, all in STATUS (e.g. job-150000-QUEUED)
--   job-<N>-with-<X>   N tasks, STATUS_PATTERN except that position 20 (a
--                      SUCCEEDED) holds X, any upper-case name: with a name
--                      the API reference does not list (SCHEDULED, PAUSED)
--                      the job's Total exceeds the sum of its documented
--                      statuses (job-150000-with-SCHEDULED)
--   job-<N>-mix-<S1>:<c1>,<S2>:<c2>,...
--                      N tasks, exactly c_j in status S_j (documented statuses,
--                      each once, counts adding up to N, N <= MAX_MIX_TASKS),
--                      interleaved evenly (jobmix.lua), e.g.
--                      job-1000000-mix-SUCCEEDED:600000,IN_PROGRESS:200000,FAILED:100000,QUEUED:100000
--   demo-job           40 tasks with realistic device names, STATUS_PATTERN
-- N is a decimal without leading zeros, 0 <= N <= MAX_TASKS (job-0 is empty).
--
-- Each job has a product (ProductKey "pk-<JobId>", demo-job "a1DemoThrm9")
-- whose devices are the job's plus some that have no task in it: products.lua.

local M = {}

-- jobmix.lua lives beside this file; load it by path so that this file still
-- works when a test dofile()s it from anywhere.
local HERE = debug.getinfo(1, "S").source:match("^@(.-)[^/\\]*$") or ""
local jobmix = package.loaded.jobmix or dofile(HERE .. "jobmix.lua")
M.jobmix = jobmix

local floor, format = math.floor, string.format

M.MAX_TASKS = 100000000
M.MAX_MIX_TASKS = 10000000      -- jobmix arithmetic stays exact in doubles (N*N < 2^53)

M.STATUSES = { "QUEUED", "NOTIFIED", "IN_PROGRESS", "SUCCEEDED", "FAILED", "CANCELED", "CONFIRM" }
local IS_STATUS = {}
for _, s in ipairs(M.STATUSES) do IS_STATUS[s] = true end
M.IS_STATUS = IS_STATUS

-- Status of task i in a mixed job is STATUS_PATTERN[(i-1) % 20 + 1]:
-- 8 SUCCEEDED, 3 FAILED, 3 IN_PROGRESS, 2 QUEUED, 2 NOTIFIED, 1 CANCELED, 1 CONFIRM.
M.STATUS_PATTERN = {
  "SUCCEEDED", "FAILED", "SUCCEEDED", "IN_PROGRESS", "QUEUED",        --  1..5
  "SUCCEEDED", "NOTIFIED", "SUCCEEDED", "FAILED", "IN_PROGRESS",      --  6..10
  "SUCCEEDED", "CANCELED", "QUEUED", "SUCCEEDED", "FAILED",           -- 11..15
  "CONFIRM", "SUCCEEDED", "IN_PROGRESS", "NOTIFIED", "SUCCEEDED",     -- 16..20
}
local PERIOD = #M.STATUS_PATTERN

-- For each status of a pattern: the positions (1..PERIOD) it occupies,
-- ascending. One table per pattern, made on first use.
local POSITIONS_OF = setmetatable({}, { __mode = "k" })
local function positions_of(pattern)
  local pos = POSITIONS_OF[pattern]
  if pos then return pos end
  pos = {}
  for _, s in ipairs(M.STATUSES) do pos[s] = {} end
  for p, s in ipairs(pattern) do
    pos[s] = pos[s] or {}
    table.insert(pos[s], p)
  end
  POSITIONS_OF[pattern] = pos
  return pos
end
M.positions_of = positions_of

-- Status of task i in a mixed job with the standard pattern (job-<N>, demo-job).
function M.status_of(i)
  return M.STATUS_PATTERN[(i - 1) % PERIOD + 1]
end

-- The pattern of job-<N>-with-<X>: STATUS_PATTERN with X at position 20.
local WITH_PATTERNS = {}
local function with_pattern(extra)
  local pattern = WITH_PATTERNS[extra]
  if not pattern then
    pattern = {}
    for p, s in ipairs(M.STATUS_PATTERN) do pattern[p] = s end
    pattern[PERIOD] = extra
    WITH_PATTERNS[extra] = pattern
  end
  return pattern
end

-- Device name of task i in job-<N> and job-<N>-<STATUS> (the same device i in
-- every synthetic job):
--   i % 13 == 5  ->  "dev@<i>.lab"          e.g. dev@5.lab, dev@18.lab
--   i % 13 == 9  ->  "gw:<i, 6 digits>_a-b.c" e.g. gw:000009_a-b.c
--   otherwise    ->  "device-<i, 6 digits>"   e.g. device-000001, device-1234567
-- (<i, 6 digits> is string.format("%06d", i): zero-padded, longer when i > 999999.)
function M.device_name(i)
  local r = i % 13
  if r == 5 then return format("dev@%d.lab", i) end
  if r == 9 then return format("gw:%06d_a-b.c", i) end
  return format("device-%06d", i)
end

-- Inverse of device_name: the i whose device_name(i) == name, or nil.
local function synthetic_index_of(name)
  if #name > 40 then return nil end
  local digits = name:match("^device%-(%d+)$") or name:match("^dev@(%d+)%.lab$")
                 or name:match("^gw:(%d+)_a%-b%.c$")
  local i = digits and tonumber(digits)
  if i and i >= 1 and M.device_name(i) == name then return i end
  return nil
end

-- The demo job: 40 devices of a small smart-building fleet.
local DEMO_DEVICES = {
  "thermostat-lobby-01", "thermostat-lobby-02", "thermostat-floor1-01", "thermostat-floor1-02",
  "thermostat-floor2-01", "thermostat-floor2-02", "thermostat-floor3-01", "thermostat-floor3-02",
  "hvac_ctrl.north", "hvac_ctrl.south", "hvac_ctrl.east", "hvac_ctrl.west",
  "meter@building-a", "meter@building-b", "meter@building-c", "meter@garage",
  "gw:lobby", "gw:floor1", "gw:floor2", "gw:floor3",
  "sensor-co2-101", "sensor-co2-102", "sensor-co2-201", "sensor-co2-202",
  "sensor-co2-301", "sensor-co2-302", "sensor_humidity_1", "sensor_humidity_2",
  "valve-boiler-1", "valve-boiler-2", "pump.heating.1", "pump.heating.2",
  "display-reception", "display-canteen", "cam@entrance:main", "cam@entrance:side",
  "lock-door-101", "lock-door-102", "lock-door-201", "lock-door-202",
}
M.DEMO_DEVICES = DEMO_DEVICES
local DEMO_INDEX = {}
for i, name in ipairs(DEMO_DEVICES) do DEMO_INDEX[name] = i end

-- Parse a JobId. Returns a job descriptor or nil when the job does not exist:
--   { id, kind = "mixed"|"uniform"|"mix", size, status (uniform only), demo (bool),
--     pattern (mixed only: 20 statuses), extra_status (job-<N>-with-<X> only),
--     mix (mix only: jobmix.parse) }
function M.parse(job_id)
  if job_id == "demo-job" then
    return { id = job_id, kind = "mixed", size = #DEMO_DEVICES, demo = true, pattern = M.STATUS_PATTERN }
  end
  local mn, spec = job_id:match("^job%-(%d+)%-mix%-(.+)$")
  if mn then
    if (#mn > 1 and mn:sub(1, 1) == "0") or #mn > 9 then return nil end
    local size = tonumber(mn)
    if size > M.MAX_MIX_TASKS then return nil end
    local mix = jobmix.parse(spec, size, function(s) return IS_STATUS[s] end)
    if not mix then return nil end
    return { id = job_id, kind = "mix", size = size, mix = mix }
  end
  local n, with, status = job_id:match("^job%-(%d+)%-(with%-)([A-Z][A-Z_]*)$")
  if not n then n, status = job_id:match("^job%-(%d+)%-([A-Z_]+)$") end
  if not n then n = job_id:match("^job%-(%d+)$") end
  if not n then return nil end
  if #n > 1 and n:sub(1, 1) == "0" then return nil end   -- one spelling per job
  local size = tonumber(n)
  if size > M.MAX_TASKS then return nil end
  if with then
    if #status > 32 then return nil end
    return { id = job_id, kind = "mixed", size = size, pattern = with_pattern(status), extra_status = status }
  end
  if status then
    if not IS_STATUS[status] then return nil end
    return { id = job_id, kind = "uniform", size = size, status = status }
  end
  return { id = job_id, kind = "mixed", size = size, pattern = M.STATUS_PATTERN }
end

-- Status of task i of a job.
function M.job_status_of(job, i)
  if job.kind == "uniform" then return job.status end
  if job.kind == "mix" then return jobmix.status_of(job.mix, i) end
  return job.pattern[(i - 1) % PERIOD + 1]
end

-- Number of tasks among 1..i in status.
function M.prefix(job, status, i)
  if job.kind == "uniform" then return status == job.status and i or 0 end
  if job.kind == "mix" then return jobmix.prefix(job.mix, status, i) end
  local pos = positions_of(job.pattern)[status]
  if not pos then return 0 end
  local c, rest = floor(i / PERIOD) * #pos, i % PERIOD
  for _, p in ipairs(pos) do
    if p <= rest then c = c + 1 end
  end
  return c
end

-- Number of tasks of the job, or of those in status (status nil = all).
function M.count(job, status)
  if status == nil then return job.size end
  return M.prefix(job, status, job.size)
end

-- Index i of the k-th task (1-based, in task order) having status (nil = any).
-- Caller guarantees 1 <= k <= count(job, status).
function M.kth(job, status, k)
  if status == nil or job.kind == "uniform" then return k end
  if job.kind == "mix" then return jobmix.kth(job.mix, status, k) end
  local pos = positions_of(job.pattern)[status]
  local per = #pos
  return floor((k - 1) / per) * PERIOD + pos[(k - 1) % per + 1]
end

-- Rank of task i among the tasks with the same status (1-based); used to cycle
-- TaskDesc over the FAILED tasks.
local function rank_in_status(job, i)
  if job.kind == "uniform" then return i end
  if job.kind == "mix" then return jobmix.prefix(job.mix, jobmix.status_of(job.mix, i), i) end
  local status = M.job_status_of(job, i)
  local pos = positions_of(job.pattern)[status]
  local p = (i - 1) % PERIOD + 1
  local r = floor((i - 1) / PERIOD) * #pos
  for idx, q in ipairs(pos) do
    if q == p then return r + idx end
  end
end

-- Device name of task i of a job.
function M.job_device_name(job, i)
  if job.demo then return DEMO_DEVICES[i] end
  return M.device_name(i)
end

-- Task index of the device called name in job, or nil when it has no task there.
function M.index_of_device(job, name)
  local i
  if job.demo then i = DEMO_INDEX[name] else i = synthetic_index_of(name) end
  if i and i <= job.size then return i end
  return nil
end

-- The job's product: "pk-<JobId>" (demo-job: "a1DemoThrm9"); products.lua
-- holds its devices.
M.DEMO_PRODUCT_KEY = "a1DemoThrm9"

function M.product_key(job)
  if job.demo then return M.DEMO_PRODUCT_KEY end
  return "pk-" .. job.id
end

-- Descriptions of FAILED tasks, cycled in order over the job's FAILED tasks:
-- spaces, Chinese text, '*' and '~' exercise the client's encoding and output.
M.FAILED_DESCRIPTIONS = {
  "report version is not conform",
  "下载失败：固件校验错误",
  "timeout * retry ~ later",
  "device offline, upgrade timed out (30 min)",
  "升级超时 * 请稍后重试 ~",
}

-- UTC epoch seconds -> "YYYY-MM-DDThh:mm:ss.000Z" (civil-from-days, no os.date,
-- so the result never depends on the local time zone).
local function iso_utc_ms(t)
  local days, secs = floor(t / 86400), t % 86400
  local z = days + 719468
  local era = floor(z / 146097)
  local doe = z - era * 146097
  local yoe = floor((doe - floor(doe / 1460) + floor(doe / 36524) - floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + floor(yoe / 4) - floor(yoe / 100))
  local mp = floor((5 * doy + 2) / 153)
  local d = doy - floor((153 * mp + 2) / 5) + 1
  local m = mp < 10 and mp + 3 or mp - 9
  if m <= 2 then y = y + 1 end
  return format("%04d-%02d-%02dT%02d:%02d:%02d.000Z", y, m, d,
                floor(secs / 3600), floor(secs % 3600 / 60), secs % 60)
end
M.iso_utc_ms = iso_utc_ms

local BASE_EPOCH = 1572838702   -- 2019-11-04T03:38:22Z

-- Field order of a task record, as in the API reference (Timeout last, optional).
M.TASK_FIELDS = {
  "SrcVersion", "DeviceName", "FirmwareId", "IotId", "ProductKey", "JobId", "TaskDesc",
  "DestVersion", "UtcCreate", "UtcModified", "TaskStatus", "ProductName", "TaskId",
  "Progress", "Timeout",
}

local SRC_VERSIONS = { "1.0.0", "1.0.1", "0.9.8" }

-- Firmware ------------------------------------------------------------------
--
-- Each job has one FirmwareId (the one its task records carry):
--   job-<N> with 0 <= N <= SHARED_FIRMWARE_JOBS - 1 (mixed, not uniform)
--                                  -> SHARED_FIRMWARE ("FW-EmuSensor-1.1.0")
--   every other job (demo-job, job-<N> with N >= 100, job-<N>-<STATUS>)
--                                  -> "FW-" .. JobId
-- So FW-EmuSensor-1.1.0 lists 100 jobs (job-0 .. job-99, in that order) and
-- every other firmware lists exactly its one job.

M.SHARED_FIRMWARE = "FW-EmuSensor-1.1.0"
M.SHARED_FIRMWARE_JOBS = 100

function M.firmware_id(job)
  if type(job) == "string" then job = assert(M.parse(job), "unknown job " .. job) end
  if job.id == "job-" .. job.size and job.size < M.SHARED_FIRMWARE_JOBS then
    return M.SHARED_FIRMWARE
  end
  return "FW-" .. job.id
end

-- The jobs of a firmware: { count = n, job_id = function(k) -> k-th JobId }, or
-- nil when no job uses that FirmwareId.
function M.firmware_jobs(firmware_id)
  if firmware_id == M.SHARED_FIRMWARE then
    return { count = M.SHARED_FIRMWARE_JOBS, job_id = function(k) return "job-" .. (k - 1) end }
  end
  local job_id = firmware_id:match("^FW%-(.+)$")
  local job = job_id and M.parse(job_id)
  if not job or M.firmware_id(job) ~= firmware_id then return nil end
  return { count = 1, job_id = function() return job.id end }
end

-- Job record ------------------------------------------------------------------
--
-- The static fields of a job (QueryOTAJob / ListOTAJobByFirmware); JobStatus and
-- UtcEndTime depend on the task state and are added by jobstate.lua.
-- UtcCreate = UtcModified = UtcStartTime = 2019-11-04T02:38:22.000Z + (size % 3000) s,
-- i.e. before the first task (tasks start at 03:38:22).

M.JOB_TYPE, M.SELECTION_TYPE, M.TARGET_SELECTION = "UPGRADE_FIRMWARE", "STATIC", "ALL"

function M.job_record(job)
  if type(job) == "string" then job = assert(M.parse(job), "unknown job " .. job) end
  local created = iso_utc_ms(BASE_EPOCH - 3600 + job.size % 3000)
  return {
    JobId = job.id,
    Name = job.demo and "SmartThermostat-2.4.0" or "EmuSensor-1.1.0",
    JobDesc = "emulator job " .. job.id,
    JobType = M.JOB_TYPE,
    SelectionType = M.SELECTION_TYPE,
    TargetSelection = M.TARGET_SELECTION,
    ProductKey = M.product_key(job),
    FirmwareId = M.firmware_id(job),
    SrcVersions = job.demo and { "2.3.1" } or { "1.0.0", "1.0.1", "0.9.8" },
    DestVersion = job.demo and "2.4.0" or "1.1.0",
    MaximumPerMinute = 1000,
    OverwriteMode = 1,
    UtcCreate = created,
    UtcModified = created,
    UtcStartTime = created,
  }
end

-- End time of a finished job (COMPLETE or CANCELED): one hour after its last task
-- was created.
function M.job_end_time(job)
  return iso_utc_ms(BASE_EPOCH + job.size + 3600)
end

-- The task record (a plain table, all values strings) of task i of a job.
-- job is a descriptor from parse() or a JobId string.
function M.task(job, i)
  if type(job) == "string" then job = assert(M.parse(job), "unknown job " .. job) end
  local status = M.job_status_of(job, i)
  local progress = "0.00"
  if status == "SUCCEEDED" then
    progress = "100.00"
  elseif status == "IN_PROGRESS" then
    local p = (i * 7919) % 9999 + 1                     -- 0.01 .. 99.99
    progress = format("%d.%02d", floor(p / 100), p % 100)
  end
  local created = BASE_EPOCH + (i - 1)
  local modified = created
  if status ~= "QUEUED" then modified = created + 60 + (i * 37) % 3600 end
  local desc = ""
  if status == "FAILED" then
    local n = #M.FAILED_DESCRIPTIONS
    desc = M.FAILED_DESCRIPTIONS[(rank_in_status(job, i) - 1) % n + 1]
  end
  local t = {
    SrcVersion = job.demo and "2.3.1" or SRC_VERSIONS[i % 3 + 1],
    DeviceName = M.job_device_name(job, i),
    FirmwareId = M.firmware_id(job),
    IotId = format("%sIot%010dEmu", job.demo and "Demo" or "Syn", i),
    ProductKey = M.product_key(job),
    JobId = job.id,
    TaskDesc = desc,
    DestVersion = job.demo and "2.4.0" or "1.1.0",
    UtcCreate = iso_utc_ms(created),
    UtcModified = iso_utc_ms(modified),
    TaskStatus = status,
    ProductName = job.demo and "SmartThermostat" or "EmuSensor",
    -- Unique within and across jobs; clients must treat it as opaque.
    TaskId = format("%s-T%07d", job.id, i),
    Progress = progress,
  }
  if i % 4 == 0 then t.Timeout = tostring(30 * (i % 5 + 1)) end   -- minutes
  return t
end

return M
