-- aliyun.iot.time: ISO 8601 and HTTP dates to epoch seconds, known answers worked out
-- independently (`date -u -d ... +%s`), leap years, and nil for what is not a date.
local time = require("aliyun.iot.time")

describe("aliyun.iot.time", function()
  describe("days_from_civil", function()
    it("counts days from 1970-01-01, through leap days", function()
      assert.are.equal(0, time.days_from_civil(1970, 1, 1))
      assert.are.equal(-1, time.days_from_civil(1969, 12, 31))
      assert.are.equal(11016, time.days_from_civil(2000, 2, 29))
      assert.are.equal(11017, time.days_from_civil(2000, 3, 1))
      -- 2100 is not a leap year (divisible by 100, not by 400): Feb 28 is followed by Mar 1.
      assert.are.equal(time.days_from_civil(2100, 2, 28) + 1, time.days_from_civil(2100, 3, 1))
      -- 2024 is: Feb 29 lies between.
      assert.are.equal(time.days_from_civil(2024, 2, 28) + 2, time.days_from_civil(2024, 3, 1))
      assert.are.equal(-719528, time.days_from_civil(0, 1, 1))
    end)
  end)

  describe("iso8601_epoch", function()
    it("gives known answers, with and without a fraction", function()
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26T09:53:23Z"))
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26T09:53:23.000Z"))
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26T09:53:23.999Z"), "fraction dropped, not rounded")
      assert.are.equal(0, time.iso8601_epoch("1970-01-01T00:00:00Z"))
      assert.are.equal(-1, time.iso8601_epoch("1969-12-31T23:59:59Z"))
      assert.are.equal(1572838702, time.iso8601_epoch("2019-11-04T03:38:22.000Z"))
    end)

    it("handles leap days and century years", function()
      assert.are.equal(951782400, time.iso8601_epoch("2000-02-29T00:00:00Z"))
      assert.are.equal(951868800, time.iso8601_epoch("2000-03-01T00:00:00Z"))
      assert.are.equal(1709164800, time.iso8601_epoch("2024-02-29T00:00:00Z"))
      assert.are.equal(4107542400, time.iso8601_epoch("2100-03-01T00:00:00Z"))
      assert.are.equal(4107542400 - 86400, time.iso8601_epoch("2100-02-28T00:00:00Z"))
    end)

    it("applies a numeric offset, and takes z and a space", function()
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26T17:53:23+08:00"))
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26T04:23:23-0530"))
      assert.are.equal(1795686803, time.iso8601_epoch("2026-11-26 09:53:23z"))
    end)

    it("is an integer on Lua 5.3+", function()
      if math.type then assert.are.equal("integer", math.type(time.iso8601_epoch("2026-11-26T09:53:23.000Z"))) end
    end)

    it("is nil for what is not an ISO 8601 UTC time", function()
      for _, s in ipairs({ "", "next tuesday", "2026-11-26", "2026-11-26T09:53:23", "2026-11-26T09:53:23GMT",
                           "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-11-32T00:00:00Z",
                           "2026-11-00T00:00:00Z", "26-11-26T09:53:23Z", "2026-11-26T09:53:23+8",
                           " 2026-11-26T09:53:23Z", "Thu, 26 Nov 2026 09:53:23 GMT" }) do
        assert.is_nil(time.iso8601_epoch(s), s)
      end
      assert.is_nil(time.iso8601_epoch(nil))
      assert.is_nil(time.iso8601_epoch(1795686803))
      assert.is_nil(time.iso8601_epoch({}))
    end)
  end)

  describe("http_date_epoch", function()
    it("gives known answers", function()
      assert.are.equal(1795686803, time.http_date_epoch("Thu, 26 Nov 2026 09:53:23 GMT"))
      assert.are.equal(0, time.http_date_epoch("Thu, 01 Jan 1970 00:00:00 GMT"))
      assert.are.equal(784111777, time.http_date_epoch("Sun, 06 Nov 1994 08:49:37 GMT")) -- RFC 7231's example
    end)

    it("handles leap days", function()
      assert.are.equal(951782400, time.http_date_epoch("Tue, 29 Feb 2000 00:00:00 GMT"))
      assert.are.equal(1709164800, time.http_date_epoch("Thu, 29 Feb 2024 00:00:00 GMT"))
      assert.are.equal(4107542400, time.http_date_epoch("Mon, 01 Mar 2100 00:00:00 GMT"))
    end)

    it("agrees with iso8601_epoch on the same instant", function()
      assert.are.equal(time.iso8601_epoch("2030-01-01T01:00:00Z"),
        time.http_date_epoch("Tue, 01 Jan 2030 01:00:00 GMT"))
    end)

    it("is nil for what is not an HTTP date", function()
      for _, s in ipairs({ "", "next tuesday", "Thu, 26 Nov 2026 09:53:23 UTC", "Thu, 26 Nov 2026 09:53:23",
                           "Thu, 26 Foo 2026 09:53:23 GMT", "Thu, 26 nov 2026 09:53:23 GMT",
                           "Thursday, 26-Nov-26 09:53:23 GMT", "Thu Nov 26 09:53:23 2026",
                           "2026-11-26T09:53:23Z", " Thu, 26 Nov 2026 09:53:23 GMT" }) do
        assert.is_nil(time.http_date_epoch(s), s)
      end
      assert.is_nil(time.http_date_epoch(nil))
    end)
  end)
end)
