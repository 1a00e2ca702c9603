--- aliyun.iot.time: the two UTC time formats the service and its neighbours send, as epoch
-- seconds, through one days-from-civil function.
--
--   time.iso8601_epoch("2026-11-26T09:53:23Z")              --> 1795686803
--   time.iso8601_epoch("2026-11-26T09:53:23.000Z")          --> 1795686803 (fraction dropped)
--   time.http_date_epoch("Thu, 26 Nov 2026 09:53:23 GMT")   --> 1795686803
--
-- ISO 8601 is what ECS metadata (Expiration) and STS answer with; the HTTP date is the
-- gateway's Date header, which the request pipeline reads to measure clock skew. Both
-- return nil for what they cannot parse. Neither uses os.time, which would read the local
-- time zone. Pure functions: no I/O, no state.
local type, tonumber = type, tonumber
local match, gsub = string.match, string.gsub
local floor = math.floor

local time = {}

--- Days from 1970-01-01 to year y, month m (1-12), day d in the proleptic Gregorian
-- calendar (Howard Hinnant's days_from_civil). Written with % rather than math.floor, as
-- request.http_date_epoch always was, so that it is exact on floats as well as integers.
function time.days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = (y >= 0 and y or y - 399) - (y >= 0 and y or y - 399) % 400
  era = era / 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2 - (153 * mp + 2) % 5) / 5 + d - 1
  local doe = yoe * 365 + (yoe - yoe % 4) / 4 - (yoe - yoe % 100) / 100 + doy
  return era * 146097 + doe - 719468
end
local days_from_civil = time.days_from_civil

--- "2026-11-26T12:00:00Z" to epoch seconds, or nil. Fractional seconds are dropped; "z",
-- a space for the "T", and a numeric offset ("+08:00", "+0800") are accepted. An integer
-- on Lua 5.3+ (what credentials.parse_iso8601 always returned).
function time.iso8601_epoch(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec, rest = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)[Tt ](%d%d):(%d%d):(%d%d)(.*)$")
  if not y then return nil end
  rest = gsub(rest, "^%.%d+", "")
  local offset
  if rest == "Z" or rest == "z" then
    offset = 0
  else
    local sign, oh, om = match(rest, "^([%+%-])(%d%d):?(%d%d)$")
    if not sign then return nil end
    offset = (tonumber(oh) * 3600 + tonumber(om) * 60) * (sign == "-" and -1 or 1)
  end
  y, mo, d = tonumber(y), tonumber(mo), tonumber(d)
  if mo < 1 or mo > 12 or d < 1 or d > 31 then return nil end
  return floor(days_from_civil(y, mo, d) * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec) - offset)
end

-- Date header ("Thu, 26 Nov 2026 09:53:23 GMT") to epoch seconds.
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6,
                 Jul = 7, Aug = 8, Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

--- An HTTP Date header (RFC 7231's IMF-fixdate) to epoch seconds, or nil when it is not
-- one. The same answers as request.http_date_epoch, which it is meant to replace: the
-- weekday is not checked, and the numbers are not range-checked.
function time.http_date_epoch(date)
  local d, mon, y, hh, mm, ss = match(date or "", "^%a+, (%d+) (%a+) (%d+) (%d+):(%d+):(%d+) GMT$")
  local m = MONTHS[mon]
  if not m then return nil end
  return days_from_civil(tonumber(y), m, tonumber(d)) * 86400 + tonumber(hh) * 3600 + tonumber(mm) * 60
    + tonumber(ss)
end

return time
