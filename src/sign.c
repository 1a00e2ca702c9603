/*
 * sign.c - Alibaba Cloud POP signature V1 (HMAC-SHA1) and its helpers.
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
#include <openssl/hmac.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#endif

#include "sign.h"

static const char hex_upper[] = "0123456789ABCDEF";

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

size_t sign_encoded_len(const char *s, size_t len) {
    size_t i, n = len;
    for (i = 0; i < len; i++)
        if (!is_unreserved((unsigned char)s[i]))
            n += 2;
    return n;
}

char *sign_encode(char *dst, const char *s, size_t len) {
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
    outlen = sign_encoded_len(s, len);
    if (outlen == len) {
        lua_settop(L, 1); /* nothing to encode: hand back the same string, no copy */
        if (lua_type(L, 1) == LUA_TSTRING)
            return 1;
    }
    out = scratch(L, stackbuf, sizeof stackbuf, outlen);
    sign_encode(out, s, len);
    lua_pushlstring(L, out, outlen);
    return 1;
}

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

/* enc(k)=enc(v) joined by '&', into stackbuf or GC-owned scratch; returns it, length in *len. */
static char *canonical_query(lua_State *L, const struct param *params, size_t n, char *stackbuf,
                             size_t cap, size_t *len) {
    size_t i, max = 1;
    char *cq, *p;
    /* Worst case: every byte becomes %XY. Cheaper than measuring each string twice. */
    for (i = 0; i < n; i++)
        max += 3 * (params[i].klen + params[i].vlen) + 2;
    p = cq = scratch(L, stackbuf, cap, max);
    for (i = 0; i < n; i++) {
        if (i > 0)
            *p++ = '&';
        p = sign_encode(p, params[i].k, params[i].klen);
        *p++ = '=';
        p = sign_encode(p, params[i].v, params[i].vlen);
    }
    *len = (size_t)(p - cq);
    return cq;
}

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

/*
 * OpenSSL 3's one-shot HMAC() fetches the algorithm on every call; we fetch it once per Lua
 * state and keep it in an upvalue of sign_v1, freed by __gc when the state closes. (A
 * process-wide static would be orphaned when Lua 5.4 dlcloses the module at lua_close.)
 * What is cached is an unkeyed context with the digest already chosen, duplicated per call
 * (cheaper than looking SHA1 up by name each time); a keyed context would keep a copy of the
 * secret alive between calls.
 */
#define HMAC_CACHE_MT "aliyun.iot.HmacCache"
struct hmac_cache {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC_CTX *proto;
#else
    int unused; /* cppcheck-suppress unusedStructMember ; C forbids empty structs */
#endif
};

static int l_hmac_cache_gc(lua_State *L) {
    struct hmac_cache *c = luaL_checkudata(L, 1, HMAC_CACHE_MT);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC_CTX_free(c->proto);
    c->proto = NULL;
#else
    (void)c;
#endif
    return 0;
}

/* HMAC-SHA1 into md (20 bytes). Returns 0 on failure with the OpenSSL error queue filled. */
static int hmac_sha1(struct hmac_cache *cache, const unsigned char *key, size_t keylen,
                     const unsigned char *data, size_t datalen, unsigned char md[20]) {
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    EVP_MAC_CTX *ctx;
    size_t mdlen = 0;
    int ok;
    if (cache->proto == NULL) {
        OSSL_PARAM params[2];
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (mac == NULL)
            return 0;
        cache->proto = EVP_MAC_CTX_new(mac);
        EVP_MAC_free(mac); /* the context holds its own reference */
        params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA1", 0);
        params[1] = OSSL_PARAM_construct_end();
        if (cache->proto == NULL || !EVP_MAC_CTX_set_params(cache->proto, params)) {
            EVP_MAC_CTX_free(cache->proto);
            cache->proto = NULL;
            return 0;
        }
    }
    if ((ctx = EVP_MAC_CTX_dup(cache->proto)) == NULL)
        return 0;
    ok = EVP_MAC_init(ctx, key, keylen, NULL) && EVP_MAC_update(ctx, data, datalen) &&
         EVP_MAC_final(ctx, md, &mdlen, 20) && mdlen == 20;
    EVP_MAC_CTX_free(ctx); /* also cleanses the key schedule it holds */
    return ok;
#else
    unsigned int mdlen = 0;
    (void)cache;
    return HMAC(EVP_sha1(), key, (int)keylen, data, datalen, md, &mdlen) != NULL && mdlen == 20;
#endif
}

