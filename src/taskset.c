/*
 * taskset.c - the listing's TaskId ledger, outside the Lua heap.
 *
 * A listing remembers every TaskId it has handed out, with a mark: the pass number that saw
 * the id last (see Walk:take in lua/aliyun/iot/walk.lua). In a Lua table that costs about 78
 * bytes per task (the interned string plus the table node) and the GC walks all of it on every
 * cycle; here it costs at most 24 bytes per task, in memory Lua never sees.
 *
 *   local set = core.new_taskset([expected_count])
 *
 *   set:mark(id, token)      -> previous mark (integer), or nil when id is new; id's mark
 *                               becomes token
 *   set:get(id)              -> mark (integer), or nil
 *   set:count()              -> number of ids in the set
 *   set:bytes()              -> bytes the set has allocated (its slots, its scratch space and
 *                               the userdata itself; malloc's own overhead not included)
 *   set:take(tasks, token, first_token)
 *                            -> new, distinct, repeats, kept
 *   set:close()              -> frees the memory; also __gc and, on 5.4, __close. Idempotent;
 *                               every other method raises "attempt to use a closed
 *                               aliyun.iot.TaskSet" afterwards.
 *
 * expected_count: optional integer >= 0, the ids the caller expects; the table is sized for
 * that many at once (no growth until then). Without it the set starts small and grows.
 *
 * id: a string (any bytes, embedded NULs and "" included), a number or a boolean, compared as
 * Lua compares table keys (2 and 2.0 are the same id, "2" is another). NaN and other types
 * raise (misuse). token: an integer, 1 <= token <= 2^31 - 1 (a mark of 0 means "empty slot").
 *
 * set:take(tasks, token, first_token) is Walk:take's loop in C, for one page. tasks: an array
 * (1..#tasks, read raw) of task tables; each task's TaskId (raw field) is its id. For each
 * task in order, with mark = the id's mark before this task:
 *   - TaskId nil: the task is new (handed out), nothing is stored.
 *   - mark nil (an id not seen before): the task is new; the id is marked token; it counts as
 *     distinct.
 *   - else the task is not new (dropped); it counts as distinct when mark < first_token (seen
 *     only before this part's first pass: in another part), as a repeat when mark == token
 *     (seen earlier in this pass: the pages moved, or twice on one page); the id is marked
 *     token.
 *   - a TaskId of another type (a table: JSON never gives one) is new every time, counts as
 *     distinct, and is not stored (no value can ever equal it again).
 * Returns four values:
 *   new       integer: the tasks handed out (the new ids plus the tasks without a TaskId);
 *             Walk:take's `new`, added to ledger.yielded
 *   distinct  integer: tasks that count as distinct (above); added to part.distinct
 *   repeats   integer: tasks whose id was marked token already; added to part.repeats
 *   kept      nil when every task is new (then `tasks` is the page as it is: no copy), else a
 *             new array of the new tasks, in order (#kept == new); Walk:take's `kept`
 * so that Walk:take becomes
 *   local new, distinct, repeats, kept = ledger.set:take(page.tasks, token, part.first_token)
 *   if kept then page.tasks = kept end
 *   ledger.yielded = ledger.yielded + new
 *   part.distinct, part.repeats = part.distinct + distinct, part.repeats + repeats
 * A task element that is not a table, a NaN TaskId, or a bad token raises before anything
 * is changed. Out of memory raises only before the set is changed: take first hashes the
 * page and looks every id up, makes room in every shard it will insert into (growing is not
 * a visible change) and creates `kept` when it will be needed; only then does it mark, and
 * marking cannot fail.
 *
 * Storage. An id is hashed with SipHash-2-4 (128-bit output) under a random 128-bit key per
 * set and per kind of id (string, integer, float, boolean; RAND_bytes), giving h0, h1. The top
 * 6 bits of h1 pick one of 64 shards; the shard stores a 14-byte fingerprint (h0 and the low 48
 * bits of h1) and the 4-byte mark in an 18-byte slot of an open-addressing table (linear
 * probing, home slot from the top 32 bits of h0, mark 0 = empty). An id's effective
 * fingerprint is therefore 64 + 48 + 6 = 118 bits: two different ids are confused only when
 * all 118 agree.
 *
 * Collision bound. SipHash is a PRF under a secret key (the server that names the tasks never
 * sees the key or the hashes), so for n distinct ids the chance that any two share a
 * fingerprint is at most n(n-1)/2 / 2^118 < n^2 / 2^119. For a 10,000,000-task listing:
 * 10^14 / 2^119 = 10^14 / 6.65e35 = 1.5e-22, about 2^-72.5, below the 2^-64 asked for. (A
 * collision would make a new task look seen: it would be dropped from the listing.)
 *
 * Bytes per task. A shard grows (rehashes into a fresh table, the old one freed) when it
 * would pass load 0.85, by a factor of 1.2. With one table, memory per id would swing by that
 * factor at every growth; here the 64 shards start at capacities staggered by 1.2^(j/64), so
 * their growths are spread evenly and the set as a whole sits near the average:
 * 18 / 0.85 * 0.2 / ln 1.2 = 23.2 bytes per id (from 18 / 0.85 = 21.2 just before a shard
 * grows to 25.4 just after), plus 2 KB for the set. Growing moves each entry about 1 / 0.2 = 5
 * times over the set's life, without hashing it again. With expected_count, every shard is
 * sized up front for its share (plus 3% and 32 slots of slack): about 22 bytes per id once
 * that many are in.
 */
