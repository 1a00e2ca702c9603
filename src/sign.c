/*
 * sign.c - request signing for Alibaba Cloud's POP APIs, and what signing needs:
 *   core.percent_encode   RFC 3986 percent-encoding, as both signatures define it
 *   core.sign_v1          signature V1: canonical query, string to sign, HMAC-SHA1 (Base64)
 *   core.sign_v3          signature V3 (ACS3-HMAC-SHA256), one static function per step:
 *                         canonical query, canonical headers and signed header list,
 *                         canonical request, string to sign, signature
 *   core.nonce            a random UUID v4 for SignatureNonce / x-acs-signature-nonce
 *   core.timestamp        UTC "YYYY-MM-DDThh:mm:ssZ" for Timestamp / x-acs-date
 * Both signatures share the canonical query code and one HMAC path (cached OpenSSL contexts).
 *
 * The signing functions are pure: the clock (Timestamp) and the nonce (SignatureNonce) are
 * parameters like any other, so a signature can be reproduced in a test. core.nonce() and
 * core.timestamp() are separate functions the caller uses to fill them in.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* gmtime_r */
#endif

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#else
#include <openssl/hmac.h>
#endif

#include "sign.h"

static const char hex_upper[] = "0123456789ABCDEF";
static const char hex_lower_digits[] = "0123456789abcdef";

/*
 * A-Z a-z 0-9 - _ . ~ stay; everything else (UTF-8 bytes included) becomes %XY. A table,
 * because encoding is the hottest loop of signing (each byte of the query is encoded twice).
 */
static const unsigned char unreserved[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1,
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
#define is_unreserved(c) (unreserved[(unsigned char)(c)])

/* ---- percent-encoding -------------------------------------------------------------------- */

/* Length of s once percent-encoded. */
static size_t encoded_len(const char *s, size_t len) {
    size_t i, n = len;
    for (i = 0; i < len; i++)
        if (!is_unreserved((unsigned char)s[i]))
            n += 2;
    return n;
}

/* Percent-encode s into dst, which must hold encoded_len(s, len) bytes; returns dst's end. */
static char *encode(char *dst, const char *s, size_t len) {
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c)) {
            *dst++ = (char)c;
        } else {
            *dst++ = '%';
            *dst++ = hex_upper[c >> 4];
            *dst++ = hex_upper[c & 15];
        }
    }
    return dst;
}

/*
 * Scratch memory owned by the garbage collector: if anything raises between allocation and
 * use, nothing leaks. Small requests use the caller's stack buffer instead.
 */
static void *scratch(lua_State *L, void *stackbuf, size_t stacksize, size_t need) {
    if (need <= stacksize)
        return stackbuf;
    return aiot_newuserdata(L, need);
}

/* core.percent_encode(s) -> string */
static int l_percent_encode(lua_State *L) {
    size_t len, outlen;
    const char *s = luaL_checklstring(L, 1, &len);
    char stackbuf[512];
    char *out;
    outlen = encoded_len(s, len);
    if (outlen == len) {
        lua_settop(L, 1); /* nothing to encode: hand back the same string, no copy */
        if (lua_type(L, 1) == LUA_TSTRING)
            return 1;
    }
    out = scratch(L, stackbuf, sizeof stackbuf, outlen);
    encode(out, s, len);
    lua_pushlstring(L, out, outlen);
    return 1;
}

/* ---- parameters and the canonical query (V1 and V3) -------------------------------------- */

/* One parameter, pointing into strings the params table keeps alive during the call. */
struct param {
    const char *k, *v;
    size_t klen, vlen;
};

/* Byte order over the full length: "DeviceNames.10" < "DeviceNames.2", embedded NULs fine. */
static int param_cmp(const void *a, const void *b) {
    const struct param *x = a, *y = b;
    size_t n = x->klen < y->klen ? x->klen : y->klen;
    int c = memcmp(x->k, y->k, n);
    if (c != 0)
        return c;
    return (x->klen > y->klen) - (x->klen < y->klen);
}

