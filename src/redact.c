/*
 * redact.c - masking the secrets in text a server sent back, in one pass over the text.
 *
 *   local masker = core.new_masker(forms, cut)
 *   masker:mask(text) -> text with each masked run replaced by "***"; text itself (the same
 *                        string) when nothing in it is masked
 *
 * forms: an array of non-empty strings, the forms of the secrets (raw, percent-encoded, ...:
 * lua/aliyun/iot/errors.lua builds them). cut: an integer, 0 <= cut <= 8. With cut > 0 a form
 * of at least `cut` bytes is masked wherever any `cut`-byte piece of it appears (a message
 * cut short, a secret quoted from its middle); a shorter form, and with cut = 0 every form, is
 * masked only where it appears whole. Masked bytes that overlap or touch make one run.
 *
 * Why C: in Lua the piece lookup took a string.sub per position of the text, an interned
 * string per byte of every error message and body, and redaction cost more than decoding the
 * answer it came from (fuzz_error spent most of its time there). Here a piece of at most 8
 * bytes is a 64-bit key (its bytes, zero-padded) in an open-addressing table, and each
 * position of the text costs one load, one multiply and usually one probe.
 *
 * Storage: the table, then the whole forms' records and bytes, all in the userdata block
 * itself, sized before it is created. A Masker owns nothing outside it, so it needs no __gc
 * and cannot leak; it holds copies of secrets, so it has no method that gives them back and
 * its tostring is its type and address.
 */
#include <stdint.h>
#include <string.h>

#include "redact.h"

#define MAX_CUT 8
/* Far beyond any set of secrets (a few forms of a few dozen bytes each); keeps the size
 * arithmetic below from overflowing on a hostile forms table. */
#define MAX_FORM_BYTES (1u << 20)

struct whole {
    const char *p;
    size_t n;
};

struct masker {
    unsigned cut;     /* piece length, 0 when every form is matched whole */
    unsigned bits;    /* log2 of nslots */
    size_t nslots;    /* power of two; 0 when there are no pieces */
    uint64_t *keys;   /* nslots keys */
    unsigned char *used; /* nslots flags: key i holds a piece */
    size_t nwhole;
    struct whole *whole;
    unsigned char starts_whole[256]; /* byte b: some whole form starts with b */
};

/* The key of the piece at p: its bytes, the first in the low byte (so that the next position's
 * key is this one shifted right by a byte, with the new byte on top). */
static uint64_t piece_key(const char *p, unsigned cut) {
    uint64_t k = 0;
    unsigned j;
    for (j = 0; j < cut; j++)
        k |= (uint64_t)(unsigned char)p[j] << (8 * j);
    return k;
}

static size_t slot_of(const struct masker *m, uint64_t k) {
    return (size_t)((k * UINT64_C(0x9E3779B97F4A7C15)) >> (64 - m->bits));
}

static int has_piece(const struct masker *m, uint64_t k) {
    size_t i = slot_of(m, k), mask = m->nslots - 1;
    while (m->used[i]) {
        if (m->keys[i] == k)
            return 1;
        i = (i + 1) & mask;
    }
    return 0;
}

static void add_piece(struct masker *m, const char *p) {
    uint64_t k = piece_key(p, m->cut);
    size_t i = slot_of(m, k), mask = m->nslots - 1;
    while (m->used[i]) {
        if (m->keys[i] == k)
            return;
        i = (i + 1) & mask;
    }
    m->used[i] = 1;
    m->keys[i] = k;
}

/* Round n up to a multiple of 8, the alignment of everything stored after it (uint64_t keys,
 * pointers, size_t). */
static size_t aligned(size_t n) {
    return (n + 7) / 8 * 8;
}

