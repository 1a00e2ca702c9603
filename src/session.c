/*
 * session.c - HTTP(S) transport over one libcurl easy handle per Session.
 *
 * The handle is reused across requests and never curl_easy_reset, so libcurl keeps its
 * connection cache (keep-alive) and TLS session cache; per-request options are set afresh on
 * every call instead. libcurl callbacks only copy bytes into C buffers owned by the session:
 * no Lua API call and no raise may happen inside curl_easy_perform, because a longjmp across
 * libcurl frames would leave the handle in an undefined state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "errors.h"
#include "session.h"
#include "version.h"

#if !defined(_WIN32)
#include <pthread.h>
#endif

#define BUF_MIN 4096                /* buffers never shrink below this */
#define BUF_KEEP (1024 * 1024)      /* after a bigger response, give memory back down to BUF_MIN */
#define DEFAULT_MAX_BODY (32L * 1024 * 1024)

struct buf {
    char *data;
    size_t len, cap;
};

struct session {
    CURL *curl;                   /* NULL once closed */
    struct buf body, hdr;
    size_t max_body;
    int too_large;                /* set by the write callback when max_body is crossed */
    int oom;                      /* set by a callback when a buffer could not grow */
    long num_connects;            /* of the last request, for session:info() */
    char errbuf[CURL_ERROR_SIZE];
};

/* ---- process-wide initialisation ------------------------------------------------------- */

static CURLcode global_rc = CURLE_FAILED_INIT;
static void global_init(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

#if defined(_WIN32)
#include <windows.h>
static INIT_ONCE global_once = INIT_ONCE_STATIC_INIT;
static BOOL CALLBACK global_init_win(PINIT_ONCE o, PVOID p, PVOID *c) {
    (void)o, (void)p, (void)c;
    global_init();
    return TRUE;
}
int session_global_init(void) {
    InitOnceExecuteOnce(&global_once, global_init_win, NULL, NULL);
    return global_rc == CURLE_OK;
}
#else
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
int session_global_init(void) {
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK;
}
#endif

/* ---- buffers -------------------------------------------------------------------------- */

static int buf_reserve(struct buf *b, size_t extra) {
    size_t need = b->len + extra, cap;
    char *p;
    if (need < b->len)
        return 0; /* overflow */
    if (need <= b->cap)
        return 1;
    cap = b->cap < BUF_MIN ? BUF_MIN : b->cap;
    while (cap < need)
        cap = cap > ((size_t)-1) / 2 ? need : cap * 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return 0;
    b->data = p;
    b->cap = cap;
    return 1;
}

static int buf_append(struct buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n))
        return 0;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 1;
}

/* Between requests: forget the contents, and hand back memory after an unusually big one. */
static void buf_rewind(struct buf *b) {
    b->len = 0;
    if (b->cap > BUF_KEEP) {
        char *p = realloc(b->data, BUF_MIN);
        if (p != NULL) {
            b->data = p;
            b->cap = BUF_MIN;
        }
    }
}

static void buf_free(struct buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* ---- libcurl callbacks: C only, never Lua ----------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct session *s = ud;
    size_t n = size * nmemb;
    /* Counted after decompression, so a small gzip bomb is caught as well. */
    if (n > s->max_body - s->body.len) {
        s->too_large = 1;
        return 0; /* anything != n aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (!buf_append(&s->body, ptr, n)) {
        s->oom = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct session *s = ud;
    size_t n = size * nmemb;
    /*
     * A new status line starts a new header block (100 Continue, proxy CONNECT): keep only the
     * final response's headers.
     */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        s->hdr.len = 0;
    if (s->hdr.len + n > s->max_body) {
        s->too_large = 1;
        return 0;
    }
    if (!buf_append(&s->hdr, ptr, n)) {
        s->oom = 1;
        return 0;
    }
    return n;
}

/* ---- userdata plumbing ----------------------------------------------------------------- */

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
    buf_free(&s->body);
    buf_free(&s->hdr);
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

/* "aliyun-iot/0.1.0 libcurl/7.88.1 Lua 5.4.6" */
static void push_user_agent(lua_State *L) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
#if defined(LUA_RELEASE)
    const char *lua = LUA_RELEASE;
#else
    const char *lua = LUA_VERSION;
#endif
    lua_pushfstring(L, "aliyun-iot/%s libcurl/%s %s", AIOT_VERSION, v->version, lua);
}

