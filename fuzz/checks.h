/*
 * checks.h - what the targets' checks share: messages (a quoted excerpt of a string), the
 * core's functions (upvalue 1 of every check), the error object every decoder and the
 * request pipeline must return, and reference code to compare the core with: a growable
 * buffer, memcmp without the interceptor, a percent-encoder written from RFC 3986, and HMAC
 * from RFC 2104 over OpenSSL's plain digests (none of the core's MAC code).
 * A check raises (luaL_error) when an invariant breaks; harness.h turns that into an abort.
 */
#ifndef AIOT_FUZZ_CHECKS_H
#define AIOT_FUZZ_CHECKS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <openssl/evp.h>

/* Push an escaped, quoted copy of s (at most 200 bytes of it) for a message; returns it. */
__attribute__((unused)) static const char *harness_quote(lua_State *L, const char *s, size_t len) {
    luaL_Buffer b;
    size_t i, n = len < 200 ? len : 200;
    luaL_buffinit(L, &b);
    luaL_addchar(&b, '"');
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            luaL_addchar(&b, (char)c);
        } else {
            char esc[5];
            snprintf(esc, sizeof esc, "\\x%02X", c);
            luaL_addlstring(&b, esc, 4);
        }
    }
    luaL_addchar(&b, '"');
    if (n < len)
        luaL_addstring(&b, "...");
    luaL_pushresult(&b);
    return lua_tostring(L, -1);
}

/* Push core[name] (the core is upvalue 1 of every check). */
__attribute__((unused)) static void harness_core(lua_State *L, const char *name) {
    lua_getfield(L, lua_upvalueindex(1), name);
}

/*
 * The value at idx (absolute) must be an error object as the core makes them: core.is_error,
 * string code and message, boolean retryable, and tostring() a string. `what` names the call.
 */
__attribute__((unused)) static void harness_check_error(lua_State *L, int idx, const char *what) {
    static const struct {
        const char *field;
        int type;
    } fields[] = {{"code", LUA_TSTRING}, {"message", LUA_TSTRING}, {"retryable", LUA_TBOOLEAN}};
    size_t i;
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_error(L, "%s returned nil without an error object (%s)", what, luaL_typename(L, idx));
    harness_core(L, "is_error");
    lua_pushvalue(L, idx);
    lua_call(L, 1, 1);
    if (!lua_toboolean(L, -1))
        luaL_error(L, "%s: its error is not core.is_error", what);
    lua_pop(L, 1);
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        if (lua_getfield(L, idx, fields[i].field) != fields[i].type)
            luaL_error(L, "%s: err.%s is a %s", what, fields[i].field, luaL_typename(L, -1));
        lua_pop(L, 1);
    }
    luaL_tolstring(L, idx, NULL); /* raises unless __tostring gives a string */
    lua_pop(L, 1);
}

/* ---- reference code: a growable buffer, memcmp, the percent-encoder --------------------- */

/* A byte buffer a target keeps in a static and empties (n = 0) for each use: never freed. */
struct harness_buf {
    char *p;
    size_t n, cap;
};

/* Room for len more bytes at b->p + b->n (the caller writes them and advances b->n). */
static char *harness_reserve(struct harness_buf *b, size_t len) {
    if (b->n + len > b->cap) {
        size_t cap = b->cap != 0 ? b->cap : 256;
        while (cap < b->n + len)
            cap *= 2;
        if ((b->p = realloc(b->p, cap)) == NULL)
            abort();
        b->cap = cap;
    }
    return b->p + b->n;
}

__attribute__((unused)) static void harness_add(struct harness_buf *b, const void *s, size_t len) {
    char *o = harness_reserve(b, len);
    if (len > 0)
        memcpy(o, s, len);
    b->n += len;
}

/*
 * memcmp for the checks: calls to the real one go through the sanitizers' interceptor, which
 * hands both strings to libFuzzer's mutation dictionary (expected canonical requests are no
 * words worth trying) and costs more than the comparison.
 */
__attribute__((unused)) static int harness_memcmp(const void *a, const void *b, size_t n) {
    const unsigned char *x = a, *y = b;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) { /* a word at a time while the words agree */
        uint64_t u, v;
        memcpy(&u, x + i, 8);
        memcpy(&v, y + i, 8);
        if (u != v)
            break;
    }
    for (; i < n; i++)
        if (x[i] != y[i])
            return x[i] < y[i] ? -1 : 1;
    return 0;
}

