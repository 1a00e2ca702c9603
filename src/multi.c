/*
 * multi.c - up to N HTTP(S) transfers in flight over one libcurl multi handle.
 *
 *   local m = core.new_multi{ size = 4, timeout = 10, ... }   -- options as core.new_session
 *   m:add(id, method, url [, headers [, body]])                -- starts a transfer
 *   for _, r in ipairs(m:wait(0.5)) do ... end                 -- finished ones, in finishing order
 *       r = { id = id, status = 200, body = "...", headers = {...} }  or  { id = id, err = err }
 *   m:pending()  m:info()  m:close()
 *
 * The pool of `size` easy handles is made once and reused, never curl_easy_reset, so every
 * handle keeps its options; the multi handle owns the connection cache (keep-alive across
 * transfers), with at most `size` connections to a host. Each handle's receive state (buffers,
 * flags, error buffer) lives in its slot, which never moves: the slot array is allocated once.
 *
 * Transfers make progress only inside add() (a first curl_multi_perform) and wait(); the
 * callbacks only copy bytes into the slot's C buffers (xfer.c). Lua values are built after
 * libcurl has returned, and nothing raises while a request's header list or body is owned
 * only by C.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "errors.h"
#include "multi.h"
#include "xfer.h"

#define MULTI_MAX_SIZE 64
#define MULTI_DEFAULT_SIZE 4

enum { SLOT_FREE = 0, SLOT_ACTIVE, SLOT_DONE };

struct slot {
    CURL *easy;                  /* NULL only while the Multi is being built or after close */
    struct xfer x;
    struct curl_slist *headers;  /* owned while ACTIVE */
    lua_Integer id;
    int state;
    CURLcode rc;                 /* DONE: the transfer's result */
    long status;                 /* DONE: HTTP status */
    unsigned long seq;           /* DONE: finishing order */
};

struct multi {
    CURLM *multi;                /* NULL once closed (or before it was made) */
    struct slot *slots;          /* `size` slots, allocated once */
    int size;
    int active, done;
    unsigned long seq;
    long connects;               /* connections opened by finished transfers */
    long completed;              /* transfers finished */
    long timeout_ms;             /* a transfer's timeout unless it gives its own */
};

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static struct multi *check_multi(lua_State *L) {
    return luaL_checkudata(L, 1, MULTI_MT);
}

static struct multi *check_open(lua_State *L) {
    struct multi *m = check_multi(L);
    if (m->multi == NULL)
        luaL_error(L, "attempt to use a closed " MULTI_MT);
    return m;
}

/* close, __gc and __close: idempotent, and safe on a half-built Multi. */
static int l_multi_close(lua_State *L) {
    struct multi *m = check_multi(L);
    int i;
    for (i = 0; m->slots != NULL && i < m->size; i++) {
        struct slot *s = &m->slots[i];
        if (s->state == SLOT_ACTIVE && m->multi != NULL)
            curl_multi_remove_handle(m->multi, s->easy);
        if (s->easy != NULL)
            curl_easy_cleanup(s->easy);
        s->easy = NULL;
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        xfer_free(&s->x);
        s->state = SLOT_FREE;
    }
    free(m->slots);
    m->slots = NULL;
    m->size = m->active = m->done = 0;
    if (m->multi != NULL) {
        curl_multi_cleanup(m->multi);
        m->multi = NULL;
    }
    return 0;
}

static int l_multi_tostring(lua_State *L) {
    struct multi *m = check_multi(L);
    if (m->multi == NULL)
        lua_pushliteral(L, MULTI_MT " (closed)");
    else
        lua_pushfstring(L, MULTI_MT " (%p, %d of %d in flight)", (void *)m, m->active + m->done,
                        m->size);
    return 1;
}

