-- The text side of aliyun-ota in-process: display width, the four writers
-- line by line, fitting the table to a terminal, JSON of an answer, call's
-- parameters, the progress line and the summary's bars.
local h = require("cli_helpers")
local cjson = require("cjson")
local fields = require("aliyun.iot.cli.fields")
local layout = require("aliyun.iot.cli.layout")
local json = require("aliyun.iot.cli.json")
local call = require("aliyun.iot.cli.call")
local progress = require("aliyun.iot.cli.progress")
local summary = require("aliyun.iot.cli.summary")
local text = require("aliyun.iot.cli.width")
local writers = require("aliyun.iot.cli.writers")

local buffer, lines_of = h.buffer, h.lines_of
local function sp(n) return string.rep(" ", n) end

-- Sample tasks: plain ASCII, a Chinese description (two columns a
-- character), one to be cut, quotes and a line break, a field missing.
local TASKS = {
  { DeviceName = "thermostat-lobby-01", TaskStatus = "SUCCEEDED", Progress = "100.00",
    TaskDesc = "", TaskId = "demo-job-T0000001" },
  { DeviceName = "hvac_ctrl.north", TaskStatus = "FAILED", Progress = "0.00",
    TaskDesc = "下载失败：固件校验错误", TaskId = "demo-job-T0000009" },
  { DeviceName = "gw/floor1", TaskStatus = "FAILED", Progress = "0.00",
    TaskDesc = "升级超时，请稍后重试：设备离线超过三十分钟", TaskId = "demo-job-T0000010" },
  { DeviceName = "sensor-co2-102", TaskStatus = "IN_PROGRESS", Progress = "16.80",
    TaskDesc = 'say "retry",\nthen wait', TaskId = "demo-job-T0000022" },
}
local FIELDS = { "DeviceName", "TaskStatus", "Progress", "TaskDesc", "Timeout" }

-- Everything one writer writes for TASKS.
local function write_all(format, ellipsis)
  local out = buffer()
  local w = writers.new(format, FIELDS, function(...) out:write(...) end,
    { ellipsis = ellipsis, widths = layout.natural(fields.tasks, FIELDS), right = fields.tasks.RIGHT_ALIGNED })
  w.header()
  for _, t in ipairs(TASKS) do w.task(t) end
  w.finish()
  return out:text()
end

describe("cli width", function()
  it("counts display columns: wide characters two, combining marks none", function()
    assert.are.equal(5, text.width("hello"))
    assert.are.equal(8, text.width("下载失败"))
    assert.are.equal(4, text.width("ＡＢ"))            -- fullwidth forms
    assert.are.equal(1, text.width("e\204\129"))      -- e + U+0301 combining acute
    assert.are.equal(2, text.width("😀"))
    assert.are.equal(1, text.width("…"))
  end)

  it("makes values printable: control characters a space, bad UTF-8 a question mark", function()
    assert.are.equal("a b c", text.printable("a\nb\tc"))
    assert.are.equal("x [31m", text.printable("x\27[31m"))
    assert.are.equal("a b", text.printable("a\194\133b"))   -- C1 NEL
    assert.are.equal("ab?", text.printable("ab\255"))
    assert.are.equal("", text.printable(nil))
    assert.are.equal("42", text.printable(42))
    assert.is_false(text.valid_utf8("\237\160\128"))   -- a surrogate
    assert.is_false(text.valid_utf8("\192\128"))       -- overlong
    assert.is_true(text.valid_utf8("下载"))
  end)

  it("fits text to a width, cutting whole characters before the ellipsis", function()
    assert.are.same({ "short", 5 }, { text.fit("short", 10, "…") })
    assert.are.same({ "abcdefg…", 8 }, { text.fit("abcdefghij", 8, "…") })
    assert.are.same({ "abcde...", 8 }, { text.fit("abcdefghij", 8) })
    -- 3 columns left for "下载失败": one wide character fits, the next would not.
    assert.are.same({ "下…", 3 }, { text.fit("下载失败", 4, "…") })
    assert.are.same({ "下载…", 5 }, { text.fit("下载失败", 5, "…") })
  end)

  it("pads cells to exactly their width, left or right aligned", function()
    assert.are.equal("ab   ", text.cell("ab", 5))
    assert.are.equal("   ab", text.cell("ab", 5, true))
    assert.are.equal("下载 ", text.cell("下载", 5))
    assert.are.equal("下载…", text.cell("下载失败", 5, false, "…"))
  end)
end)

