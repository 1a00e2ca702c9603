/*
 * fuzz_error.c - libFuzzer target for the response-to-error path: an answer of the gateway
 * (the fuzzed bytes as body, as the x-acs-request-id header and as the Date header) goes
 * through request.settle, the one tail every attempt takes (core.decode with need_success,
 * as the client calls it, or core.decode_tasks; the request id from the header; the
 * redaction, errors.redact(err, {secret, token}); the write and clock-skew notes; the retry
 * decision), and the error it gives must hold no form of the secret or the token.
 *
 * Input format:
 *   flags byte  bits 0-2: HTTP status, one of 400 403 404 500 503 200 429 502
 *               bit 3: ListOTATaskByJob decoded by core.decode_tasks (else QueryOTAJob, or
 *                      the write CancelOTATaskByJob, by core.decode(body, status, true))
 *               bit 4: a write (CancelOTATaskByJob): settle adds "may have been carried out"
 *               bit 5: the call's second attempt (err.attempts)
 *               bit 6: the client corrects clock skew (bit 7 is not used)
 *   x-acs-request-id value \n Date value \n body     ("" leaves a header out)
 * A byte 0x10..0x1F anywhere after the flags is replaced by the secret (0x10..0x17) or the
 * token (0x18..0x1F) in one of eight forms (the low three bits): raw, percent-encoded,
 * encoded with lower-case hex, encoded with '+' for a space, the last two together, encoded
 * twice, twice from the lower-case form, twice from the '+' form. So the fuzzer chooses where
 * the secrets stand (the input is the segments between them) and in which form.
 *
 * Invariants (any violation aborts): settle never raises; it gives a result or an error
 * object (core.is_error, string code and message, boolean retryable, tostring() a string).
 * The leak check: no form of the secret or the token (raw; encoded once or twice; upper or
 * lower hex; '+' for a space) in tostring(err), in any string field of err, or in
 * errors.scrub(body, {secret, token}). A leak aborts only with FUZZ_ERROR_STRICT=1; by
 * default leaks are counted by field and form and reported at exit ("fuzz_error: secret
 * leaks in N of M inputs"), so the suite stays green until redaction covers them all. With
 * FUZZ_ERROR_LEAKS=dir the first input of each (field, secret, form) is written there.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checks.h"
#include "harness.h"

/* Fixed and fake; each holds characters whose encodings differ: ' ' '/' '+' '='. */
#define SECRET "Xy7 sEcr/t+Kq=Z"
#define TOKEN "CAIS1q+Ft5/B2y==x"

#define MARK_FIRST 0x10
#define MARK_LAST 0x1F

static const char *const secrets[2] = {SECRET, TOKEN};
static const char *const secret_names[2] = {"secret", "token"};

/* ---- the forms of a secret ---------------------------------------------------------------- */

#define MAX_FORMS 32
struct form {
    const char *name;
    char *text;
    size_t len;
};
static struct form forms[2][MAX_FORMS]; /* every distinct form, for the leak check */
static int nforms[2];
static struct form *marks[2][8]; /* the eight a marker byte inserts */

/* Encode (lower, plus) of s; depth 2 encodes that again (outer_lower). Kept once per text. */
static struct form *add_form(int which, const char *s, int depth, int lower, int plus,
                             int outer_lower) {
    static const char *const variant[4] = {"", "-lower", "-plus", "-lower-plus"};
    struct harness_buf once = {0}, twice = {0}, *b = depth == 2 ? &twice : &once;
    char name[64];
    int i;
    if (depth == 0)
        harness_add(&once, s, strlen(s));
    else
        harness_encode(&once, s, strlen(s), lower, plus);
    if (depth == 2)
        harness_encode(&twice, once.p, once.n, outer_lower, 0);
    if (depth == 0)
        snprintf(name, sizeof name, "raw");
    else if (depth == 1)
        snprintf(name, sizeof name, "enc%s", variant[lower + 2 * plus]);
    else
        snprintf(name, sizeof name, "enc2(enc%s)%s", variant[lower + 2 * plus],
                 outer_lower ? "-lower" : "");
    for (i = 0; i < nforms[which]; i++)
        if (forms[which][i].len == b->n && memcmp(forms[which][i].text, b->p, b->n) == 0)
            break;
    if (i == nforms[which]) {
        if (i == MAX_FORMS)
            abort();
        forms[which][i].name = strdup(name);
        forms[which][i].text = malloc(b->n);
        memcpy(forms[which][i].text, b->p, b->n);
        forms[which][i].len = b->n;
        nforms[which]++;
    }
    free(once.p);
    free(twice.p);
    return &forms[which][i];
}