/* Raise for a table entry that is not string -> string, naming the key (never the secret). */
static int bad_param(lua_State *L, int arg, int keyidx, const char *what) {
    int kt = lua_type(L, keyidx);
    const char *msg;
    if (kt == LUA_TSTRING) {
        msg = lua_pushfstring(L, "parameter '%s' %s (got %s)", lua_tostring(L, keyidx), what,
                              luaL_typename(L, keyidx + 1));
    } else if (kt == LUA_TNUMBER) {
        lua_pushvalue(L, keyidx); /* convert a copy: we raise, so lua_next no longer matters */
        msg = lua_pushfstring(L, "parameter key [%s] must be a string (got number)",
                              lua_tostring(L, -1));
    } else {
        msg = lua_pushfstring(L, "parameter key must be a string (got %s)",
                              luaL_typename(L, keyidx));
    }
    return luaL_argerror(L, arg, msg);
}

/*
 * Collect the string -> string pairs of the table at argument `arg`, sorted by key in byte
 * order, skipping "Signature" when asked. Raises, naming the key, on any other entry. The
 * array is `stackbuf` when it fits, else GC-owned scratch pushed on the stack. Pointers stay
 * valid while the table is anchored and unmodified.
 */
static struct param *collect_params(lua_State *L, int arg, struct param *stackbuf, size_t cap,
                                    int skip_signature, size_t *count) {
    size_t n = 0;
    struct param *params;
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        int top = lua_gettop(L);
        if (lua_type(L, top - 1) != LUA_TSTRING)
            bad_param(L, arg, top - 1, "");
        if (lua_type(L, top) != LUA_TSTRING)
            bad_param(L, arg, top - 1, "must be a string");
        n++;
        lua_pop(L, 1);
    }
    params = n <= cap ? stackbuf : aiot_newuserdata(L, n * sizeof *params);
    n = 0;
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        struct param *e = &params[n];
        e->k = lua_tolstring(L, -2, &e->klen);
        e->v = lua_tolstring(L, -1, &e->vlen);
        lua_pop(L, 1);
        if (skip_signature && e->klen == 9 && memcmp(e->k, "Signature", 9) == 0)
            continue;
        n++;
    }
    qsort(params, n, sizeof *params, param_cmp);
    *count = n;
    return params;
}

/*
 * Push the canonical query of the string -> string table at `arg`: enc(k)=enc(v) joined by
 * '&' in byte order of the keys ("" for an empty table), leaving Signature out when asked.
 * Raises on a non-string entry. Pushes exactly one value (its scratch memory is dropped).
 */
static void push_canonical_query(lua_State *L, int arg, int skip_signature) {
    int top = lua_gettop(L);
    struct param stackparams[32], *params;
    char stackbuf[4096];
    size_t i, n, max = 1;
    char *cq, *p;
    params = collect_params(L, arg, stackparams, sizeof stackparams / sizeof stackparams[0],
                            skip_signature, &n);
    /* Worst case: every byte becomes %XY. Cheaper than measuring each string twice. */
    for (i = 0; i < n; i++)
        max += 3 * (params[i].klen + params[i].vlen) + 2;
    p = cq = scratch(L, stackbuf, sizeof stackbuf, max);
    for (i = 0; i < n; i++) {
        if (i > 0)
            *p++ = '&';
        p = encode(p, params[i].k, params[i].klen);
        *p++ = '=';
        p = encode(p, params[i].v, params[i].vlen);
    }
    lua_pushlstring(L, cq, (size_t)(p - cq));
    lua_insert(L, top + 1);
    lua_settop(L, top + 1);
}

/* ---- OpenSSL: errors, HMAC (one path for V1's SHA1 and V3's SHA256), SHA-256 ------------- */

static void raise_openssl(lua_State *L, const char *what) {
    char buf[256];
    unsigned long e = ERR_get_error();
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof buf);
    else
        strcpy(buf, "unknown OpenSSL error");
    ERR_clear_error(); /* drain the rest so a later, unrelated call does not report them */
    luaL_error(L, "%s failed: %s", what, buf);
}

enum hmac_digest { HMAC_SHA1, HMAC_SHA256, HMAC_DIGESTS };

static const struct {
    const char *name; /* OpenSSL's name for the digest, and ours in error messages */
    const char *what;
    size_t size;      /* bytes of MAC */
} hmac_digests[HMAC_DIGESTS] = {
    {"SHA1", "HMAC-SHA1", 20},
    {"SHA256", "HMAC-SHA256", 32},
};