describe("cli writers", function()
  it("csv: RFC 4180 records, CRLF, quoted where needed, absent fields empty", function()
    assert.are.equal(table.concat({
      "DeviceName,TaskStatus,Progress,TaskDesc,Timeout\r\n",
      "thermostat-lobby-01,SUCCEEDED,100.00,,\r\n",
      "hvac_ctrl.north,FAILED,0.00,下载失败：固件校验错误,\r\n",
      "gw/floor1,FAILED,0.00,升级超时，请稍后重试：设备离线超过三十分钟,\r\n",
      'sensor-co2-102,IN_PROGRESS,16.80,"say ""retry"",\nthen wait",\r\n',
    }), write_all("csv"))
  end)

  it("jsonl: one object per line, keys in --fields order, absent fields null, / unescaped", function()
    assert.are.same({
      '{"DeviceName":"thermostat-lobby-01","TaskStatus":"SUCCEEDED","Progress":"100.00",'
        .. '"TaskDesc":"","Timeout":null}',
      '{"DeviceName":"hvac_ctrl.north","TaskStatus":"FAILED","Progress":"0.00",'
        .. '"TaskDesc":"下载失败：固件校验错误","Timeout":null}',
      '{"DeviceName":"gw/floor1","TaskStatus":"FAILED","Progress":"0.00",'
        .. '"TaskDesc":"升级超时，请稍后重试：设备离线超过三十分钟","Timeout":null}',
      '{"DeviceName":"sensor-co2-102","TaskStatus":"IN_PROGRESS","Progress":"16.80",'
        .. '"TaskDesc":"say \\"retry\\",\\nthen wait","Timeout":null}',
    }, lines_of(write_all("jsonl")))
  end)

  it("json: one array written element by element; empty is []", function()
    local out = write_all("json")
    local lines = lines_of(out)
    assert.are.equal(6, #lines)
    assert.are.equal("[", lines[1])
    assert.are.equal("]", lines[6])
    for i = 2, 4 do assert.are.equal(",", lines[i]:sub(-1)) end
    local doc = cjson.decode(out)
    assert.are.equal("下载失败：固件校验错误", doc[2].TaskDesc)
    assert.are.equal(cjson.null, doc[4].Timeout)
    local empty = buffer()
    local w = writers.new("json", FIELDS, function(...) empty:write(...) end)
    w.header(); w.finish()
    assert.are.equal("[]\n", empty:text())
  end)

  it("table: columns by display width, wide text cut with the ellipsis, no trailing blanks", function()
    -- DeviceName 32, TaskStatus 11, Progress 8 (its header), TaskDesc 36, Timeout 7; two blanks between.
    assert.are.same({
      "DeviceName" .. sp(22) .. "  TaskStatus   Progress  TaskDesc" .. sp(28) .. "  Timeout",
      string.rep("-", 32) .. "  " .. string.rep("-", 11) .. "  " .. string.rep("-", 8) .. "  "
        .. string.rep("-", 36) .. "  " .. string.rep("-", 7),
      "thermostat-lobby-01" .. sp(13) .. "  SUCCEEDED      100.00",
      "hvac_ctrl.north" .. sp(17) .. "  FAILED           0.00  下载失败：固件校验错误",
      -- 42 columns of Chinese into 36: 17 characters (34 columns) and "…".
      "gw/floor1" .. sp(23) .. "  FAILED           0.00  升级超时，请稍后重试：设备离线超过…",
      -- The line break shown as a space, so the row stays one line.
      "sensor-co2-102" .. sp(18) .. "  IN_PROGRESS     16.80  say \"retry\", then wait",
    }, lines_of(write_all("table", "…")))
  end)

  it("table: the same cut outside a UTF-8 locale ends with ...", function()
    local lines = lines_of(write_all("table", "..."))
    -- 16 characters (32 columns) and "...", 3 more columns.
    assert.are.equal("gw/floor1" .. sp(23) .. "  FAILED           0.00  升级超时，请稍后重试：设备离线超...", lines[5])
  end)
end)

describe("cli progress", function()
  it("draws the part, page, tasks of Total in place, only while more follows", function()
    local err, out = buffer(), buffer()
    local now = 1000
    local p = progress.new{ enabled = true, sep = " · ", stderr = err, stdout = out,
                            clock = function() return now end }
    p.part("[FAILED 1/2]", true)
    p.page({ CurrentPage = 1, Total = 250, tasks = { {}, {} } }, true)
    assert.are.equal("\r\27[K[FAILED 1/2] · page 1 · 2/250 tasks", err:text())
    now = 1002
    p.clear()
    p.page({ CurrentPage = 2, Total = 250, tasks = { {}, {} } }, true)
    assert.are.equal("\r\27[K[FAILED 1/2] · page 1 · 2/250 tasks\r\27[K"
      .. "\r\27[K[FAILED 1/2] · page 2 · 4/250 tasks · 2/s · ETA 2m03s", err:text())
    local before = #err:text()
    p.clear()
    p.page({ CurrentPage = 3, Total = 250, tasks = {} }, false)   -- the last page: nothing drawn
    assert.are.equal(before + #"\r\27[K", #err:text())
    assert.is_false(p.shown)
  end)

  it("formats durations", function()
    assert.are.equal("42s", progress.duration(42))
    assert.are.equal("3m07s", progress.duration(187))
    assert.are.equal("2h05m", progress.duration(2 * 3600 + 5 * 60 + 10))
  end)
end)

describe("cli summary", function()
  it("draws bars with eighths in Unicode, # otherwise, a sliver for any non-zero value", function()
    assert.are.equal("████▌     ", summary.bar(0.45, 10, true))
    assert.are.equal("▏         ", summary.bar(0.001, 10, true))
    assert.are.equal("#####.....", summary.bar(0.45, 10, false, "."))
    assert.are.equal("#         ", summary.bar(0.001, 10, false))
  end)
end)

describe("cli layout", function()
  local function total(widths)
    local n = 0
    for _, w in ipairs(widths) do n = n + w end
    return n + 2 * (#widths - 1)
  end

  it("keeps the fields of PRIORITY that fit, in the DEFAULT order; the rest of the width to TaskDesc", function()
    local names, widths = layout.fit(fields.tasks, 80)
    assert.are.same({ "DeviceName", "TaskStatus", "Progress", "TaskDesc" }, names)
    assert.are.same({ 32, 11, 8, 23 }, widths)
    names, widths = layout.fit(fields.tasks, 120)
    assert.are.same({ "DeviceName", "TaskStatus", "Progress", "TaskDesc", "UtcModified" }, names)
    assert.are.same({ 32, 11, 8, 37, 24 }, widths)
    names, widths = layout.fit(fields.tasks, 175)   -- the natural table: every field at its width
    assert.are.same(fields.tasks.DEFAULT, names)
    assert.are.same(layout.natural(fields.tasks, names), widths)
  end)

  it("never makes a table wider than the terminal, for any width from 20 on", function()
    for _, set in ipairs({ fields.tasks, fields.jobs }) do
      for columns = 20, 260 do
        local names, widths = layout.fit(set, columns)
        assert.is_true(#names >= 1)
        assert.is_true(total(widths) <= columns, columns .. " columns: " .. total(widths))
      end
    end
  end)

  it("writes rows no wider than the terminal, wide text cut by display width", function()
    local names, widths = layout.fit(fields.tasks, 60)
    local out = buffer()
    local w = writers.new("table", names, function(...) out:write(...) end, { ellipsis = "…", widths = widths })
    w.header()
    for _, t in ipairs(TASKS) do w.task(t) end
    for _, line in ipairs(lines_of(out:text())) do assert.is_true(h.width(line) <= 60, line) end
  end)

  it("every PRIORITY field is a DEFAULT one, and the other way round", function()
    for _, set in ipairs({ fields.tasks, fields.jobs }) do
      local in_default = {}
      for _, f in ipairs(set.DEFAULT) do in_default[f] = true end
      for _, f in ipairs(set.PRIORITY) do assert.is_true(in_default[f], f); in_default[f] = nil end
      assert.are.same({}, in_default)
    end
  end)
end)

describe("cli json", function()
  it("indents, sorts keys, keeps arrays in order; {} for an empty table, null for cjson.null", function()
    local doc = { Success = true, Total = 40.0, Data = { List = { "b", "a" }, Empty = {}, Gone = cjson.null },
                  RequestId = "R-1", Note = 'say "hi"/ok' }
    assert.are.equal(table.concat({
      '{',
      '  "Data": {',
      '    "Empty": {},',
      '    "Gone": null,',
      '    "List": [',
      '      "b",',
      '      "a"',
      '    ]',
      '  },',
      '  "Note": "say \\"hi\\"/ok",',
      '  "RequestId": "R-1",',
      '  "Success": true,',
      '  "Total": 40',
      '}',
    }, "\n"), json.encode(doc))
  end)
end)

describe("cli call", function()
  local function misuse(items)
    local ok, e = pcall(call.params, items)
    assert.is_false(ok)
    assert.are.equal("SDK.InvalidArgument", e.code)
    return e.message
  end

  it("makes lists of repeated and numbered names, tables of dotted ones; values stay text", function()
    assert.are.same({ JobId = "j", TaskId = { "a", "b", "c" } },
                    call.params{ "JobId=j", "TaskId=a", "TaskId=b", "TaskId=c" })
    assert.are.same({ DeviceName = { "a", "b" } }, call.params{ "DeviceName.2=b", "DeviceName.1=a" })
    assert.are.same({ Tag = { { Key = "k", Value = "v=1" } } }, call.params{ "Tag.1.Key=k", "Tag.1.Value=v=1" })
    assert.are.same({ PageSize = "10", Flag = "true", Ratio = "1.0", TaskStatus = "IN_PROGRESS" },
                    call.params{ "PageSize=10", "Flag=true", "Ratio=1.0", "TaskStatus=in_progress" })
  end)

  it("refuses gaps, a name both a value and a list, and what is not --Name VALUE", function()
    assert.truthy(misuse{ "TaskId.1=a", "TaskId.3=c" }:find("--TaskId.3 given without --TaskId.2", 1, true))
    assert.truthy(misuse{ "TaskId=a", "TaskId.2=b" }:find("given both as a value and with parts", 1, true))
    assert.truthy(misuse{ "DeviceName.1=a", "DeviceName=b" }:find("given both as a value and with parts", 1, true))
    assert.truthy(misuse{ "stray" }:find("expected --Name VALUE after the action, got 'stray'", 1, true))
    assert.truthy(misuse{ "Name..x=1" }:find("expected --Name VALUE", 1, true))
  end)

  it("writes a signed request: the request line, sorted headers with the token masked, the body", function()
    local req = setmetatable({ method = "POST", url = "https://h/?A=1", body = "B=2",
      headers = { ["x-acs-security-token"] = "tok", Accept = "application/json", host = "h" } },
      { __tostring = function(r) return r.method .. " " .. r.url end })
    assert.are.equal("POST https://h/?A=1\nAccept: application/json\nhost: h\nx-acs-security-token: ***\n\nB=2\n",
                     call.request_text(req))
  end)
end)