/* Optional number option in opts (table at index 1), in seconds, returned in milliseconds. */
static long opt_seconds(lua_State *L, const char *name, long def_ms) {
    long ms = def_ms;
    int t = aiot_getfield(L, 1, name);
    if (t == LUA_TNUMBER) {
        lua_Number v = lua_tonumber(L, -1);
        if (!(v > 0 && v <= 86400.0 * 365))
            luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a positive number", name));
        ms = (long)(v * 1000.0 + 0.5);
        if (ms < 1)
            ms = 1;
    } else if (t != LUA_TNIL) {
        luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a number (got %s)", name,
                                            luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return ms;
}

/* Optional string option: leaves the string on the stack (so the pointer stays valid). */
static const char *opt_string(lua_State *L, const char *name) {
    int t = aiot_getfield(L, 1, name);
    if (t == LUA_TSTRING)
        return lua_tostring(L, -1);
    if (t != LUA_TNIL)
        luaL_argerror(L, 1, lua_pushfstring(L, "option '%s' must be a string (got %s)", name,
                                            luaL_typename(L, -1)));
    return NULL;
}

#define SETOPT(opt, val) \
    do { \
        if (rc == CURLE_OK) \
            rc = curl_easy_setopt(s->curl, (opt), (val)); \
    } while (0)

/* core.new_session([opts]) -> Session */
static int l_new_session(lua_State *L) {
    long timeout_ms = 10000, connect_ms = 5000;
    int verify = 1, t;
    size_t max_body = (size_t)DEFAULT_MAX_BODY;
    const char *cafile = NULL, *suffix = NULL, *proxy = NULL, *noproxy = NULL, *ua;
    struct session *s;
    CURLcode rc = CURLE_OK;

    /* Validate every option before anything is allocated. */
    if (lua_isnoneornil(L, 1)) {
        lua_settop(L, 0);
        lua_newtable(L);
    }
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    timeout_ms = opt_seconds(L, "timeout", timeout_ms);
    connect_ms = opt_seconds(L, "connect_timeout", connect_ms);
    t = aiot_getfield(L, 1, "verify");
    if (t == LUA_TBOOLEAN)
        verify = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        return luaL_argerror(L, 1, "option 'verify' must be a boolean");
    lua_pop(L, 1);
    t = aiot_getfield(L, 1, "max_body_bytes");
    if (t != LUA_TNIL) {
        lua_Number v = lua_tonumber(L, -1);
        if (!aiot_isintegral(L, -1) || v < 1 || v > 1024.0 * 1024 * 1024 * 1024)
            return luaL_argerror(L, 1, "option 'max_body_bytes' must be a positive integer");
        max_body = (size_t)v;
    }
    lua_pop(L, 1);
    cafile = opt_string(L, "cafile");             /* stays at index 2 or is absent */
    suffix = opt_string(L, "user_agent_suffix");  /* stays on the stack too */
    proxy = opt_string(L, "proxy");                /* "" disables proxies, env included */
    noproxy = opt_string(L, "noproxy");
    if (suffix != NULL && (strchr(suffix, '\r') || strchr(suffix, '\n')))
        return luaL_argerror(L, 1, "option 'user_agent_suffix' must not contain CR or LF");

    push_user_agent(L);
    if (suffix != NULL) {
        lua_pushliteral(L, " ");
        lua_pushstring(L, suffix);
        lua_concat(L, 3);
    }
    ua = lua_tostring(L, -1); /* anchored on the stack until we return */

    /* Userdata and metatable first: from here on __gc sees NULL or a valid handle. */
    s = aiot_newuserdata(L, sizeof *s);
    memset(s, 0, sizeof *s);
    aiot_setmetatable(L, SESSION_MT);
    s->max_body = max_body;

    if (!session_global_init())
        return luaL_error(L, "curl_global_init failed");
    s->curl = curl_easy_init();
    if (s->curl == NULL)
        return luaL_error(L, "curl_easy_init failed");

    /* Session-wide options: set once, kept across requests because we never reset. */
    SETOPT(CURLOPT_NOSIGNAL, 1L);  /* no SIGALRM for DNS timeouts: we may be in a threaded host */
    SETOPT(CURLOPT_ERRORBUFFER, s->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)s);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)s);
    SETOPT(CURLOPT_ACCEPT_ENCODING, "");   /* every encoding this libcurl can decode */
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);    /* a redirect from the API is an answer, not a hop */
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max_body);
    SETOPT(CURLOPT_USERAGENT, ua);         /* libcurl copies strings it is given */
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_SSL_VERIFYPEER, verify ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, verify ? 2L : 0L);
    if (cafile != NULL)
        SETOPT(CURLOPT_CAINFO, cafile);
    /* Without these libcurl still honours https_proxy/HTTPS_PROXY, http_proxy, no_proxy. */
    if (proxy != NULL)
        SETOPT(CURLOPT_PROXY, proxy);
    if (noproxy != NULL)
        SETOPT(CURLOPT_NOPROXY, noproxy);
    if (rc != CURLE_OK)
        return luaL_error(L, "cannot configure libcurl: %s", curl_easy_strerror(rc));
    return 1;
}

