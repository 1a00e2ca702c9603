/*
 * fuzz_sign.c - libFuzzer target for percent-encoding, canonicalization and signing:
 * core.percent_encode, core.sign_v1 and core.sign_v3, called through a real lua_State; the
 * checks are C, against reference code written from the specifications (checks.h: the
 * percent-encoder, HMAC from RFC 2104 over OpenSSL's plain digests, Base64 and hex by hand).
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
 *   sign_v1: signature is 28 base64 characters (20 bytes); the canonical query is exactly
 *     enc(k)=enc(v) joined by '&', sorted by key in byte order, without Signature;
 *     string_to_sign is method .. "&%2F&" .. enc(canonical_query); the signature equals the
 *     reference HMAC-SHA1 of string_to_sign with secret .. "&".
 *   sign_v3: five returns; the canonical query (fifth) is enc(k)=enc(v) of every parameter,
 *     sorted, Signature included; canonical request rebuilt independently around it
 *     (lowercased, trimmed, sorted signed headers; SHA-256 of the body); string_to_sign =
 *     "ACS3-HMAC-SHA256\n" .. hex(SHA-256(cr)); signature = reference
 *     hex(HMAC-SHA256(secret, string_to_sign)); a header given twice (after lowercasing)
 *     raises instead.
 * Signing is deterministic: every return of every call is compared with the reference, and
 * the state (with the core's HMAC cache) lives for a batch of inputs, so an answer that
 * depended on an earlier call would differ from the reference. (Signing each input twice, as
 * this target once did, checked nothing more for a quarter of its time.)
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "harness.h"

/* ---- parameter lists --------------------------------------------------------------------- */

struct pair {
    const char *k, *v;
    size_t klen, vlen;
};

static struct pair *pairs; /* the parameters of this input, sorted by key */
static size_t npairs, pairs_cap;

static int pair_cmp(const void *a, const void *b) {
    const struct pair *x = a, *y = b;
    int c = harness_memcmp(x->k, y->k, x->klen < y->klen ? x->klen : y->klen);
    return c != 0 ? c : (x->klen > y->klen) - (x->klen < y->klen);
}

static struct pair *pair_new(size_t n) {
    if (n >= pairs_cap) {
        pairs_cap = pairs_cap != 0 ? 2 * pairs_cap : 64;
        if ((pairs = realloc(pairs, pairs_cap * sizeof *pairs)) == NULL)
            abort();
    }
    return &pairs[n];
}

/* The string pairs of the table at t (which anchors them) into `pairs`, sorted. */
static void sort_params(lua_State *L, int t) {
    npairs = 0;
    lua_pushnil(L);
    while (lua_next(L, t) != 0) {
        struct pair *e = pair_new(npairs++);
        e->k = lua_tolstring(L, -2, &e->klen);
        e->v = lua_tolstring(L, -1, &e->vlen);
        lua_pop(L, 1);
    }
    qsort(pairs, npairs, sizeof *pairs, pair_cmp);
}

/* The expected canonical query of `pairs` into b, without Signature when asked. */
static void ref_query(struct harness_buf *b, int skip_signature) {
    size_t i;
    b->n = 0;
    for (i = 0; i < npairs; i++) {
        if (skip_signature && pairs[i].klen == 9 && harness_memcmp(pairs[i].k, "Signature", 9) == 0)
            continue;
        if (b->n > 0) /* a pair is never empty: it has its '=' */
            harness_add(b, "&", 1);
        harness_encode(b, pairs[i].k, pairs[i].klen, 0, 0);
        harness_add(b, "=", 1);
        harness_encode(b, pairs[i].v, pairs[i].vlen, 0, 0);
    }
}

/* Fail unless the string at idx equals want[0..len). */
static void expect(lua_State *L, int idx, const char *want, size_t len, const char *what) {
    size_t n;
    const char *s = lua_tolstring(L, idx, &n);
    if (s == NULL || n != len || harness_memcmp(s, want, len) != 0)
        luaL_error(L, "%s is %s, expected %s", what,
                   s != NULL ? harness_quote(L, s, n) : luaL_typename(L, idx),
                   harness_quote(L, want, len));
}

/* ---- the checks -------------------------------------------------------------------------- */