/* core.new_multi([opts]) -> Multi; opts as core.new_session, plus size (1..64, default 4). */
static int l_new_multi(lua_State *L) {
    struct xfer_opts o;
    struct multi *m;
    int size = MULTI_DEFAULT_SIZE, t, i;
    CURLMcode mc = CURLM_OK;

    /* Validate every option before anything is allocated. */
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    t = aiot_getfield(L, 1, "size");
    if (t != LUA_TNIL) {
        lua_Number v = lua_tonumber(L, -1);
        if (!aiot_isintegral(L, -1) || v < 1 || v > MULTI_MAX_SIZE)
            return luaL_argerror(L, 1, "option 'size' must be an integer from 1 to 64");
        size = (int)v;
    }
    lua_pop(L, 1);
    xfer_check_opts(L, &o); /* its strings stay anchored on the stack until we return */

    /* Userdata and metatable first: from here on __gc sees NULL or valid pointers. */
    m = aiot_newuserdata(L, sizeof *m);
    memset(m, 0, sizeof *m);
    aiot_setmetatable(L, MULTI_MT);

    m->multi = curl_multi_init();
    if (m->multi == NULL)
        return luaL_error(L, "curl_multi_init failed");
    m->slots = calloc((size_t)size, sizeof *m->slots);
    if (m->slots == NULL)
        return luaL_error(L, "not enough memory");
    m->size = size;
    m->timeout_ms = o.timeout_ms;
    for (i = 0; i < size; i++) {
        struct slot *s = &m->slots[i];
        CURLcode rc;
        s->x.max_body = o.max_body;
        s->easy = curl_easy_init();
        if (s->easy == NULL)
            return luaL_error(L, "curl_easy_init failed");
        rc = xfer_configure(s->easy, &s->x, &o);
        if (rc == CURLE_OK)
            rc = curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (void *)s);
        if (rc != CURLE_OK)
            return luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
    }
    mc = curl_multi_setopt(m->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)size);
    if (mc == CURLM_OK)
        mc = curl_multi_setopt(m->multi, CURLMOPT_MAXCONNECTS, (long)size);
    if (mc != CURLM_OK)
        return luaL_error(L, "cannot configure libcurl: %s", curl_multi_strerror(mc));
    return 1;
}

/* Move every finished transfer from ACTIVE to DONE. No Lua here. */
static void harvest(struct multi *m) {
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(m->multi, &left)) != NULL) {
        CURL *easy = msg->easy_handle;
        CURLcode rc = msg->data.result;
        struct slot *s = NULL;
        long connects = 0;
        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
        if (s == NULL || s->state != SLOT_ACTIVE)
            continue;
        /* msg is invalid after remove_handle: everything needed is read above. */
        s->rc = rc;
        s->status = 0;
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &s->status);
        curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &connects);
        curl_multi_remove_handle(m->multi, easy);
        xfer_end_request(easy);
        curl_slist_free_all(s->headers);
        s->headers = NULL;
        s->state = SLOT_DONE;
        s->seq = ++m->seq;
        m->connects += connects;
        m->completed++;
        m->active--;
        m->done++;
    }
}

/* Push the result table of a DONE slot and free the slot. */
static void push_result(lua_State *L, struct slot *s) {
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, s->id);
    lua_setfield(L, -2, "id");
    if (s->rc != CURLE_OK) {
        xfer_push_error(L, &s->x, s->rc);
        lua_setfield(L, -2, "err");
    } else {
        lua_pushinteger(L, (lua_Integer)s->status);
        lua_setfield(L, -2, "status");
        lua_pushlstring(L, s->x.body.data != NULL ? s->x.body.data : "", s->x.body.len);
        lua_setfield(L, -2, "body");
        xfer_push_headers(L, &s->x.hdr);
        lua_setfield(L, -2, "headers");
    }
}

/*
 * multi:add(id, method, url [, headers [, body [, opts]]]): start a transfer. id is an integer
 * the result will carry; opts as session:request's ({ timeout, fresh }). Raises when every
 * slot is busy or the id is already in flight (misuse).
 */