/* Map a failed transfer to an error object; the message never contains the URL. */
static void push_transport_error(lua_State *L, struct session *s, CURLcode rc) {
    const char *msg = s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc);
    if (s->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        char m[128];
        snprintf(m, sizeof m, "response exceeds max_body_bytes (%lu bytes)",
                 (unsigned long)s->max_body);
        errors_push(L, AIOT_E_RESPONSE_TOO_LARGE, m, 0);
    } else {
        const char *code;
        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
            code = AIOT_E_TIMEOUT;
            break;
        case CURLE_COULDNT_RESOLVE_PROXY:
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_GOT_NOTHING:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
            code = AIOT_E_CONNECTION_FAILED;
            break;
        default:
            code = AIOT_E_TRANSPORT_ERROR;
            if (s->oom)
                msg = "not enough memory for the response";
            break;
        }
        errors_push(L, code, msg, 0);
    }
    lua_pushinteger(L, (lua_Integer)rc);
    lua_setfield(L, -2, "curl_code");
}

/*
 * Parse the raw header block into a table: lowercase names, trimmed values, last one wins.
 * Runs after curl_easy_perform has returned, so Lua API calls are fine here.
 */
static void push_headers(lua_State *L, const struct buf *h) {
    const char *p = h->data, *end = h->data + h->len;
    lua_newtable(L);
    while (p != NULL && p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = eol ? eol : end;
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        char name[256];
        size_t nlen;
        /* Status lines, the blank line and obsolete folded lines carry no "name:" */
        if (colon != NULL && colon > p && *p != ' ' && *p != '\t' &&
            (nlen = (size_t)(colon - p)) < sizeof name) {
            const char *v = colon + 1, *ve = line_end;
            size_t i;
            for (i = 0; i < nlen; i++) {
                char c = p[i];
                name[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
            }
            while (v < ve && (*v == ' ' || *v == '\t'))
                v++;
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t'))
                ve--;
            lua_pushlstring(L, name, nlen);
            lua_pushlstring(L, v, (size_t)(ve - v));
            lua_rawset(L, -3);
        }
        p = eol ? eol + 1 : NULL;
    }
}

/* Header table (index 3) to a curl_slist; raises only before anything is allocated. */
static struct curl_slist *build_headers(lua_State *L, int idx) {
    struct curl_slist *list = NULL, *nl;
    /* Pass 1 validates, so pass 2 cannot raise while it owns the list. */
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen, vlen, i;
        const char *k, *v;
        if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
            luaL_argerror(L, idx, "headers must map strings to strings");
        k = lua_tolstring(L, -2, &klen);
        v = lua_tolstring(L, -1, &vlen);
        if (klen == 0)
            luaL_argerror(L, idx, "empty header name");
        for (i = 0; i < klen; i++)
            if (k[i] == ':' || k[i] == '\r' || k[i] == '\n' || k[i] == ' ' || k[i] == '\0')
                luaL_argerror(L, idx, lua_pushfstring(L, "invalid header name '%s'", k));
        /* CR/LF would let a value smuggle extra headers into the request. */
        for (i = 0; i < vlen; i++)
            if (v[i] == '\r' || v[i] == '\n' || v[i] == '\0')
                luaL_argerror(L, idx, lua_pushfstring(L, "invalid value for header '%s'", k));
        lua_pop(L, 1);
    }
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        size_t klen, vlen;
        const char *k = lua_tolstring(L, -2, &klen), *v = lua_tolstring(L, -1, &vlen);
        char *line = malloc(klen + vlen + 3);
        lua_pop(L, 1);
        if (line == NULL)
            goto oom;
        memcpy(line, k, klen);
        if (vlen == 0) {
            line[klen] = ';'; /* "Name;" sends an empty header; "Name:" would remove it */
            line[klen + 1] = '\0';
        } else {
            memcpy(line + klen, ": ", 2);
            memcpy(line + klen + 2, v, vlen);
            line[klen + 2 + vlen] = '\0';
        }
        nl = curl_slist_append(list, line);
        free(line);
        if (nl == NULL)
            goto oom;
        list = nl;
    }
    return list;
