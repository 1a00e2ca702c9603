--- Error helpers shared by the Lua layer.
-- The error object itself (its metatable, __tostring and the retryable
-- classification) lives in C (src/errors.c) so that errors made by the C core
-- and by Lua are one type; this module only adds Lua-side conveniences.
local core = require("aliyun.iot.core")

local errors = { codes = core.codes, is_error = core.is_error }

--- Build an error object. `fields` may add request_id, http_status, ...
function errors.new(code, message, fields)
  local err = {}
  if fields then
    for k, v in pairs(fields) do err[k] = v end
  end
  err.code, err.message = code, message
  return core.error(err)
end

--- A local validation failure: nothing was sent.
function errors.invalid(message)
  return errors.new(core.codes.INVALID_ARGUMENT, message, { retryable = false })
end

-- A secret is masked wherever any cut of it of at least MIN_CUT characters
-- appears, in every form a server could echo it in: SignatureDoesNotMatch
-- quotes the whole string-to-sign (the SecurityToken percent-encoded twice),
-- a proxy may log the query form-encoded (+ for space) or in lower-case hex,
-- and a message may be cut short anywhere.
local MIN_CUT = 8

local lower_hex = function(s) return (s:gsub("%%%x%x", string.lower)) end

local function forms_of(secrets)
  local forms, seen = {}, {}
  local function add(f)
    if f ~= "" and not seen[f] then
      seen[f] = true
      forms[#forms + 1] = f
    end
  end
  for _, secret in ipairs(secrets) do
    if type(secret) == "string" and secret ~= "" then
      local once = core.percent_encode(secret)
      local plus = (once:gsub("%%20", "+"))
      -- Encoded twice, also from the lower-hex forms (%2f -> %252f).
      for _, f in ipairs({ secret, once, plus, core.percent_encode(once), core.percent_encode(plus),
                           core.percent_encode(lower_hex(once)), core.percent_encode(lower_hex(plus)) }) do
        add(f)
        add(lower_hex(f))
      end
    end
  end
  return forms
end

-- The maskers of the forms (src/redact.c): `cuts` masks every MIN_CUT-byte
-- piece of a form (a shorter form whole); `whole` masks whole forms only (for
-- the code field, below).
local function maskers_of(forms)
  return { cuts = core.new_masker(forms, MIN_CUT), whole = core.new_masker(forms, 0), forms = forms }
end

-- The maskers of a set of secrets, kept for the next error: every failed
-- attempt redacts with the same key, token and proxy password, and building
-- the forms and maskers costs far more than masking a message. A few sets are
-- kept (a rotated STS token makes a new one); past that the cache starts over,
-- so it never holds more than a handful of stale credentials.
local CACHED_SETS = 4
local cached, cached_count = {}, 0

-- Callers pass { secret, token, proxy_password } where any may be nil: a
-- hole must not hide the entries after it (ipairs would stop there).
local function present(secrets)
  local at = {}
  for i, secret in pairs(secrets) do
    if type(i) == "number" and type(secret) == "string" and secret ~= "" then at[#at + 1] = i end
  end
  table.sort(at)
  local list = {}
  for n, i in ipairs(at) do list[n] = secrets[i] end
  return list
end

local function maskers_for(secrets)
  local list = present(secrets)
  local parts = {}
  for n, secret in ipairs(list) do parts[n] = #secret .. ":" .. secret end
  local key = table.concat(parts)
  local g = cached[key]
  if not g then
    if cached_count >= CACHED_SETS then cached, cached_count = {}, 0 end
    g = maskers_of(forms_of(list))
    cached[key], cached_count = g, cached_count + 1
  end
  return g
end

--- `text` with every form and cut of each secret in `secrets` replaced by ***.
function errors.scrub(text, secrets)
  return maskers_for(secrets).cuts:mask(text)
end

-- Every string field of err, and of the errors it carries (cause), scrubbed.
-- The code is an identifier (InvalidAccessKeyId.Inactive): only a whole form
-- of a secret is masked there, not every 8-character cut of one.
local function redact_fields(err, g, depth)
  for k, v in pairs(err) do
    if type(v) == "string" then
      err[k] = (k == "code" and g.whole or g.cuts):mask(v)
    elseif type(v) == "table" and depth < 3 and core.is_error(v) then
      redact_fields(v, g, depth + 1)
    end
  end
end

--- Remove every secret from every string field of an error (message,
-- recommend, request_id, host_id, ...: whatever a server could fill).
function errors.redact(err, secrets)
  if not secrets then return err end
  local g = maskers_for(secrets)
  if #g.forms > 0 then redact_fields(err, g, 1) end
  return err
end

return errors
