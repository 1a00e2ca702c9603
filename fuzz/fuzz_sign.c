/*
 * fuzz_sign.c - libFuzzer target for percent-encoding, canonicalization and signing:
 * core.percent_encode, core.sign_v1 and core.sign_v3, called through a real lua_State.
 *
 * Input format (text seeds stay readable; any byte is allowed except as noted):
 *   [mode byte 0x01..0x07]  optional; when present, a non-string entry is added to the
 *                           parameters (bit 0: Action = 42, bit 1: a number key,
 *                           bit 2: a boolean key) and both signers must raise, naming it
 *   method \n secret \n key1 \n value1 \n key2 \n value2 ...
 * Lines are split on '\n' (so keys and values can hold every other byte: NUL, invalid
 * UTF-8, '&', '=', '%'); a key without a value line gets "". A repeated key keeps the last
 * value, as a Lua table would. The whole raw input is also percent-encoded (so '\n' is covered
 * there) and used as the V3 body. The V3 headers are the same pairs, a key "@name" becoming
 * the header "X-Acs-name" (so "@Foo" and "x-acs-foo" collide after lowercasing).
 *
 * Invariants checked (any violation aborts):
 *   percent_encode: only A-Z a-z 0-9 - _ . ~ and %XY (uppercase hex) in the output, no
 *     unreserved byte encoded, decodes back to the input, length = n + 2 * reserved bytes.
 *   sign_v1: signature is 28 base64 characters (20 bytes); string_to_sign is
 *     method .. "&%2F&" .. enc(canonical_query); the canonical query is exactly
 *     enc(k)=enc(v) joined by '&', sorted by key in byte order, without Signature, and decodes
 *     back to the parameters; the signature equals an independent HMAC-SHA1 (OpenSSL HMAC())
 *     of string_to_sign with secret .. "&"; signing twice gives the same result.
 *   sign_v3: five returns; the canonical query (fifth) is enc(k)=enc(v) of every parameter,
 *     sorted, Signature included; canonical request rebuilt independently around it
 *     (lowercased, trimmed, sorted signed headers; SHA-256 of the body); string_to_sign =
 *     "ACS3-HMAC-SHA256\n" .. hex(SHA-256(cr)); signature = independent
 *     hex(HMAC-SHA256(secret, string_to_sign)); a header given twice (after lowercasing)
 *     raises instead.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "harness.h"

static const char check[] =
    "local core, ref, method, secret, params, raw, mode = ...\n"
    "local byte, char, concat, find, format, sub = string.byte, string.char, table.concat,\n"
    "  string.find, string.format, string.sub\n"
    "local function fail(fmt, ...) error(format(fmt, ...), 2) end\n"
    "local UNRESERVED = '^[A-Za-z0-9%-_.~]$'\n"
    "local function pdecode(e)\n"
    "  local rest = e:gsub('%%[0-9A-F][0-9A-F]', '')\n"
    "  if find(rest, '[^A-Za-z0-9%-_.~]') then fail('stray byte in encoded %q', e) end\n"
    "  return (e:gsub('%%([0-9A-F][0-9A-F])', function(h)\n"
    "    local c = char(tonumber(h, 16))\n"
    "    if find(c, UNRESERVED) then fail('unreserved byte %q encoded in %q', c, e) end\n"
    "    return c\n"
    "  end))\n"
    "end\n"
    "local function enc(s)\n"
    "  local e = core.percent_encode(s)\n"
    "  if type(e) ~= 'string' then fail('percent_encode returned %s', type(e)) end\n"
    "  if pdecode(e) ~= s then fail('percent_encode does not round-trip: %q -> %q', s, e) end\n"
    "  local _, reserved = s:gsub('[^A-Za-z0-9%-_.~]', '')\n"
    "  if #e ~= #s + 2 * reserved then fail('percent_encode length %d for %q', #e, s) end\n"
    "  return e\n"
    "end\n"
    "local function trim(v)\n"
    "  local s = find(v, '[^ \\t]')\n"
    "  if not s then return '' end\n"
    "  local e = #v\n"
    "  while byte(v, e) == 32 or byte(v, e) == 9 do e = e - 1 end\n"
    "  return sub(v, s, e)\n"
    "end\n"
    "local function sorted_pairs(t, skip)\n"
    "  local list = {}\n"
    "  for k, v in pairs(t) do if k ~= skip then list[#list + 1] = { k, v } end end\n"
    "  table.sort(list, function(a, b) return a[1] < b[1] end)\n"  /* C locale: byte order */
    "  return list\n"
    "end\n"
    "local function query(list)\n"
    "  local parts = {}\n"
    "  for i, p in ipairs(list) do parts[i] = enc(p[1]) .. '=' .. enc(p[2]) end\n"
    "  return concat(parts, '&')\n"
    "end\n"
    "\n"
    "enc(raw)\n"
    "local headers = {}\n"
    "for k, v in pairs(params) do\n"
    "  if type(k) == 'string' and byte(k) == 64 then headers['X-Acs-' .. sub(k, 2)] = v else headers[k] = v end\n"
    "end\n"
    "if mode ~= 0 then\n"
    "  for n, call in ipairs({\n"
    "    function() return core.sign_v1(method, params, secret) end,\n"
    "    function() return core.sign_v3(method, params, {}, raw, secret) end,\n"
    "    function() return core.sign_v3(method, {}, headers, raw, secret) end }) do\n"
    "    local ok, err = pcall(call)\n"
    "    if ok then fail('call %d accepted a non-string parameter', n) end\n"
    "    -- a header given twice may be met before the non-string entry: refused either way\n"
    "    if type(err) ~= 'string' or not (find(err, 'must be a string', 1, true)\n"
    "      or (n == 3 and find(err, 'given twice', 1, true))) then\n"
    "      fail('unexpected error for a non-string parameter: %s', tostring(err))\n"
    "    end\n"
    "  end\n"
    "  return\n"
    "end\n"
    "\n"
    "-- V1\n"
    "local list = sorted_pairs(params, 'Signature')\n"
    "local sig, sts, cq = core.sign_v1(method, params, secret)\n"
    "if #sig ~= 28 or not find(sig, '^[A-Za-z0-9+/]+=$') then fail('bad V1 signature %q', sig) end\n"
    "local prefix = method .. '&%2F&'\n"
    "if sub(sts, 1, #prefix) ~= prefix then fail('string_to_sign %q lacks prefix', sts) end\n"
    "if sts ~= prefix .. enc(cq) then fail('string_to_sign is not method&%%2F&enc(cq)') end\n"
    "if cq ~= query(list) then fail('canonical query %q, expected %q', cq, query(list)) end\n"
    "local i = 0\n"
    "if cq ~= '' then\n"
    "  for pair in (cq .. '&'):gmatch('([^&]*)&') do\n"
    "    i = i + 1\n"
    "    local ek, ev = pair:match('^([^=]*)=([^=]*)$')\n"
    "    local want = list[i]\n"
    "    if not ek or not want or pdecode(ek) ~= want[1] or pdecode(ev) ~= want[2] then\n"
    "      fail('canonical query pair %d %q does not decode to the parameter', i, pair)\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if i ~= #list then fail('canonical query has %d pairs for %d parameters', i, #list) end\n"
    "if sig ~= ref.hmac_sha1_b64(secret .. '&', sts) then fail('V1 signature differs from HMAC()') end\n"
    "local sig2, sts2, cq2 = core.sign_v1(method, params, secret)\n"
    "if sig2 ~= sig or sts2 ~= sts or cq2 ~= cq then fail('V1 signing is not deterministic') end\n"
    "\n"
    "-- V3\n"
    "local signed, dup = {}, nil\n"
    "for k, v in pairs(headers) do\n"
    "  local name = k:gsub('[A-Z]', string.lower)\n"
    "  if (name == 'host' or name == 'content-type' or (#name > 6 and sub(name, 1, 6) == 'x-acs-')) then\n"
    "    if signed[name] then dup = name end\n"
    "    signed[name] = trim(v)\n"
    "  end\n"
    "end\n"
    "local r3 = table.pack(pcall(core.sign_v3, method, params, headers, raw, secret))\n"
    "local ok, s3, sts3, cr, sh, cq3 = table.unpack(r3, 1, 6)\n"
    "if dup then\n"
    "  if ok or not find(s3, 'given twice', 1, true) then\n"
    "    fail('header %q given twice was not refused (%s)', dup, tostring(s3))\n"
    "  end\n"
    "  return\n"
    "end\n"
    "if not ok then fail('sign_v3 raised: %s', tostring(s3)) end\n"
    "if r3.n ~= 6 then fail('sign_v3 returned %d values, not 5', r3.n - 1) end\n"
    "local want_cq = query(sorted_pairs(params))\n"
    "if cq3 ~= want_cq then fail('V3 canonical query %q, expected %q', cq3, want_cq) end\n"
    "local hl, names = {}, {}\n"
    "for n, p in ipairs(sorted_pairs(signed)) do hl[n] = p[1] .. ':' .. p[2] .. '\\n'; names[n] = p[1] end\n"
    "local want_cr = method .. '\\n/\\n' .. want_cq .. '\\n' .. concat(hl) ..\n"
    "  '\\n' .. concat(names, ';') .. '\\n' .. ref.sha256_hex(raw)\n"
    "if cr ~= want_cr then fail('V3 canonical request %q, expected %q', cr, want_cr) end\n"
    "if sh ~= concat(names, ';') then fail('V3 signed headers %q', sh) end\n"
    "if sts3 ~= 'ACS3-HMAC-SHA256\\n' .. ref.sha256_hex(cr) then fail('V3 string_to_sign %q', sts3) end\n"
    "if s3 ~= ref.hmac_sha256_hex(secret, sts3) then fail('V3 signature differs from HMAC()') end\n"
    "return sig\n";