#if !defined(_WIN32) && !defined(_DEFAULT_SOURCE)
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS under -std=c99 (glibc) */
#endif
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#endif

#include <openssl/rand.h>

#include "taskset.h"

#define SHARD_BITS 6
#define NSHARDS (1 << SHARD_BITS)
#define SLOT_SIZE 18           /* 14-byte fingerprint + 4-byte mark */
#define FP_SIZE 14
#define LOAD_NUM 85            /* a shard grows before its load passes 85/100 */
#define LOAD_DEN 100
#define GROWTH 1.2
#define STAGGER 1.0028528      /* 1.2^(1/64): shard j starts at BASE_CAP * STAGGER^j */
#define BASE_CAP 16.0
#define MAX_CAP 0x7fffffffu    /* slots per shard */
#define MAX_MARK 0x7fffffff
#define STACK_TASKS 128        /* pages up to this size need no scratch allocation */
#define SCRATCH_KEEP 4096      /* scratch for bigger pages is given back after the call */
#define MAP_MIN_BYTES 65536    /* slot tables this big get pages of their own (slots_alloc) */

enum { KIND_NONE = 0, KIND_HASHED = 1, KIND_UNIQUE = 2, KIND_NAN = 3 };
enum { DOMAIN_STRING = 0, DOMAIN_INTEGER, DOMAIN_FLOAT, DOMAIN_BOOLEAN, NDOMAINS };

struct shard {
    unsigned char *slots;      /* cap slots of SLOT_SIZE bytes; NULL until the first id */
    uint32_t cap, count, limit;
    double vcap;               /* capacity before rounding: keeps the shards' growth staggered */
};

struct entry {                 /* one task of a page being taken */
    uint64_t h0, h1;
    int kind;
};

struct taskset {
    int open;
    uint64_t key[NDOMAINS][2];
    size_t count;              /* ids */
    size_t slot_bytes;         /* sum of cap * SLOT_SIZE */
    struct shard shard[NSHARDS];
    void *scratch;             /* take() on pages bigger than STACK_TASKS */
    size_t scratch_bytes;
};

/* ---- SipHash-2-4, 128-bit output (Aumasson and Bernstein's reference, CC0) ------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define SIPROUND \
    do { \
        v0 += v1; v1 = ROTL(v1, 13); v1 ^= v0; v0 = ROTL(v0, 32); \
        v2 += v3; v3 = ROTL(v3, 16); v3 ^= v2; \
        v0 += v3; v3 = ROTL(v3, 21); v3 ^= v0; \
        v2 += v1; v1 = ROTL(v1, 17); v1 ^= v2; v2 = ROTL(v2, 32); \
    } while (0)

static uint64_t le64(const unsigned char *p) {
    return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 | (uint64_t)p[3] << 24 |
           (uint64_t)p[4] << 32 | (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
           (uint64_t)p[7] << 56;
}

static void siphash128(const uint64_t k[2], const unsigned char *in, size_t len, uint64_t out[2]) {
    uint64_t v0 = UINT64_C(0x736f6d6570736575) ^ k[0];
    uint64_t v1 = UINT64_C(0x646f72616e646f6d) ^ k[1];
    uint64_t v2 = UINT64_C(0x6c7967656e657261) ^ k[0];
    uint64_t v3 = UINT64_C(0x7465646279746573) ^ k[1];
    const unsigned char *end = in + len - (len % 8);
    uint64_t b = (uint64_t)len << 56, m;
    v1 ^= 0xee;
    for (; in != end; in += 8) {
        m = le64(in);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    switch (len & 7) {
    case 7: b |= (uint64_t)in[6] << 48; /* fall through */
    case 6: b |= (uint64_t)in[5] << 40; /* fall through */
    case 5: b |= (uint64_t)in[4] << 32; /* fall through */
    case 4: b |= (uint64_t)in[3] << 24; /* fall through */
    case 3: b |= (uint64_t)in[2] << 16; /* fall through */
    case 2: b |= (uint64_t)in[1] << 8;  /* fall through */
    case 1: b |= (uint64_t)in[0];       /* fall through */
    default: break;
    }
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[0] = v0 ^ v1 ^ v2 ^ v3;
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    out[1] = v0 ^ v1 ^ v2 ^ v3;
}

