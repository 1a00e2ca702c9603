--- Error helpers shared by the Lua layer.
-- The error object itself (its metatable, __tostring and the retryable
-- classification) lives in C (src/errors.c) so that errors made by the C core
-- and by Lua are one type; this module only adds Lua-side conveniences.
local core = require("aliyun.iot.core")

local find, sub = string.find, string.sub

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

-- Plain (pattern-free) replacement of every occurrence of `needle`.
local function replace_plain(s, needle, replacement)
  local out, start = {}, 1
  while true do
    local i, j = find(s, needle, start, true)
    if not i then break end
    out[#out + 1] = sub(s, start, i - 1)
    out[#out + 1] = replacement
    start = j + 1
  end
  if start == 1 then return s end
  out[#out + 1] = sub(s, start)
  return table.concat(out)
end

-- Every form a server may echo a secret in: SignatureDoesNotMatch quotes
-- the whole string-to-sign, which carries the SecurityToken percent-encoded
-- twice. So each secret is scrubbed raw, encoded once and encoded twice.
local function forms_of(secrets)
  local forms = {}
  for _, secret in ipairs(secrets) do
    if type(secret) == "string" and secret ~= "" then
      local once = core.percent_encode(secret)
      forms[#forms + 1] = secret
      forms[#forms + 1] = once
      forms[#forms + 1] = core.percent_encode(once)
    end
  end
  return forms
end

local function scrub_forms(text, forms)
  for _, form in ipairs(forms) do text = replace_plain(text, form, "***") end
  return text
end

--- `text` with every form of every secret in `secrets` replaced by ***.
function errors.scrub(text, secrets)
  return scrub_forms(text, forms_of(secrets))
end

--- Remove every secret from the text fields of an error.
function errors.redact(err, secrets)
  if not secrets then return err end
  local forms = forms_of(secrets)
  for _, field in ipairs({ "message", "recommend" }) do
    local text = err[field]
    if type(text) == "string" then err[field] = scrub_forms(text, forms) end
  end
  return err
end

return errors
