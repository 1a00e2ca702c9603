-- SHA-256 and HMAC-SHA256 for the gateway's V3 check, through LuaJIT's FFI
-- into OpenSSL's libcrypto (libcrypto.so.3, which Debian's nginx already links:
-- no extra package). ngx_lua only offers SHA-1/MD5 and lua-resty-string is not
-- installed, hence the FFI. LuaJIT only (nginx); the selftest uses the openssl
-- CLI instead.

local ffi = require "ffi"

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md,
                    unsigned int *md_len);
]]

local function load_libcrypto()
  local last
  for _, name in ipairs({ "libcrypto.so.3", "crypto", "libcrypto.so" }) do
    local ok, lib = pcall(ffi.load, name)
    if ok then return lib end
    last = lib
  end
  error("emulator crypto.lua: cannot load libcrypto: " .. tostring(last))
end

local C = load_libcrypto()

local M = {}

local function to_hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end
M.to_hex = to_hex

-- Raw 32-byte SHA-256 digest of s.
function M.sha256(s)
  local md = ffi.new("unsigned char[32]")
  C.SHA256(s, #s, md)
  return ffi.string(md, 32)
end

function M.sha256_hex(s)
  return to_hex(M.sha256(s))
end

-- Raw 32-byte HMAC-SHA256(key, data).
function M.hmac_sha256(key, data)
  local md = ffi.new("unsigned char[32]")
  local len = ffi.new("unsigned int[1]")
  C.HMAC(C.EVP_sha256(), key, #key, data, #data, md, len)
  return ffi.string(md, len[0])
end

function M.hmac_sha256_hex(key, data)
  return to_hex(M.hmac_sha256(key, data))
end

return M
