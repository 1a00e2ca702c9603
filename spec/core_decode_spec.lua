-- Response decoding in C: core.decode, core.decode_tasks and the error object.
local core = require "aliyun.iot.core"
local math_type = math.type or require("helpers").math_type -- 5.1/5.2 have no math.type

-- The JSON example from ListOTATaskByJob.md, verbatim.
local EXAMPLE = [[
{
  "PageCount": 1,
  "Data": {
    "SimpleOTATaskInfo": [{
      "SrcVersion": "1.0.0",
      "DeviceName": "testDevice1",
      "FirmwareId": "q3j9OYBjUAZMv1hlMgdo03****",
      "IotId": "SR8FiTu1R9tlUR2V1bmi00105****",
      "ProductKey": "a1GUfrM****",
      "JobId": "7glPHmaDYLAYMD1HHutT02****",
      "TaskDesc": "report version is not conform",
      "DestVersion": "1.0.1",
      "UtcCreate": "2019-11-04T03:38:15.000Z",
      "UtcModified": "2019-11-04T03:38:15.000Z",
      "TaskStatus": "FAILED",
      "ProductName": "MyProduct",
      "TaskId": "y3tOmCDNgpR8F9jnVEzC01****",
      "Progress": "0.00"
    }, {
      "SrcVersion": "1.0.0",
      "DeviceName": "testDevice2",
      "FirmwareId": "q3j9OYBjUAZMv1hlMgdo03****",
      "IotId": "nadRdeffljdEndlfadgadfse****",
      "ProductKey": "a1GUfrM****",
      "JobId": "7glPHmaDYLAYMD1HHutT02****",
      "TaskDesc": "",
      "DestVersion": "1.0.1",
      "UtcCreate": "2019-11-04T03:38:22.000Z",
      "UtcModified": "2019-11-04T03:38:22.000Z",
      "TaskStatus": "SUCCEEDED",
      "ProductName": "MyProduct",
      "TaskId": "ZS9sNBb1ahsu6khqr9II01****",
      "Progress": "100.00"
    }]
  },
  "PageSize": 10,
  "RequestId": "A59D3BE1-E9A3-43F3-9B50-B7C8DE165D9B",
  "CurrentPage": 1,
  "Success": true,
  "Total": 2
}
]]

local function page_with(data_json)
  return '{"RequestId":"R-1","Success":true,"Total":0,"PageSize":10,"CurrentPage":1,'
    .. '"PageCount":0' .. (data_json and (',"Data":' .. data_json) or "") .. '}'
end

-- pattern first: a call's multiple results survive only in the last argument position
local function assert_bad_response(pattern, res, err)
  assert.is_nil(res)
  assert.is_true(core.is_error(err))
  assert.equal("SDK.BadResponse", err.code)
  assert.equal((err.http_status or 0) >= 500, err.retryable) -- a 502 HTML page may heal
  if pattern then assert.truthy(err.message:find(pattern, 1, true), err.message) end
end

