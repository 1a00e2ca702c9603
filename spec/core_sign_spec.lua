-- Known-answer and property tests for the C signer (aliyun.iot.core: sign_v1, sign_v3 and helpers).
local core = require "aliyun.iot.core"

-- The official V1 worked example from Alibaba's documentation (see ALIYUN_NOTES.md).
local EXAMPLE_PARAMS = {
  AccessKeyId = "testid",
  Action = "DescribeRegions",
  Format = "XML",
  SignatureMethod = "HMAC-SHA1",
  SignatureNonce = "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
  SignatureVersion = "1.0",
  Timestamp = "2016-02-23T12:46:24Z",
  Version = "2014-05-26",
}
local EXAMPLE_STS = "GET&%2F&AccessKeyId%3Dtestid%26Action%3DDescribeRegions%26Format%3DXML"
  .. "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf"
  .. "%26SignatureVersion%3D1.0%26Timestamp%3D2016-02-23T12%253A46%253A24Z%26Version%3D2014-05-26"

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

describe("core.percent_encode", function()
  it("leaves the unreserved set alone", function()
    local s = "ABCXYZabcxyz0189-_.~"
    assert.equal(s, core.percent_encode(s))
  end)

  it("encodes reserved characters with uppercase hex", function()
    assert.equal("%2A", core.percent_encode("*"))
    assert.equal("~", core.percent_encode("~"))
    assert.equal("%20", core.percent_encode(" "))
    assert.equal("%2B", core.percent_encode("+"))
    assert.equal("%2F", core.percent_encode("/"))
    assert.equal("%3D", core.percent_encode("="))
    assert.equal("%26%25%3A%3F%23", core.percent_encode("&%:?#"))
    assert.equal("%00%FF%0A", core.percent_encode("\0\255\n"))
    assert.equal("", core.percent_encode(""))
  end)

  it("encodes UTF-8 bytes of non-ASCII text", function()
    assert.equal("%E4%B8%AD%E6%96%87", core.percent_encode("中文"))
    assert.equal("%E8%AE%BE%E5%A4%87-1", core.percent_encode("设备-1"))
  end)

  it("handles long strings (heap path)", function()
    local s = string.rep("a b", 1000)
    assert.equal(string.rep("a%20b", 1000), core.percent_encode(s))
  end)

  it("raises on a non-string argument", function()
    assert.has_error(function() core.percent_encode({}) end)
    assert.has_error(function() core.percent_encode() end)
  end)
end)

