-- Action QueryDevice (IoT 2018-01-20): the devices of a product
-- (products.lua), by page number or by NextToken. Same interface as ota.lua.
--
-- Parameters: ProductKey (required: gateway MissingProductKey), PageSize
-- (Integer, default 10, 1..50), CurrentPage (Integer, default 1, >= 1),
-- NextToken (String; empty = absent).
--   Without NextToken: devices (CurrentPage-1)*PageSize+1 .., refused once
--   PageSize x CurrentPage > 10,000 (fault option device_depth_cap lowers it).
--   With NextToken: the devices after the token's position, any depth;
--   CurrentPage is checked (>= 1) but does not move the position.
-- Every page but the last carries the NextToken of the next one (the last has
-- none). Cost O(PageSize), whatever the product size.
-- Success: {"RequestId","Success":true,"Total","PageSize","PageCount","Page",
--   "NextToken"?,"Data":{"DeviceInfo":[...]}} with products.DEVICE_FIELDS.
-- IoT errors (Success false), in order: PageSize outside 1..50, CurrentPage < 1,
-- too deep without NextToken -> iot.common.InvalidPageParams; unknown product ->
-- iot.prod.NotExistedProduct; NextToken not one this product issued ->
-- iot.common.InvalidParameter.

local products = require "products"
local codec = require "codec"
local lib = require "actionlib"

local M = { name = "QueryDevice", version = "2018-01-20" }

M.MAX_PAGE_SIZE = 50
M.MAX_DEPTH = 10000               -- PageSize x CurrentPage without NextToken

local PARAMETERS = { ProductKey = true, PageSize = true, CurrentPage = true, NextToken = true }

function M.is_parameter(name)
  return PARAMETERS[name] ~= nil
end

function M.check_parameters(params)
  return lib.missing(params, "ProductKey") or lib.check_integer(params, "PageSize")
         or lib.check_integer(params, "CurrentPage")
end

-- NextToken: base64 of "<ProductKey>\n<offset>\n<crc32>", offset = devices
-- already listed. Opaque to clients; it may hold '+', '/' and '='.
local function token_for(product, offset)
  local text = product.key .. "\n" .. offset
  return ngx.encode_base64(text .. "\n" .. ngx.crc32_short(text))
end

-- The offset a token stands for in product, or nil.
local function offset_of(product, token)
  local raw = ngx.decode_base64(token)
  if not raw then return nil end
  local key, digits, crc = raw:match("^(.*)\n(%d+)\n(%d+)$")
  if key ~= product.key or #digits > 12 then return nil end
  local offset = tonumber(digits)
  if tostring(ngx.crc32_short(key .. "\n" .. digits)) ~= crc or offset < 1 or offset >= product.size then
    return nil
  end
  return offset
end

-- The page a request asks for (what the "once every N" faults key on): with
-- a NextToken the one it stands for at the request's PageSize, else CurrentPage.
function M.page_of(params)
  local page_size = params.PageSize and lib.parse_integer(params.PageSize) or 10
  local raw = params.NextToken and params.NextToken ~= "" and ngx.decode_base64(params.NextToken)
  local offset = raw and tonumber(raw:match("\n(%d+)\n%d+$") or "")
  if offset and page_size >= 1 then return math.floor(offset / page_size) + 1 end
  return tonumber(params.CurrentPage or "1") or 1
end

function M.call(params, request_id, faults)
  local page_size = params.PageSize and lib.parse_integer(params.PageSize) or 10
  local current_page = params.CurrentPage and lib.parse_integer(params.CurrentPage) or 1
  local token = params.NextToken
  if token == "" then token = nil end
  if page_size < 1 or page_size > M.MAX_PAGE_SIZE then
    return lib.iot_error(request_id, "iot.common.InvalidPageParams",
      "PageSize must be between 1 and " .. M.MAX_PAGE_SIZE .. ", got " .. page_size .. ".")
  end
  if current_page < 1 then
    return lib.iot_error(request_id, "iot.common.InvalidPageParams",
      "CurrentPage must be at least 1, got " .. current_page .. ".")
  end
  local cap = faults and faults.device_depth_cap > 0 and faults.device_depth_cap or M.MAX_DEPTH
  if not token and page_size * current_page > cap then
    return lib.iot_error(request_id, "iot.common.InvalidPageParams",
      "Paging too deep: PageSize * CurrentPage must not exceed " .. cap .. " without NextToken, got " ..
      page_size .. " * " .. current_page .. "; page on with the NextToken of the previous answer.")
  end
  local product = products.parse(params.ProductKey)
  if not product then
    return lib.iot_error(request_id, "iot.prod.NotExistedProduct",
      "The product does not exist: " .. params.ProductKey .. ".")
  end
  local offset, page = (current_page - 1) * page_size, current_page
  if token then
    offset = offset_of(product, token)
    if not offset then
      return lib.iot_error(request_id, "iot.common.InvalidParameter",
        "NextToken is invalid for product " .. product.key .. ".")
    end
    page = math.floor(offset / page_size) + 1
  end
  local devices = {}
  for d = offset + 1, math.min(offset + page_size, product.size) do
    devices[#devices + 1] = codec.object(products.DEVICE_FIELDS, products.device(product, d))
  end
  local next_token
  if offset + page_size < product.size then next_token = token_for(product, offset + page_size) end
  return codec.object(
    { "RequestId", "Success", "Total", "PageSize", "PageCount", "Page", "NextToken", "Data" },
    { RequestId = request_id, Success = true, Total = product.size, PageSize = page_size,
      PageCount = math.ceil(product.size / page_size), Page = page, NextToken = next_token,
      Data = codec.object({ "DeviceInfo" }, { DeviceInfo = codec.array(devices) }) }), "OK"
end

return M