/*
 * core.sign_v1(method, params, secret) -> signature, string_to_sign, canonical_query
 *
 * Pointers into the keys and values of `params` stay valid for the whole call because the
 * table is an argument (so it is anchored on the stack) and we never modify it.
 */
static int l_sign_v1(lua_State *L) {
    size_t mlen, slen, n = 0, cqlen, stslen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *secret;
    struct param stackparams[32], *params;
    char cqbuf[4096], stsbuf[8192];
    char *cq, *sts;
    unsigned char keybuf[128], *key, md[20];
    unsigned char b64[32];
    int ok;

    luaL_checktype(L, 2, LUA_TTABLE);
    /* Strictly a string: luaL_checklstring would turn a number into a new Lua string. */
    if (lua_type(L, 3) != LUA_TSTRING)
        return aiot_typeerror(L, 3, "string");
    secret = lua_tolstring(L, 3, &slen);
    lua_settop(L, 3);

    params = collect_params(L, 2, stackparams, sizeof stackparams / sizeof stackparams[0], 1, &n);
    cq = canonical_query(L, params, n, cqbuf, sizeof cqbuf, &cqlen);
    /* Encoding the query again: '%', '=' and '&' grow to 3 bytes each, at most. */
    sts = scratch(L, stsbuf, sizeof stsbuf, mlen + 5 + 3 * cqlen);
    memcpy(sts, method, mlen);
    memcpy(sts + mlen, "&%2F&", 5);
    stslen = (size_t)(sign_encode(sts + mlen + 5, cq, cqlen) - sts);

    /* key = secret .. "&", kept in C memory only and wiped after use. */
    key = slen + 1 <= sizeof keybuf ? keybuf : OPENSSL_malloc(slen + 1);
    if (key == NULL)
        return luaL_error(L, "not enough memory");
    memcpy(key, secret, slen);
    key[slen] = '&';
    ok = hmac_sha1(lua_touserdata(L, lua_upvalueindex(1)), key, slen + 1, (const unsigned char *)sts, stslen, md);
    OPENSSL_cleanse(key, slen + 1);
    if (key != keybuf)
        OPENSSL_free(key);
    if (!ok)
        raise_openssl(L, "HMAC-SHA1");

    EVP_EncodeBlock(b64, md, 20); /* 20 bytes -> 28 characters + NUL */
    lua_pushlstring(L, (const char *)b64, 28);
    lua_pushlstring(L, sts, stslen);
    lua_pushlstring(L, cq, cqlen);
    return 3;
}

/* ---- signature V3 (ACS3-HMAC-SHA256) ---------------------------------------------------- */

