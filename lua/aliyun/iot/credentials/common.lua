--- aliyun.iot.credentials.common: what every credential source shares, so that each one
-- reports its failures with the same two codes and quotes values the same careful way.
--
-- SDK.MissingCredentials when something is not there (no source, a named profile or file
-- that does not exist, a key missing from a profile); SDK.InvalidArgument when something is
-- there but unusable (malformed JSON or INI, an unsupported mode or type). Messages name
-- files, lines, profiles and keys, never values: quotable() is the one way a value from a
-- file or a service gets into a message.
local errors = require("aliyun.iot.errors")

local type, format, match, gsub = type, string.format, string.match, string.gsub

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
