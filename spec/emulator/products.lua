-- Products and their devices (QueryDevice), one product per synthetic job.
--
-- Pure Lua, no ngx: tests may `dofile("spec/emulator/products.lua")` to
-- compute the exact devices the emulator lists.
--
-- The product of a job with N tasks (ProductKey jobs.product_key(job):
-- "pk-<JobId>", demo-job "a1DemoThrm9") has N + ceil(N/10) devices: the job's
-- N devices and ceil(N/10) devices without a task in the job. In product
-- order they come in groups of 11, ten of the job's then one other:
--
--   position d = 11*g + o (o = 1..11):  o <= 10 and 10*g + o <= N -> the device of task 10*g + o
--                                       otherwise                   -> other device number g + 1
--
-- (the last group holds the tasks left and then its other device). Device
-- names: task t's device is the one its task names (jobs.job_device_name);
-- other device e of a synthetic job is jobs.device_name(N + e), so every name
-- is unique in its product and jobs.index_of_device maps task devices back to
-- their task in O(1) and other devices to nothing (their index exceeds N).
-- demo-job's 4 other devices are DEMO_OTHER_DEVICES.
--
-- Device fields (DeviceInfo of QueryDevice, in this order): DeviceId,
-- ProductKey, DeviceStatus, Nickname, DeviceName, DeviceType, GmtCreate,
-- GmtModified, UtcCreate, UtcModified, IotId. With x the device's index (task
-- index t, or N + e): IotId the task's (SynIot%010dEmu of x; DemoIot for the
-- demo), DeviceId "SynDev%010d" / "DemoDev%010d" (legacy field),
-- DeviceStatus by x % 10: 0-5 ONLINE, 6-7 OFFLINE, 8 UNACTIVE, 9 DISABLE;
-- Nickname "传感器-<x>" when x % 7 == 0 else ""; DeviceType the product name;
-- created 2019-11-04T01:38:22Z + x s, modified + (x*53 mod 86400) s; Gmt* in
-- the form "Mon, 04-Nov-2019 01:38:23 GMT". No DeviceSecret.

local HERE = debug.getinfo(1, "S").source:match("^@(.-)[^/\\]*$") or ""
local jobs = package.loaded.jobs or dofile(HERE .. "jobs.lua")

local M = {}

local floor, ceil, format = math.floor, math.ceil, string.format

M.GROUP = 11                      -- 10 of the job's devices, then one other
M.DEMO_OTHER_DEVICES = { "thermostat-spare-01", "thermostat-spare-02", "meter@warehouse", "gw:roof" }

M.DEVICE_FIELDS = {
  "DeviceId", "ProductKey", "DeviceStatus", "Nickname", "DeviceName", "DeviceType",
  "GmtCreate", "GmtModified", "UtcCreate", "UtcModified", "IotId",
}

-- The product with this ProductKey: { key, job, size (devices), name }, or nil.
function M.parse(product_key)
  local job
  if product_key == jobs.DEMO_PRODUCT_KEY then
    job = jobs.parse("demo-job")
  else
    local job_id = product_key:match("^pk%-(.+)$")
    job = job_id and jobs.parse(job_id)
  end
  if not job or jobs.product_key(job) ~= product_key then return nil end
  return { key = product_key, job = job, size = job.size + ceil(job.size / 10),
           name = job.demo and "SmartThermostat" or "EmuSensor" }
end

-- The product of a job (descriptor or JobId).
function M.of_job(job)
  if type(job) == "string" then job = assert(jobs.parse(job), "unknown job " .. job) end
  return M.parse(jobs.product_key(job))
end

-- What is at position d (1..size): the task index t of a job device, or nil
-- and the number e of an other device.
function M.at(product, d)
  local g, o = floor((d - 1) / M.GROUP), (d - 1) % M.GROUP + 1
  local t = 10 * g + o
  if o <= 10 and t <= product.job.size then return t end
  return nil, g + 1
end

-- Device name at position d.
function M.device_name(product, d)
  local t, e = M.at(product, d)
  local job = product.job
  if t then return jobs.job_device_name(job, t) end
  if job.demo then return M.DEMO_OTHER_DEVICES[e] end
  return jobs.device_name(job.size + e)
end

local STATUS_BY_DIGIT = { [0] = "ONLINE", "ONLINE", "ONLINE", "ONLINE", "ONLINE", "ONLINE",
                          "OFFLINE", "OFFLINE", "UNACTIVE", "DISABLE" }
local DAYS = { "Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed" }          -- 1970-01-01 was a Thursday
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }
local BASE_EPOCH = 1572831502     -- 2019-11-04T01:38:22Z

-- "Mon, 04-Nov-2019 01:38:22 GMT" from epoch seconds (via jobs.iso_utc_ms).
local function gmt(t)
  local y, m, d, hms = jobs.iso_utc_ms(t):match("^(%d+)%-(%d+)%-(%d+)T([%d:]+)")
  return format("%s, %s-%s-%s %s GMT", DAYS[floor(t / 86400) % 7 + 1], d, MONTHS[tonumber(m)], y, hms)
end

-- The DeviceInfo record (all values strings) at position d.
function M.device(product, d)
  local job = product.job
  local t, e = M.at(product, d)
  local x = t or job.size + e
  local created = BASE_EPOCH + x
  local modified = created + (x * 53) % 86400
  local demo = job.demo
  return {
    DeviceId = format(demo and "DemoDev%010d" or "SynDev%010d", x),
    ProductKey = product.key,
    DeviceStatus = STATUS_BY_DIGIT[x % 10],
    Nickname = x % 7 == 0 and ("传感器-" .. x) or "",
    DeviceName = M.device_name(product, d),
    DeviceType = product.name,
    GmtCreate = gmt(created),
    GmtModified = gmt(modified),
    UtcCreate = jobs.iso_utc_ms(created),
    UtcModified = jobs.iso_utc_ms(modified),
    IotId = format("%sIot%010dEmu", demo and "Demo" or "Syn", x),
  }
end

return M
