-- Credentials through STS and a credentials URI, against the emulator (which serves STS's
-- AssumeRole and AssumeRoleWithOIDC and accepts the credentials it issues): RamRoleArn on
-- top of options, STS keys, profiles, a URI and another role; OIDC token files; the
-- credentials URI; refresh before expiry, a refresh that fails, STS's errors; no secret in
-- any message. The environment is injected into credentials.chain as a function, except in
-- the child-process test at the end.
local helpers = require("helpers")
local support = require("credentials.support")
local iot = require("aliyun.iot")
local credentials = require("aliyun.iot.credentials")
local provider_retry = require("aliyun.iot.credentials.provider").RETRY_AFTER

local ROLE = "acs:ram::1000000000000001:role/iot-ota-operator"
local PARTNER = "acs:ram::1000000000000001:role/iot-ota-partner"
local PARTNER_ID = "emu-partner-7f3a"
local RRSA_ROLE = "acs:ram::1000000000000001:role/iot-ota-rrsa"
local OIDC = helpers.accounts.oidc_providers[1]
local AK = { access_key_id = helpers.ak.access_key_id, access_key_secret = helpers.ak.access_key_secret }

-- Every secret: the emulator's (helpers), the OIDC tokens, and what STS issues (by prefix).
local assert_clean, assert_err = support.checks({ OIDC.token, OIDC.expired_token, "EmuIssuedSecret", "EmuIssuedToken" })
local sh, write = support.sh, support.write

local function with(...)
  local out = {}
  for _, t in ipairs({ ... }) do for k, v in pairs(t) do out[k] = v end end
  return out
end