static int l_new_masker(lua_State *L) {
    size_t nforms, i, len, pieces = 0, nwhole = 0, whole_bytes = 0, total = 0, size;
    size_t nslots = 0;
    unsigned bits = 0, cut;
    lua_Integer cut_arg;
    struct masker *m;
    char *at;

    luaL_checktype(L, 1, LUA_TTABLE);
    cut_arg = luaL_checkinteger(L, 2);
    luaL_argcheck(L, cut_arg >= 0 && cut_arg <= MAX_CUT, 2, "cut must be 0 to 8");
    cut = (unsigned)cut_arg;
    nforms = aiot_rawlen(L, 1);
    for (i = 1; i <= nforms; i++) {
        lua_rawgeti(L, 1, (int)i);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_argerror(L, 1, "forms must be an array of strings");
        lua_tolstring(L, -1, &len);
        lua_pop(L, 1);
        if (len == 0)
            return luaL_argerror(L, 1, "a form is empty");
        total += len;
        if (total > MAX_FORM_BYTES)
            return luaL_argerror(L, 1, "the forms are too long");
        if (cut > 0 && len >= cut) {
            pieces += len - cut + 1;
        } else {
            nwhole++;
            whole_bytes += len;
        }
    }
    if (pieces > 0) { /* at most half full: short probes */
        for (bits = 3, nslots = 8; nslots < 2 * pieces; bits++)
            nslots *= 2;
    }
    size = aligned(sizeof *m) + nslots * sizeof(uint64_t) + aligned(nslots) +
           nwhole * sizeof(struct whole) + whole_bytes;
    m = aiot_newuserdata(L, size);
    memset(m, 0, size);
    m->cut = cut;
    m->bits = bits;
    m->nslots = nslots;
    at = (char *)m + aligned(sizeof *m);
    m->keys = (uint64_t *)(void *)at;
    at += nslots * sizeof(uint64_t);
    m->used = (unsigned char *)at;
    at += aligned(nslots);
    m->whole = (struct whole *)(void *)at;
    at += nwhole * sizeof(struct whole);
    for (i = 1; i <= nforms; i++) {
        const char *s;
        lua_rawgeti(L, 1, (int)i);
        s = lua_tolstring(L, -1, &len);
        if (cut > 0 && len >= cut) {
            size_t j;
            for (j = 0; j + cut <= len; j++)
                add_piece(m, s + j);
        } else {
            struct whole *w = &m->whole[m->nwhole++];
            memcpy(at, s, len);
            w->p = at;
            w->n = len;
            at += len;
            m->starts_whole[(unsigned char)s[0]] = 1;
        }
        lua_pop(L, 1);
    }
    aiot_setmetatable(L, MASKER_MT);
    return 1;
}

/* One past the end of the longest match starting at s[i], or 0; key is the piece at s[i]
 * when there is one (i + cut <= n). */
static size_t match_end(const struct masker *m, const char *s, size_t n, size_t i, uint64_t key) {
    size_t end = 0, k;
    if (m->nslots > 0 && n - i >= m->cut && has_piece(m, key))
        end = i + m->cut;
    if (m->starts_whole[(unsigned char)s[i]]) {
        for (k = 0; k < m->nwhole; k++) {
            const struct whole *w = &m->whole[k];
            if (n - i >= w->n && i + w->n > end && memcmp(s + i, w->p, w->n) == 0)
                end = i + w->n;
        }
    }
    return end;
}

static int l_mask(lua_State *L) {
    const struct masker *m = luaL_checkudata(L, 1, MASKER_MT);
    size_t n, i, copied = 0, first = 0, last = 0, end;
    const char *s = luaL_checklstring(L, 2, &n);
    int open = 0, started = 0;
    unsigned top = m->cut > 0 ? 8 * (m->cut - 1) : 0;
    uint64_t key = 0;
    luaL_Buffer b;

    if (m->nslots > 0 && n >= m->cut)
        key = piece_key(s, m->cut);

    /* Runs are found in order of their start: [first, last) grows while the next match
     * starts inside it or right after it, and is written out when one starts beyond. */
    for (i = 0; i < n; i++) {
        end = match_end(m, s, n, i, key);
        if (m->nslots > 0 && i + m->cut < n) /* the key of the piece at i + 1 */
            key = (key >> 8) | (uint64_t)(unsigned char)s[i + m->cut] << top;
        if (end == 0)
            continue;
        if (open && i <= last) {
            if (end > last)
                last = end;
            continue;
        }
        if (open) {
            if (!started) {
                luaL_buffinit(L, &b);
                started = 1;
            }
            luaL_addlstring(&b, s + copied, first - copied);
            luaL_addstring(&b, "***");
            copied = last;
        }
        first = i;
        last = end;
        open = 1;
    }
    if (!open) {
        lua_settop(L, 2);
        return 1;
    }
    if (!started)
        luaL_buffinit(L, &b);
    luaL_addlstring(&b, s + copied, first - copied);
    luaL_addstring(&b, "***");
    luaL_addlstring(&b, s + last, n - last);
    luaL_pushresult(&b);
    return 1;
}

/* Type and address only, on every Lua (5.1 and 5.2 do not use __name): never the secrets. */
static int l_tostring(lua_State *L) {
    lua_pushfstring(L, MASKER_MT ": %p", luaL_checkudata(L, 1, MASKER_MT));
    return 1;
}

void redact_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"mask", l_mask},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"new_masker", l_new_masker},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_tostring},
        {NULL, NULL},
    };
    aiot_register_class(L, MASKER_MT, methods, meta);
    aiot_setfuncs(L, funcs, 0);
}