/* Reference primitives, straight from OpenSSL's one-shot APIs (not the core's code paths). */
static void push_hex(lua_State *L, const unsigned char *md, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char out[2 * EVP_MAX_MD_SIZE];
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * n);
}

static int ref_hmac(lua_State *L, const EVP_MD *md, int b64) {
    size_t klen, dlen;
    const char *key = luaL_checklstring(L, 1, &klen);
    const char *data = luaL_checklstring(L, 2, &dlen);
    unsigned char out[EVP_MAX_MD_SIZE], text[4 * EVP_MAX_MD_SIZE];
    unsigned int outlen = 0;
    if (HMAC(md, key, (int)klen, (const unsigned char *)data, dlen, out, &outlen) == NULL)
        return luaL_error(L, "reference HMAC failed");
    if (b64)
        lua_pushlstring(L, (const char *)text, (size_t)EVP_EncodeBlock(text, out, (int)outlen));
    else
        push_hex(L, out, outlen);
    return 1;
}
static int ref_hmac_sha1_b64(lua_State *L) { return ref_hmac(L, EVP_sha1(), 1); }
static int ref_hmac_sha256_hex(lua_State *L) { return ref_hmac(L, EVP_sha256(), 0); }

static int ref_sha256_hex(lua_State *L) {
    size_t len;
    const char *data = luaL_checklstring(L, 1, &len);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL))
        return luaL_error(L, "reference SHA-256 failed");
    push_hex(L, md, mdlen);
    return 1;
}

