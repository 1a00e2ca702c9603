--- What the credential specs (spec/credentials_spec.lua, spec/credentials_sts_spec.lua)
-- share: shell and file helpers, and error checks that look for every emulator secret
-- (helpers.assert_no_secret) and for each spec's own.
local assert = require("luassert")
local helpers = require("helpers")

local support = {}

local function all_of(f)
  local out = assert(f):read("*a") -- "*a": Lua 5.1/LuaJIT need the star
  f:close()
  return out
end

function support.sh(cmd) return all_of(io.popen(cmd, "r")) end

function support.read(path) return all_of(io.open(path, "rb")) end

--- Write `text` to `path` (its directory made first); returns path.
function support.write(path, text)
  support.sh("mkdir -p '" .. path:match("^(.*)/[^/]*$") .. "'")
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- assert_clean(v): tostring(v) holds no secret (the emulator's, or one of `secrets`,
-- plain substrings). assert_err(err, code, ...): an error object of that code, clean in
-- every field, whose message contains each of `...`.
function support.checks(secrets)
  local function assert_clean(v)
    local text = tostring(v)
    for _, secret in ipairs(secrets) do
      assert(not text:find(secret, 1, true), "a secret leaked into: " .. text)
    end
    helpers.assert_no_secret(text)
  end
  local function assert_err(err, code, ...)
    helpers.assert_error(err, code)
    assert_clean(tostring(err))
    for _, v in pairs(err) do assert_clean(v) end
    for _, part in ipairs({ ... }) do
      assert.truthy(err.message:find(part, 1, true), "expected " .. part .. " in: " .. err.message)
    end
    return err
  end
  return assert_clean, assert_err
end

return support