/* ---- ids to fingerprints -------------------------------------------------------------- */

static void hash_int(const struct taskset *t, int64_t v, uint64_t h[2]) {
    unsigned char b[8];
    uint64_t u = (uint64_t)v;
    int i;
    for (i = 0; i < 8; i++)
        b[i] = (unsigned char)(u >> (8 * i));
    siphash128(t->key[DOMAIN_INTEGER], b, 8, h);
}

/* The value at idx as an id: KIND_HASHED with h set, KIND_NONE for nil, KIND_NAN for NaN,
 * KIND_UNIQUE for a value no other can equal later (tables, functions, ...). Ids compare as
 * Lua table keys do: a float with an integer value is that integer. */
static int hash_value(const struct taskset *t, lua_State *L, int idx, uint64_t h[2]) {
    switch (lua_type(L, idx)) {
    case LUA_TNIL:
        return KIND_NONE;
    case LUA_TSTRING: {
        size_t len;
        const char *s = lua_tolstring(L, idx, &len);
        siphash128(t->key[DOMAIN_STRING], (const unsigned char *)s, len, h);
        return KIND_HASHED;
    }
    case LUA_TNUMBER: {
        double d;
        unsigned char b[8];
        uint64_t u;
        int i;
#if LUA_VERSION_NUM >= 503
        if (lua_isinteger(L, idx)) {
            hash_int(t, (int64_t)lua_tointeger(L, idx), h);
            return KIND_HASHED;
        }
#endif
        d = (double)lua_tonumber(L, idx);
        if (d != d)
            return KIND_NAN;
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && (double)(int64_t)d == d) {
            hash_int(t, (int64_t)d, h);
            return KIND_HASHED;
        }
        memcpy(&u, &d, sizeof u);
        for (i = 0; i < 8; i++)
            b[i] = (unsigned char)(u >> (8 * i));
        siphash128(t->key[DOMAIN_FLOAT], b, 8, h);
        return KIND_HASHED;
    }
    case LUA_TBOOLEAN: {
        unsigned char b = (unsigned char)lua_toboolean(L, idx);
        siphash128(t->key[DOMAIN_BOOLEAN], &b, 1, h);
        return KIND_HASHED;
    }
    default:
        return KIND_UNIQUE;
    }
}

static void pack_fp(const uint64_t h[2], unsigned char fp[FP_SIZE]) {
    int i;
    memcpy(fp, &h[0], 8);
    for (i = 0; i < 6; i++)
        fp[8 + i] = (unsigned char)(h[1] >> (8 * i));
}

static unsigned shard_of(const uint64_t h[2]) {
    return (unsigned)(h[1] >> (64 - SHARD_BITS));
}

/* ---- shards: open addressing, linear probing ------------------------------------------ */

static uint32_t slot_mark(const unsigned char *slot) {
    uint32_t m;
    memcpy(&m, slot + FP_SIZE, 4);
    return m;
}

static void set_mark(unsigned char *slot, uint32_t m) {
    memcpy(slot + FP_SIZE, &m, 4);
}

/* Home slot: the top 32 bits of h0 (the fingerprint's first 8 bytes) scaled to cap. */
static uint32_t home_of(const unsigned char *fp, uint32_t cap) {
    uint64_t h0;
    memcpy(&h0, fp, 8);
    return (uint32_t)(((h0 >> 32) * (uint64_t)cap) >> 32);
}

