-- The credential chain: each source, their precedence, profiles, malformed files,
-- and ECS RAM role credentials from a loopback metadata stub. Every test gets its
-- own temp HOME holding only the files it writes; the environment is injected as a
-- function (Lua cannot setenv), except in the child-process tests at the end.
local helpers = require("helpers")
local support = require("credentials.support")
local credentials = require("aliyun.iot.credentials")
local core = require("aliyun.iot.core")

local MISSING = "SDK.MissingCredentials"
local INVALID = "SDK.InvalidArgument"

local FIXTURES = "spec/credentials/"
local unpack = table.unpack or unpack -- luacheck: ignore 143

-- Every secret the fixtures and the stub hand out (the stub's numbered ones by prefix).
local SECRETS = {
  "cli-default-secret-Hq81", "cli-work-secret-P0q2", "cli-sts-secret-Lm3x", "cli-sts-token-Vb77",
  "cli-arn-secret-Tt55", "ini-default-secret-Ab12", "ini-project-secret-Cd34", "ini-sts-secret-Ef56",
  "ini-sts-token-Gh78", "opt-secret-Zz90", "opt-token-Yy91", "env-secret-Xx92", "env-token-Ww93",
  "stub-secret-", "stub-token-", "stub-metadata-token", "broken-secret-Vv94",
}

local assert_clean, assert_err = support.checks(SECRETS)
local sh, read, write = support.sh, support.read, support.write

-- A provider's credentials, asserting there is no error.
local function get(provider)
  local creds, err = provider:get()
  assert(creds, tostring(err))
  return creds
end

describe("credentials.chain", function()
  local home, vars

  -- The injected environment: HOME plus whatever a test sets.
  local function env(name) return vars[name] end

  local function cli_config(text)
    return write(home .. "/.aliyun/config.json", text or read(FIXTURES .. "config.json"))
  end
  local function ini_file(text)
    return write(home .. "/.alibabacloud/credentials", text or read(FIXTURES .. "credentials.ini"))
  end

  local function chain(opts) return credentials.chain(opts or {}, env) end

  local function chain_ok(opts)
    local provider, err = chain(opts)
    assert(provider, tostring(err))
    assert_clean(tostring(provider))
    for _, v in pairs(provider) do assert_clean(v) end
    return provider
  end

  local function chain_err(opts, code, ...)
    local provider, err = chain(opts)
    assert.is_nil(provider)
    return assert_err(err, code, ...)
  end

  before_each(function()
    home = sh("mktemp -d \"${TMPDIR:-/tmp}/aliyun-credentials-spec.XXXXXX\""):gsub("%s+$", "")
    assert(home:match("/aliyun%-credentials%-spec%.%w+$"), home)
    vars = { HOME = home }
  end)

  after_each(function()
    if home and home:match("/aliyun%-credentials%-spec%.%w+$") then sh("rm -rf '" .. home .. "'") end
  end)

  describe("options", function()
    it("take access_key_id, access_key_secret and security_token", function()
      local p = chain_ok{ access_key_id = "LTAIoptions000001", access_key_secret = "opt-secret-Zz90",
                          security_token = "opt-token-Yy91" }
      assert.are.equal("options", p.source)
      assert.is_nil(p.region)
      local creds = get(p)
      assert.are.same({ access_key_id = "LTAIoptions000001", access_key_secret = "opt-secret-Zz90",
                        security_token = "opt-token-Yy91" }, creds)
      assert.are.equal(creds, get(p), "a static provider returns the same table")
      assert.are.equal("aliyun.iot.Credentials (options, AccessKeyId LTAI****0001)", tostring(p))
    end)

    it("beat the environment and every file", function()
      vars.ALIBABA_CLOUD_ACCESS_KEY_ID = "LTAIenv0000000001"
      vars.ALIBABA_CLOUD_ACCESS_KEY_SECRET = "env-secret-Xx92"
      cli_config()
      ini_file()
      local p = chain_ok{ access_key_id = "LTAIoptions000001", access_key_secret = "opt-secret-Zz90" }
      assert.are.equal("options", p.source)
      assert.is_nil(get(p).security_token)
    end)

    it("name the missing half of a key pair", function()
      chain_err({ access_key_id = "LTAIoptions000001" }, MISSING, "access_key_secret is missing")
      chain_err({ access_key_secret = "opt-secret-Zz90" }, MISSING, "access_key_id is missing")
      chain_err({ access_key_id = "", access_key_secret = "opt-secret-Zz90" }, MISSING, "access_key_id")
    end)

    it("reject a security_token without its key pair", function()
      chain_err({ security_token = "opt-token-Yy91" }, MISSING, "security_token needs access_key_id")
    end)

    it("reject several explicit sources at once", function()
      chain_err({ access_key_id = "LTAIoptions000001", access_key_secret = "opt-secret-Zz90", profile = "x" },
        INVALID, "not several")
      chain_err({ role_name = "r", profile = "x" }, INVALID, "not several", "role_name and profile")
      chain_err({ credentials_uri = "http://127.0.0.1:1/c", access_key_id = "LTAIoptions000001",
                  access_key_secret = "opt-secret-Zz90" }, INVALID, "access keys and credentials_uri")
    end)

    it("raise on a wrong argument type (programmer error)", function()
      assert.has_error(function() credentials.chain("opts") end)
      assert.has_error(function() credentials.chain({}, "env") end)
      assert.has_error(function() credentials.chain({ access_key_id = 42 }, env) end)
    end)
  end)

  describe("environment", function()
    before_each(function()
      vars.ALIBABA_CLOUD_ACCESS_KEY_ID = "LTAIenv0000000001"
      vars.ALIBABA_CLOUD_ACCESS_KEY_SECRET = "env-secret-Xx92"
    end)

    it("gives the keys, with an optional security token", function()
      local p = chain_ok()
      assert.are.equal("environment", p.source)
      assert.are.same({ access_key_id = "LTAIenv0000000001", access_key_secret = "env-secret-Xx92" }, get(p))
      vars.ALIBABA_CLOUD_SECURITY_TOKEN = "env-token-Ww93"
      assert.are.equal("env-token-Ww93", get(chain_ok()).security_token)
      assert.are.equal("aliyun.iot.Credentials (environment, AccessKeyId LTAI****0001)", tostring(chain_ok()))
    end)

    it("beats config.json, the INI file and ALIBABA_CLOUD_PROFILE", function()
      cli_config()
      ini_file()
      vars.ALIBABA_CLOUD_PROFILE = "sts"
      vars.ALIBABA_CLOUD_ECS_METADATA = "iot-ota-role"
      assert.are.equal("environment", chain_ok().source)
    end)

    it("is skipped when the options name a profile", function()
      cli_config()
      local p = chain_ok{ profile = "default" }
      assert.are.equal("cli-profile:default (" .. home .. "/.aliyun/config.json)", p.source)
    end)

    it("with only one of the pair set is an error naming the other", function()
      vars.ALIBABA_CLOUD_ACCESS_KEY_SECRET = nil
      chain_err(nil, MISSING, "ALIBABA_CLOUD_ACCESS_KEY_SECRET is missing")
      vars.ALIBABA_CLOUD_ACCESS_KEY_SECRET = "env-secret-Xx92"
      vars.ALIBABA_CLOUD_ACCESS_KEY_ID = ""
      chain_err(nil, MISSING, "ALIBABA_CLOUD_ACCESS_KEY_ID is missing")
    end)
  end)

  describe("aliyun CLI config.json", function()
    it("uses the file's current profile, with its region", function()
      local path = cli_config()
      local p = chain_ok()
      assert.are.equal("cli-profile:work (" .. path .. ")", p.source)
      assert.are.equal("cn-shanghai", p.region)
      assert.are.same({ access_key_id = "LTAIcliWork0000002", access_key_secret = "cli-work-secret-P0q2" }, get(p))
      assert.are.equal("aliyun.iot.Credentials (cli-profile:work (" .. path .. "), AccessKeyId LTAI****0002)",
        tostring(p))
    end)

    it("falls back to the profile named default", function()
      local doc = read(FIXTURES .. "config.json"):gsub('"current": "work"', '"current": ""')
      cli_config(doc)
      local p = chain_ok()
      assert.are.equal("cn-hangzhou", p.region)
      assert.are.equal("LTAIcliDefault0001", get(p).access_key_id)
    end)

    it("takes ALIBABA_CLOUD_PROFILE over current, and options.profile over both", function()
      cli_config()
      vars.ALIBABA_CLOUD_PROFILE = "default"
      assert.are.equal("LTAIcliDefault0001", get(chain_ok()).access_key_id)
      assert.are.equal("LTAIcliWork0000002", get(chain_ok{ profile = "work" }).access_key_id)
    end)

    it("reads StsToken profiles", function()
      cli_config()
      local p = chain_ok{ profile = "sts" }
      assert.are.equal("ap-southeast-1", p.region)
      assert.are.same({ access_key_id = "STS.cliSts00000003", access_key_secret = "cli-sts-secret-Lm3x",
                        security_token = "cli-sts-token-Vb77" }, get(p))
    end)

    it("names an unsupported mode", function()
      local path = cli_config('{"profiles": [{"name": "sso", "mode": "CloudSSO", "cloud_sso_sign_in_url": "x"}]}')
      chain_err({ profile = "sso" }, INVALID, 'profile "sso" in ' .. path, 'mode "CloudSSO"', "AK, StsToken")
    end)

    it("makes a RamRoleArn profile a role assumed with its own keys (nothing sent yet)", function()
      local path = cli_config()
      local p = chain_ok{ profile = "arn" }
      assert.are.equal("ram-role-arn:acs:ram::1234567890:role/ota from cli-profile:arn (" .. path .. ")", p.source)
    end)

    it("names a key missing from an AK or StsToken profile", function()
      local path = cli_config([[{"profiles": [
        {"name": "default", "mode": "AK", "access_key_id": "LTAIbroken0000007"},
        {"name": "s", "mode": "StsToken", "access_key_id": "STS.x", "access_key_secret": "broken-secret-Vv94"}]}]])
      chain_err(nil, MISSING, 'profile "default" in ' .. path, "has no access_key_secret")
      chain_err({ profile = "s" }, MISSING, "has no sts_token")
    end)

    it("is read from ALIBABA_CLOUD_CONFIG_FILE, which must exist", function()
      local path = write(home .. "/elsewhere/cli.json", read(FIXTURES .. "config.json"))
      vars.ALIBABA_CLOUD_CONFIG_FILE = path
      assert.are.equal("cli-profile:work (" .. path .. ")", chain_ok().source)
      vars.ALIBABA_CLOUD_CONFIG_FILE = home .. "/nope.json"
      chain_err(nil, MISSING, "ALIBABA_CLOUD_CONFIG_FILE names " .. home .. "/nope.json, which does not exist")
    end)

    it("reports a current profile that is not in the file", function()
      local path = cli_config('{"current": "gone", "profiles": []}')
      chain_err(nil, MISSING, path, 'current profile "gone"')
    end)

    it("reports malformed JSON with the file and line, never the contents", function()
      local path = cli_config('{\n  "current": "default",\n  "profiles": [\n'
        .. '    {"name": "default", "access_key_secret": "broken-secret-Vv94" "mode": "AK"}\n  ]\n}\n')
      chain_err(nil, INVALID, path .. " is not valid JSON (line 4)")
      cli_config('{"profiles": "none"}')
      chain_err(nil, INVALID, path, "not an aliyun CLI configuration")
      cli_config("")
      chain_err(nil, INVALID, path .. " is not valid JSON")
    end)

    it("comes before the INI file", function()
      cli_config()
      ini_file()
      assert.are.equal("LTAIcliWork0000002", get(chain_ok()).access_key_id)
    end)
  end)

  describe("INI credentials file", function()
    it("uses [default] with type access_key, with its region", function()
      local path = ini_file()
      local p = chain_ok()
      assert.are.equal("credentials-file:default (" .. path .. ")", p.source)
      assert.are.equal("cn-shenzhen", p.region)
      assert.are.same({ access_key_id = "LTAIiniDefault0001", access_key_secret = "ini-default-secret-Ab12" }, get(p))
      assert.are.equal("aliyun.iot.Credentials (credentials-file:default (" .. path .. "), AccessKeyId LTAI****0001)",
        tostring(p))
    end)

    it("tolerates comments, whitespace and quoted values", function()
      ini_file()
      local p = chain_ok{ profile = "project" }
      assert.is_nil(p.region)
      assert.are.same({ access_key_id = "LTAIiniProject0002", access_key_secret = "ini-project-secret-Cd34" }, get(p))
    end)

    it("selects the section by ALIBABA_CLOUD_PROFILE, or options.profile first", function()
      ini_file()
      vars.ALIBABA_CLOUD_PROFILE = "project"
      assert.are.equal("LTAIiniProject0002", get(chain_ok()).access_key_id)
      assert.are.equal("LTAIiniDefault0001", get(chain_ok{ profile = "default" }).access_key_id)
    end)

    it("reads STS tokens (type sts)", function()
      ini_file()
      assert.are.same({ access_key_id = "STS.iniSts00000003", access_key_secret = "ini-sts-secret-Ef56",
                        security_token = "ini-sts-token-Gh78" }, get(chain_ok{ profile = "sts" }))
    end)

    it("is used when config.json lacks the named profile", function()
      cli_config()
      local path = ini_file()
      assert.are.equal("credentials-file:project (" .. path .. ")", chain_ok{ profile = "project" }.source)
    end)

    it("is used when config.json has no current and no default profile", function()
      cli_config('{"current": "", "profiles": [{"name": "other", "mode": "AK"}]}')
      ini_file()
      assert.are.equal("LTAIiniDefault0001", get(chain_ok()).access_key_id)
    end)

    it("is used when config.json's default profile is the CLI's empty placeholder", function()
      cli_config('{"current": "", "profiles": [{"name": "default", "mode": "AK", "access_key_id": "",'
        .. ' "access_key_secret": "", "region_id": ""}]}')
      ini_file()
      assert.are.equal("LTAIiniDefault0001", get(chain_ok()).access_key_id)
      chain_err({ profile = "default" }, MISSING, "has no access_key_id") -- but not when named
    end)

    it("is read from ALIBABA_CLOUD_CREDENTIALS_FILE, which must exist", function()
      local path = write(home .. "/etc/creds.ini", read(FIXTURES .. "credentials.ini"))
      vars.ALIBABA_CLOUD_CREDENTIALS_FILE = path
      assert.are.equal("credentials-file:default (" .. path .. ")", chain_ok().source)
      vars.ALIBABA_CLOUD_CREDENTIALS_FILE = home .. "/missing.ini"
      chain_err(nil, MISSING, "ALIBABA_CLOUD_CREDENTIALS_FILE names " .. home .. "/missing.ini")
    end)

    it("names an unsupported type, and a key missing from a section", function()
      local path = ini_file()
      chain_err({ profile = "rsa" }, INVALID, "profile [rsa] in " .. path, 'type "rsa_key_pair"')
      ini_file("[default]\ntype = access_key\naccess_key_id = LTAIbroken0000007\n")
      chain_err(nil, MISSING, "profile [default] in " .. path, "has no access_key_secret")
      ini_file("[default]\nregion_id = cn-shanghai\n")
      chain_err(nil, MISSING, "has no type")
    end)

    local malformed = {
      { "an unterminated quote", '[default]\ntype = access_key\naccess_key_secret = "broken-secret-Vv94\n',
        "line 3", "key access_key_secret" },
      { "a line without =", "[default]\n\n# fine\naccess_key_secret broken-secret-Vv94\n",
        "line 4", "after key access_key_secret" },
      { "a bare secret on its own line", "[default]\nbroken-secret-Vv94\n", "line 2" },
      { "an unclosed section header", "; c\n[default\ntype = access_key\n", "line 2", "section header" },
      { "an empty key", "[default]\n= broken-secret-Vv94\n", "line 2", "malformed key" },
      { "text after a quoted value", "[default]\naccess_key_id = 'LTAI' broken-secret-Vv94\n",
        "line 2", "key access_key_id" },
    }
    for _, case in ipairs(malformed) do
      it("reports " .. case[1] .. " with the file and line, never the value", function()
        local path = ini_file(case[2])
        chain_err(nil, INVALID, path .. " " .. case[3], unpack(case, 4))
      end)
    end

    it("accepts CRLF line endings and a UTF-8 BOM", function()
      ini_file("\239\187\191[default]\r\ntype = access_key\r\naccess_key_id = LTAIcrlf000000008\r\n"
        .. "access_key_secret = ini-default-secret-Ab12\r\n")
      assert.are.same({ access_key_id = "LTAIcrlf000000008", access_key_secret = "ini-default-secret-Ab12" },
        get(chain_ok()))
    end)
  end)

  describe("STS endpoint (RamRoleArn, OIDC)", function()
    -- The scheme://host a role's first AssumeRole goes to (captured, never sent).
    local function sts_host(opts)
      local seen
      local o = { access_key_id = "LTAIoptions000001", access_key_secret = "opt-secret-Zz90",
                  role_arn = "acs:ram::1234567890:role/ota", sts_http = function(_, url) seen = url end }
      for k, v in pairs(opts or {}) do o[k] = v end
      local _, err = chain_ok(o):get()
      assert_err(err, "SDK.TransportError", "STS: AssumeRole of acs:ram::1234567890:role/ota")
      return seen:match("^https?://[^/]+")
    end

    it("is sts_endpoint, else ALIBABA_CLOUD_STS_ENDPOINT, else by region, else sts.aliyuncs.com", function()
      assert.are.equal("https://sts.aliyuncs.com", sts_host())
      vars.ALIBABA_CLOUD_STS_REGION = "cn-hangzhou"
      assert.are.equal("https://sts.cn-hangzhou.aliyuncs.com", sts_host())
      vars.ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED = "true"
      assert.are.equal("https://sts-vpc.cn-hangzhou.aliyuncs.com", sts_host())
      vars.ALIBABA_CLOUD_STS_ENDPOINT = "sts.cn-beijing.aliyuncs.com"
      assert.are.equal("https://sts.cn-beijing.aliyuncs.com", sts_host())
      assert.are.equal("http://127.0.0.1:9", sts_host{ sts_endpoint = "http://127.0.0.1:9/" })
      vars.ALIBABA_CLOUD_STS_ENDPOINT = "https://sts.example.com/path"
      chain_err({ role_arn = "acs:ram::1:role/x", access_key_id = "LTAIoptions000001", access_key_secret = "s" },
        INVALID, "ALIBABA_CLOUD_STS_ENDPOINT must be an STS endpoint")
    end)

    it("leaves ALIBABA_CLOUD_ROLE_ARN to OIDC when its variables are set, even under a profile", function()
      cli_config()
      vars.ALIBABA_CLOUD_ROLE_ARN = "acs:ram::1234567890:role/rrsa"
      assert.truthy(chain_ok{ profile = "work" }.source:find("^ram%-role%-arn:acs:ram::1234567890:role/rrsa from"))
      vars.ALIBABA_CLOUD_OIDC_TOKEN_FILE = home .. "/token"
      assert.are.equal("cli-profile:work (" .. home .. "/.aliyun/config.json)", chain_ok{ profile = "work" }.source)
    end)

    it("takes a profile's sts_region", function()
      cli_config([[{"profiles": [{"name": "default", "mode": "RamRoleArn", "access_key_id": "LTAIcliArn00000005",
        "access_key_secret": "cli-arn-secret-Tt55", "ram_role_arn": "acs:ram::1234567890:role/ota",
        "sts_region": "ap-southeast-1"}]}]])
      local seen
      local _, err = chain_ok{ sts_http = function(_, url) seen = url end }:get()
      assert_err(err, "SDK.TransportError")
      assert.truthy(seen:find("^https://sts%.ap%-southeast%-1%.aliyuncs%.com/%?"), seen)
    end)
  end)

  describe("profiles and nothing at all", function()
    it("a named profile found nowhere names itself and the files searched", function()
      local cli = cli_config()
      local err = chain_err({ profile = "prod" }, MISSING, 'profile "prod" not found',
        cli .. " (no such profile)", home .. "/.alibabacloud/credentials (not found)")
      assert.is_false(err.retryable)
      vars.ALIBABA_CLOUD_PROFILE = "staging"
      chain_err(nil, MISSING, 'profile "staging" not found')
    end)

    it("no source at all is MissingCredentials listing what was looked at", function()
      chain_err(nil, MISSING, "no credentials found", "ALIBABA_CLOUD_ACCESS_KEY_ID",
        home .. "/.aliyun/config.json", home .. "/.alibabacloud/credentials", "ALIBABA_CLOUD_ECS_METADATA")
    end)

    it("an empty [default] INI section without keys is an error, not a silent skip", function()
      ini_file("[default]\n")
      chain_err(nil, MISSING, "profile [default]")
    end)
  end)

  describe("ECS RAM role", function()
    local stub, session, now, expiration

    -- The stub's control API, through luasocket: never through the code under test.
    local function control(method, path)
      local chunks = {}
      local ok, code = require("socket.http").request{ url = stub.url .. "/__stub/" .. path, method = method,
        sink = require("ltn12").sink.table(chunks) }
      assert(ok and code == 200, "stub control failed: " .. tostring(code))
      return table.concat(chunks)
    end

    local function stub_log() return require("cjson").decode(control("GET", "log")) end

    local function opts(o)
      o = o or {}
      o.metadata_url = o.metadata_url or stub.url
      o.http = o.http or function(method, url, headers) return session:request(method, url, headers) end
      o.clock = o.clock or function() return now end
      return o
    end

    -- The method and path of each request the stub saw, e.g. "PUT /latest/api/token".
    local function requests()
      local out = {}
      for _, e in ipairs(stub_log()) do out[#out + 1] = e.method .. " " .. e.path end
      return out
    end

    local TOKEN_PUT = "PUT /latest/api/token"
    local CREDS_GET = "GET /latest/meta-data/ram/security-credentials/iot-ota-role"

    setup(function()
      local dir = sh("mktemp -d \"${TMPDIR:-/tmp}/aliyun-metadata-stub.XXXXXX\""):gsub("%s+$", "")
      local portfile = dir .. "/port"
      local pid = sh(string.format("lua5.4 %smetadata_stub.lua '%s' >'%s/out' 2>&1 & echo $!",
        FIXTURES, portfile, dir)):match("%d+")
      local port
      for _ = 1, 200 do
        local f = io.open(portfile)
        port = f and f:read("*l")
        if f then f:close() end
        if port then break end
        sh("sleep 0.02")
      end
      assert(port, "metadata stub did not start: " .. (io.open(dir .. "/out") and read(dir .. "/out") or ""))
      stub = { pid = pid, dir = dir, url = "http://127.0.0.1:" .. port }
      session = core.new_session{ timeout = 2, connect_timeout = 1 }
      expiration = credentials.parse_iso8601("2030-01-01T01:00:00Z")
    end)

    teardown(function()
      if session then session:close() end
      if stub then
        sh("kill " .. stub.pid .. " 2>/dev/null")
        if stub.dir:match("/aliyun%-metadata%-stub%.%w+$") then sh("rm -rf '" .. stub.dir .. "'") end
      end
    end)

    before_each(function()
      control("POST", "reset")
      now = expiration - 3600
    end)

    it("parses the Expiration format", function()
      assert.are.equal(1795694400, credentials.parse_iso8601("2026-11-26T12:00:00Z"))
      assert.are.equal(0, credentials.parse_iso8601("1970-01-01T00:00:00Z"))
      assert.are.equal(951782400, credentials.parse_iso8601("2000-02-29T00:00:00.123Z"))
      assert.are.equal(1795694400, credentials.parse_iso8601("2026-11-26T20:00:00+08:00"))
      assert.is_nil(credentials.parse_iso8601("next tuesday"))
    end)

    it("fetches a token with a PUT, then the credentials with the token header", function()
      local p = chain_ok(opts{ role_name = "iot-ota-role" })
      assert.are.equal("ecs-ram-role:iot-ota-role", p.source)
      assert.are.same({}, stub_log(), "chain() must not talk to the network")
      assert.are.equal("aliyun.iot.Credentials (ecs-ram-role:iot-ota-role, AccessKeyId (not fetched yet))", tostring(p))
      local creds = get(p)
      assert.are.equal("STS.stubkey0001", creds.access_key_id)
      assert.are.equal("stub-secret-1-Zx81Qw", creds.access_key_secret)
      assert.are.equal("stub-token-1-CAIS9QJ1q6Ft5B2yfSjIr5bkKdXS", creds.security_token)
      assert.are.equal(expiration, creds.expiration)
      local log = stub_log()
      assert.are.equal(2, #log)
      assert.are.same({ method = "PUT", path = "/latest/api/token", ttl = "21600", token_ok = false }, log[1])
      assert.are.same({ method = "GET", path = "/latest/meta-data/ram/security-credentials/iot-ota-role",
                        ttl = require("cjson").null, token_ok = true }, log[2])
      assert.are.equal("aliyun.iot.Credentials (ecs-ram-role:iot-ota-role, AccessKeyId STS.****0001)", tostring(p))
      for _, v in pairs(p) do assert_clean(v) end
    end)

    it("serves from the cache while fresh and refreshes at Expiration minus the margin", function()
      local p = chain_ok(opts{ role_name = "iot-ota-role", refresh_margin = 60 })
      local first = get(p)
      now = expiration - 61
      assert.are.equal(first, get(p), "cache hit while fresh")
      assert.are.same({ TOKEN_PUT, CREDS_GET }, requests())
      control("POST", "config?expiration=2030-01-01T02:00:00Z")
      now = expiration - 60
      local second = get(p)
      assert.are.equal("STS.stubkey0002", second.access_key_id)
      assert.are.same({ TOKEN_PUT, CREDS_GET, TOKEN_PUT, CREDS_GET }, requests())
      assert.are.equal(second, get(p))
      control("POST", "config?expiration=2030-01-01T03:00:00Z")
      now = expiration + 3601 -- past the second set's Expiration
      assert.are.equal("STS.stubkey0003", get(p).access_key_id, "refresh after expiry")
      assert.are.equal("STS.stubkey0003", get(p).access_key_id)
    end)

    it("uses a default margin of a few minutes", function()
      local p = chain_ok(opts{ role_name = "iot-ota-role" })
      get(p)
      now = expiration - credentials.DEFAULT_REFRESH_MARGIN - 1
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
      now = expiration - credentials.DEFAULT_REFRESH_MARGIN
      assert.are.equal("STS.stubkey0002", get(p).access_key_id)
      assert.is_true(credentials.DEFAULT_REFRESH_MARGIN >= 60 and credentials.DEFAULT_REFRESH_MARGIN <= 600)
    end)

    it("keeps the old keys if a refresh fails before they expire, then reports the failure", function()
      local p = chain_ok(opts{ role_name = "iot-ota-role", refresh_margin = 300 })
      local first = get(p)
      control("POST", "config?creds_status=503")
      now = expiration - 10
      assert.are.equal(first, get(p))
      now = expiration
      local creds, err = p:get()
      assert.is_nil(creds)
      assert_err(err, "SDK.HttpError", "ECS metadata service", "returned HTTP 503")
      assert.are.equal(503, err.http_status)
      assert.is_true(err.retryable)
      control("POST", "config?creds_status=")
      control("POST", "reset")
      assert.are.equal("STS.stubkey0001", get(p).access_key_id, "recovers once the service does")
    end)

    it("discovers the role when a profile names none (INI ecs_ram_role)", function()
      local path = ini_file()
      local p = chain_ok(opts{ profile = "ecs-discover" })
      assert.are.equal("ecs-ram-role", p.source)
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
      assert.are.equal("ecs-ram-role:iot-ota-role", p.source)
      assert.are.same({ TOKEN_PUT, "GET /latest/meta-data/ram/security-credentials/", CREDS_GET }, requests())
      for _, e in ipairs(stub_log()) do
        if e.method == "GET" then assert.is_true(e.token_ok) end
      end
      assert.truthy(path)
    end)

    it("comes from an INI ecs_ram_role profile, with its region", function()
      ini_file()
      local p = chain_ok(opts{ profile = "ecs" })
      assert.are.equal("ecs-ram-role:iot-ota-role", p.source)
      assert.are.equal("cn-qingdao", p.region)
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
    end)

    it("comes from a config.json EcsRamRole profile, with its region", function()
      cli_config()
      vars.ALIBABA_CLOUD_PROFILE = "ecs"
      local p = chain_ok(opts())
      assert.are.equal("ecs-ram-role:iot-ota-role", p.source)
      assert.are.equal("cn-beijing", p.region)
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
    end)

    it("comes from ALIBABA_CLOUD_ECS_METADATA, after every file", function()
      vars.ALIBABA_CLOUD_ECS_METADATA = "iot-ota-role"
      local p = chain_ok(opts())
      assert.are.equal("ecs-ram-role:iot-ota-role", p.source)
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
      ini_file()
      assert.are.equal("credentials-file:default (" .. home .. "/.alibabacloud/credentials)", chain_ok(opts()).source)
    end)

    it("without an http function, opens its own session lazily", function()
      local p = chain_ok{ role_name = "iot-ota-role", metadata_url = stub.url .. "/" }
      assert.are.same({}, stub_log())
      assert.are.equal("STS.stubkey0001", get(p).access_key_id)
    end)

    local failures = {
      { "the token PUT is refused", "token_status=403", "SDK.HttpError", "PUT /latest/api/token returned HTTP 403" },
      { "the credentials GET fails", "creds_status=500", "SDK.HttpError", "returned HTTP 500" },
      { "the body is not JSON", "body=bad_json", "SDK.BadResponse", "did not return a JSON object" },
      { "Code is not Success", "body=failed", "SDK.BadResponse", 'Code "Failed"' },
      { "the role is not attached", "role=other-role", MISSING, 'RAM role "iot-ota-role" is not attached' },
    }
    for _, case in ipairs(failures) do
      it("reports a clear error when " .. case[1], function()
        control("POST", "config?" .. case[2])
        local p = chain_ok(opts{ role_name = "iot-ota-role" })
        local creds, err = p:get()
        assert.is_nil(creds)
        assert_err(err, case[3], "ECS", case[4])
        assert_clean(tostring(p))
      end)
    end

    it("reports an unreachable metadata service as a connection failure", function()
      local server = require("socket").bind("127.0.0.1", 0)
      local _, port = server:getsockname()
      server:close()
      local p = chain_ok(opts{ role_name = "iot-ota-role", metadata_url = "http://127.0.0.1:" .. port })
      local creds, err = p:get()
      assert.is_nil(creds)
      assert_err(err, "SDK.ConnectionFailed", "ECS metadata service: PUT /latest/api/token failed")
      assert.is_true(err.retryable)
    end)

    it("rejects a malformed metadata_url or role name before any request", function()
      chain_err(opts{ role_name = "iot-ota-role", metadata_url = "100.100.100.200/latest" }, INVALID, "metadata_url")
      chain_err(opts{ role_name = "../../user-data" }, INVALID, "RAM role name")
      chain_err(opts{ role_name = "" }, INVALID, "role_name must not be empty")
      assert.are.same({}, stub_log())
    end)
  end)

  describe("in a child process (the real os.getenv)", function()
    it("reads the environment and HOME by default", function()
      local path = ini_file()
      local out = helpers.run_lua([[
        local p = assert(require("aliyun.iot.credentials").chain())
        print(p.source, p.region, p:get().access_key_id, tostring(p))
      ]], { HOME = home, ALIBABA_CLOUD_ACCESS_KEY_ID = "", ALIBABA_CLOUD_ACCESS_KEY_SECRET = "",
            ALIBABA_CLOUD_PROFILE = "", ALIBABA_CLOUD_CONFIG_FILE = "", ALIBABA_CLOUD_CREDENTIALS_FILE = "" })
      local want = "credentials-file:default (" .. path .. ")\tcn-shenzhen\tLTAIiniDefault0001"
      assert.truthy(out:find(want, 1, true), out)
      assert_clean(out)

      out = helpers.run_lua([[
        local p = assert(require("aliyun.iot.credentials").chain({}))
        print(p.source, tostring(p))
      ]], { HOME = home, ALIBABA_CLOUD_ACCESS_KEY_ID = "LTAIenv0000000001",
            ALIBABA_CLOUD_ACCESS_KEY_SECRET = "env-secret-Xx92" })
      assert.truthy(out:find("environment\taliyun.iot.Credentials (environment, AccessKeyId LTAI****0001)", 1, true),
        out)
      assert_clean(out)
    end)

    it("does no file or network I/O at require time", function()
      local out = helpers.run_lua([[
        local real_open = io.open
        io.open = function(...) error("io.open at require time") end
        package.loaded["socket"] = setmetatable({}, { __index = function() error("socket at require time") end })
        require("aliyun.iot.credentials")
        io.open = real_open
        print("loaded")
      ]], { HOME = home })
      assert.are.equal("loaded\n", out)
    end)
  end)
end)