/*
 * OpenSSL 3's one-shot HMAC() fetches the algorithm on every call; we fetch it once per Lua
 * state and digest, and keep it in a userdata that is the shared upvalue of sign_v1 and
 * sign_v3, freed by __gc when the state closes. (A process-wide static would be orphaned when
 * Lua 5.4 dlcloses the module at lua_close.) What is cached is an unkeyed context with the
 * digest already chosen, duplicated per call (cheaper than looking the digest up by name each
 * time); a keyed context would keep a copy of the secret alive between calls.
 */
#define HMAC_CACHE_MT "aliyun.iot.HmacCache"
struct hmac_cache {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC_CTX *proto[HMAC_DIGESTS]; /* NULL until the first MAC with that digest */
#else
    int unused; /* cppcheck-suppress unusedStructMember ; C forbids empty structs */
#endif
};

static int l_hmac_cache_gc(lua_State *L) {
    struct hmac_cache *c = luaL_checkudata(L, 1, HMAC_CACHE_MT);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    int d;
    for (d = 0; d < HMAC_DIGESTS; d++) {
        EVP_MAC_CTX_free(c->proto[d]);
        c->proto[d] = NULL;
    }
#else
    (void)c;
#endif
    return 0;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
/* The cached unkeyed context for digest d, made on first use; NULL with the error queue filled. */
static EVP_MAC_CTX *hmac_proto(struct hmac_cache *cache, enum hmac_digest d) {
    OSSL_PARAM params[2];
    EVP_MAC *mac;
    if (cache->proto[d] != NULL)
        return cache->proto[d];
    if ((mac = EVP_MAC_fetch(NULL, "HMAC", NULL)) == NULL)
        return NULL;
    cache->proto[d] = EVP_MAC_CTX_new(mac);
    EVP_MAC_free(mac); /* the context holds its own reference */
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *)hmac_digests[d].name, 0);
    params[1] = OSSL_PARAM_construct_end();
    if (cache->proto[d] != NULL && !EVP_MAC_CTX_set_params(cache->proto[d], params)) {
        EVP_MAC_CTX_free(cache->proto[d]);
        cache->proto[d] = NULL;
    }
    return cache->proto[d];
}
#endif

/*
 * HMAC with digest d of data under key, into md (hmac_digests[d].size bytes), through the
 * cache in upvalue 1 of the calling signer. Returns 0 on failure with the OpenSSL error queue
 * filled; does not raise, so a caller holding a copy of the key can wipe it first.
 */
static int hmac(lua_State *L, enum hmac_digest d, const void *key, size_t keylen,
                const void *data, size_t datalen, unsigned char *md) {
    struct hmac_cache *cache = lua_touserdata(L, lua_upvalueindex(1));
    size_t want = hmac_digests[d].size;
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC_CTX *proto = hmac_proto(cache, d), *ctx;
    size_t mdlen = 0;
    int ok;
    if (proto == NULL || (ctx = EVP_MAC_CTX_dup(proto)) == NULL)
        return 0;
    ok = EVP_MAC_init(ctx, key, keylen, NULL) && EVP_MAC_update(ctx, data, datalen) &&
         EVP_MAC_final(ctx, md, &mdlen, want) && mdlen == want;
    EVP_MAC_CTX_free(ctx); /* also cleanses the key schedule it holds */
    return ok;
#else
    unsigned int mdlen = 0;
    (void)cache;
    return HMAC(d == HMAC_SHA1 ? EVP_sha1() : EVP_sha256(), key, (int)keylen, data, datalen, md,
                &mdlen) != NULL && mdlen == want;
#endif
}

static void hex_lower(char *out, const unsigned char *md, size_t n) {
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hex_lower_digits[md[i] >> 4];
        out[2 * i + 1] = hex_lower_digits[md[i] & 15];
    }
}

/* hex(SHA-256(data)) into out (64 characters, no NUL); raises on failure. */
static void sha256_hex(lua_State *L, const char *data, size_t len, char out[64]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        raise_openssl(L, "SHA-256");
    hex_lower(out, md, 32);
}

/* ---- signature V1 (HMAC-SHA1) ------------------------------------------------------------ */

/*
 * core.sign_v1(method, params, secret) -> signature, string_to_sign, canonical_query
 *
 * Pointers into the keys and values of `params` stay valid for the whole call because the
 * table is an argument (so it is anchored on the stack) and we never modify it.
 */