static void hex_lower(char *out, const unsigned char *md, size_t n) {
    static const char hex[] = "0123456789abcdef";
    size_t i;
    for (i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
}

/* Push hex(SHA-256(data)) as a Lua string. */
static void push_sha256_hex(lua_State *L, const char *data, size_t len) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char out[64];
    if (!EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        raise_openssl(L, "SHA-256");
    hex_lower(out, md, 32);
    lua_pushlstring(L, out, 64);
}

/* V3 signs host, content-type and every x-acs-* header; the rest (User-Agent...) are not. */
static int v3_signed_header(const char *name, size_t len) {
    return (len == 4 && memcmp(name, "host", 4) == 0) ||
           (len == 12 && memcmp(name, "content-type", 12) == 0) ||
           (len > 6 && memcmp(name, "x-acs-", 6) == 0);
}

/*
 * core.sign_v3(method, query, headers, body, secret)
 *   -> signature, string_to_sign, canonical_request, signed_headers
 *
 * query and headers map strings to strings; body is a string or nil (empty). Header names are
 * lowercased and values trimmed; only host, content-type and x-acs-* take part. Pure: the
 * caller supplies x-acs-date and x-acs-signature-nonce among the headers.
 */
static int l_sign_v3(lua_State *L) {
    size_t mlen, blen = 0, slen, nq, nh, i, cqlen, crlen;
    const char *method = luaL_checklstring(L, 1, &mlen);
    const char *body = "", *secret, *cr;
    struct param qstack[32], hstack[16], *query, *hdrs;
    char cqbuf[4096], sts[17 + 64], sig[64];
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    luaL_Buffer b;

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

    /* Signed headers, lowercased and trimmed, into a fresh table at index 6. */
    lua_newtable(L);
    lua_pushnil(L);
    while (lua_next(L, 3) != 0) {
        size_t klen, vlen;
        const char *k, *v;
        if (lua_type(L, -2) != LUA_TSTRING)
            return bad_param(L, 3, lua_gettop(L) - 1, "");
        if (lua_type(L, -1) != LUA_TSTRING)
            return bad_param(L, 3, lua_gettop(L) - 1, "must be a string");
        k = lua_tolstring(L, -2, &klen);
        v = lua_tolstring(L, -1, &vlen);
        {
            /* Most names fit on the C stack; a longer one gets a scratch userdata (popped
             * below with the value) rather than being skipped or truncated. */
            char small[64], *lname = small;
            int scratch = klen > sizeof small;
            if (scratch)
                lname = (char *)lua_newuserdata(L, klen);
            for (i = 0; i < klen; i++)
                lname[i] = (k[i] >= 'A' && k[i] <= 'Z') ? (char)(k[i] + 32) : k[i];
            if (v3_signed_header(lname, klen)) {
                while (vlen > 0 && (*v == ' ' || *v == '\t'))
                    v++, vlen--;
                while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                    vlen--;
                lua_pushlstring(L, lname, klen);
                lua_pushvalue(L, -1);
                lua_rawget(L, 6);
                if (!lua_isnil(L, -1))
                    return luaL_argerror(L, 3, lua_pushfstring(L, "header '%s' given twice",
                                                               lua_tostring(L, -2)));
                lua_pop(L, 1);
                lua_pushlstring(L, v, vlen);
                lua_rawset(L, 6);
            }
            if (scratch)
                lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }

    query = collect_params(L, 2, qstack, sizeof qstack / sizeof qstack[0], 0, &nq);
    hdrs = collect_params(L, 6, hstack, sizeof hstack / sizeof hstack[0], 0, &nh);
    {
        char *q = canonical_query(L, query, nq, cqbuf, sizeof cqbuf, &cqlen);
        push_sha256_hex(L, body, blen); /* the payload hash, kept on the stack */
        luaL_buffinit(L, &b);
        luaL_addlstring(&b, method, mlen);
        luaL_addstring(&b, "\n/\n");
        luaL_addlstring(&b, q, cqlen);
        luaL_addchar(&b, '\n');
        for (i = 0; i < nh; i++) {
            luaL_addlstring(&b, hdrs[i].k, hdrs[i].klen);
            luaL_addchar(&b, ':');
            luaL_addlstring(&b, hdrs[i].v, hdrs[i].vlen);
            luaL_addchar(&b, '\n');
        }
        luaL_addchar(&b, '\n');
        for (i = 0; i < nh; i++) {
            if (i > 0)
                luaL_addchar(&b, ';');
            luaL_addlstring(&b, hdrs[i].k, hdrs[i].klen);
        }
        luaL_addchar(&b, '\n');
        luaL_pushresult(&b); /* canonical request (the payload hash is added below) */
    }
    /* Append the payload hash: the buffer could not take it from the stack mid-build. */
    lua_insert(L, -2);
    lua_concat(L, 2);
    cr = lua_tolstring(L, -1, &crlen);

    memcpy(sts, "ACS3-HMAC-SHA256\n", 17);
    if (!EVP_Digest(cr, crlen, md, &mdlen, EVP_sha256(), NULL) || mdlen != 32)
        raise_openssl(L, "SHA-256");
    hex_lower(sts + 17, md, 32);
    if (HMAC(EVP_sha256(), secret, (int)slen, (const unsigned char *)sts, sizeof sts, md,
             &mdlen) == NULL || mdlen != 32)
        raise_openssl(L, "HMAC-SHA256");
    hex_lower(sig, md, 32);

    lua_pushlstring(L, sig, sizeof sig);
    lua_pushlstring(L, sts, sizeof sts);
    lua_pushvalue(L, -3); /* canonical request */
    luaL_buffinit(L, &b);
    for (i = 0; i < nh; i++) {
        if (i > 0)
            luaL_addchar(&b, ';');
        luaL_addlstring(&b, hdrs[i].k, hdrs[i].klen);
    }
    luaL_pushresult(&b);
    return 4;
}

/* core.nonce() -> random UUID v4, lowercase, 36 characters */
static int l_nonce(lua_State *L) {
    static const char hex[] = "0123456789abcdef";
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
        out[j++] = hex[r[i] >> 4];
        out[j++] = hex[r[i] & 15];
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
    lua_pushcclosure(L, l_sign_v1, 1);
    lua_setfield(L, -2, "sign_v1");
}