/* Upper-case hex digits only: that is what the core writes. */
static int hexval(int c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static void check_percent_encode(lua_State *L, int raw) {
    static struct harness_buf dec;
    size_t n, elen, i, reserved = 0;
    const char *s = lua_tolstring(L, raw, &n), *e;
    char *o;
    harness_core(L, "percent_encode");
    lua_pushvalue(L, raw);
    lua_call(L, 1, 1);
    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, "percent_encode returned %s", luaL_typename(L, -1));
    e = lua_tolstring(L, -1, &elen);
    dec.n = 0;
    o = harness_reserve(&dec, elen);
    for (i = 0; i < elen; i++) {
        if (e[i] == '%' && i + 2 < elen && hexval(e[i + 1]) >= 0 && hexval(e[i + 2]) >= 0) {
            char c = (char)(hexval(e[i + 1]) * 16 + hexval(e[i + 2]));
            if (harness_unreserved((unsigned char)c))
                luaL_error(L, "unreserved byte %s encoded in %s", harness_quote(L, &c, 1),
                           harness_quote(L, e, elen));
            *o++ = c;
            reserved++;
            i += 2;
        } else if (harness_unreserved((unsigned char)e[i])) {
            *o++ = e[i];
        } else {
            luaL_error(L, "stray byte in encoded %s", harness_quote(L, e, elen));
        }
    }
    dec.n = (size_t)(o - dec.p);
    if (dec.n != n || harness_memcmp(dec.p, s, n) != 0)
        luaL_error(L, "percent_encode does not round-trip: %s -> %s", harness_quote(L, s, n),
                   harness_quote(L, e, elen));
    if (elen != n + 2 * reserved)
        luaL_error(L, "percent_encode length %d for %s", (int)elen, harness_quote(L, s, n));
    lua_pop(L, 1);
}

/* mode != 0: every signer must refuse the non-string entry by name. */
static void check_refusals(lua_State *L, int method, int secret, int params, int raw, int headers) {
    int n;
    for (n = 1; n <= 3; n++) {
        const char *err;
        harness_core(L, n == 1 ? "sign_v1" : "sign_v3");
        lua_pushvalue(L, method);
        if (n == 1) { /* sign_v1(method, params, secret) */
            lua_pushvalue(L, params);
        } else if (n == 2) { /* sign_v3(method, params, {}, raw, secret) */
            lua_pushvalue(L, params);
            lua_newtable(L);
            lua_pushvalue(L, raw);
        } else { /* sign_v3(method, {}, headers, raw, secret) */
            lua_newtable(L);
            lua_pushvalue(L, headers);
            lua_pushvalue(L, raw);
        }
        lua_pushvalue(L, secret);
        if (lua_pcall(L, n == 1 ? 3 : 5, 0, 0) == LUA_OK)
            luaL_error(L, "call %d accepted a non-string parameter", n);
        err = lua_tostring(L, -1);
        /* a header given twice may be met before the non-string entry: refused either way */
        if (err == NULL || !(strstr(err, "must be a string") != NULL ||
                             (n == 3 && strstr(err, "given twice") != NULL)))
            luaL_error(L, "unexpected error for a non-string parameter: %s",
                       err != NULL ? err : luaL_typename(L, -1));
        lua_pop(L, 1);
    }
}

static void check_v1(lua_State *L, int method, int secret, int params) {
    static struct harness_buf cq, sts, key;
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mlen, slen, siglen;
    const char *m = lua_tolstring(L, method, &mlen), *sig;
    const char *sec = lua_tolstring(L, secret, &slen);
    int top = lua_gettop(L);

    harness_core(L, "sign_v1");
    lua_pushvalue(L, method);
    lua_pushvalue(L, params);
    lua_pushvalue(L, secret);
    lua_call(L, 3, 3);
    sig = lua_tolstring(L, top + 1, &siglen);
    if (sig == NULL || siglen != 28 || sig[27] != '=')
        luaL_error(L, "bad V1 signature %s", sig != NULL ? harness_quote(L, sig, siglen) : "nil");
    ref_query(&cq, 1);
    expect(L, top + 3, cq.p, cq.n, "V1 canonical query");
    sts.n = 0;
    harness_add(&sts, m, mlen);
    harness_add(&sts, "&%2F&", 5);
    harness_encode(&sts, cq.p, cq.n, 0, 0);
    expect(L, top + 2, sts.p, sts.n, "V1 string_to_sign");
    key.n = 0;
    harness_add(&key, sec, slen);
    harness_add(&key, "&", 1);
    harness_push_base64(L, md, harness_hmac("SHA1", key.p, key.n, sts.p, sts.n, md));
    if (!lua_rawequal(L, top + 1, -1))
        luaL_error(L, "V1 signature differs from the reference HMAC-SHA1");
    lua_settop(L, top);
}