static void make_forms(void) {
    int w, lower, plus, outer;
    for (w = 0; w < 2; w++) {
        const char *s = secrets[w];
        marks[w][0] = add_form(w, s, 0, 0, 0, 0);
        marks[w][1] = add_form(w, s, 1, 0, 0, 0);
        marks[w][2] = add_form(w, s, 1, 1, 0, 0);
        marks[w][3] = add_form(w, s, 1, 0, 1, 0);
        marks[w][4] = add_form(w, s, 1, 1, 1, 0);
        marks[w][5] = add_form(w, s, 2, 0, 0, 0);
        marks[w][6] = add_form(w, s, 2, 1, 0, 0);
        marks[w][7] = add_form(w, s, 2, 0, 1, 0);
        for (lower = 0; lower < 2; lower++)
            for (plus = 0; plus < 2; plus++)
                for (outer = 0; outer < 2; outer++)
                    add_form(w, s, 2, lower, plus, outer);
    }
}

/* ---- counting leaks --------------------------------------------------------------------- */

#define MAX_WHERE 16
static const char *where_names[MAX_WHERE];
static unsigned long leak_counts[MAX_WHERE][2][MAX_FORMS];
/*
 * One libFuzzer feature per (where, secret, form): libFuzzer reads counters in this section
 * as coverage of their own, so an input that makes a new kind of leak joins the corpus even
 * though the redaction it got through is Lua, which no coverage instrumentation sees.
 */
__attribute__((section("__libfuzzer_extra_counters"),
               used)) static uint8_t leak_features[MAX_WHERE][2][MAX_FORMS];
static unsigned long leaky_inputs;
static int strict;
static const char *leak_dir;

static int where_index(const char *where) {
    int i;
    for (i = 0; i < MAX_WHERE - 1 && where_names[i] != NULL; i++)
        if (strcmp(where_names[i], where) == 0)
            return i;
    if (i == MAX_WHERE - 1) /* the last slot counts whatever does not fit */
        where = "(other fields)";
    if (where_names[i] == NULL)
        where_names[i] = strdup(where);
    return i;
}

/*
 * Whether s holds the form, found with memchr and a plain comparison: memmem's interceptor
 * would hand every form to libFuzzer's dictionary, and the marker bytes place them already.
 */
static int contains(const char *s, size_t len, const struct form *form) {
    const char *p = s, *end = s + len;
    while ((size_t)(end - p) >= form->len &&
           (p = memchr(p, form->text[0], (size_t)(end - p) - form->len + 1)) != NULL) {
        if (harness_memcmp(p, form->text, form->len) == 0)
            return 1;
        p++;
    }
    return 0;
}

/* The first input of each (where, secret, form) into FUZZ_ERROR_LEAKS. */
static void keep_input(int w, int which, int f, const uint8_t *data, size_t size) {
    char path[4096];
    FILE *out;
    if (leak_dir == NULL || leak_counts[w][which][f] != 1)
        return;
    snprintf(path, sizeof path, "%s/%s-%s-%s", leak_dir, where_names[w], secret_names[which],
             forms[which][f].name);
    if ((out = fopen(path, "wb")) != NULL) {
        fwrite(data, 1, size, out);
        fclose(out);
    }
}