static int l_multi_add(lua_State *L) {
    struct multi *m = check_open(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    size_t mlen, blen = 0;
    const char *method = luaL_checklstring(L, 3, &mlen);
    const char *url = luaL_checkstring(L, 4);
    const char *body = NULL;
    struct curl_slist *headers;
    struct xfer_request_opts ro;
    struct slot *s = NULL;
    CURLcode rc;
    CURLMcode mc;
    int i, running = 0;

    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TTABLE);
    if (!lua_isnoneornil(L, 6))
        body = luaL_checklstring(L, 6, &blen);
    xfer_check_method(L, 3, method, mlen);
    xfer_check_request_opts(L, 7, m->timeout_ms, &ro);
    lua_settop(L, 6);
    for (i = 0; i < m->size; i++) {
        struct slot *c = &m->slots[i];
        if (c->state != SLOT_FREE && c->id == id)
            return luaL_argerror(L, 2, "a transfer with this id is already in flight");
        if (c->state == SLOT_FREE && s == NULL)
            s = c;
    }
    if (s == NULL)
        return luaL_error(L, "all %d transfers of this " MULTI_MT " are in flight", m->size);

    headers = xfer_build_headers(L, lua_istable(L, 5) ? 5 : 0);

    /* From here on nothing raises until the list is owned by the slot or freed. */
    xfer_begin(&s->x);
    rc = xfer_set_request(s->easy, method, url, headers, body, blen, 1, &ro); /* body copied */
    if (rc != CURLE_OK) {
        xfer_end_request(s->easy);
        curl_slist_free_all(headers);
        return luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
    }
    mc = curl_multi_add_handle(m->multi, s->easy);
    if (mc != CURLM_OK) {
        xfer_end_request(s->easy);
        curl_slist_free_all(headers);
        return luaL_error(L, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
    }
    s->headers = headers;
    s->id = id;
    s->state = SLOT_ACTIVE;
    m->active++;
    /* Start connecting and sending now; finished transfers are collected by wait(). */
    curl_multi_perform(m->multi, &running);
    return 0;
}

/* Wait for activity for at most ms; with no transfer at all, sleep the whole time. */
static CURLMcode poll_for(struct multi *m, int ms) {
#if LIBCURL_VERSION_NUM >= 0x074200 /* 7.66.0: curl_multi_poll */
    return curl_multi_poll(m->multi, NULL, 0, ms, NULL);
#else
    int numfds = 0;
    CURLMcode mc = curl_multi_wait(m->multi, NULL, 0, ms, &numfds);
    if (mc == CURLM_OK && numfds == 0) {
        /* curl_multi_wait returns at once when it has nothing to wait on. */
        long step = m->active > 0 ? (ms < 10 ? ms : 10) : ms;
        struct timespec ts;
        ts.tv_sec = step / 1000;
        ts.tv_nsec = (step % 1000) * 1000000L;
        nanosleep(&ts, NULL);
    }
    return mc;
#endif
}

/*
 * multi:wait([max_seconds]) -> { result, ... }
 * Drives the transfers until at least one has finished or max_seconds have passed (default
 * 0: one non-blocking round). With nothing in flight it simply sleeps max_seconds. Results
 * come in finishing order; each is returned once.
 */
static int l_multi_wait(lua_State *L) {
    struct multi *m = check_open(L);
    lua_Number max = luaL_optnumber(L, 2, 0);
    double deadline;
    int n = 0, i;
    if (!(max > 0))
        max = 0; /* negative and NaN: do not block */
    if (max > 86400)
        return luaL_argerror(L, 2, "wait longer than a day");
    deadline = now_ms() + max * 1000.0;

    for (;;) {
        int running = 0;
        double left;
        CURLMcode mc = curl_multi_perform(m->multi, &running);
        harvest(m);
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_perform: %s", curl_multi_strerror(mc));
        if (m->done > 0)
            break;
        left = deadline - now_ms();
        if (left <= 0)
            break;
        mc = poll_for(m, left > 1e9 ? 1000000000 : (int)(left + 0.999));
        if (mc != CURLM_OK)
            return luaL_error(L, "curl_multi_poll: %s", curl_multi_strerror(mc));
    }

    lua_createtable(L, m->done, 0);
    while (m->done > 0) {
        struct slot *first = NULL;
        for (i = 0; i < m->size; i++) {
            struct slot *s = &m->slots[i];
            if (s->state == SLOT_DONE && (first == NULL || s->seq < first->seq))
                first = s;
        }
        push_result(L, first);
        lua_rawseti(L, -2, ++n);
        first->state = SLOT_FREE; /* only once its result is safely in the table */
        m->done--;
    }
    return 1;
}

/* multi:pending() -> transfers added and not yet returned by wait() */
static int l_multi_pending(lua_State *L) {
    struct multi *m = check_multi(L);
    lua_pushinteger(L, (lua_Integer)(m->active + m->done));
    return 1;
}

/* multi:info() -> { size =, pending =, completed =, connects = } */
static int l_multi_info(lua_State *L) {
    struct multi *m = check_multi(L);
    lua_createtable(L, 0, 5);
    lua_pushinteger(L, (lua_Integer)m->size);
    lua_setfield(L, -2, "size");
    lua_pushinteger(L, (lua_Integer)(m->active + m->done));
    lua_setfield(L, -2, "pending");
    lua_pushinteger(L, (lua_Integer)m->completed);
    lua_setfield(L, -2, "completed");
    lua_pushinteger(L, (lua_Integer)m->connects);
    lua_setfield(L, -2, "connects");
    lua_pushboolean(L, m->multi == NULL);
    lua_setfield(L, -2, "closed");
    return 1;
}

void multi_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"add", l_multi_add},
        {"wait", l_multi_wait},
        {"pending", l_multi_pending},
        {"info", l_multi_info},
        {"close", l_multi_close},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_multi_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"new_multi", l_new_multi},
        {NULL, NULL},
    };

    aiot_register_class(L, MULTI_MT, methods, meta); /* close is __gc and __close too */
    aiot_setfuncs(L, funcs, 0);
}