static void open_ref(lua_State *L) {
    static const luaL_Reg ref[] = {
        {"hmac_sha1_b64", ref_hmac_sha1_b64},
        {"hmac_sha256_hex", ref_hmac_sha256_hex},
        {"sha256_hex", ref_sha256_hex},
        {NULL, NULL},
    };
    luaL_newlib(L, ref);
    lua_setfield(L, LUA_REGISTRYINDEX, "fuzz.ref");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc, (void)argv;
    harness_init("=fuzz_sign", check, open_ref);
    return 0;
}

/* Next '\n'-terminated field of [*p, end); the last field runs to end. */
static const char *next_field(const char **p, const char *end, size_t *len) {
    const char *start = *p, *nl = memchr(start, '\n', (size_t)(end - start));
    if (nl == NULL) {
        *len = (size_t)(end - start);
        *p = end;
    } else {
        *len = (size_t)(nl - start);
        *p = nl + 1;
    }
    return start;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *p = (const char *)data, *end = p + size, *f;
    size_t len;
    int mode = 0;
    lua_State *L;

    if (size > 0 && data[0] >= 1 && data[0] <= 7) {
        mode = data[0];
        p++;
    }
    L = harness_begin(); /* check function, core */
    lua_getfield(L, LUA_REGISTRYINDEX, "fuzz.ref");
    f = next_field(&p, end, &len);
    lua_pushlstring(L, f, len); /* method */
    f = next_field(&p, end, &len);
    lua_pushlstring(L, f, len); /* secret */
    lua_newtable(L);
    while (p < end) {
        f = next_field(&p, end, &len);
        lua_pushlstring(L, f, len);
        if (p < end) {
            f = next_field(&p, end, &len);
            lua_pushlstring(L, f, len);
        } else {
            lua_pushliteral(L, "");
        }
        lua_rawset(L, -3);
    }
    /* After the loop, so a repeated key cannot overwrite them. */
    if (mode & 1) {
        lua_pushinteger(L, 42); /* a number where a string value belongs */
        lua_setfield(L, -2, "Action");
    }
    if (mode & 2) {
        lua_pushliteral(L, "one");
        lua_rawseti(L, -2, 1);
    }
    if (mode & 4) {
        lua_pushboolean(L, 1);
        lua_pushliteral(L, "yes");
        lua_rawset(L, -3);
    }
    lua_pushlstring(L, (const char *)data, size); /* raw */
    lua_pushinteger(L, mode);
    harness_call(7);
    return 0;
}
