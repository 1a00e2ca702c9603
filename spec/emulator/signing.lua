-- Alibaba Cloud RPC signatures V1 (HMAC-SHA1) and V3 (ACS3-HMAC-SHA256): the
-- emulator's own canonicalization.
--
-- Pure Lua (no ngx, no bit ops, no goto): loads in nginx's LuaJIT, in Lua 5.1
-- and in Lua 5.4, so the canonicalization can be checked outside nginx against
-- the official worked examples (see selftest). Hashes and HMACs are not here:
-- the gateway uses ngx.hmac_sha1 and crypto.lua (FFI to libcrypto), the
-- selftest uses the openssl CLI.
--
-- Deliberately independent of the project's client code (src/, lua/): this is
-- the "other side" that the client is tested against.

local M = {}

local byte, char, format, gsub = string.byte, string.char, string.format, string.gsub

-- RFC 3986 percent-encoding as the V1 spec wants it: only A-Z a-z 0-9 - _ . ~
-- stay, every other byte becomes %XY with uppercase hex (space -> %20, * -> %2A).
function M.percent_encode(s)
  return (gsub(s, "[^A-Za-z0-9%-_%.~]", function(c)
    return format("%%%02X", byte(c))
  end))
end

local function hex_value(c)
  local b = byte(c)
  if b >= 48 and b <= 57 then return b - 48 end          -- 0-9
  if b >= 65 and b <= 70 then return b - 55 end          -- A-F
  if b >= 97 and b <= 102 then return b - 87 end         -- a-f
  return nil
end