oom:
    curl_slist_free_all(list);
    luaL_error(L, "not enough memory");
    return NULL;
}

/*
 * session:request(method, url [, headers [, body]])
 *   -> status, body, headers        on any HTTP response (4xx/5xx included)
 *   -> nil, err                     on transport failure
 */
static int l_session_request(lua_State *L) {
    struct session *s = check_open(L);
    size_t mlen, blen = 0;
    const char *method = luaL_checklstring(L, 2, &mlen);
    const char *url = luaL_checkstring(L, 3);
    const char *body = NULL;
    struct curl_slist *headers = NULL, *nl;
    CURLcode rc = CURLE_OK;
    long status = 0;

    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TTABLE);
    if (!lua_isnoneornil(L, 5))
        body = luaL_checklstring(L, 5, &blen);
    if (mlen == 0 || strpbrk(method, " \r\n") != NULL)
        return luaL_argerror(L, 2, "invalid HTTP method");
    lua_settop(L, 5);

    if (lua_istable(L, 4))
        headers = build_headers(L, 4);
    /* libcurl would wait up to a second for "100 Continue" before sending a larger body. */
    nl = curl_slist_append(headers, "Expect:");
    if (nl == NULL) {
        curl_slist_free_all(headers);
        return luaL_error(L, "not enough memory");
    }
    headers = nl;

    /* From here to curl_slist_free_all nothing may raise. */
    s->errbuf[0] = '\0';
    s->too_large = s->oom = 0;
    buf_rewind(&s->body);
    buf_rewind(&s->hdr);

    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_HTTPHEADER, headers);
    SETOPT(CURLOPT_NOBODY, 0L);
    SETOPT(CURLOPT_CUSTOMREQUEST, (char *)NULL);
    if (body != NULL || strcmp(method, "POST") == 0) {
        /* The body string is anchored at stack index 5 until perform returns: no copy. */
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        SETOPT(CURLOPT_POSTFIELDS, body != NULL ? body : "");
        if (strcmp(method, "POST") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "HEAD") == 0) {
        SETOPT(CURLOPT_HTTPGET, 1L);
        SETOPT(CURLOPT_NOBODY, 1L);
    } else {
        SETOPT(CURLOPT_HTTPGET, 1L);
        if (strcmp(method, "GET") != 0)
            SETOPT(CURLOPT_CUSTOMREQUEST, method);
    }
    if (rc == CURLE_OK)
        rc = curl_easy_perform(s->curl);

    /* Never leave a pointer to the freed list, or to the Lua body, in the handle. */
    curl_easy_setopt(s->curl, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, "");
    curl_slist_free_all(headers);
    curl_easy_getinfo(s->curl, CURLINFO_NUM_CONNECTS, &s->num_connects);

    if (rc != CURLE_OK) {
        lua_pushnil(L);
        push_transport_error(L, s, rc);
        return 2;
    }
    curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, s->body.data != NULL ? s->body.data : "", s->body.len);
    push_headers(L, &s->hdr);
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
    lua_pushinteger(L, (lua_Integer)s->max_body);
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
        {"__gc", l_session_close},
        {"__tostring", l_session_tostring},
#if LUA_VERSION_NUM >= 504
        {"__close", l_session_close},
#endif
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"new_session", l_new_session},
        {NULL, NULL},
    };

    if (luaL_newmetatable(L, SESSION_MT)) {
        aiot_setfuncs(L, meta, 0);
        lua_newtable(L);
        aiot_setfuncs(L, methods, 0);
        lua_setfield(L, -2, "__index");
        lua_pushliteral(L, SESSION_MT);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);

    aiot_setfuncs(L, funcs, 0);
    push_user_agent(L);
    lua_setfield(L, -2, "user_agent");
}
