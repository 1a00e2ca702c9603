-- Helpers shared by the action modules (ota_*.lua): gateway-level parameter
-- errors, IoT-level errors, and the parameter types of the IoT API as the
-- official SDKs render them (Integer, Boolean "true"/"false", lists Name.1..N).
-- Pure Lua apart from codec.

local codec = require "codec"

local M = {}

-- Gateway-level error (the gateway body with HTTP `status`), as returned by check_parameters.
function M.error(status, code, message)
  return { status = status, code = code, message = message }
end

-- The same with HTTP 400.
function M.gateway_error(code, message)
  return M.error(400, code, message)
end

function M.invalid(name, why)
  return M.gateway_error("InvalidParameter", "The specified parameter \"" .. name .. "\" is not valid. " .. why)
end

function M.missing(params, name)
  if params[name] == nil or params[name] == "" then
    return M.gateway_error("Missing" .. name, name .. " is mandatory for this action.")
  end
end

-- IoT-level error: HTTP 200, Success false. Returns body, code (for call()).
function M.iot_error(request_id, code, message)
  return codec.object({ "RequestId", "Success", "Code", "ErrorMessage" },
    { RequestId = request_id, Success = false, Code = code, ErrorMessage = message }), code
end

-- {RequestId, Success: true} (actions without data).
function M.ok(request_id)
  return codec.object({ "RequestId", "Success" }, { RequestId = request_id, Success = true }), "OK"
end

-- Integer as the (Java) gateway parses it: optional '-', digits, 32-bit.
function M.parse_integer(s)
  if not s:match("^%-?%d+$") or #s > 11 then return nil end
  local n = tonumber(s)
  if n < -2147483648 or n > 2147483647 then return nil end
  return n
end

function M.check_integer(params, name)
  if params[name] ~= nil and not M.parse_integer(params[name]) then
    return M.invalid(name, "It must be an Integer, got \"" .. params[name] .. "\".")
  end
end

-- Boolean: exactly "true" or "false" (what the official SDKs send).
function M.check_boolean(params, name)
  local v = params[name]
  if v ~= nil and v ~= "true" and v ~= "false" then
    return M.invalid(name, "It must be a Boolean, \"true\" or \"false\", got \"" .. v .. "\".")
  end
end

-- List parameter Name.1 .. Name.k. Returns list, or nil when none given, or
-- nil, gateway error when the numbering has gaps/leading zeros or a value is empty.
function M.indexed_list(params, name)
  local pattern = "^" .. name:gsub("%p", "%%%0") .. "%.(.*)$"
  local by_index, count = {}, 0
  for pname, value in pairs(params) do
    local suffix = pname:match(pattern)
    if suffix then
      if not suffix:match("^[1-9]%d*$") or #suffix > 6 then
        return nil, M.invalid(pname, name .. ".N needs N = 1, 2, 3, ... (no leading zeros).")
      end
      if value == "" then return nil, M.invalid(pname, "A list element must not be empty.") end
      by_index[tonumber(suffix)] = value
      count = count + 1
    end
  end
  if count == 0 then return nil end
  for i = 1, count do
    if by_index[i] == nil then
      return nil, M.invalid(name .. "." .. i,
        name .. ".N must be numbered 1.." .. count .. " without gaps, " .. name .. "." .. i .. " is missing.")
    end
  end
  return by_index
end

-- Paging of list actions. Returns page_size, current_page, or nil, body, code.
M.MAX_PAGE_SIZE, M.MAX_DEPTH = 100, 100000
function M.paging(params, request_id, default_size)
  local page_size = params.PageSize and M.parse_integer(params.PageSize) or default_size or 10
  local current_page = params.CurrentPage and M.parse_integer(params.CurrentPage) or 1
  if page_size < 1 or page_size > M.MAX_PAGE_SIZE then
    return nil, M.iot_error(request_id, "iot.common.InvalidPageParams",
      "PageSize must be between 1 and " .. M.MAX_PAGE_SIZE .. ", got " .. page_size .. ".")
  end
  if current_page < 1 then
    return nil, M.iot_error(request_id, "iot.common.InvalidPageParams",
      "CurrentPage must be at least 1, got " .. current_page .. ".")
  end
  if current_page * page_size > M.MAX_DEPTH then
    return nil, M.iot_error(request_id, "iot.common.InvalidPageParams",
      "Paging too deep: CurrentPage * PageSize must not exceed " .. M.MAX_DEPTH .. ".")
  end
  return page_size, current_page
end

return M