describe("core.decode", function()
  it("returns the response table for a success", function()
    local r, err = core.decode(EXAMPLE, 200)
    assert.is_nil(err)
    assert.equal("A59D3BE1-E9A3-43F3-9B50-B7C8DE165D9B", r.RequestId)
    assert.is_true(r.Success)
    assert.equal(2, #r.Data.SimpleOTATaskInfo)
  end)

  it("accepts leading whitespace", function()
    assert.same({ a = 1 }, (core.decode(' \r\n\t{"a":1}', 200)))
  end)

  describe("gateway errors", function()
    it("SignatureDoesNotMatch (400)", function()
      local body = '{"RequestId":"1A2B","HostId":"iot.cn-shanghai.aliyuncs.com",'
        .. '"Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with '
        .. 'our calculation. server string to sign is:GET&%2F&...","Recommend":"https://x"}'
      local r, err = core.decode(body, 400)
      assert.is_nil(r)
      assert.is_true(core.is_error(err))
      assert.equal("SignatureDoesNotMatch", err.code)
      assert.truthy(err.message:find("server string to sign", 1, true))
      assert.equal("1A2B", err.request_id)
      assert.equal(400, err.http_status)
      assert.equal("iot.cn-shanghai.aliyuncs.com", err.host_id)
      assert.equal("https://x", err.recommend)
      assert.is_false(err.retryable)
    end)

    it("InvalidAccessKeyId.NotFound (404)", function()
      local _, err = core.decode('{"RequestId":"1A2B","Code":"InvalidAccessKeyId.NotFound",'
        .. '"Message":"Specified access key is not found."}', 404)
      assert.equal("InvalidAccessKeyId.NotFound", err.code)
      assert.is_false(err.retryable)
      assert.equal("InvalidAccessKeyId.NotFound: Specified access key is not found. "
        .. "(HTTP 404, RequestId 1A2B)", tostring(err))
    end)

    it("Throttling.User is retryable", function()
      local _, err = core.decode('{"RequestId":"R","Code":"Throttling.User",'
        .. '"Message":"Request was denied due to user flow control."}', 400)
      assert.equal("Throttling.User", err.code)
      assert.is_true(err.retryable)
    end)

    it("InternalError (500) and ServiceUnavailable (503) are retryable", function()
      local _, err = core.decode('{"RequestId":"R","Code":"InternalError","Message":"x"}', 500)
      assert.is_true(err.retryable)
      _, err = core.decode('{"Code":"ServiceUnavailable","Message":"x"}', 503)
      assert.is_true(err.retryable)
    end)

    it("credential and parameter codes are not retryable, even on 5xx-free statuses", function()
      for _, code in ipairs { "IncompleteSignature", "InvalidTimeStamp.Expired",
        "SignatureNonceUsed", "MissingJobId", "InvalidParameter", "Forbidden.RAM" } do
        local _, err = core.decode('{"Code":"' .. code .. '","Message":"m"}', 400)
        assert.equal(code, err.code)
        assert.is_false(err.retryable, code)
      end
    end)
  end)

  describe("IoT errors on HTTP 200", function()
    it("Success=false with Code and ErrorMessage", function()
      local _, err = core.decode('{"RequestId":"R9","Success":false,'
        .. '"Code":"iot.common.InvalidPageParams","ErrorMessage":"bad paging"}', 200)
      assert.equal("iot.common.InvalidPageParams", err.code)
      assert.equal("bad paging", err.message)
      assert.equal("R9", err.request_id)
      assert.equal(200, err.http_status)
      assert.is_false(err.retryable)
    end)

    it("Success=false without Code", function()
      local _, err = core.decode('{"RequestId":"R9","Success":false,"ErrorMessage":"boom"}', 200)
      assert.equal("UnknownError", err.code)
      assert.equal("boom", err.message)
    end)

    it("Code with Success=true on 200 is not an error", function()
      local r = core.decode('{"Success":true,"Code":"200"}', 200)
      assert.equal("200", r.Code)
    end)
  end)

  it("HTTP errors without a code", function()
    local _, err = core.decode('{"foo":1}', 502)
    assert.equal("SDK.HttpError", err.code)
    assert.equal("HTTP 502 without an error code", err.message)
    assert.is_true(err.retryable)
    _, err = core.decode('{"RequestId":"R"}', 403)
    assert.equal("SDK.HttpError", err.code)
    assert.equal("R", err.request_id)
    assert.is_false(err.retryable)
  end)

  describe("bad bodies", function()
    it("malformed and truncated JSON", function()
      assert_bad_response("response is not valid JSON (HTTP 200, 5 bytes): {\"a\":", core.decode('{"a":', 200))
      assert_bad_response("(HTTP 200, 100 bytes)", core.decode(EXAMPLE:sub(1, 100), 200))
      assert_bad_response("0 bytes", core.decode("", 200))
      assert_bad_response("<html>", core.decode("<html>502 Bad Gateway</html>", 502))
      assert_bad_response(nil, core.decode('{"a":1} trailing', 200))
      assert_bad_response(nil, core.decode('{"a":NaN}', 200))
    end)

    it("escapes non-printables and cuts the snippet at 80 bytes", function()
      local _, err = core.decode("\0\1\n" .. string.rep("x", 200), 200)
      assert.truthy(err.message:find(": \\x00\\x01\\x0A" .. string.rep("x", 77) .. "...", 1, true),
        err.message)
    end)

    it("non-object JSON", function()
      assert_bad_response("not valid JSON", core.decode('[1,2]', 200))
      assert_bad_response(nil, core.decode('"str"', 200))
      assert_bad_response(nil, core.decode('42', 200))
      assert_bad_response(nil, core.decode('null', 200))
    end)

    it("deep nesting", function()
      assert_bad_response(nil, core.decode(string.rep("[", 10000), 200))
      assert_bad_response(nil, core.decode('{"a":' .. string.rep("[", 10000), 200))
      assert_bad_response(nil, core.decode('{"a":' .. string.rep("[", 100) .. string.rep("]", 100)
        .. "}", 200))
    end)

    it("raises on misuse", function()
      assert.has_error(function() core.decode(nil, 200) end)
      assert.has_error(function() core.decode("{}") end)
      assert.has_error(function() core.decode("{}", "x") end)
    end)
  end)

  it("does not touch the shared cjson settings", function()
    local cjson = require "cjson.safe"
    local deep = string.rep("[", 100) .. string.rep("]", 100)
    assert.is_table(cjson.decode(deep))
    core.decode("{}", 200)
    assert.is_table(cjson.decode(deep))
  end)
end)

describe("core.decode_tasks", function()
  it("normalises the reference example", function()
    local page, err = core.decode_tasks(EXAMPLE, 200)
    assert.is_nil(err)
    assert.equal(2, #page.tasks)
    assert.same({
      SrcVersion = "1.0.0",
      DeviceName = "testDevice1",
      FirmwareId = "q3j9OYBjUAZMv1hlMgdo03****",
      IotId = "SR8FiTu1R9tlUR2V1bmi00105****",
      ProductKey = "a1GUfrM****",
      JobId = "7glPHmaDYLAYMD1HHutT02****",
      TaskDesc = "report version is not conform",
      DestVersion = "1.0.1",
      UtcCreate = "2019-11-04T03:38:15.000Z",
      UtcModified = "2019-11-04T03:38:15.000Z",
      TaskStatus = "FAILED",
      ProductName = "MyProduct",
      TaskId = "y3tOmCDNgpR8F9jnVEzC01****",
      Progress = "0.00",
    }, page.tasks[1])
    assert.equal("ZS9sNBb1ahsu6khqr9II01****", page.tasks[2].TaskId)
    assert.equal("", page.tasks[2].TaskDesc)
    assert.equal("100.00", page.tasks[2].Progress)
    assert.equal("A59D3BE1-E9A3-43F3-9B50-B7C8DE165D9B", page.RequestId)
    for field, value in pairs { Total = 2, PageSize = 10, CurrentPage = 1, PageCount = 1 } do
      assert.equal(value, page[field])
      assert.equal("integer", math_type(page[field]), field)
    end
  end)

  it("treats empty and missing Data as no tasks", function()
    for _, data in ipairs { false, "{}", '""', "null", "[]", '{"SimpleOTATaskInfo":[]}',
      '{"SimpleOTATaskInfo":null}', '{"SimpleOTATaskInfo":{}}', '{"Other":1}' } do
      local page, err = core.decode_tasks(page_with(data or nil), 200)
      assert.is_nil(err, tostring(data))
      assert.same({}, page.tasks, tostring(data))
      assert.equal(0, page.Total)
      assert.equal("R-1", page.RequestId)
    end
  end)

  it("wraps a single task object in an array", function()
    local page = core.decode_tasks(page_with('{"SimpleOTATaskInfo":{"TaskId":"t1","Timeout":'
      .. '30,"TaskDesc":null}}'), 200)
    assert.equal(1, #page.tasks)
    assert.equal("t1", page.tasks[1].TaskId)
    assert.equal(30, page.tasks[1].Timeout)
    assert.equal("integer", math_type(page.tasks[1].Timeout))
    assert.is_nil(page.tasks[1].TaskDesc) -- JSON null is dropped, not a truthy lightuserdata
  end)

  it("leaves absent paging fields absent", function()
    local page = core.decode_tasks('{"Success":true,"Data":{"SimpleOTATaskInfo":[{"TaskId":"a"}]}}', 200)
    assert.is_nil(page.Total)
    assert.is_nil(page.RequestId)
    assert.equal("a", page.tasks[1].TaskId)
  end)

  it("turns wrong types into BadResponse without raising", function()
    assert_bad_response("Data is not an object (got number)", core.decode_tasks(page_with("42"), 200))
    assert_bad_response("Data is not an object (got string)", core.decode_tasks(page_with('"x"'), 200))
    assert_bad_response("Data", core.decode_tasks(page_with("true"), 200))
    assert_bad_response("Data is not an object (got array)", core.decode_tasks(page_with("[1]"), 200))
    assert_bad_response("Data.SimpleOTATaskInfo is not an array (got string)",
      core.decode_tasks(page_with('{"SimpleOTATaskInfo":"x"}'), 200))
    assert_bad_response("Data.SimpleOTATaskInfo[1] is not an object (got string)",
      core.decode_tasks(page_with('{"SimpleOTATaskInfo":["a","b"]}'), 200))
    assert_bad_response("Data.SimpleOTATaskInfo[2] is not an object (got array)",
      core.decode_tasks(page_with('{"SimpleOTATaskInfo":[{},[1]]}'), 200))
    local _, err = core.decode_tasks('{"RequestId":"R-7","Success":true,"Total":"many"}', 200)
    assert_bad_response("Total is not a number (got string)", nil, err)
    assert.equal("R-7", err.request_id)
  end)

  it("takes a page only with \"Success\": true", function()
    local data = ',"Total":1,"Data":{"SimpleOTATaskInfo":[{"TaskId":"a"}]}}'
    -- A Code and no Success on a 200: an error carrying the Code (throttling is retryable).
    local _, err = core.decode_tasks('{"RequestId":"R-1","Code":"Throttling.User","Message":"slow"}', 200)
    assert.equal("Throttling.User", err.code)
    assert.is_true(err.retryable)
    assert.equal("R-1", err.request_id)
    for _, success in ipairs({ '"false"', '"true"', "1", "null" }) do
      assert_bad_response('no "Success": true', core.decode_tasks('{"Success":' .. success .. data, 200))
    end
    assert_bad_response('no "Success": true', core.decode_tasks('{"RequestId":"R"' .. data, 200))
    -- Generic decoding asks for it only when told to (other products answer without it).
    assert.same({ a = 1 }, (core.decode('{"a":1}', 200)))
    assert_bad_response('no "Success": true', core.decode('{"a":1}', 200, true))
    assert.same({ Success = true }, (core.decode('{"Success":true}', 200, true)))
  end)

  it("never takes a 1xx or 3xx answer as a result, whatever its body", function()
    local page = '{"Success":true,"Total":1,"Data":{"SimpleOTATaskInfo":[{"TaskId":"a"}]}}'
    for _, status in ipairs({ 100, 199, 301, 302, 304, 307, 308 }) do
      local r, err = core.decode_tasks(page, status)
      assert.is_nil(r)
      assert.equal("SDK.HttpError", err.code)
      assert.equal(status, err.http_status)
      assert.is_false(err.retryable)
      r, err = core.decode(page, status)
      assert.is_nil(r)
      assert.equal("SDK.HttpError", err.code)
    end
  end)

  it("passes decode errors through", function()
    local _, err = core.decode_tasks('{"Code":"Throttling.Api","Message":"slow down"}', 400)
    assert.equal("Throttling.Api", err.code)
    assert.is_true(err.retryable)
    assert_bad_response(nil, core.decode_tasks("garbage", 200))
    assert_bad_response(nil, core.decode_tasks(string.rep("[", 10000), 200))
  end)
end)

describe("error objects", function()
  it("renders with tostring, omitting nil parts", function()
    assert.equal("X.Y: m (HTTP 404, RequestId R1)",
      tostring(core.error { code = "X.Y", message = "m", http_status = 404, request_id = "R1" }))
    assert.equal("X.Y: m (HTTP 404)", tostring(core.error { code = "X.Y", message = "m", http_status = 404 }))
    assert.equal("X.Y: m (RequestId R1)", tostring(core.error { code = "X.Y", message = "m", request_id = "R1" }))
    assert.equal("X.Y: m", tostring(core.error { code = "X.Y", message = "m" }))
    assert.equal("X.Y", tostring(core.error { code = "X.Y" }))
  end)

  it("fills retryable from the classification unless given", function()
    assert.is_true(core.error({ code = core.codes.TIMEOUT }).retryable)
    assert.is_true(core.error({ code = core.codes.CONNECTION_FAILED }).retryable)
    assert.is_true(core.error({ code = "Throttling" }).retryable)
    assert.is_true(core.error({ code = "Whatever", http_status = 503 }).retryable)
    assert.is_false(core.error({ code = "SignatureDoesNotMatch", http_status = 400 }).retryable)
    assert.is_false(core.error({ code = core.codes.BAD_RESPONSE }).retryable)
    assert.is_false(core.error({ code = "Throttling", retryable = false }).retryable)
  end)

  it("returns the same table, with the shared metatable", function()
    local t = { code = "A", attempts = 3 }
    assert.equal(t, core.error(t))
    assert.equal("aliyun.iot.Error", getmetatable(t).__name)
    local _, err = core.decode("x", 200)
    assert.equal(getmetatable(t), getmetatable(err))
  end)

  it("validates code", function()
    assert.has_error(function() core.error { message = "no code" } end)
    assert.has_error(function() core.error { code = 1 } end)
    assert.has_error(function() core.error "x" end)
  end)

  it("is_error only accepts error objects", function()
    assert.is_true(core.is_error(core.error { code = "A" }))
    assert.is_false(core.is_error({ code = "A" }))
    assert.is_false(core.is_error(setmetatable({}, { __name = "aliyun.iot.Error" })))
    assert.is_false(core.is_error(nil))
    assert.is_false(core.is_error("A"))
  end)

  it("exposes the local codes", function()
    assert.same({
      INVALID_ARGUMENT = "SDK.InvalidArgument", MISSING_CREDENTIALS = "SDK.MissingCredentials",
      TIMEOUT = "SDK.Timeout", CONNECTION_FAILED = "SDK.ConnectionFailed",
      RESPONSE_TOO_LARGE = "SDK.ResponseTooLarge", BAD_RESPONSE = "SDK.BadResponse",
      HTTP_ERROR = "SDK.HttpError", TRANSPORT_ERROR = "SDK.TransportError",
      DEPTH_CAP_EXCEEDED = "SDK.DepthCapExceeded",
      INCOMPLETE_LISTING = "SDK.IncompleteListing",
      CLIENT_CLOSED = "SDK.ClientClosed",
      REDIS_ERROR = "SDK.RedisError", RATE_LIMIT_STORE_UNAVAILABLE = "SDK.RateLimitStoreUnavailable",
    }, core.codes)
  end)
end)
