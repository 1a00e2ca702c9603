--- aliyun.iot.credentials.common: what every credential source shares, so that each one
-- reports its failures with the same two codes and quotes values the same careful way.
--
-- SDK.MissingCredentials when something is not there (no source, a named profile or file
-- that does not exist, a key missing from a profile); SDK.InvalidArgument when something is
-- there but unusable (malformed JSON or INI, an unsupported mode or type). Messages name
-- files, lines, profiles and keys, never values: quotable() is the one way a value from a
-- file or a service gets into a message.
local errors = require("aliyun.iot.errors")

local type, tostring, tonumber = type, tostring, tonumber
local format, match, gsub, sub = string.format, string.match, string.gsub, string.sub
local open = io.open

local codes = errors.codes

local common = {}

--- nil, SDK.MissingCredentials error (not retryable).
function common.missing(message)
  return nil, errors.new(codes.MISSING_CREDENTIALS, message, { retryable = false })
end

--- nil, SDK.InvalidArgument error (not retryable).
function common.invalid(message)
  return nil, errors.new(codes.INVALID_ARGUMENT, message, { retryable = false })
end

--- v when it is a non-empty string, else nil.
function common.nonempty(v)
  if type(v) == "string" and v ~= "" then return v end
  return nil
end

--- Read a whole file (a UTF-8 BOM dropped). Returns text, or nil, "missing" |
-- "unreadable", message.
function common.read_file(path)
  local f, msg, errno = open(path, "rb")
  if not f then
    if errno == 2 then return nil, "missing" end
    return nil, "unreadable", msg
  end
  local text, rmsg = f:read("*a")
  f:close()
  if not text then return nil, "unreadable", format("%s: %s", path, tostring(rmsg)) end
  if sub(text, 1, 3) == "\239\187\191" then text = sub(text, 4) end
  return text
end

--- The error for a request to a credentials service (`service`, e.g. "ECS metadata
-- service") that failed in transport (status nil, err the transport's error) or answered
-- HTTP `status`. Response bodies are never quoted: a credentials body carries the secret.
function common.http_error(service, what, status, err)
  if status == nil then
    local code, retryable, detail = codes.TRANSPORT_ERROR, nil, tostring(err)
    if type(err) == "table" then
      code = type(err.code) == "string" and err.code or code
      retryable = err.retryable
      detail = tostring(err.message or err.code)
    end
    return errors.new(code, format("%s: %s failed: %s", service, what, detail), { retryable = retryable })
  end
  return errors.new(codes.HTTP_ERROR, format("%s: %s returned HTTP %s", service, what, tostring(status)),
    { http_status = tonumber(status) })
end

--- A credentials service answered, but not with credentials (retryable: it may be a hiccup).
function common.bad_response(service, message)
  return errors.new(codes.BAD_RESPONSE, service .. ": " .. message, { retryable = true })
end

--- state.http, or a transport of its own made on first use (never at require or chain
-- time) with `transport_opts` (aliyun.iot.transport.http_function's).
function common.http_of(state, transport_opts)
  if not state.http then state.http = require("aliyun.iot.transport").http_function(transport_opts) end
  return state.http
end

function common.trim(s)
  return (gsub(s, "^%s+", ""):gsub("%s+$", ""))
end

--- A short identifier-like value (a mode, a type) quoted for a message; anything else,
-- which could be a pasted secret, as "(unrecognised value)".
function common.quotable(v)
  if type(v) == "string" and #v <= 40 and match(v, "^[%w_%-%.]+$") then return format("%q", v) end
  return "(unrecognised value)"
end

return common
