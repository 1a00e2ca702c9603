--- aliyun-ota: display width of UTF-8 text, and cutting text to a column.
-- East Asian wide and fullwidth characters take two columns, combining marks
-- and zero-width characters none. No utf8 library (Lua 5.1 and LuaJIT have
-- none), so the decoding is done here.
--
--   width.printable(v)              v as text safe for a terminal
--   width.width(s)                  display columns of s
--   width.fit(s, w, ellipsis)       s cut to at most w columns, and its width
--   width.cell(s, w, right, ellipsis) s fitted and padded to exactly w columns

local byte, rep = string.byte, string.rep
local floor = math.floor
local tostring = tostring

local width = {}

local WIDE = {   -- sorted, non-overlapping ranges
  { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC },
  { 0x23F0, 0x23F0 }, { 0x23F3, 0x23F3 }, { 0x25FD, 0x25FE }, { 0x2614, 0x2615 },
  { 0x2648, 0x2653 }, { 0x267F, 0x267F }, { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 },
  { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE }, { 0x26C4, 0x26C5 }, { 0x26CE, 0x26CE },
  { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA }, { 0x26F2, 0x26F5 }, { 0x26FA, 0x26FD },
  { 0x2705, 0x2705 }, { 0x270A, 0x270B }, { 0x2728, 0x2728 }, { 0x274C, 0x274C },
  { 0x2753, 0x2755 }, { 0x2757, 0x2757 }, { 0x2795, 0x2797 }, { 0x27B0, 0x27B0 },
  { 0x27BF, 0x27BF }, { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 }, { 0x2B55, 0x2B55 },
  { 0x2E80, 0x303E }, { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF },
  { 0xA000, 0xA4CF }, { 0xA960, 0xA97F }, { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF },
  { 0xFE10, 0xFE19 }, { 0xFE30, 0xFE6F }, { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 },
  { 0x16FE0, 0x16FE4 }, { 0x17000, 0x18CFF }, { 0x1B000, 0x1B2FF }, { 0x1F004, 0x1F004 },
  { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A }, { 0x1F200, 0x1F251 },
  { 0x1F300, 0x1F64F }, { 0x1F680, 0x1F6FF }, { 0x1F7E0, 0x1F7EB }, { 0x1F90C, 0x1F9FF },
  { 0x1FA70, 0x1FAFF }, { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
}
local ZERO = {
  { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x0610, 0x061A },
  { 0x064B, 0x065F }, { 0x0E31, 0x0E31 }, { 0x0E34, 0x0E3A }, { 0x0E47, 0x0E4E },
  { 0x1AB0, 0x1AFF }, { 0x1DC0, 0x1DFF }, { 0x200B, 0x200F }, { 0x202A, 0x202E },
  { 0x2060, 0x2064 }, { 0x20D0, 0x20FF }, { 0x302A, 0x302D }, { 0x3099, 0x309A },
  { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F }, { 0xFEFF, 0xFEFF }, { 0xE0100, 0xE01EF },
}

local function in_ranges(ranges, cp)
  local lo, hi = 1, #ranges
  while lo <= hi do
    local mid = floor((lo + hi) / 2)
    local r = ranges[mid]
    if cp < r[1] then hi = mid - 1 elseif cp > r[2] then lo = mid + 1 else return true end
  end
  return false
end

--- Columns one code point takes: 0, 1 or 2.
function width.char_width(cp)
  if cp < 0x300 then return 1 end
  if in_ranges(ZERO, cp) then return 0 end
  if cp >= 0x1100 and in_ranges(WIDE, cp) then return 2 end
  return 1
end
local char_width = width.char_width

--- Is s well-formed UTF-8 (no overlong forms, surrogates or code points past
-- U+10FFFF)?
function width.valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local c = byte(s, i)
    local len
    local lo, hi = 0x80, 0xBF
    if c < 0x80 then len = 1
    elseif c >= 0xC2 and c <= 0xDF then len = 2
    elseif c >= 0xE0 and c <= 0xEF then
      len = 3
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F end
    elseif c >= 0xF0 and c <= 0xF4 then
      len = 4
      if c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
    else
      return false
    end
    for k = 1, len - 1 do
      local d = byte(s, i + k)
      if not d then return false end
      if k == 1 then
        if d < lo or d > hi then return false end
      elseif d < 0x80 or d > 0xBF then
        return false
      end
    end
    i = i + len
  end
  return true
end

-- The code points of a valid string: for start, cp, len in codes(s).
local function codes(s)
  local i, n = 1, #s
  return function()
    if i > n then return nil end
    local c = byte(s, i)
    local start, cp, len = i, c, 1
    if c >= 0xF0 then cp, len = c % 0x08, 4
    elseif c >= 0xE0 then cp, len = c % 0x10, 3
    elseif c >= 0xC0 then cp, len = c % 0x20, 2 end
    for k = 1, len - 1 do cp = cp * 64 + byte(s, i + k) % 64 end
    i = i + len
    return start, cp, len
  end
end

--- A value made safe to put on a terminal: invalid UTF-8 bytes become "?",
-- control characters (C0, DEL, C1: newlines, tabs, escape sequences) a space,
-- so a TaskDesc can neither break a row nor drive the terminal. nil is "".
function width.printable(v)
  if v == nil then return "" end
  local s = tostring(v)
  if not width.valid_utf8(s) then s = s:gsub("[\128-\255]", "?") end
  s = s:gsub("%c", " "):gsub("\194[\128-\159]", " ")
  return s
end

--- Display columns of valid UTF-8 text.
function width.width(s)
  local w = 0
  for _, cp in codes(s) do w = w + char_width(cp) end
  return w
end
local text_width = width.width

--- s cut to at most w display columns, ending with `ellipsis` (default
-- "...") when cut. Returns the text and its width.
function width.fit(s, w, ellipsis)
  ellipsis = ellipsis or "..."
  local sw = text_width(s)
  if sw <= w then return s, sw end
  local ew = text_width(ellipsis)
  local cut, acc = 0, 0
  for start, cp, len in codes(s) do
    local cw = char_width(cp)
    if acc + cw > w - ew then break end
    cut = start + len - 1
    acc = acc + cw
  end
  return s:sub(1, cut) .. ellipsis, acc + ew
end
local fit = width.fit

--- s fitted to w columns and padded with spaces to exactly w, on the left
-- when `right` (right-aligned).
function width.cell(s, w, right, ellipsis)
  local text, tw = fit(s, w, ellipsis)
  if right then return rep(" ", w - tw) .. text end
  return text .. rep(" ", w - tw)
end

return width