static int l_sign_v1(lua_State *L) {
    size_t mlen, slen, cqlen, stslen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *secret, *cq;
    char stsbuf[8192];
    char *sts;
    unsigned char keybuf[128], *key, md[20];
    unsigned char b64[32];
    int ok;

    luaL_checktype(L, 2, LUA_TTABLE);
    /* Strictly a string: luaL_checklstring would turn a number into a new Lua string. */
    if (lua_type(L, 3) != LUA_TSTRING)
        return aiot_typeerror(L, 3, "string");
    secret = lua_tolstring(L, 3, &slen);
    lua_settop(L, 3);

    push_canonical_query(L, 2, 1); /* 4 */
    cq = lua_tolstring(L, 4, &cqlen);
    /* Encoding the query again: '%', '=' and '&' grow to 3 bytes each, at most. */
    sts = scratch(L, stsbuf, sizeof stsbuf, mlen + 5 + 3 * cqlen);
    memcpy(sts, method, mlen);
    memcpy(sts + mlen, "&%2F&", 5);
    stslen = (size_t)(encode(sts + mlen + 5, cq, cqlen) - sts);

    /* key = secret .. "&", kept in C memory only and wiped after use. */
    key = slen + 1 <= sizeof keybuf ? keybuf : OPENSSL_malloc(slen + 1);
    if (key == NULL)
        return luaL_error(L, "not enough memory");
    memcpy(key, secret, slen);
    key[slen] = '&';
    ok = hmac(L, HMAC_SHA1, key, slen + 1, sts, stslen, md);
    OPENSSL_cleanse(key, slen + 1);
    if (key != keybuf)
        OPENSSL_free(key);
    if (!ok)
        raise_openssl(L, hmac_digests[HMAC_SHA1].what);

    EVP_EncodeBlock(b64, md, 20); /* 20 bytes -> 28 characters + NUL */
    lua_pushlstring(L, (const char *)b64, 28);
    lua_pushlstring(L, sts, stslen);
    lua_pushvalue(L, 4);
    return 3;
}

/* ---- signature V3 (ACS3-HMAC-SHA256), one function per step ------------------------------- */

#define V3_ALGORITHM "ACS3-HMAC-SHA256"
#define V3_STS_LEN (sizeof V3_ALGORITHM + 64) /* the name, '\n', 64 hex digits */

/* V3 signs host, content-type and every x-acs-* header; the rest (User-Agent...) are not. */
static int v3_signed_header(const char *name, size_t len) {
    return (len == 4 && memcmp(name, "host", 4) == 0) ||
           (len == 12 && memcmp(name, "content-type", 12) == 0) ||
           (len > 6 && memcmp(name, "x-acs-", 6) == 0);
}

/*
 * The headers that take part, from the table at `arg`, into a new table pushed on the stack:
 * names lowercased, values trimmed of spaces and tabs. Raises on a non-string entry, or on a
 * name given twice once lowercased.
 */
static void v3_push_signed_headers(lua_State *L, int arg) {
    int t;
    size_t i;
    lua_newtable(L);
    t = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        size_t klen, vlen;
        const char *k, *v;
        /* Most names fit on the C stack; a longer one gets a scratch userdata (popped below
         * with the value) rather than being skipped or truncated. */
        char small[64], *lname = small;
        int long_name;
        if (lua_type(L, -2) != LUA_TSTRING)
            bad_param(L, arg, lua_gettop(L) - 1, "");
        if (lua_type(L, -1) != LUA_TSTRING)
            bad_param(L, arg, lua_gettop(L) - 1, "must be a string");
        k = lua_tolstring(L, -2, &klen);
        v = lua_tolstring(L, -1, &vlen);
        long_name = klen > sizeof small;
        if (long_name)
            lname = (char *)aiot_newuserdata(L, klen);
        for (i = 0; i < klen; i++)
            lname[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] + 32) : k[i];
        if (v3_signed_header(lname, klen)) {
            while (vlen > 0 && (*v == ' ' || *v == '\t'))
                v++, vlen--;
            while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            lua_pushlstring(L, lname, klen);
            lua_pushvalue(L, -1);
            lua_rawget(L, t);
            if (!lua_isnil(L, -1))
                luaL_argerror(L, arg, lua_pushfstring(L, "header '%s' given twice",
                                                      lua_tostring(L, -2)));
            lua_pop(L, 1);
            lua_pushlstring(L, v, vlen);
            lua_rawset(L, t);
        }
        if (long_name)
            lua_pop(L, 1);
        lua_pop(L, 1);
    }
}

