/*
 * session.c - HTTP(S) transport over one libcurl easy handle per Session.
 *
 * The handle is reused across requests and never curl_easy_reset, so libcurl keeps its
 * connection cache (keep-alive) and TLS session cache; per-request options are set afresh on
 * every call instead. libcurl callbacks only copy bytes into C buffers owned by the session:
 * no Lua API call and no raise may happen inside curl_easy_perform, because a longjmp across
 * libcurl frames would leave the handle in an undefined state. libcurl itself is initialised
 * once, by core.c, before core.new_session can be called.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "errors.h"
#include "session.h"
#include "xfer.h"

struct session {
    CURL *curl;                   /* NULL once closed */
    struct xfer x;                /* receive buffers, flags and errbuf (xfer.h) */
    long num_connects;            /* of the last request, for session:info() */
    long timeout_ms;              /* a request's timeout unless it gives its own */
};

static struct session *check_session(lua_State *L) {
    return luaL_checkudata(L, 1, SESSION_MT);
}

static struct session *check_open(lua_State *L) {
    struct session *s = check_session(L);
    if (s->curl == NULL)
        luaL_error(L, "attempt to use a closed session");
    return s;
}

/* close, __gc and __close: idempotent, and safe on a half-built session. */
static int l_session_close(lua_State *L) {
    struct session *s = check_session(L);
    if (s->curl != NULL) {
        curl_easy_cleanup(s->curl);
        s->curl = NULL;
    }
    xfer_free(&s->x);
    return 0;
}

static int l_session_tostring(lua_State *L) {
    struct session *s = check_session(L);
    if (s->curl == NULL)
        lua_pushliteral(L, SESSION_MT " (closed)");
    else
        lua_pushfstring(L, SESSION_MT " (%p)", (void *)s);
    return 1;
}

/* core.new_session([opts]) -> Session */
static int l_new_session(lua_State *L) {
    struct xfer_opts o;
    struct session *s;
    CURLcode rc;

    /* Validate every option before anything is allocated. */
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    xfer_check_opts(L, &o); /* its strings stay anchored on the stack until we return */

    /* Userdata and metatable first: from here on __gc sees NULL or a valid handle. */
    s = aiot_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    aiot_setmetatable(L, SESSION_MT);
    s->x.max_body = o.max_body;
    s->timeout_ms = o.timeout_ms;

    s->curl = curl_easy_init();
    if (s->curl == NULL)
        return luaL_error(L, "curl_easy_init failed");

    /* Session-wide options: set once, kept across requests because we never reset. */
    rc = xfer_configure(s->curl, &s->x, &o);
    if (rc != CURLE_OK)
        return luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
    return 1;
}

/*
 * session:request(method, url [, headers [, body [, opts]]])
 *   opts: { timeout = seconds (this request's, instead of the session's), fresh = true (a new
 *           connection) }
 *   -> status, body, headers        on any HTTP response (4xx/5xx included)
 *   -> nil, err                     on transport failure
 */
static int l_session_request(lua_State *L) {
    struct session *s = check_open(L);
    size_t mlen, blen = 0;
    const char *method = luaL_checklstring(L, 2, &mlen);
    const char *url = luaL_checkstring(L, 3);
    const char *body = NULL;
    struct curl_slist *headers;
    struct xfer_request_opts ro;
    CURLcode rc;
    long status = 0;

    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    if (!lua_isnoneornil(L, 5))
        body = luaL_checklstring(L, 5, &blen);
    xfer_check_method(L, 2, method, mlen);
    xfer_check_request_opts(L, 6, s->timeout_ms, &ro);
    lua_settop(L, 5);

    headers = xfer_build_headers(L, lua_istable(L, 4) ? 4 : 0);

    /* From here to curl_slist_free_all nothing may raise. */
    xfer_begin(&s->x);
    /* The body string is anchored at stack index 5 until perform returns: no copy. */
    rc = xfer_set_request(s->curl, method, url, headers, body, blen, 0, &ro);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(s->curl);

    /* Never leave a pointer to the freed list, or to the Lua body, in the handle. */
    xfer_end_request(s->curl);
    curl_slist_free_all(headers);
    curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &s->num_connects);

    if (rc != CURLE_OK) {
        lua_pushnil(L);
        xfer_push_error(L, &s->x, rc);
        return 2;
    }
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->x.body.data != NULL ? s->x.body.data : "", s->x.body.len);
    xfer_push_headers(L, &s->x.hdr);
    return 3;
}

/* session:info() -> { num_connects = n, ... } about the last request */
static int l_session_info(lua_State *L) {
    struct session *s = check_open(L);
    double total = 0;
    long code = 0;
    curl_easy_getinfo(s->curl, CURLINFO_TOTAL_TIME, &total);
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &code);
    lua_createtable(L, 0, 4);
    lua_pushinteger(L, (lua_Integer)s->num_connects);
    lua_setfield(L, -2, "num_connects");
    lua_pushnumber(L, total);
    lua_setfield(L, -2, "total_time");
    lua_pushinteger(L, (lua_Integer)code);
    lua_setfield(L, -2, "http_status");
    lua_pushinteger(L, (lua_Integer)s->x.max_body);
    lua_setfield(L, -2, "max_body_bytes");
    return 1;
}

void session_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"request", l_session_request},
        {"close", l_session_close},
        {"info", l_session_info},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_session_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"new_session", l_new_session},
        {NULL, NULL},
    };

    aiot_register_class(L, SESSION_MT, methods, meta); /* close is __gc and __close too */
    aiot_setfuncs(L, funcs, 0);
    xfer_push_user_agent(L);
    lua_setfield(L, -2, "user_agent");
}