describe("credentials through STS", function()
  local emu, dir, clients, now, warnings
  helpers.use_emulator(function(e) emu = e end, false)

  setup(function() dir = sh("mktemp -d \"${TMPDIR:-/tmp}/aliyun-sts-spec.XXXXXX\""):gsub("%s+$", "") end)
  teardown(function()
    if dir and dir:match("/aliyun%-sts%-spec%.%w+$") then sh("rm -rf '" .. dir .. "'") end
  end)
  before_each(function() clients, now, warnings = {}, nil, {} end)
  after_each(function() for _, c in ipairs(clients) do c:close() end end)

  -- A client of the emulator, STS included; `now` (when set) is its clock.
  local function client(opts)
    local c, err = iot.new(with({ endpoint = emu.url, sts_endpoint = emu.url, region = "cn-shanghai",
      max_retries = 0, rate_limit = false, timeout = 10, connect_timeout = 2,
      clock = function() return now or os.time() end,
      logger = function(level, message) warnings[#warnings + 1] = level .. " " .. message end }, opts))
    assert(c, tostring(err))
    clients[#clients + 1] = c
    return c
  end

  -- The chain with an injected environment (STS is the emulator).
  local function chain(opts, vars)
    vars = with({ ALIBABA_CLOUD_STS_ENDPOINT = emu.url }, vars or {})
    local p, err = credentials.chain(opts or {}, function(name) return vars[name] end)
    assert(p, tostring(err))
    assert_clean(tostring(p))
    return p
  end

  -- A real Iot call and a small listing, signed with c's credentials; returns the AccessKeyId used.
  local function calls_ok(c)
    local r, err = c:call("QueryOTAJob", { JobId = "job-10" })
    assert(r, tostring(err))
    assert.are.equal("job-10", r.Data.JobId)
    local page, perr = c:ListOTATaskByJob{ JobId = "job-10", PageSize = 5 }
    assert(page, tostring(perr))
    assert.are.equal(5, #page.tasks)
    assert_clean(tostring(c))
    assert_clean(tostring(c.credentials))
    local log = emu:log()
    return log[#log].access_key_id
  end

  -- A client signing with a provider's current keys (the chain's own providers).
  local function keys_of(p)
    local creds, err = p:get()
    assert(creds, tostring(err))
    return client{ access_key_id = creds.access_key_id, access_key_secret = creds.access_key_secret,
                   security_token = creds.security_token }
  end

  local function requests(action)
    local out = {}
    for _, e in ipairs(emu:log()) do if e.action == action then out[#out + 1] = e end end
    return out
  end

  describe("RamRoleArn", function()
    it("assumes the role with the options' AccessKey; the role's keys sign the Iot calls", function()
      local c = client(with(AK, { role_arn = ROLE }))
      assert.are.equal("ram-role-arn:" .. ROLE .. " from options", c.credentials.source)
      assert.are.same({}, emu:log(), "nothing is sent before the first call")
      assert.truthy(calls_ok(c):match("^STS%.EmuIssued"))
      local log = emu:log()
      assert.are.same({ "AssumeRole", "QueryOTAJob", "ListOTATaskByJob" },
        { log[1].action, log[2].action, log[3].action })
      local a = log[1]
      assert.are.equal("POST", a.method)
      assert.are.equal(AK.access_key_id, a.access_key_id)
      assert.are.same({ ROLE, "3600", "2015-04-01", "JSON" },
        { a.params.RoleArn, a.params.DurationSeconds, a.params.Version, a.params.Format })
      assert.truthy(a.params.RoleSessionName:match("^aliyun%-iot%-%d+$"))
      assert.is_nil(a.params.SecurityToken)
      assert.truthy(tostring(c.credentials):match("AccessKeyId STS%.%*%*%*%*%w%w%w%w%)$"))
    end)

    it("sends a form POST signed over query and form, with every role setting", function()
      local seen
      local http = require("aliyun.iot.transport").http_function{ timeout = 5 }
      local policy = '{"Version":"1","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}'
      local p = chain(with(AK, { role_arn = PARTNER, external_id = PARTNER_ID, policy = policy,
        role_session_name = "ota-batch@7", role_session_duration = 1800,
        sts_http = function(m, u, h, b) seen = { m, u, h, b } return http(m, u, h, b) end }))
      local creds = assert(p:get())
      local query, form = seen[2]:match("%?(.*)$"), seen[4]
      assert.are.equal("POST", seen[1])
      assert.are.equal("application/x-www-form-urlencoded", seen[3]["Content-Type"])
      for _, part in ipairs({ "Action=AssumeRole", "Signature=", "SignatureNonce=", "AccessKeyId=" }) do
        assert.truthy(query:find(part, 1, true), part)
      end
      assert.is_nil(query:find("RoleArn", 1, true))
      for _, part in ipairs({ "RoleArn=acs%3Aram", "RoleSessionName=ota-batch%40" .. "7", "DurationSeconds=1800",
                              "ExternalId=" .. PARTNER_ID, "Policy=%7B%22Version" }) do
        assert.truthy(form:find(part, 1, true), part)
      end
      assert.is_nil(form:find("Signature", 1, true))
      assert.is_true(math.abs(creds.expiration - os.time() - 1800) < 60)
      calls_ok(keys_of(p))
    end)

    it("assumes it with STS keys, sending their SecurityToken", function()
      calls_ok(client{ access_key_id = helpers.sts.access_key_id, access_key_secret = helpers.sts.access_key_secret,
                       security_token = helpers.sts.security_token, role_arn = ROLE })
      local a = requests("AssumeRole")[1]
      assert.are.same({ helpers.sts.access_key_id, "***" }, { a.access_key_id, a.params.SecurityToken })
    end)

    it("sits on any source: a credentials URI here", function()
      local c = client{ credentials_uri = emu.url .. "/__emulator/credentials-uri", role_arn = ROLE }
      calls_ok(c)
      assert.truthy(requests("AssumeRole")[1].access_key_id:match("^STS%.EmuIssued"))
      assert.are.equal("ram-role-arn:" .. ROLE .. " from credentials-uri:" .. emu.url .. "/__emulator/credentials-uri",
        c.credentials.source)
    end)

    it("comes from CLI profiles (RamRoleArn, ChainableRamRoleArn, a named source) and the INI file", function()
      local path = write(dir .. "/config.json", string.format([[{"current": "chained", "profiles": [
        {"name": "ops", "mode": "RamRoleArn", "access_key_id": %q, "access_key_secret": %q, "ram_role_arn": %q,
         "ram_session_name": "ops-session", "expired_seconds": 900, "region_id": "cn-shanghai"},
        {"name": "chained", "mode": "ChainableRamRoleArn", "source_profile": "ops", "ram_role_arn": %q,
         "external_id": %q, "expired_seconds": 0},
        {"name": "loop", "mode": "ChainableRamRoleArn", "source_profile": "loop", "ram_role_arn": %q},
        {"name": "plain", "mode": "AK", "access_key_id": %q, "access_key_secret": %q}]}]],
        AK.access_key_id, AK.access_key_secret, ROLE, PARTNER, PARTNER_ID, ROLE,
        AK.access_key_id, AK.access_key_secret))
      local p = chain({}, { ALIBABA_CLOUD_CONFIG_FILE = path })
      assert.are.equal(string.format("ram-role-arn:%s from ram-role-arn:%s from cli-profile:ops (%s)", PARTNER, ROLE,
        path), p.source)
      assert.are.equal("cn-shanghai", p.region)
      calls_ok(keys_of(p))
      local a = requests("AssumeRole")
      assert.are.same({ AK.access_key_id, "ops-session", "900" },
        { a[1].access_key_id, a[1].params.RoleSessionName, a[1].params.DurationSeconds })
      assert.truthy(a[2].access_key_id:match("^STS%.EmuIssued"))
      assert.are.same({ PARTNER, PARTNER_ID, "3600" }, { a[2].params.RoleArn, a[2].params.ExternalId,
        a[2].params.DurationSeconds })
      local named = chain({ profile = "plain", role_arn = ROLE }, { ALIBABA_CLOUD_CONFIG_FILE = path })
      assert.are.equal("ram-role-arn:" .. ROLE .. " from cli-profile:plain (" .. path .. ")", named.source)
      calls_ok(keys_of(named))
      assert.are.equal(AK.access_key_id, requests("AssumeRole")[3].access_key_id)
      local _, err = credentials.chain({ profile = "loop" },
        function(n) return n == "ALIBABA_CLOUD_CONFIG_FILE" and path or nil end)
      assert_err(err, "SDK.InvalidArgument", 'profile "loop"', "deeper than")
      local ini = write(dir .. "/credentials", string.format("[default]\ntype = ram_role_arn\naccess_key_id = %s\n"
        .. "access_key_secret = %s\nrole_arn = %s\nrole_session_name = ini-session\n", AK.access_key_id,
        AK.access_key_secret, ROLE))
      calls_ok(keys_of(chain({}, { ALIBABA_CLOUD_CREDENTIALS_FILE = ini })))
      assert.are.equal("ini-session", requests("AssumeRole")[4].params.RoleSessionName)
    end)

    it("takes ALIBABA_CLOUD_ROLE_ARN and the session variables on top of the environment's keys", function()
      local p = chain({}, { ALIBABA_CLOUD_ACCESS_KEY_ID = AK.access_key_id,
        ALIBABA_CLOUD_ACCESS_KEY_SECRET = AK.access_key_secret, ALIBABA_CLOUD_ROLE_ARN = PARTNER,
        ALIBABA_CLOUD_ROLE_SESSION_NAME = "env-session", ALIBABA_CLOUD_ROLE_SESSION_EXPIRATION = "1200",
        ALIBABA_CLOUD_EXTERNAL_ID = PARTNER_ID })
      assert.are.equal("ram-role-arn:" .. PARTNER .. " from environment", p.source)
      calls_ok(keys_of(p))
      local a = requests("AssumeRole")[1].params
      assert.are.same({ "env-session", "1200", PARTNER_ID }, { a.RoleSessionName, a.DurationSeconds, a.ExternalId })
    end)

    -- A client of the role whose first keys (fetched here) live 600 s.
    local function short_lived_role()
      emu:faults{ sts_duration_seconds = 600 }
      now = os.time()
      local c = client(with(AK, { role_arn = ROLE }))
      return c, calls_ok(c)
    end

    it("refreshes the keys when 180 s or less remain, with a new AssumeRole", function()
      local c, first = short_lived_role()
      now = now + 419                                   -- 181 s left: still fresh
      assert.are.equal(first, calls_ok(c))
      assert.are.equal(1, #requests("AssumeRole"))
      emu:faults{}     -- the next keys live 3600 s: this clock, 425 s ahead of STS's, sees them fresh
      -- 175 s left: renewed. (Not exactly 180: STS stamps Expiration from its own
      -- clock, which on a loaded machine may read a second after this spec's.)
      now = now + 6
      local second = calls_ok(c)
      assert.are_not.equal(first, second)
      assert.are.equal(2, #requests("AssumeRole"))
      assert.are.same({}, warnings)
    end)

    it("keeps the old keys when a refresh fails before they expire, then reports the failure", function()
      local c, first = short_lived_role()
      emu:faults{ sts_unavailable = 1 }
      now = now + 500                                   -- inside the margin, not expired
      assert.are.equal(first, calls_ok(c))
      assert.are.equal(1, #warnings)
      assert.truthy(warnings[1]:find("^warn credentials from ram%-role%-arn:.*refresh failed.*temporary failure"),
        warnings[1])
      assert_clean(warnings[1])
      now = now + 101                                   -- past Expiration
      local r, err = c:call("QueryOTAJob", { JobId = "job-10" })
      assert.is_nil(r)
      assert_err(err, "ServiceUnavailable", "STS: AssumeRole of " .. ROLE, "from options")
      assert.is_true(err.retryable)
      emu:faults{}
      now = os.time() + 601  -- the old keys have expired; the new ones live 3600 s
      assert.are_not.equal(first, calls_ok(c), "recovers once STS does")
    end)

    local sts_errors = {
      { "a role of another account", { role_arn = "acs:ram::1000000000000002:role/iot-ota-operator" },
        "NoPermission", 403 },
      { "a malformed RoleArn", { role_arn = "acs:ram::x:role/ota" }, "InvalidParameter.RoleArn", 400 },
      { "a role that does not exist", { role_arn = "acs:ram::1000000000000001:role/nobody" },
        "EntityNotExist.Role", 404 },
      { "no ExternalId where the role wants one", { role_arn = PARTNER }, "NoPermission", 403 },
      { "a duration over the role's maximum", { role_arn = PARTNER, external_id = PARTNER_ID,
        role_session_duration = 7200 }, "InvalidParameter.DurationSeconds", 400 },
    }
    for _, case in ipairs(sts_errors) do
      it("reports STS's answer to " .. case[1] .. " with its code, the role and the source", function()
        local c = client(with(AK, case[2]))
        local r, err = c:call("QueryOTAJob", { JobId = "job-10" })
        assert.is_nil(r)
        assert_err(err, case[3], "STS: AssumeRole of ", "with the credentials from options")
        assert.are.equal(case[4], err.http_status)
        assert.is_false(err.retryable)
        assert.is_string(err.request_id)
        assert_clean(tostring(c))
        assert.are.same({ "AssumeRole" }, { emu:log()[1].action, emu:log()[2] })
      end)
    end

    it("reports an STS endpoint that is down as a connection failure", function()
      local server = require("socket").bind("127.0.0.1", 0)
      local _, port = server:getsockname()
      server:close()
      local c = client(with(AK, { role_arn = ROLE, sts_endpoint = "http://127.0.0.1:" .. port }))
      local _, err = c:call("QueryOTAJob", { JobId = "job-10" })
      assert_err(err, "SDK.ConnectionFailed", "STS: AssumeRole of " .. ROLE)
      assert.is_true(err.retryable)
    end)

    it("checks the role's settings before anything is sent", function()
      local cases = {
        { { role_arn = ROLE, role_session_name = "a" }, "option role_session_name must be 2 to 32" },
        { { role_arn = ROLE, role_session_duration = 600 }, "option role_session_duration must be a whole number" },
        { { role_arn = ROLE, external_id = "x y" }, "option external_id must be" },
        { { role_arn = ROLE, sts_endpoint = "https://sts.example.com/path" }, "option sts_endpoint must be" },
        { { role_session_name = "ota" }, "option role_session_name needs a role to assume" },
      }
      for _, case in ipairs(cases) do
        local c, err = iot.new(with(AK, { endpoint = emu.url, region = "cn-shanghai" }, case[1]))
        assert.is_nil(c)
        assert_err(err, "SDK.InvalidArgument", case[2])
      end
      assert.are.same({}, emu:log())
    end)
  end)

  describe("OIDC", function()
    local OIDC_OPTS
    before_each(function()
      OIDC_OPTS = { role_arn = RRSA_ROLE, oidc_provider_arn = OIDC.arn, oidc_token_file = dir .. "/token" }
      write(dir .. "/token", OIDC.token .. "\n")
    end)

    it("exchanges the token in the file for the role's keys, unsigned", function()
      local c = client(OIDC_OPTS)
      assert.are.equal("oidc-role-arn:" .. RRSA_ROLE .. " (token file " .. dir .. "/token)", c.credentials.source)
      assert.truthy(calls_ok(c):match("^STS%.EmuIssued"))
      local a = requests("AssumeRoleWithOIDC")[1]
      assert.are.same({ "POST", "***", OIDC.arn, "3600" }, { a.method, a.params.OIDCToken, a.params.OIDCProviderArn,
        a.params.DurationSeconds })
      assert.is_nil(a.params.Signature or a.params.AccessKeyId)
      assert.are.equal(require("cjson").null, a.access_key_id)
    end)

    it("comes from the environment after its keys, and reads the token file again at each refresh", function()
      emu:faults{ sts_duration_seconds = 600 }
      now = os.time()
      local vars = { ALIBABA_CLOUD_ROLE_ARN = RRSA_ROLE, ALIBABA_CLOUD_OIDC_PROVIDER_ARN = OIDC.arn,
        ALIBABA_CLOUD_OIDC_TOKEN_FILE = dir .. "/token", ALIBABA_CLOUD_ROLE_SESSION_NAME = "rrsa-pod" }
      local p = chain({ clock = function() return now end, logger = function(_, m) warnings[#warnings + 1] = m end },
        vars)
      assert.are.equal("oidc-role-arn:" .. RRSA_ROLE .. " (token file " .. dir .. "/token)", p.source)
      calls_ok(keys_of(p))
      assert.are.equal("rrsa-pod", requests("AssumeRoleWithOIDC")[1].params.RoleSessionName)
      write(dir .. "/token", "eyJhbGciOiJSUzI1NiJ9.rotated-by-someone-else.sig")
      now = now + 500
      assert(p:get())                                   -- the refresh fails; the old keys stay
      assert.are.equal(1, #warnings)
      assert.truthy(warnings[1]:find("OIDCToken.Invalid", 1, true) or warnings[1]:find("invalid", 1, true))
      write(dir .. "/token", OIDC.token)                 -- the kubelet rotated it
      emu:faults{}                                      -- the next keys live 3600 s
      now = now + provider_retry
      calls_ok(keys_of(p))
      assert.are.equal(3, #requests("AssumeRoleWithOIDC"))
      vars.ALIBABA_CLOUD_ACCESS_KEY_ID, vars.ALIBABA_CLOUD_ACCESS_KEY_SECRET = AK.access_key_id, AK.access_key_secret
      assert.are.equal("environment", chain({}, vars).source, "the environment's keys come first")
    end)

    it("reports a bad, expired or missing token naming the file and the role, never the token", function()
      local cases = { { "eyJhbGciOiJSUzI1NiJ9.not-this-one.sig", "AuthenticationFail.OIDCToken.Invalid" },
                      { OIDC.expired_token, "AuthenticationFail.OIDCToken.Expired" },
                      { "", "SDK.MissingCredentials", "is empty" } }
      for _, case in ipairs(cases) do
        write(dir .. "/token", case[1])
        local _, err = client(OIDC_OPTS):call("QueryOTAJob", { JobId = "job-10" })
        assert_err(err, case[2], "AssumeRoleWithOIDC of " .. RRSA_ROLE, "token file " .. dir .. "/token", case[3])
      end
      local _, err = client(with(OIDC_OPTS, { oidc_token_file = dir .. "/none" })):call("QueryOTAJob", { JobId = "x" })
      assert_err(err, "SDK.MissingCredentials", dir .. "/none does not exist")
      local _, cerr = credentials.chain({}, function(n) return n == "ALIBABA_CLOUD_OIDC_TOKEN_FILE" and "/t" or nil end)
      assert_err(cerr, "SDK.MissingCredentials", "OIDC needs ALIBABA_CLOUD_ROLE_ARN")
    end)

    it("comes from a config.json OIDC profile and an INI oidc_role_arn section", function()
      local path = write(dir .. "/oidc.json", string.format([[{"current": "k8s", "profiles": [{"name": "k8s",
        "mode": "OIDC", "ram_role_arn": %q, "oidc_provider_arn": %q, "oidc_token_file": %q,
        "ram_session_name": "cli-k8s"}]}]],
        RRSA_ROLE, OIDC.arn, dir .. "/token"))
      calls_ok(keys_of(chain({}, { ALIBABA_CLOUD_CONFIG_FILE = path })))
      local ini = write(dir .. "/oidc.ini", string.format("[default]\ntype = oidc_role_arn\nrole_arn = %s\n"
        .. "oidc_provider_arn = %s\noidc_token_file_path = %s\n", RRSA_ROLE, OIDC.arn, dir .. "/token"))
      calls_ok(keys_of(chain({}, { ALIBABA_CLOUD_CREDENTIALS_FILE = ini })))
      assert.are.equal("cli-k8s", requests("AssumeRoleWithOIDC")[1].params.RoleSessionName)
    end)
  end)

  describe("credentials URI", function()
    local URI
    before_each(function() URI = emu.url .. "/__emulator/credentials-uri" end)

    it("signs the Iot calls with what it serves, fetched again before it expires", function()
      emu:faults{ sts_duration_seconds = 600 }
      now = os.time()
      local c = client{ credentials_uri = URI .. "?role=iot-ota-operator" }
      assert.are.equal("credentials-uri:" .. URI, c.credentials.source, "the query is not shown")
      local first = calls_ok(c)
      emu:faults{}     -- the next keys live 3600 s: this clock, 420 s ahead, sees them fresh
      now = now + 420
      assert.are_not.equal(first, calls_ok(c))
      local counts = require("cjson").decode(emu:control("GET", "counts"))
      assert.are.equal(2, counts.CredentialsURI.requests)
    end)

    it("is last in the chain, and only when ALIBABA_CLOUD_CREDENTIALS_URI is set", function()
      local vars = { ALIBABA_CLOUD_CREDENTIALS_URI = URI, HOME = dir }
      calls_ok(keys_of(chain({}, vars)))
      vars.ALIBABA_CLOUD_ECS_METADATA = "iot-ota-role"
      assert.are.equal("ecs-ram-role:iot-ota-role", chain({}, vars).source)
      local path = write(dir .. "/uri.json", '{"profiles": [{"name": "default", "mode": "CredentialsURI"}]}')
      assert.are.equal("credentials-uri:" .. URI, chain({}, { ALIBABA_CLOUD_CONFIG_FILE = path,
        ALIBABA_CLOUD_CREDENTIALS_URI = URI }).source, "a CredentialsURI profile falls back to the variable")
    end)

    local broken = {
      { "status=503", "SDK.HttpError", "GET returned HTTP 503" },
      { "body=failed", "SDK.BadResponse", 'Code "Failed"' },
      { "body=bad_json", "SDK.BadResponse", "not return a JSON object" },
      { "body=no_expiration", "SDK.BadResponse", "Expiration" },
    }
    for _, case in ipairs(broken) do
      it("reports a URI that answers " .. case[1], function()
        local _, err = client{ credentials_uri = URI .. "?" .. case[1] }:call("QueryOTAJob", { JobId = "job-10" })
        assert_err(err, case[2], "credentials URI " .. URI, case[3])
      end)
    end
  end)

  it("reads the real environment in a child process", function()
    local out = helpers.run_lua(string.format([[
      local c = assert(require("aliyun.iot").new{ endpoint = %q, region = "cn-shanghai", rate_limit = false })
      local r, err = c:call("QueryOTAJob", { JobId = "job-10" })
      print(c.credentials.source, r and r.Data.JobId or tostring(err), tostring(c))
    ]], emu.url), { ALIBABA_CLOUD_ACCESS_KEY_ID = AK.access_key_id, ALIBABA_CLOUD_ACCESS_KEY_SECRET =
      AK.access_key_secret, ALIBABA_CLOUD_ROLE_ARN = ROLE, ALIBABA_CLOUD_STS_ENDPOINT = emu.url, HOME = dir,
      ALIBABA_CLOUD_PROFILE = false, ALIBABA_CLOUD_OIDC_TOKEN_FILE = false, ALIBABA_CLOUD_CREDENTIALS_URI = false })
    assert.truthy(out:find("ram-role-arn:" .. ROLE .. " from environment\tjob-10\t", 1, true), out)
    assert_clean(out)
  end)
end)