static struct pair *hdrs;
static size_t hdrs_cap;

/*
 * The headers of the table at `headers` that V3 signs, into `hdrs` sorted by name: names
 * lowercased (pushed on the stack, which anchors them), values trimmed of spaces and tabs.
 * Returns their number; *dup is a name that occurs twice, or NULL.
 */
static size_t signed_headers(lua_State *L, int headers, const char **dup) {
    static struct harness_buf lname;
    size_t n = 0, i;
    char *o;
    lua_pushnil(L);
    while (lua_next(L, headers) != 0) {
        size_t klen, vlen;
        const char *k = lua_tolstring(L, -2, &klen), *v = lua_tolstring(L, -1, &vlen);
        lua_pop(L, 1); /* the headers table anchors v */
        lname.n = 0;
        o = harness_reserve(&lname, klen);
        for (i = 0; i < klen; i++)
            o[i] = k[i] >= 'A' && k[i] <= 'Z' ? (char)(k[i] - 'A' + 'a') : k[i];
        if (!((klen == 4 && memcmp(lname.p, "host", 4) == 0) ||
              (klen == 12 && memcmp(lname.p, "content-type", 12) == 0) ||
              (klen > 6 && memcmp(lname.p, "x-acs-", 6) == 0)))
            continue;
        while (vlen > 0 && (*v == ' ' || *v == '\t'))
            v++, vlen--;
        while (vlen > 0 && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
            vlen--;
        if (n >= hdrs_cap) {
            hdrs_cap = hdrs_cap != 0 ? 2 * hdrs_cap : 16;
            if ((hdrs = realloc(hdrs, hdrs_cap * sizeof *hdrs)) == NULL)
                abort();
        }
        luaL_checkstack(L, 2, "headers");
        hdrs[n].k = lua_pushlstring(L, lname.p, klen);
        hdrs[n].klen = klen;
        hdrs[n].v = v;
        hdrs[n].vlen = vlen;
        n++;
        lua_insert(L, -2); /* the key back on top for lua_next */
    }
    qsort(hdrs, n, sizeof *hdrs, pair_cmp);
    *dup = NULL;
    for (i = 1; i < n && *dup == NULL; i++)
        if (pair_cmp(&hdrs[i - 1], &hdrs[i]) == 0)
            *dup = hdrs[i].k;
    return n;
}

static void check_v3(lua_State *L, int method, int secret, int params, int raw, int headers) {
    static struct harness_buf names, cr, hl, sts, query;
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mlen, blen, slen, n, i;
    const char *m = lua_tolstring(L, method, &mlen), *body = lua_tolstring(L, raw, &blen);
    const char *sec = lua_tolstring(L, secret, &slen), *dup;
    int top = lua_gettop(L), r;

    n = signed_headers(L, headers, &dup);
    r = lua_gettop(L); /* the returns of sign_v3: r + 1 signature, + 2 string_to_sign,
                          + 3 canonical request, + 4 signed headers, + 5 canonical query */
    harness_core(L, "sign_v3");
    lua_pushvalue(L, method);
    lua_pushvalue(L, params);
    lua_pushvalue(L, headers);
    lua_pushvalue(L, raw);
    lua_pushvalue(L, secret);
    if (dup != NULL) {
        const char *err;
        if (lua_pcall(L, 5, 0, 0) == LUA_OK)
            luaL_error(L, "header %s given twice was not refused", dup);
        err = lua_tostring(L, -1);
        if (err == NULL || strstr(err, "given twice") == NULL)
            luaL_error(L, "header given twice refused with: %s", err != NULL ? err : "?");
        lua_settop(L, top);
        return;
    }
    lua_call(L, 5, LUA_MULTRET);
    if (lua_gettop(L) != r + 5)
        luaL_error(L, "sign_v3 returned %d values, not 5", lua_gettop(L) - r);

    ref_query(&query, 0);
    expect(L, r + 5, query.p, query.n, "V3 canonical query");
    hl.n = names.n = 0;
    for (i = 0; i < n; i++) {
        harness_add(&hl, hdrs[i].k, hdrs[i].klen);
        harness_add(&hl, ":", 1);
        harness_add(&hl, hdrs[i].v, hdrs[i].vlen);
        harness_add(&hl, "\n", 1);
        if (i > 0)
            harness_add(&names, ";", 1);
        harness_add(&names, hdrs[i].k, hdrs[i].klen);
    }
    expect(L, r + 4, names.p, names.n, "V3 signed headers");
    cr.n = 0;
    harness_add(&cr, m, mlen);
    harness_add(&cr, "\n/\n", 3);
    harness_add(&cr, query.p, query.n);
    harness_add(&cr, "\n", 1);
    harness_add(&cr, hl.p, hl.n);
    harness_add(&cr, "\n", 1);
    harness_add(&cr, names.p, names.n);
    harness_add(&cr, "\n", 1);
    harness_push_hex(L, md, harness_digest("SHA256", body, blen, "", 0, md));
    harness_add(&cr, lua_tostring(L, -1), 64);
    expect(L, r + 3, cr.p, cr.n, "V3 canonical request");
    sts.n = 0;
    harness_add(&sts, "ACS3-HMAC-SHA256\n", 17);
    harness_push_hex(L, md, harness_digest("SHA256", cr.p, cr.n, "", 0, md));
    harness_add(&sts, lua_tostring(L, -1), 64);
    expect(L, r + 2, sts.p, sts.n, "V3 string_to_sign");
    harness_push_hex(L, md, harness_hmac("SHA256", sec, slen, sts.p, sts.n, md));
    if (!lua_rawequal(L, r + 1, -1))
        luaL_error(L, "V3 signature differs from the reference HMAC-SHA256");
    lua_settop(L, top);
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

/* One input: (data, size) as the harness passes them. */
static int check(lua_State *L) {
    const char *data = lua_touserdata(L, 1), *p = data, *end, *f;
    size_t size = (size_t)lua_tointeger(L, 2), len, lines = 1;
    int mode = 0;
    enum { METHOD = 3, SECRET, PARAMS, RAW, HEADERS };

    end = data + size;
    if (size > 0 && data[0] >= 1 && data[0] <= 7) {
        mode = data[0];
        p++;
    }
    f = next_field(&p, end, &len);
    lua_pushlstring(L, f, len); /* METHOD */
    f = next_field(&p, end, &len);
    lua_pushlstring(L, f, len); /* SECRET */
    for (f = p; (f = memchr(f, '\n', (size_t)(end - f))) != NULL; f++)
        lines++;
    lua_createtable(L, 0, (int)(lines / 2)); /* PARAMS, sized: no rehash while filling */
    while (p < end) {
        f = next_field(&p, end, &len);
        lua_pushlstring(L, f, len);
        if (p < end) {
            f = next_field(&p, end, &len);
            lua_pushlstring(L, f, len);
        } else {
            lua_pushliteral(L, "");
        }
        lua_rawset(L, PARAMS);
    }
    /* After the loop, so a repeated key cannot overwrite them. */
    if (mode & 1) {
        lua_pushinteger(L, 42); /* a number where a string value belongs */
        lua_setfield(L, PARAMS, "Action");
    }
    if (mode & 2) {
        lua_pushliteral(L, "one");
        lua_rawseti(L, PARAMS, 1);
    }
    if (mode & 4) {
        lua_pushboolean(L, 1);
        lua_pushliteral(L, "yes");
        lua_rawset(L, PARAMS);
    }
    lua_pushlstring(L, data, size); /* RAW */
    check_percent_encode(L, RAW);

    lua_createtable(L, 0, (int)(lines / 2)); /* HEADERS: the parameters, "@name" as "X-Acs-name" */
    lua_pushnil(L);
    while (lua_next(L, PARAMS) != 0) {
        size_t klen;
        const char *k;
        if (lua_type(L, -2) == LUA_TSTRING && (k = lua_tolstring(L, -2, &klen))[0] == '@') {
            lua_pushliteral(L, "X-Acs-");
            lua_pushlstring(L, k + 1, klen - 1);
            lua_concat(L, 2);
        } else {
            lua_pushvalue(L, -2);
        }
        lua_insert(L, -2);
        lua_rawset(L, HEADERS);
    }

    if (mode != 0) {
        check_refusals(L, METHOD, SECRET, PARAMS, RAW, HEADERS);
        return 0;
    }
    sort_params(L, PARAMS);
    check_v1(L, METHOD, SECRET, PARAMS);
    check_v3(L, METHOD, SECRET, PARAMS, RAW, HEADERS);
    return 0;
}

static const char warmup[] = "GET\nsecret\nAction\nListOTATaskByJob\nx-acs-date\nnow";

static const struct harness_target target = {
    .name = "fuzz_sign",
    .check = check,
    .warmup = warmup,
    .warmup_len = sizeof warmup - 1,
};
