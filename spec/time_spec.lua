-- aliyun.iot.time: ISO 8601 and HTTP dates to epoch seconds. The known answers were worked
-- out independently (`date -u -d ... +%s`); leap years; nil for what is not a date.
local time = require("aliyun.iot.time")

-- Each { input, epoch seconds } through f.
local function assert_answers(f, cases)
  for _, case in ipairs(cases) do assert.are.equal(case[2], f(case[1]), case[1]) end
end

-- Each input through f gives nil.
local function assert_rejects(f, inputs)
  for _, s in ipairs(inputs) do assert.is_nil(f(s), tostring(s)) end
end

describe("aliyun.iot.time", function()
  describe("days_from_civil", function()
    it("counts days from 1970-01-01, through leap days", function()
      assert.are.equal(0, time.days_from_civil(1970, 1, 1))
      assert.are.equal(-1, time.days_from_civil(1969, 12, 31))
      assert.are.equal(11016, time.days_from_civil(2000, 2, 29))
      assert.are.equal(11017, time.days_from_civil(2000, 3, 1))
      assert.are.equal(-719528, time.days_from_civil(0, 1, 1))
      -- 2100 is not a leap year (divisible by 100, not by 400): Feb 28 is followed by Mar 1.
      assert.are.equal(time.days_from_civil(2100, 2, 28) + 1, time.days_from_civil(2100, 3, 1))
      -- 2024 is: Feb 29 lies between.
      assert.are.equal(time.days_from_civil(2024, 2, 28) + 2, time.days_from_civil(2024, 3, 1))
    end)
  end)

  describe("iso8601_epoch", function()
    local epoch = time.iso8601_epoch

    it("gives known answers, with and without a fraction", function()
      assert_answers(epoch, {
        { "2026-11-26T09:53:23Z", 1795686803 },
        { "2026-11-26T09:53:23.000Z", 1795686803 },
        { "2026-11-26T09:53:23.999Z", 1795686803 }, -- dropped, not rounded
        { "1970-01-01T00:00:00Z", 0 },
        { "1969-12-31T23:59:59Z", -1 },
        { "2019-11-04T03:38:22.000Z", 1572838702 }, -- as task records carry them
      })
    end)

    it("handles leap days and century years", function()
      assert_answers(epoch, {
        { "2000-02-29T00:00:00Z", 951782400 },
        { "2000-03-01T00:00:00Z", 951868800 },
        { "2024-02-29T00:00:00Z", 1709164800 },
        { "2100-02-28T00:00:00Z", 4107542400 - 86400 },
        { "2100-03-01T00:00:00Z", 4107542400 },
      })
    end)

    it("applies a numeric offset, and takes z and a space", function()
      assert_answers(epoch, {
        { "2026-11-26T17:53:23+08:00", 1795686803 },
        { "2026-11-26T04:23:23-0530", 1795686803 },
        { "2026-11-26 09:53:23z", 1795686803 },
      })
    end)

    it("is an integer on Lua 5.3+", function()
      if math.type then assert.are.equal("integer", math.type(epoch("2026-11-26T09:53:23.000Z"))) end
    end)

    it("is nil for what is not an ISO 8601 UTC time", function()
      assert_rejects(epoch, {
        "", "next tuesday", "2026-11-26", "2026-11-26T09:53:23", "2026-11-26T09:53:23GMT",
        "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-32T00:00:00Z", "2026-11-00T00:00:00Z",
        "26-11-26T09:53:23Z", "2026-11-26T09:53:23+8", " 2026-11-26T09:53:23Z",
        "Thu, 26 Nov 2026 09:53:23 GMT", 1795686803, {}, false,
      })
      assert.is_nil(epoch(nil))
    end)
  end)

  describe("http_date_epoch", function()
    local epoch = time.http_date_epoch

    it("gives known answers", function()
      assert_answers(epoch, {
        { "Thu, 26 Nov 2026 09:53:23 GMT", 1795686803 },
        { "Thu, 01 Jan 1970 00:00:00 GMT", 0 },
        { "Sun, 06 Nov 1994 08:49:37 GMT", 784111777 }, -- RFC 7231's example
      })
    end)

    it("handles leap days", function()
      assert_answers(epoch, {
        { "Tue, 29 Feb 2000 00:00:00 GMT", 951782400 },
        { "Thu, 29 Feb 2024 00:00:00 GMT", 1709164800 },
        { "Mon, 01 Mar 2100 00:00:00 GMT", 4107542400 },
      })
    end)

    it("agrees with iso8601_epoch on the same instant", function()
      assert.are.equal(time.iso8601_epoch("2030-01-01T01:00:00Z"), epoch("Tue, 01 Jan 2030 01:00:00 GMT"))
    end)

    it("is nil for what is not an HTTP date", function()
      assert_rejects(epoch, {
        "", "next tuesday", "Thu, 26 Nov 2026 09:53:23 UTC", "Thu, 26 Nov 2026 09:53:23",
        "Thu, 26 Foo 2026 09:53:23 GMT", "Thu, 26 nov 2026 09:53:23 GMT", "Thursday, 26-Nov-26 09:53:23 GMT",
        "Thu Nov 26 09:53:23 2026", "2026-11-26T09:53:23Z", " Thu, 26 Nov 2026 09:53:23 GMT",
      })
      assert.is_nil(epoch(nil))
    end)
  end)
end)