describe("core.sign_v1", function()
  it("reproduces the official example", function()
    local sig, sts, cq = core.sign_v1("GET", EXAMPLE_PARAMS, "testsecret")
    assert.equal("OLeaidS1JvxuMvnyHOwuJ+uX5qY=", sig)
    assert.equal(EXAMPLE_STS, sts)
    assert.equal("AccessKeyId=testid&Action=DescribeRegions&Format=XML&SignatureMethod=HMAC-SHA1"
      .. "&SignatureNonce=3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf&SignatureVersion=1.0"
      .. "&Timestamp=2016-02-23T12%3A46%3A24Z&Version=2014-05-26", cq)
  end)

  it("skips a Signature parameter", function()
    local p = copy(EXAMPLE_PARAMS)
    p.Signature = "stale"
    local sig, sts = core.sign_v1("GET", p, "testsecret")
    assert.equal("OLeaidS1JvxuMvnyHOwuJ+uX5qY=", sig)
    assert.equal(EXAMPLE_STS, sts)
  end)

  it("keeps empty values as k=", function()
    local _, sts, cq = core.sign_v1("GET", { B = "", A = "1" }, "s")
    assert.equal("A=1&B=", cq)
    assert.equal("GET&%2F&A%3D1%26B%3D", sts)
  end)

  it("sorts by bytes, so DeviceNames.10 comes before DeviceNames.2", function()
    local p = {}
    for i = 1, 12 do p["DeviceNames." .. i] = "d" .. i end
    local _, _, cq = core.sign_v1("GET", p, "s")
    local keys = {}
    for k in cq:gmatch("([^&=]+)=") do keys[#keys + 1] = k end
    assert.same({ "DeviceNames.1", "DeviceNames.10", "DeviceNames.11", "DeviceNames.12",
      "DeviceNames.2", "DeviceNames.3", "DeviceNames.4", "DeviceNames.5", "DeviceNames.6",
      "DeviceNames.7", "DeviceNames.8", "DeviceNames.9" }, keys)
  end)

  it("orders a prefix before its extensions and handles arbitrary bytes", function()
    local _, _, cq = core.sign_v1("GET", { ["ab"] = "2", ["a"] = "1", ["a\0"] = "0",
      ["\255"] = "x", ["Z"] = "z" }, "s")
    assert.equal("Z=z&a=1&a%00=0&ab=2&%FF=x", cq)
  end)

  it("does not depend on table insertion order", function()
    local keys = {}
    for k in pairs(EXAMPLE_PARAMS) do keys[#keys + 1] = k end
    table.sort(keys)
    for round = 1, 20 do
      -- rebuild the table inserting keys in a shuffled order
      for i = #keys, 2, -1 do
        local j = (i * 7 + round * 13) % i + 1
        keys[i], keys[j] = keys[j], keys[i]
      end
      local p = {}
      for _, k in ipairs(keys) do p[k] = EXAMPLE_PARAMS[k] end
      assert.equal("OLeaidS1JvxuMvnyHOwuJ+uX5qY=", (core.sign_v1("GET", p, "testsecret")))
    end
  end)

  it("signs many parameters (heap path)", function()
    local p = {}
    for i = 1, 200 do p["DeviceNames." .. i] = string.rep("x", 50) .. i end
    local sig, sts, cq = core.sign_v1("POST", p, "s")
    assert.equal(28, #sig)
    assert.truthy(sts:find("^POST&%%2F&DeviceNames.1%%3D"))
    assert.equal(p["DeviceNames.200"], cq:match("DeviceNames%.200=([^&]*)"))
  end)

  it("raises, naming the key, for a non-string key or value", function()
    local ok, err = pcall(core.sign_v1, "GET", { PageSize = 10 }, "s")
    assert.is_false(ok)
    assert.truthy(err:find("PageSize", 1, true))
    ok, err = pcall(core.sign_v1, "GET", { "positional" }, "s")
    assert.is_false(ok)
    assert.truthy(err:find("[1]", 1, true))
    ok, err = pcall(core.sign_v1, "GET", { [true] = "x" }, "s")
    assert.is_false(ok)
    assert.truthy(err:find("boolean", 1, true))
    assert.has_error(function() core.sign_v1("GET", "A=1", "s") end)
    assert.has_error(function() core.sign_v1("GET", {}, 12345) end)
    assert.has_error(function() core.sign_v1("GET", {}) end)
  end)

  it("never returns or reports the secret", function()
    local secret = "S3cr3t-Do-Not-Leak"
    local results = { core.sign_v1("GET", copy(EXAMPLE_PARAMS), secret) }
    for _, r in ipairs(results) do
      assert.falsy(r:find(secret, 1, true))
    end
    local ok, err = pcall(core.sign_v1, "GET", { Bad = 1 }, secret)
    assert.is_false(ok)
    assert.falsy(tostring(err):find(secret, 1, true))
  end)

  it("agrees with the openssl CLI on a random-ish parameter set", function()
    math.randomseed(42)
    local alphabet = "AZaz09-_.~ *+/=&%:中文"
    local function rnd(n)
      local t = {}
      for i = 1, n do
        local j = math.random(1, #alphabet)
        t[i] = alphabet:sub(j, j)
      end
      return table.concat(t)
    end
    local secret = "k3y-" .. rnd(20):gsub("[^%w]", "x")
    for _ = 1, 5 do
      local p = { Action = "ListOTATaskByJob", JobId = rnd(24), Timestamp = core.timestamp(),
        SignatureNonce = core.nonce() }
      for i = 1, math.random(1, 15) do p["DeviceNames." .. i] = rnd(math.random(0, 12)) end
      local sig, sts = core.sign_v1("GET", p, secret)

      local tmp = os.tmpname()
      local f = assert(io.open(tmp, "wb"))
      f:write(sts)
      f:close()
      -- the secret has only [%w-] characters, so it is safe inside single quotes
      local pipe = assert(io.popen("openssl dgst -sha1 -hmac '" .. secret .. "&' -binary < "
        .. tmp .. " | base64"))
      local expected = pipe:read("*l")
      pipe:close()
      os.remove(tmp)
      assert.equal(expected, sig)
    end
  end)
end)

describe("core.nonce", function()
  it("is a lowercase UUID v4", function()
    for _ = 1, 100 do
      local n = core.nonce()
      assert.equal(36, #n)
      assert.truthy(n:match("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"), n)
      assert.equal(n:lower(), n)
    end
  end)

  it("is unique over 1000 calls", function()
    local seen = {}
    for _ = 1, 1000 do
      local n = core.nonce()
      assert.is_nil(seen[n])
      seen[n] = true
    end
  end)
end)

describe("core.timestamp", function()
  it("formats fixed epochs in UTC", function()
    assert.equal("1970-01-01T00:00:00Z", core.timestamp(0))
    assert.equal("2016-02-23T12:46:24Z", core.timestamp(1456231584))
    assert.equal("2038-01-19T03:14:08Z", core.timestamp(2147483648))
    assert.equal("2016-02-23T12:46:24Z", core.timestamp(1456231584.9))
  end)

  it("defaults to now", function()
    local before = os.time()
    local ts = core.timestamp()
    local after = os.time()
    assert.truthy(ts:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%dZ$"))
    assert.truthy(ts == os.date("!%Y-%m-%dT%H:%M:%SZ", before)
      or ts == os.date("!%Y-%m-%dT%H:%M:%SZ", after), ts)
  end)

  it("rejects bad input", function()
    assert.has_error(function() core.timestamp("soon") end)
    assert.has_error(function() core.timestamp(1e300) end)
    assert.has_error(function() core.timestamp(0 / 0) end)
  end)
end)

describe("core.sign_v3", function()
  -- Alibaba's V3 documentation example (ALIYUN_NOTES.md).
  local query = { ImageId = "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd", RegionId = "cn-shanghai" }
  local function headers()
    return {
      host = "ecs.cn-shanghai.aliyuncs.com", ["x-acs-action"] = "RunInstances", ["x-acs-version"] = "2014-05-26",
      ["x-acs-date"] = "2023-10-26T10:22:32Z", ["x-acs-signature-nonce"] = "3156853299f313e23d1673dc12e1703d",
      ["x-acs-content-sha256"] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    }
  end

  it("reproduces the official example", function()
    local sig, sts, canonical, signed = core.sign_v3("POST", query, headers(), "", "YourAccessKeySecret")
    assert.are.equal("06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0", sig)
    assert.are.equal("ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259", sts)
    assert.are.equal("host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version",
      signed)
    local first_lines = "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n"
    assert.are.equal(first_lines, canonical:sub(1, #first_lines))
  end)

  it("returns the canonical query as its fifth value", function()
    local sig, sts, canonical, signed, cq = core.sign_v3("POST", query, headers(), "", "YourAccessKeySecret")
    assert.are.equal("06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0", sig)
    assert.are.equal("ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai", cq)
    assert.are.equal("POST\n/\n" .. cq .. "\n", canonical:sub(1, #cq + 8))
    assert.are.equal(5, select("#", core.sign_v3("POST", query, headers(), "", "YourAccessKeySecret")))
    assert.truthy(sts and signed)

    -- Byte order ("DeviceNames.10" before "DeviceNames.2"), percent-encoding, empty values kept.
    local q = { ["DeviceNames.2"] = "b", ["DeviceNames.10"] = "a c", TaskStatus = "IN_PROGRESS", Empty = "",
      ["Sig*"] = "x/y" }
    local _, _, canonical2, _, cq2 = core.sign_v3("POST", q, { host = "h" }, "", "k")
    assert.are.equal("DeviceNames.10=a%20c&DeviceNames.2=b&Empty=&Sig%2A=x%2Fy&TaskStatus=IN_PROGRESS", cq2)
    assert.are.equal("POST\n/\n" .. cq2 .. "\n", canonical2:sub(1, #cq2 + 8))

    local _, _, canonical3, _, cq3 = core.sign_v3("POST", {}, { host = "h" }, nil, "k")
    assert.are.equal("", cq3)
    assert.are.equal("POST\n/\n\n", canonical3:sub(1, 8))
  end)

  it("lowercases names, trims values and leaves unsigned headers out", function()
    local h = headers()
    h["x-acs-action"] = nil
    h["X-Acs-Action"] = "  RunInstances\t"
    h["User-Agent"] = "not signed"
    h["Accept"] = "application/json"
    local sig = core.sign_v3("POST", query, h, nil, "YourAccessKeySecret")
    assert.are.equal("06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0", sig)
  end)

  it("hashes the body into the canonical request", function()
    local _, _, canonical = core.sign_v3("POST", {}, { host = "h" }, "abc", "k")
    assert.are.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", canonical:match("([^\n]+)$"))
  end)

  it("signs x-acs-* headers whatever the length of their names", function()
    for _, len in ipairs({ 63, 64, 65, 300 }) do
      local name = "X-Acs-" .. string.rep("n", len - 6)
      local h = headers()
      h[name] = "v"
      local _, _, canonical, signed = core.sign_v3("POST", query, h, "", "k")
      local lower = name:lower()
      assert.truthy(signed:find(lower, 1, true), len)
      assert.truthy(canonical:find("\n" .. lower .. ":v\n", 1, true), len)
      assert.has_error(function()
        core.sign_v3("POST", query, { [name] = "a", [lower] = "b" }, "", "k")
      end, nil, len)
    end
  end)

  it("refuses the same header twice in different case", function()
    assert.has_error(function()
      core.sign_v3("POST", {}, { host = "a", Host = "b" }, "", "k")
    end)
  end)

  it("never returns the secret", function()
    local secret = "V3-secret-value-must-not-leak"
    local out = table.concat({ core.sign_v3("POST", query, headers(), "", secret) }, "\n")
    assert.falsy(out:find(secret, 1, true))
  end)
end)