/*
 * Step: canonical headers and the signed header list, from the headers table at `arg`.
 * Pushes two strings: "name:value\n" for each signed header in byte order of the names, and
 * those names joined by ';'.
 */
static void v3_push_canonical_headers(lua_State *L, int arg) {
    int top = lua_gettop(L);
    struct param stackhdrs[16], *hdrs;
    size_t i, n;
    luaL_Buffer b;
    v3_push_signed_headers(L, arg);
    hdrs = collect_params(L, top + 1, stackhdrs, sizeof stackhdrs / sizeof stackhdrs[0], 0, &n);
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        luaL_addlstring(&b, hdrs[i].k, hdrs[i].klen);
        luaL_addchar(&b, ':');
        luaL_addlstring(&b, hdrs[i].v, hdrs[i].vlen);
        luaL_addchar(&b, '\n');
    }
    luaL_pushresult(&b);
    luaL_buffinit(L, &b);
    for (i = 0; i < n; i++) {
        if (i > 0)
            luaL_addchar(&b, ';');
        luaL_addlstring(&b, hdrs[i].k, hdrs[i].klen);
    }
    luaL_pushresult(&b);
    /* Keep the two strings, in that order; drop the table and any scratch below them. */
    lua_insert(L, top + 1); /* signed header list */
    lua_insert(L, top + 1); /* canonical headers, now below it */
    lua_settop(L, top + 2);
}

/*
 * Step: the canonical request, pushed:
 *   METHOD \n / \n canonical query \n canonical headers \n signed headers \n hex(SHA-256(body))
 * cq, ch and sh are stack indices of the strings the steps above pushed.
 */
static void v3_push_canonical_request(lua_State *L, const char *method, size_t mlen, int cq,
                                      int ch, int sh, const char *body, size_t blen) {
    char payload_hash[64];
    size_t len;
    const char *s;
    luaL_Buffer b;
    sha256_hex(L, body, blen, payload_hash);
    luaL_buffinit(L, &b);
    luaL_addlstring(&b, method, mlen);
    luaL_addstring(&b, "\n/\n");
    s = lua_tolstring(L, cq, &len); /* anchored below the buffer: copying from it is fine */
    luaL_addlstring(&b, s, len);
    luaL_addchar(&b, '\n');
    s = lua_tolstring(L, ch, &len);
    luaL_addlstring(&b, s, len);
    luaL_addchar(&b, '\n');
    s = lua_tolstring(L, sh, &len);
    luaL_addlstring(&b, s, len);
    luaL_addchar(&b, '\n');
    luaL_addlstring(&b, payload_hash, sizeof payload_hash);
    luaL_pushresult(&b);
}

/* Step: the string to sign, "ACS3-HMAC-SHA256\n" .. hex(SHA-256(canonical request)). */
static void v3_string_to_sign(lua_State *L, const char *cr, size_t crlen, char sts[V3_STS_LEN]) {
    memcpy(sts, V3_ALGORITHM "\n", sizeof V3_ALGORITHM);
    sha256_hex(L, cr, crlen, sts + sizeof V3_ALGORITHM);
}

/* Step: the signature, hex(HMAC-SHA256(key = secret, no '&', string to sign)). */
static void v3_signature(lua_State *L, const char *secret, size_t slen,
                         const char sts[V3_STS_LEN], char sig[64]) {
    unsigned char md[32];
    if (!hmac(L, HMAC_SHA256, secret, slen, sts, V3_STS_LEN, md))
        raise_openssl(L, hmac_digests[HMAC_SHA256].what);
    hex_lower(sig, md, 32);
}

/*
 * core.sign_v3(method, query, headers, body, secret)
 *   -> signature, string_to_sign, canonical_request, signed_headers, canonical_query
 *
 * query and headers map strings to strings; body is a string or nil (empty). Header names are
 * lowercased and values trimmed; only host, content-type and x-acs-* take part. Pure: the
 * caller supplies x-acs-date and x-acs-signature-nonce among the headers. canonical_query is
 * what goes after "/?" in the URL ("" for no parameters).
 */
