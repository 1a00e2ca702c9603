/*
 * xfer.c - the parts of a libcurl transfer shared by session.c and multi.c (see xfer.h):
 * receive buffers and the C-only callbacks that fill them, option parsing, handle-wide and
 * per-request libcurl options, request header lists, and a finished transfer's headers and
 * error object as Lua values.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "version.h"
#include "xfer.h"

#define BUF_MIN 4096                /* buffers never shrink below this */
#define BUF_KEEP (1024 * 1024)      /* after a bigger response, give memory back down to BUF_MIN */

/* ---- buffers -------------------------------------------------------------------------- */

static int buf_reserve(struct xfer_buf *b, size_t extra) {
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

static int buf_append(struct xfer_buf *b, const char *s, size_t n) {
    if (!buf_reserve(b, n))
        return 0;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 1;
}

/* Between requests: forget the contents, and hand back memory after an unusually big one. */
static void buf_rewind(struct xfer_buf *b) {
    b->len = 0;
    if (b->cap > BUF_KEEP) {
        char *p = realloc(b->data, BUF_MIN);
        if (p != NULL) {
            b->data = p;
            b->cap = BUF_MIN;
        }
    }
}

static void buf_free(struct xfer_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void xfer_free(struct xfer *x) {
    buf_free(&x->body);
    buf_free(&x->hdr);
}

void xfer_begin(struct xfer *x) {
    x->errbuf[0] = '\0';
    x->too_large = x->oom = 0;
    buf_rewind(&x->body);
    buf_rewind(&x->hdr);
}

/* ---- libcurl callbacks: C only, never Lua ----------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    /* Counted after decompression, so a small gzip bomb is caught as well. */
    if (n > x->max_body - x->body.len) {
        x->too_large = 1;
        return 0; /* anything != n aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (!buf_append(&x->body, ptr, n)) {
        x->oom = 1;
        return 0;
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud) {
    struct xfer *x = ud;
    size_t n = size * nmemb;
    /*
     * A new status line starts a new header block (100 Continue, proxy CONNECT): keep only the
     * final response's headers.
     */
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0)
        x->hdr.len = 0;
    if (x->hdr.len + n > x->max_body) {
        x->too_large = 1;
        return 0;
    }
    if (!buf_append(&x->hdr, ptr, n)) {
        x->oom = 1;
        return 0;
    }
    return n;
}

/* ---- options ------------------------------------------------------------------------- */

void xfer_push_user_agent(lua_State *L) {
    const curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    lua_pushfstring(L, "aliyun-iot/%s libcurl/%s %s", AIOT_VERSION, v->version, AIOT_LUA_RELEASE);
}

/* Optional number option in the table at idx, in seconds, returned in milliseconds. */
static long opt_seconds_at(lua_State *L, int idx, const char *name, long def_ms) {
    long ms = def_ms;
    int t = aiot_getfield(L, idx, name);
    if (t == LUA_TNUMBER) {
        lua_Number v = lua_tonumber(L, -1);
        if (!(v > 0 && v <= 86400.0 * 365))
            luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a positive number", name));
        ms = (long)(v * 1000.0 + 0.5);
        if (ms < 1)
            ms = 1;
    } else if (t != LUA_TNIL) {
        luaL_argerror(L, idx, lua_pushfstring(L, "option '%s' must be a number (got %s)", name,
                                              luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    return ms;
}

static long opt_seconds(lua_State *L, const char *name, long def_ms) {
    return opt_seconds_at(L, 1, name, def_ms);
}

void xfer_check_request_opts(lua_State *L, int idx, long default_timeout_ms,
                             struct xfer_request_opts *r) {
    r->timeout_ms = default_timeout_ms;
    r->fresh = 0;
    if (lua_isnoneornil(L, idx))
        return;
    luaL_checktype(L, idx, LUA_TTABLE);
    r->timeout_ms = opt_seconds_at(L, idx, "timeout", default_timeout_ms);
    aiot_getfield(L, idx, "fresh");
    r->fresh = lua_toboolean(L, -1);
    lua_pop(L, 1);
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

void xfer_check_opts(lua_State *L, struct xfer_opts *o) {
    int t;
    const char *suffix;
    o->timeout_ms = 10000;
    o->connect_ms = 5000;
    o->verify = 1;
    o->gzip = 1;
    o->max_body = (size_t)XFER_DEFAULT_MAX_BODY;
    o->timeout_ms = opt_seconds(L, "timeout", o->timeout_ms);
    o->connect_ms = opt_seconds(L, "connect_timeout", o->connect_ms);
    t = aiot_getfield(L, 1, "verify");
    if (t == LUA_TBOOLEAN)
        o->verify = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_argerror(L, 1, "option 'verify' must be a boolean");
    lua_pop(L, 1);
    t = aiot_getfield(L, 1, "gzip");
    if (t == LUA_TBOOLEAN)
        o->gzip = lua_toboolean(L, -1);
    else if (t != LUA_TNIL)
        luaL_argerror(L, 1, "option 'gzip' must be a boolean");
    lua_pop(L, 1);
    t = aiot_getfield(L, 1, "max_body_bytes");
    if (t != LUA_TNIL) {
        lua_Number v = lua_tonumber(L, -1);
        if (!aiot_isintegral(L, -1) || v < 1 || v > 1024.0 * 1024 * 1024 * 1024)
            luaL_argerror(L, 1, "option 'max_body_bytes' must be a positive integer");
        o->max_body = (size_t)v;
    }
    lua_pop(L, 1);
    o->cafile = opt_string(L, "cafile");             /* each stays on the stack, or is absent */
    suffix = opt_string(L, "user_agent_suffix");
    o->proxy = opt_string(L, "proxy");                /* "" disables proxies, env included */
    o->noproxy = opt_string(L, "noproxy");
    if (suffix != NULL && (strchr(suffix, '\r') || strchr(suffix, '\n')))
        luaL_argerror(L, 1, "option 'user_agent_suffix' must not contain CR or LF");

    xfer_push_user_agent(L);
    if (suffix != NULL) {
        lua_pushliteral(L, " ");
        lua_pushstring(L, suffix);
        lua_concat(L, 3);
    }
    o->user_agent = lua_tostring(L, -1); /* anchored on the stack until the caller returns */
}

/* Set an option on handle c unless an earlier one failed; the first failure is kept in rc.
 * Used by xfer_configure and xfer_set_request. */
#define SETOPT(opt, val) \
    do { \
        if (rc == CURLE_OK) \
            rc = curl_easy_setopt(c, (opt), (val)); \
    } while (0)

CURLcode xfer_configure(CURL *c, struct xfer *x, const struct xfer_opts *o) {
    CURLcode rc = CURLE_OK;
    x->max_body = o->max_body;
    SETOPT(CURLOPT_NOSIGNAL, 1L);  /* no SIGALRM for DNS timeouts: we may be in a threaded host */
    SETOPT(CURLOPT_ERRORBUFFER, x->errbuf);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, (void *)x);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)x);
    /* gzip: "Accept-Encoding" with every encoding this libcurl can decode, decoded on the way
     * in; off: no Accept-Encoding (so an identity body), and no decoding (CPU both ends). */
    SETOPT(CURLOPT_ACCEPT_ENCODING, o->gzip ? "" : (char *)NULL);
    SETOPT(CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(CURLOPT_TIMEOUT_MS, o->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, o->connect_ms);
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);    /* a redirect from the API is an answer, not a hop */
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
    SETOPT(CURLOPT_USERAGENT, o->user_agent); /* libcurl copies strings it is given */
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(CURLOPT_SSL_VERIFYPEER, o->verify ? 1L : 0L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, o->verify ? 2L : 0L);
    if (o->cafile != NULL)
        SETOPT(CURLOPT_CAINFO, o->cafile);
    /* Without these libcurl still honours https_proxy/HTTPS_PROXY, http_proxy, no_proxy. */
    if (o->proxy != NULL)
        SETOPT(CURLOPT_PROXY, o->proxy);
    if (o->noproxy != NULL)
        SETOPT(CURLOPT_NOPROXY, o->noproxy);
    return rc;
}

/* ---- requests ------------------------------------------------------------------------ */

void xfer_check_method(lua_State *L, int arg, const char *method, size_t mlen) {
    if (mlen == 0 || strpbrk(method, " \r\n") != NULL)
        luaL_argerror(L, arg, "invalid HTTP method");
}

struct curl_slist *xfer_build_headers(lua_State *L, int idx) {
    struct curl_slist *list = NULL, *nl;
    if (idx != 0) {
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
    }
    /* libcurl would wait up to a second for "100 Continue" before sending a larger body. */
    nl = curl_slist_append(list, "Expect:");
    if (nl == NULL)
        goto oom;
    return nl;
oom:
    curl_slist_free_all(list);
    luaL_error(L, "not enough memory");
    return NULL;
}

CURLcode xfer_set_request(CURL *c, const char *method, const char *url,
                          struct curl_slist *headers, const char *body, size_t blen,
                          int copy_body, const struct xfer_request_opts *r) {
    CURLcode rc = CURLE_OK;
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_TIMEOUT_MS, r->timeout_ms);
    /* A fresh connection: libcurl re-sends a request by itself, same bytes and nonce, when a
     * reused connection fails before any answer; on a new one it never does. */
    SETOPT(CURLOPT_FRESH_CONNECT, r->fresh ? 1L : 0L);
    SETOPT(CURLOPT_HTTPHEADER, headers);
    SETOPT(CURLOPT_NOBODY, 0L);
    SETOPT(CURLOPT_CUSTOMREQUEST, (char *)NULL);
    if (body != NULL || strcmp(method, "POST") == 0) {
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)blen);
        if (copy_body && body != NULL && blen > 0)
            SETOPT(CURLOPT_COPYPOSTFIELDS, body);
        else if (copy_body || body == NULL)
            SETOPT(CURLOPT_POSTFIELDS, "");
        else
            SETOPT(CURLOPT_POSTFIELDS, body); /* the caller keeps it alive until the end */
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
    return rc;
}

#undef SETOPT

void xfer_end_request(CURL *c) {
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
}

/* ---- results ------------------------------------------------------------------------- */

/* Map a failed transfer to an error object; the message never contains the URL. */
void xfer_push_error(lua_State *L, const struct xfer *x, CURLcode rc) {
    const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        char m[128];
        snprintf(m, sizeof m, "response exceeds max_body_bytes (%lu bytes)",
                 (unsigned long)x->max_body);
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
            if (x->oom)
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
 * Runs after the transfer has finished, so Lua API calls are fine here.
 */
void xfer_push_headers(lua_State *L, const struct xfer_buf *h) {
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
                char ch = p[i];
                name[i] = (ch >= 'A' && ch <= 'Z') ? (char)(ch + 32) : ch;
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