-- Strict form-decoding of one name or value.
-- '%' must be followed by two hex digits (either case); '+' means space, as in
-- application/x-www-form-urlencoded and as the real (Java) gateway decodes it:
-- a client that forgets to encode '+' (base64 signatures, STS tokens) therefore
-- gets a SignatureDoesNotMatch here, exactly like against the real service.
-- Returns the decoded string, or nil and a reason.
function M.percent_decode(s)
  local out, i, n = {}, 1, #s
  while i <= n do
    local c = s:sub(i, i)
    if c == "%" then
      local h1, h2 = s:sub(i + 1, i + 1), s:sub(i + 2, i + 2)
      local v1, v2 = h1 ~= "" and hex_value(h1), h2 ~= "" and hex_value(h2)
      if not v1 or not v2 then
        return nil, "malformed percent-encoding at byte " .. i
      end
      out[#out + 1] = char(v1 * 16 + v2)
      i = i + 3
    elseif c == "+" then
      out[#out + 1] = " "
      i = i + 1
    else
      out[#out + 1] = c
      i = i + 1
    end
  end
  return table.concat(out)
end

-- True when s is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
function M.is_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local b = byte(s, i)
    local need, min
    if b < 0x80 then need, min = 0, 0
    elseif b >= 0xC2 and b <= 0xDF then need, min = 1, 0x80
    elseif b >= 0xE0 and b <= 0xEF then need, min = 2, 0x800
    elseif b >= 0xF0 and b <= 0xF4 then need, min = 3, 0x10000
    else return false end
    local cp = need == 0 and b or (need == 1 and b - 0xC0 or (need == 2 and b - 0xE0 or b - 0xF0))
    for k = 1, need do
      local c = byte(s, i + k)
      if not c or c < 0x80 or c > 0xBF then return false end
      cp = cp * 64 + (c - 0x80)
    end
    if cp < min or cp > 0x10FFFF or (cp >= 0xD800 and cp <= 0xDFFF) then return false end
    i = i + need + 1
  end
  return true
end

-- Parse a raw query string (or form body) into an ordered list of {name, value}.
-- Empty segments ("a=1&&b=2") are skipped; "name" without '=' has value "".
-- Returns list, or nil and an error message.
function M.parse_pairs(raw)
  local list = {}
  if raw == nil or raw == "" then return list end
  for segment in (raw .. "&"):gmatch("([^&]*)&") do
    if segment ~= "" then
      local eq = segment:find("=", 1, true)
      local rname = eq and segment:sub(1, eq - 1) or segment
      local rvalue = eq and segment:sub(eq + 1) or ""
      local name, err = M.percent_decode(rname)
      if not name then return nil, "parameter name " .. format("%q", rname) .. ": " .. err end
      local value, verr = M.percent_decode(rvalue)
      if not value then return nil, "parameter " .. M.percent_encode(name) .. ": " .. verr end
      if name == "" then return nil, "empty parameter name" end
      if not M.is_utf8(name) then return nil, "parameter name " .. M.percent_encode(name) .. " is not valid UTF-8" end
      if not M.is_utf8(value) then return nil, "parameter " .. M.percent_encode(name) .. " is not valid UTF-8" end
      list[#list + 1] = { name, value }
    end
  end
  return list
end

-- Canonicalized query: every parameter except Signature, sorted by name in
-- byte order (Lua's string '<' is byte order, so DeviceNames.10 < DeviceNames.2),
-- "enc(name)=enc(value)" joined with '&'. params is a map name -> value.
function M.canonical_query(params)
  local names = {}
  for name in pairs(params) do
    if name ~= "Signature" then names[#names + 1] = name end
  end
  table.sort(names)
  local parts = {}
  for i, name in ipairs(names) do
    parts[i] = M.percent_encode(name) .. "=" .. M.percent_encode(params[name])
  end
  return table.concat(parts, "&")
end

-- StringToSign = METHOD & %2F & enc(canonical query)
function M.string_to_sign(method, params)
  return method .. "&" .. M.percent_encode("/") .. "&" .. M.percent_encode(M.canonical_query(params))
end

-- The HMAC key is the secret followed by '&'.
function M.hmac_key(secret)
  return secret .. "&"
end

-- Signature V3 (ACS3-HMAC-SHA256) -------------------------------------------
--
-- CanonicalRequest =
--   METHOD \n "/" \n canonical query \n canonical headers \n signed header names \n hex(sha256(body))
-- StringToSign = "ACS3-HMAC-SHA256\n" .. hex(sha256(CanonicalRequest))
-- Signature    = hex(hmac_sha256(AccessKeySecret, StringToSign))   (no '&' on the key)

M.V3_ALGORITHM = "ACS3-HMAC-SHA256"
M.EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

-- Canonical query of V3: every query parameter (none excluded), sorted by name
-- in byte order, encoded as in V1, "name=" for an empty value.
function M.v3_canonical_query(params)
  local names = {}
  for name in pairs(params) do names[#names + 1] = name end
  table.sort(names)
  local parts = {}
  for i, name in ipairs(names) do
    parts[i] = M.percent_encode(name) .. "=" .. M.percent_encode(params[name])
  end
  return table.concat(parts, "&")
end

local function trim(s)
  return (s:match("^%s*(.-)%s*$"))
end
M.trim = trim

-- Canonical headers: for each signed name (lowercase, in the given order, which
-- the caller has checked is sorted) "name:trimmed value\n". headers maps
-- lowercase names to values.
function M.v3_canonical_headers(headers, signed_names)
  local parts = {}
  for i, name in ipairs(signed_names) do
    parts[i] = name .. ":" .. trim(headers[name] or "") .. "\n"
  end
  return table.concat(parts)
end

-- The canonical request. query_params: map name -> value of the URL query only
-- (a form body is covered by hashed_payload); headers: map lowercase name ->
-- value; signed_names: sorted list of lowercase names; hashed_payload: hex
-- SHA-256 of the raw body.
function M.v3_canonical_request(method, query_params, headers, signed_names, hashed_payload)
  return table.concat({
    method,
    "/",
    M.v3_canonical_query(query_params),
    M.v3_canonical_headers(headers, signed_names),
    table.concat(signed_names, ";"),
    hashed_payload,
  }, "\n")
end

function M.v3_string_to_sign(hashed_canonical_request)
  return M.V3_ALGORITHM .. "\n" .. hashed_canonical_request
end

-- Parses "ACS3-HMAC-SHA256 Credential=<id>,SignedHeaders=<a;b>,Signature=<hex>"
-- (optional spaces after the commas). Returns
--   { algorithm, credential, signed_headers = {names...}, signed_headers_raw, signature }
-- or nil and a reason.
function M.parse_authorization(value)
  local algorithm, rest = value:match("^(%S+)%s+(.*)$")
  if not algorithm then
    return nil, "expected \"" .. M.V3_ALGORITHM .. " Credential=...,SignedHeaders=...,Signature=...\""
  end
  if algorithm ~= M.V3_ALGORITHM then
    return nil, "unsupported signature algorithm " .. algorithm .. " (only " .. M.V3_ALGORITHM .. ")"
  end
  local fields = {}
  for part in (rest .. ","):gmatch("([^,]*),") do
    local k, v = trim(part):match("^([%a]+)=(.*)$")
    if not k then return nil, "malformed Authorization element \"" .. trim(part) .. "\"" end
    if fields[k] then return nil, "Authorization element " .. k .. " given twice" end
    fields[k] = v
  end
  for _, k in ipairs({ "Credential", "SignedHeaders", "Signature" }) do
    if not fields[k] or fields[k] == "" then return nil, "Authorization lacks " .. k end
  end
  for k in pairs(fields) do
    if k ~= "Credential" and k ~= "SignedHeaders" and k ~= "Signature" then
      return nil, "unknown Authorization element " .. k
    end
  end
  local names = {}
  for name in (fields.SignedHeaders .. ";"):gmatch("([^;]*);") do names[#names + 1] = name end
  return {
    algorithm = algorithm,
    credential = fields.Credential,
    signed_headers = names,
    signed_headers_raw = fields.SignedHeaders,
    signature = fields.Signature,
  }
end

return M