/* The slot holding fp, or the empty slot where it would go. The shard has slots. */
static unsigned char *probe(const struct shard *s, const unsigned char *fp) {
    uint32_t i = home_of(fp, s->cap);
    for (;;) {
        unsigned char *slot = s->slots + (size_t)i * SLOT_SIZE;
        if (slot_mark(slot) == 0 || memcmp(slot, fp, FP_SIZE) == 0)
            return slot;
        if (++i == s->cap)
            i = 0;
    }
}

/* Ask the CPU for fp's home slot now: a page's ids then miss the cache in parallel, not one
 * after the other (a big set is far larger than the cache; each id is one random access). */
static void prefetch_home(const struct shard *s, const unsigned char *fp) {
#if defined(__GNUC__) || defined(__clang__)
    if (s->slots != NULL)
        __builtin_prefetch(s->slots + (size_t)home_of(fp, s->cap) * SLOT_SIZE);
#else
    (void)s, (void)fp;
#endif
}

/* The slot holding fp, or NULL. */
static unsigned char *lookup(const struct shard *s, const unsigned char *fp) {
    unsigned char *slot;
    if (s->slots == NULL)
        return NULL;
    slot = probe(s, fp);
    return slot_mark(slot) != 0 ? slot : NULL;
}

/*
 * A shard's slot table, zeroed. Big tables are mapped pages of their own, not malloc's heap:
 * a shard grows by allocating the new table before freeing the old one, and on malloc's heap
 * (glibc raises its mmap threshold after the first big free) those freed tables stay behind
 * as holes no later table fits, so a 1,000,000-task listing peaked some 3 MB higher, and the
 * process kept about 14 MB after the set was closed: an nginx worker never got it back.
 * Mapped tables go back to the system when freed.
 */
#if defined(MAP_ANONYMOUS)
#define SLOTS_MAPPED(cap) ((size_t)(cap) * SLOT_SIZE >= MAP_MIN_BYTES)
#else
#define SLOTS_MAPPED(cap) 0
#endif