/* RFC 3986's unreserved characters, written out rather than taken from the core's table. */
static int harness_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/*
 * Append s percent-encoded: every byte but the unreserved ones as %XY, upper-case hex digits
 * unless `lower`, and with `plus` a space as '+' (HTML form encoding).
 */
__attribute__((unused)) static void harness_encode(struct harness_buf *b, const char *s, size_t len,
                                                   int lower, int plus) {
    const char *digits = lower ? "0123456789abcdef" : "0123456789ABCDEF";
    char *o = harness_reserve(b, 3 * len), *start = o;
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (harness_unreserved(c)) {
            *o++ = (char)c;
        } else if (plus && c == ' ') {
            *o++ = '+';
        } else {
            *o++ = '%';
            *o++ = digits[c >> 4];
            *o++ = digits[c & 15];
        }
    }
    b->n += (size_t)(o - start);
}

/* ---- reference cryptography: HMAC from RFC 2104, Base64 and hex by hand ---------------- */

/* A digest of a ++ b (b may be empty); OpenSSL's plain digest, none of the core's MAC code. */
__attribute__((unused)) static unsigned harness_digest(const char *name, const void *a, size_t alen,
                                                       const void *b, size_t blen,
                                                       unsigned char *md) {
    static EVP_MD_CTX *ctx;
    static EVP_MD *sha1, *sha256; /* fetched once: the lookup costs more than the digest */
    EVP_MD **mdp = strcmp(name, "SHA1") == 0 ? &sha1 : &sha256;
    unsigned len = 0;
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL)
        abort();
    if (*mdp == NULL && (*mdp = EVP_MD_fetch(NULL, name, NULL)) == NULL)
        abort();
    if (!EVP_DigestInit_ex2(ctx, *mdp, NULL) || !EVP_DigestUpdate(ctx, a, alen) ||
        !EVP_DigestUpdate(ctx, b, blen) || !EVP_DigestFinal_ex(ctx, md, &len))
        abort();
    return len;
}

/* HMAC as RFC 2104 defines it, for a hash with 64-byte blocks (SHA-1, SHA-256). */
__attribute__((unused)) static unsigned harness_hmac(const char *name, const char *key, size_t klen,
                                                     const char *msg, size_t mlen,
                                                     unsigned char *out) {
    unsigned char k[64] = {0}, pad[64], inner[EVP_MAX_MD_SIZE];
    unsigned i, n;
    if (klen > sizeof k)
        harness_digest(name, key, klen, "", 0, k);
    else
        memcpy(k, key, klen);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x36;
    n = harness_digest(name, pad, sizeof pad, msg, mlen, inner);
    for (i = 0; i < sizeof pad; i++)
        pad[i] = k[i] ^ 0x5c;
    return harness_digest(name, pad, sizeof pad, inner, n, out);
}

__attribute__((unused)) static void harness_push_hex(lua_State *L, const unsigned char *md,
                                                     unsigned n) {
    char out[2 * EVP_MAX_MD_SIZE];
    unsigned i;
    for (i = 0; i < n; i++) {
        out[2 * i] = "0123456789abcdef"[md[i] >> 4];
        out[2 * i + 1] = "0123456789abcdef"[md[i] & 15];
    }
    lua_pushlstring(L, out, 2 * n);
}

__attribute__((unused)) static void harness_push_base64(lua_State *L, const unsigned char *md,
                                                        unsigned n) {
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char out[4 * (EVP_MAX_MD_SIZE / 3 + 1)];
    unsigned i, j = 0;
    for (i = 0; i < n; i += 3) {
        unsigned v = (unsigned)md[i] << 16 | (i + 1 < n ? (unsigned)md[i + 1] << 8 : 0) |
                     (i + 2 < n ? md[i + 2] : 0);
        out[j++] = b64[v >> 18];
        out[j++] = b64[(v >> 12) & 63];
        out[j++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[j++] = i + 2 < n ? b64[v & 63] : '=';
    }
    lua_pushlstring(L, out, j);
}

#endif