/*
 * Look for every form of both secrets in s (what `where` names); count what is found, or
 * raise with FUZZ_ERROR_STRICT. Returns how many forms were found.
 */
static int scan(lua_State *L, const char *where, const char *s, size_t len, const uint8_t *data,
                size_t size) {
    int which, f, found = 0;
    for (which = 0; which < 2; which++) {
        for (f = 0; f < nforms[which]; f++) {
            const struct form *form = &forms[which][f];
            int w;
            if (!contains(s, len, form))
                continue;
            if (strict)
                luaL_error(L, "the %s survives (%s form) in %s: %s", secret_names[which],
                           form->name, where, harness_quote(L, s, len));
            w = where_index(where);
            leak_counts[w][which][f]++;
            leak_features[w][which][f] = 1;
            keep_input(w, which, f, data, size);
            found++;
        }
    }
    return found;
}

static void report(void) {
    int w, which, f;
    if (leaky_inputs == 0) {
        fprintf(stderr, "fuzz_error: no secret leaks in %lu inputs\n", harness_inputs);
        return;
    }
    fprintf(stderr,
            "fuzz_error: secret leaks in %lu of %lu inputs (FUZZ_ERROR_STRICT=1 aborts "
            "on the first); by field and form:\n",
            leaky_inputs, harness_inputs);
    for (w = 0; w < MAX_WHERE && where_names[w] != NULL; w++)
        for (which = 0; which < 2; which++)
            for (f = 0; f < nforms[which]; f++)
                if (leak_counts[w][which][f] != 0)
                    fprintf(stderr, "fuzz_error:   %-12s %-6s %-26s %lu\n", where_names[w],
                            secret_names[which], forms[which][f].name, leak_counts[w][which][f]);
}

/* ---- the input -------------------------------------------------------------------------- */

/* Push [p, end) with every marker byte replaced by its form. */
static void push_expanded(lua_State *L, const char *p, const char *end) {
    static struct harness_buf b;
    const char *run = p;
    b.n = 0;
    for (; p < end; p++) {
        unsigned char c = (unsigned char)*p;
        if (c >= MARK_FIRST && c <= MARK_LAST) {
            const struct form *f = marks[(c - MARK_FIRST) >> 3][c & 7];
            harness_add(&b, run, (size_t)(p - run));
            harness_add(&b, f->text, f->len);
            run = p + 1;
        }
    }
    harness_add(&b, run, (size_t)(end - run));
    lua_pushlstring(L, b.p, b.n);
}

/* Push the next '\n'-terminated field of [*p, end), expanded; nil for an empty one. */
static void push_header(lua_State *L, const char **p, const char *end) {
    const char *nl = memchr(*p, '\n', (size_t)(end - *p)), *stop = nl != NULL ? nl : end;
    if (stop == *p)
        lua_pushnil(L);
    else
        push_expanded(L, *p, stop);
    *p = nl != NULL ? nl + 1 : end;
}