static int l_sign_v3(lua_State *L) {
    size_t mlen, blen = 0, slen, crlen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *body = "", *secret, *cr;
    char sts[V3_STS_LEN], sig[64];

    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TTABLE);
    if (!lua_isnoneornil(L, 4)) {
        if (lua_type(L, 4) != LUA_TSTRING)
            return aiot_typeerror(L, 4, "string or nil");
        body = lua_tolstring(L, 4, &blen);
    }
    if (lua_type(L, 5) != LUA_TSTRING)
        return aiot_typeerror(L, 5, "string");
    secret = lua_tolstring(L, 5, &slen);
    lua_settop(L, 5);

    /* Headers before the query: a bad header has always been reported before a bad query. */
    v3_push_canonical_headers(L, 3); /* 6: canonical headers, 7: signed header list */
    push_canonical_query(L, 2, 0);   /* 8 */
    v3_push_canonical_request(L, method, mlen, 8, 6, 7, body, blen); /* 9 */
    cr = lua_tolstring(L, 9, &crlen);
    v3_string_to_sign(L, cr, crlen, sts);
    v3_signature(L, secret, slen, sts, sig);

    lua_pushlstring(L, sig, sizeof sig);
    lua_pushlstring(L, sts, sizeof sts);
    lua_pushvalue(L, 9); /* canonical request */
    lua_pushvalue(L, 7); /* signed headers */
    lua_pushvalue(L, 8); /* canonical query */
    return 5;
}

/* ---- nonce and timestamp ----------------------------------------------------------------- */

/* core.nonce() -> random UUID v4, lowercase, 36 characters */
static int l_nonce(lua_State *L) {
    unsigned char r[16];
    char out[36];
    int i, j = 0;
    if (RAND_bytes(r, sizeof r) != 1)
        raise_openssl(L, "RAND_bytes");
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    for (i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[j++] = '-';
        out[j++] = hex_lower_digits[r[i] >> 4];
        out[j++] = hex_lower_digits[r[i] & 15];
    }
    lua_pushlstring(L, out, sizeof out);
    return 1;
}

/* core.timestamp([epoch_seconds]) -> "YYYY-MM-DDThh:mm:ssZ" (UTC) */
static int l_timestamp(lua_State *L) {
    time_t t;
    struct tm tm;
    char out[64];
    size_t len;
    if (lua_isnoneornil(L, 1)) {
        t = time(NULL);
    } else {
        lua_Number n = floor(luaL_checknumber(L, 1));
        /* Years 0001..9999 only, and time_t may be 32-bit: refuse rather than wrap. */
        if (!(n >= -62135596800.0 && n <= 253402300799.0))
            return luaL_argerror(L, 1, "epoch seconds out of range");
        t = (time_t)n;
        if ((lua_Number)t != n)
            return luaL_argerror(L, 1, "epoch seconds out of range");
    }
#if defined(_WIN32)
    if (gmtime_s(&tm, &t) != 0)
#else
    if (gmtime_r(&t, &tm) == NULL)
#endif
        return luaL_argerror(L, 1, "epoch seconds out of range");
    len = strftime(out, sizeof out, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (len == 0)
        return luaL_argerror(L, 1, "epoch seconds out of range");
    lua_pushlstring(L, out, len);
    return 1;
}

void sign_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"percent_encode", l_percent_encode},
        {"nonce", l_nonce},
        {"timestamp", l_timestamp},
        {NULL, NULL},
    };
    static const luaL_Reg signers[] = { /* upvalue 1: this state's HMAC cache */
        {"sign_v1", l_sign_v1},
        {"sign_v3", l_sign_v3},
        {NULL, NULL},
    };
    static const luaL_Reg cache_meta[] = {
        {"__gc", l_hmac_cache_gc},
        {NULL, NULL},
    };
    struct hmac_cache *cache;
    aiot_setfuncs(L, funcs, 0);

    aiot_register_class(L, HMAC_CACHE_MT, NULL, cache_meta);
    cache = aiot_newuserdata(L, sizeof *cache);
    memset(cache, 0, sizeof *cache);
    aiot_setmetatable(L, HMAC_CACHE_MT);
    aiot_setfuncs(L, signers, 1);
}