static unsigned char *slots_alloc(uint32_t cap) {
#if defined(MAP_ANONYMOUS)
    if (SLOTS_MAPPED(cap)) {
        void *p = mmap(NULL, (size_t)cap * SLOT_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return p == MAP_FAILED ? NULL : p;
    }
#endif
    return calloc(cap, SLOT_SIZE);
}

static void slots_free(unsigned char *slots, uint32_t cap) {
#if defined(MAP_ANONYMOUS)
    if (slots != NULL && SLOTS_MAPPED(cap)) {
        munmap(slots, (size_t)cap * SLOT_SIZE);
        return;
    }
#endif
    free(slots);
}

/* Rehash shard s into cap slots (cap > its count / 0.85). 0 when out of memory (s unchanged). */
static int rehash(struct taskset *t, struct shard *s, uint32_t cap) {
    unsigned char *slots = slots_alloc(cap), *old = s->slots;
    uint32_t i;
    if (slots == NULL)
        return 0;
    s->slots = slots;
    for (i = 0; old != NULL && i < s->cap; i++) {
        const unsigned char *from = old + (size_t)i * SLOT_SIZE;
        uint32_t j;
        if (slot_mark(from) == 0)
            continue;
        j = home_of(from, cap);
        while (slot_mark(slots + (size_t)j * SLOT_SIZE) != 0)
            if (++j == cap)
                j = 0;
        memcpy(slots + (size_t)j * SLOT_SIZE, from, SLOT_SIZE);
    }
    slots_free(old, s->cap);
    t->slot_bytes += ((size_t)cap - s->cap) * SLOT_SIZE;
    s->cap = cap;
    s->limit = (uint32_t)((uint64_t)cap * LOAD_NUM / LOAD_DEN);
    return 1;
}

/* Room for `extra` more ids in s at load <= 0.85; 0 when out of memory (s unchanged). */
static int reserve(struct taskset *t, struct shard *s, size_t extra) {
    double need = (double)s->count + (double)extra, v = s->vcap;
    if (s->slots != NULL && need <= s->limit)
        return 1;
    if (s->slots != NULL)
        v *= GROWTH;
    while (v * LOAD_NUM / LOAD_DEN < need + 1)
        v *= GROWTH;
    if (v >= MAX_CAP)
        return 0;
    if (!rehash(t, s, (uint32_t)v + 1))
        return 0;
    s->vcap = v;
    return 1;
}

/* ---- the userdata --------------------------------------------------------------------- */

static struct taskset *check_set(lua_State *L) {
    return luaL_checkudata(L, 1, TASKSET_MT);
}

static struct taskset *check_open(lua_State *L) {
    struct taskset *t = check_set(L);
    if (!t->open)
        luaL_error(L, "attempt to use a closed " TASKSET_MT);
    return t;
}

/* close, __gc and __close: idempotent, and safe on a half-built set. */
static int l_close(lua_State *L) {
    struct taskset *t = check_set(L);
    int i;
    for (i = 0; i < NSHARDS; i++) {
        slots_free(t->shard[i].slots, t->shard[i].cap);
        t->shard[i].slots = NULL;
        t->shard[i].cap = t->shard[i].count = t->shard[i].limit = 0;
    }
    free(t->scratch);
    t->scratch = NULL;
    t->scratch_bytes = 0;
    t->slot_bytes = 0;
    t->count = 0;
    t->open = 0;
    return 0;
}

static int l_tostring(lua_State *L) {
    struct taskset *t = check_set(L);
    if (!t->open)
        lua_pushliteral(L, TASKSET_MT " (closed)");
    else
        lua_pushfstring(L, TASKSET_MT " (%p, %d ids)", (void *)t, (int)t->count);
    return 1;
}

static size_t set_bytes(const struct taskset *t) {
    return sizeof *t + t->slot_bytes + t->scratch_bytes;
}

/* core.new_taskset([expected_count]) -> TaskSet */
static int l_new_taskset(lua_State *L) {
    struct taskset *t;
    double expected = 0, v;
    int i;
    if (!lua_isnoneornil(L, 1)) {
        expected = (double)luaL_checknumber(L, 1);
        if (!aiot_isintegral(L, 1) || expected < 0 || expected > 1e12)
            return luaL_argerror(L, 1, "expected_count must be an integer from 0 to 10^12");
    }
    lua_settop(L, 0);
    /* Userdata and metatable first: from here on __gc sees NULL or valid pointers. */
    t = aiot_newuserdata(L, sizeof *t);
    memset(t, 0, sizeof *t);
    aiot_setmetatable(L, TASKSET_MT);
    if (RAND_bytes((unsigned char *)t->key, sizeof t->key) != 1)
        return luaL_error(L, "RAND_bytes failed: cannot key the task set");
    t->open = 1;
    v = BASE_CAP;
    for (i = 0; i < NSHARDS; i++, v *= STAGGER)
        t->shard[i].vcap = v;
    if (expected > 0) {
        double share = expected / NSHARDS;
        share += share / 32 + 32; /* a shard's share varies by about sqrt(share) */
        for (i = 0; i < NSHARDS; i++) {
            struct shard *s = &t->shard[i];
            v = share * LOAD_DEN / LOAD_NUM;
            if (v < s->vcap)
                v = s->vcap;
            if (v >= MAX_CAP || !rehash(t, s, (uint32_t)v + 1))
                return luaL_error(L, "not enough memory for a task set of %f ids", expected);
            s->vcap = v;
        }
    }
    return 1;
}

static int64_t check_token(lua_State *L, int arg) {
    double d;
    if (!aiot_isintegral(L, arg))
        aiot_typeerror(L, arg, "integer");
    d = (double)lua_tonumber(L, arg);
    if (!(d >= 1 && d <= MAX_MARK))
        luaL_argerror(L, arg, "token must be an integer from 1 to 2^31 - 1");
    return (int64_t)d;
}

/* first_token: any integer; clamped to [0, 2^32], which compares with every mark the same. */
static int64_t check_first(lua_State *L, int arg) {
    double d;
    if (!aiot_isintegral(L, arg))
        aiot_typeerror(L, arg, "integer");
    d = (double)lua_tonumber(L, arg);
    if (d < 0)
        d = 0;
    if (d > 4294967296.0)
        d = 4294967296.0;
    return (int64_t)d;
}

/* The id at arg as a fingerprint; raises unless it is a string, number (not NaN) or boolean. */
static unsigned char *check_id(lua_State *L, const struct taskset *t, int arg,
                               unsigned char fp[FP_SIZE], unsigned *shard) {
    uint64_t h[2];
    int kind = hash_value(t, L, arg, h);
    if (kind != KIND_HASHED)
        luaL_argerror(L, arg, kind == KIND_NAN ? "id is NaN"
                                               : "id must be a string, a number or a boolean");
    pack_fp(h, fp);
    *shard = shard_of(h);
    return fp;
}

/* set:mark(id, token) -> previous mark | nil */
static int l_mark(lua_State *L) {
    struct taskset *t = check_open(L);
    unsigned char fp[FP_SIZE], *slot;
    unsigned si;
    struct shard *s;
    int64_t tok;
    check_id(L, t, 2, fp, &si);
    tok = check_token(L, 3);
    s = &t->shard[si];
    slot = lookup(s, fp);
    if (slot != NULL) {
        lua_pushinteger(L, (lua_Integer)slot_mark(slot));
        set_mark(slot, (uint32_t)tok);
        return 1;
    }
    if (!reserve(t, s, 1))
        return luaL_error(L, "not enough memory");
    slot = probe(s, fp);
    memcpy(slot, fp, FP_SIZE);
    set_mark(slot, (uint32_t)tok);
    s->count++;
    t->count++;
    lua_pushnil(L);
    return 1;
}

/* set:get(id) -> mark | nil */
static int l_get(lua_State *L) {
    struct taskset *t = check_open(L);
    unsigned char fp[FP_SIZE], *slot;
    unsigned si;
    check_id(L, t, 2, fp, &si);
    slot = lookup(&t->shard[si], fp);
    if (slot != NULL)
        lua_pushinteger(L, (lua_Integer)slot_mark(slot));
    else
        lua_pushnil(L);
    return 1;
}

static int l_count(lua_State *L) {
    struct taskset *t = check_open(L);
    lua_pushinteger(L, (lua_Integer)t->count);
    return 1;
}

static int l_bytes(lua_State *L) {
    struct taskset *t = check_open(L);
    lua_pushinteger(L, (lua_Integer)set_bytes(t));
    return 1;
}

/* Scratch for a page of n tasks: n entries, then a table of dup_slots uint32 (zeroed). */
static void *take_scratch(struct taskset *t, void *stack, size_t stack_bytes, size_t n,
                          size_t dup_slots) {
    size_t need = n * sizeof(struct entry) + dup_slots * sizeof(uint32_t);
    void *p = stack;
    if (need > stack_bytes) {
        if (need > t->scratch_bytes) {
            p = realloc(t->scratch, need);
            if (p == NULL)
                return NULL;
            t->scratch = p;
            t->scratch_bytes = need;
        }
        p = t->scratch;
    }
    memset((char *)p + n * sizeof(struct entry), 0, dup_slots * sizeof(uint32_t));
    return p;
}

static void give_back_scratch(struct taskset *t) {
    if (t->scratch_bytes > SCRATCH_KEEP * sizeof(struct entry)) {
        free(t->scratch);
        t->scratch = NULL;
        t->scratch_bytes = 0;
    }
}

/* Was an id equal to e[i] already on this page (among those not in the set)? Records e[i]. */
static int seen_on_page(struct entry *e, uint32_t *dup, size_t dup_slots, size_t i) {
    size_t j = (size_t)(e[i].h0 & (dup_slots - 1));
    for (;;) {
        uint32_t k = dup[j];
        if (k == 0) {
            dup[j] = (uint32_t)(i + 1);
            return 0;
        }
        if (e[k - 1].h0 == e[i].h0 && e[k - 1].h1 == e[i].h1)
            return 1;
        j = (j + 1) & (dup_slots - 1);
    }
}

/* set:take(tasks, token, first_token) -> new, distinct, repeats, kept | nil (see the top) */
static int l_take(lua_State *L) {
    struct taskset *t = check_open(L);
    struct entry stack_entries[STACK_TASKS + STACK_TASKS / 2 + 1]; /* also holds the dup table */
    struct entry *e;
    uint32_t *dup;
    size_t n, i, dup_slots, need[NSHARDS];
    int64_t tok, first;
    lua_Integer new_tasks = 0, distinct = 0, repeats = 0, k = 0;
    int kept = 0, maybe_kept = 0, key;
    unsigned char fp[FP_SIZE];

    luaL_checktype(L, 2, LUA_TTABLE);
    tok = check_token(L, 3);
    first = check_first(L, 4);
    lua_settop(L, 4);
    luaL_checkstack(L, 8, "take");
    lua_pushliteral(L, "TaskId");
    key = lua_gettop(L); /* 5 */

    n = (size_t)aiot_rawlen(L, 2);
    if (n >= 0x7fffffff)
        return luaL_argerror(L, 2, "too many tasks");
    for (dup_slots = 16; dup_slots < 2 * n; dup_slots *= 2) {
    }
    e = take_scratch(t, stack_entries, sizeof stack_entries, n, dup_slots);
    if (e == NULL)
        return luaL_error(L, "not enough memory");
    dup = (uint32_t *)(void *)((char *)e + n * sizeof(struct entry));

    /* 1. Hash the page (raises only on misuse; nothing changed yet). */
    for (i = 0; i < n; i++) {
        uint64_t h[2] = {0, 0};
        lua_rawgeti(L, 2, (int)(i + 1));
        if (lua_type(L, -1) != LUA_TTABLE)
            return luaL_argerror(L, 2, lua_pushfstring(L, "tasks[%d] is not a table (got %s)",
                                                       (int)(i + 1), luaL_typename(L, -1)));
        lua_pushvalue(L, key);
        lua_rawget(L, -2);
        e[i].kind = hash_value(t, L, -1, h);
        if (e[i].kind == KIND_NAN)
            return luaL_argerror(L, 2, lua_pushfstring(L, "tasks[%d].TaskId is NaN", (int)(i + 1)));
        e[i].h0 = h[0];
        e[i].h1 = h[1];
        if (e[i].kind == KIND_HASHED) {
            pack_fp(h, fp);
            prefetch_home(&t->shard[shard_of(h)], fp);
        }
        lua_pop(L, 2);
    }

    /* 2. Look up: which shards grow, and will any task be dropped (then `kept` is needed)? */
    memset(need, 0, sizeof need);
    for (i = 0; i < n; i++) {
        uint64_t h[2];
        unsigned si;
        if (e[i].kind != KIND_HASHED)
            continue;
        h[0] = e[i].h0;
        h[1] = e[i].h1;
        pack_fp(h, fp);
        si = shard_of(h);
        if (lookup(&t->shard[si], fp) != NULL) {
            maybe_kept = 1;
        } else {
            need[si]++;
            if (!maybe_kept && seen_on_page(e, dup, dup_slots, i))
                maybe_kept = 1;
        }
    }
    for (i = 0; i < NSHARDS; i++)
        if (need[i] > 0 && !reserve(t, &t->shard[i], need[i]))
            return luaL_error(L, "not enough memory");
    if (maybe_kept) {
        lua_createtable(L, (int)n, 0);
        kept = lua_gettop(L);
    }

    /* 3. Mark: nothing below allocates or raises. */
    for (i = 0; i < n; i++) {
        int is_new = 1;
        if (e[i].kind == KIND_HASHED) {
            uint64_t h[2];
            struct shard *s;
            unsigned char *slot;
            uint32_t mark;
            h[0] = e[i].h0;
            h[1] = e[i].h1;
            pack_fp(h, fp);
            s = &t->shard[shard_of(h)];
            slot = probe(s, fp);
            mark = slot_mark(slot);
            if (mark == 0) {
                memcpy(slot, fp, FP_SIZE);
                s->count++;
                t->count++;
                distinct++;
            } else {
                is_new = 0;
                if ((int64_t)mark < first)
                    distinct++;
                else if ((int64_t)mark == tok)
                    repeats++;
            }
            set_mark(slot, (uint32_t)tok);
        } else if (e[i].kind == KIND_UNIQUE) {
            distinct++;
        }
        if (is_new) {
            new_tasks++;
            if (kept) {
                lua_rawgeti(L, 2, (int)(i + 1));
                lua_rawseti(L, kept, (int)++k);
            }
        }
    }
    give_back_scratch(t);

    lua_pushinteger(L, new_tasks);
    lua_pushinteger(L, distinct);
    lua_pushinteger(L, repeats);
    if (kept)
        lua_pushvalue(L, kept);
    else
        lua_pushnil(L);
    return 4;
}

void taskset_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"mark", l_mark},
        {"get", l_get},
        {"count", l_count},
        {"bytes", l_bytes},
        {"take", l_take},
        {"close", l_close},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"new_taskset", l_new_taskset},
        {NULL, NULL},
    };
    aiot_register_class(L, TASKSET_MT, methods, meta); /* close is __gc and __close too */
    aiot_setfuncs(L, funcs, 0);
}