/* One input: (data, size) as the harness passes them; upvalues: core, settle glue, scrub. */
static int check(lua_State *L) {
    static const int statuses[8] = {400, 403, 404, 500, 503, 200, 429, 502};
    const uint8_t *data = lua_touserdata(L, 1);
    size_t size = (size_t)lua_tointeger(L, 2), len;
    const char *p = (const char *)data + (size > 0), *end = (const char *)data + size, *s;
    int flags = size > 0 ? data[0] : 0, found = 0, err;
    enum { BODY = 3 };

    lua_pushnil(L);
    lua_pushvalue(L, lua_upvalueindex(2)); /* settle glue */
    lua_pushinteger(L, statuses[flags & 7]);
    lua_pushboolean(L, flags & 8);
    lua_pushboolean(L, flags & 16);
    lua_pushinteger(L, flags & 32 ? 2 : 1);
    lua_pushboolean(L, flags & 64);
    push_header(L, &p, end); /* x-acs-request-id */
    push_header(L, &p, end); /* date */
    push_expanded(L, p, end);
    lua_copy(L, -1, BODY);
    lua_call(L, 8, 2); /* 4: result, 5: err */
    err = 5;
    if (lua_isnil(L, 4)) {
        harness_check_error(L, err, "request.settle");
        s = luaL_tolstring(L, err, &len);
        found += scan(L, "tostring", s, len, data, size);
        lua_pop(L, 1);
        lua_pushnil(L);
        while (lua_next(L, err) != 0) {
            if (lua_type(L, -1) == LUA_TSTRING && lua_type(L, -2) == LUA_TSTRING) {
                s = lua_tolstring(L, -1, &len);
                found += scan(L, lua_tostring(L, -2), s, len, data, size);
            }
            lua_pop(L, 1);
        }
    }
    lua_pushvalue(L, lua_upvalueindex(3)); /* errors.scrub(body, {secret, token}) */
    lua_pushvalue(L, BODY);
    lua_pushvalue(L, lua_upvalueindex(4));
    lua_call(L, 2, 1);
    s = lua_tolstring(L, -1, &len);
    if (s == NULL)
        luaL_error(L, "errors.scrub returned a %s", luaL_typename(L, -1));
    found += scan(L, "scrub(body)", s, len, data, size);
    if (found > 0)
        leaky_inputs++;
    return 0;
}

/* Per state: the settle glue (Lua, compiled once per state), errors.scrub, the secrets. */
static const char glue[] =
    "local secret, token = ...\n"
    "local core = require('aliyun.iot.core')\n"
    "local errors = require('aliyun.iot.errors')\n"
    "local request = require('aliyun.iot.request')\n"
    "local decode, decode_tasks = core.decode, core.decode_tasks\n"
    "local creds = { access_key_id = 'LTAI5tFuzzAccessKeyId', access_key_secret = secret,\n"
    "                security_token = token }\n"
    "local function decode_iot(body, status) return decode(body, status, true) end\n"
    "local function now() return 1700000000 end\n"
    "local function settle(status, tasks, write, attempt, skew, request_id, date, body)\n"
    "  local state = { now = now, max_retries = 3, correct_clock_skew = skew }\n"
    "  local action = write and 'CancelOTATaskByJob'\n"
    "    or tasks and 'ListOTATaskByJob' or 'QueryOTAJob'\n"
    "  local call = request.call(state, action, {}, tasks and decode_tasks or decode_iot)\n"
    "  call.attempt = attempt\n"
    "  local r = { status = status, body = body,\n"
    "              headers = { [request.REQUEST_ID_HEADER] = request_id, date = date } }\n"
    "  local result, err = request.settle(call, creds, r, 0)\n"
    "  return result, err\n"
    "end\n"
    "return settle, errors.scrub, { secret, token }\n";

static int setup(lua_State *L) {
    if (luaL_loadbuffer(L, glue, sizeof glue - 1, "=fuzz_error glue") != LUA_OK)
        lua_error(L);
    lua_pushstring(L, SECRET);
    lua_pushstring(L, TOKEN);
    lua_call(L, 2, 3);
    return 3;
}

/* A throttled read: reaches the cjson instance, settle's retry path and scrub. */
static const char warmup[] =
    "\006\n\n{\"RequestId\":\"R\",\"Code\":\"Throttling.User\",\"Message\":\"slow down\"}";

/* The leak check's settings and the forms, once per process. */
static void init(void) {
    const char *s = getenv("FUZZ_ERROR_STRICT");
    strict = s != NULL && *s != '\0' && strcmp(s, "0") != 0;
    leak_dir = getenv("FUZZ_ERROR_LEAKS");
    if (leak_dir != NULL && *leak_dir == '\0')
        leak_dir = NULL;
    make_forms();
}

static const struct harness_target target = {
    .name = "fuzz_error",
    .init = init,
    .check = check,
    .setup = setup,
    .warmup = warmup,
    .warmup_len = sizeof warmup - 1,
    .pin = "cjson.safe",
    .report = report,
};
