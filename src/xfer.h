/*
 * xfer.h - what one libcurl transfer needs, shared by the Session (one easy handle, blocking)
 * and the Multi (a pool of easy handles driven by a multi handle): option parsing, easy-handle
 * configuration, per-transfer receive buffers and the C-only callbacks that fill them, request
 * headers, and turning a finished transfer into Lua values (headers table, error object).
 *
 * Nothing here calls Lua from inside libcurl: the callbacks only copy bytes.
 */
#ifndef AIOT_XFER_H
#define AIOT_XFER_H

#include <stddef.h>

#include <curl/curl.h>

#include "compat.h"

#define XFER_DEFAULT_MAX_BODY (32L * 1024 * 1024)

struct xfer_buf {
    char *data;
    size_t len, cap;
};

/* Receive state of one easy handle; CURLOPT_*DATA point here, so it must not move. */
struct xfer {
    struct xfer_buf body, hdr;
    size_t max_body;
    int too_large;                /* set by a callback when max_body is crossed */
    int oom;                      /* set by a callback when a buffer could not grow */
    char errbuf[CURL_ERROR_SIZE];
};

/* Options shared by core.new_session and core.new_multi. Strings point into Lua strings that
 * xfer_check_opts leaves on the stack: valid until the C function returns. */
struct xfer_opts {
    long timeout_ms, connect_ms;
    int verify;
    int gzip;                     /* ask for compressed answers and decode them (default on) */
    size_t max_body;
    const char *cafile, *proxy, *noproxy, *user_agent;
};

/* Options of one request: its timeout (the handle's unless given) and whether it must go out
 * on a new connection. */
struct xfer_request_opts {
    long timeout_ms;
    int fresh;
};

/* The optional request options table at idx: { timeout = seconds, fresh = boolean }. */
AIOT_HIDDEN void xfer_check_request_opts(lua_State *L, int idx, long default_timeout_ms,
                                         struct xfer_request_opts *r);

/* Validate the options table at index 1 (raises on misuse); pushes anchoring strings. */
AIOT_HIDDEN void xfer_check_opts(lua_State *L, struct xfer_opts *o);

/* "aliyun-iot/<version> libcurl/7.88.1 Lua 5.4.6" */
AIOT_HIDDEN void xfer_push_user_agent(lua_State *L);

/* Handle-wide options (callbacks into x, timeouts, TLS, proxy, user agent); never raises. */
AIOT_HIDDEN CURLcode xfer_configure(CURL *c, struct xfer *x, const struct xfer_opts *o);

/* Raises (luaL_argerror) unless method is a plausible HTTP method token. */
AIOT_HIDDEN void xfer_check_method(lua_State *L, int arg, const char *method, size_t mlen);

/*
 * Header table at idx to a curl_slist (plus "Expect:"). Raises only before anything is
 * allocated, or after freeing what it allocated.
 */
AIOT_HIDDEN struct curl_slist *xfer_build_headers(lua_State *L, int idx);

/* Forget the last response (buffers rewound, flags cleared) before a new request. */
AIOT_HIDDEN void xfer_begin(struct xfer *x);

/*
 * Per-request options. body may be NULL (no body unless method is POST). With copy_body the
 * body is copied into the handle (CURLOPT_COPYPOSTFIELDS); else it must outlive the transfer.
 */
AIOT_HIDDEN CURLcode xfer_set_request(CURL *c, const char *method, const char *url,
                                      struct curl_slist *headers, const char *body, size_t blen,
                                      int copy_body, const struct xfer_request_opts *r);

/* After the transfer: drop every pointer to request memory from the handle. */
AIOT_HIDDEN void xfer_end_request(CURL *c);

/* Raw header block to a table: lowercase names, trimmed values, last one wins. */
AIOT_HIDDEN void xfer_push_headers(lua_State *L, const struct xfer_buf *h);

/* A failed transfer's error object (SDK.Timeout, SDK.ConnectionFailed, ...), with curl_code. */
AIOT_HIDDEN void xfer_push_error(lua_State *L, const struct xfer *x, CURLcode rc);

AIOT_HIDDEN void xfer_free(struct xfer *x);

#endif
