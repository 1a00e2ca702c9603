/*
 * core.c - luaopen_aliyun_iot_core, the module's only exported symbol: initialises the
 * libraries once per process, then lets each concern fill the module table through its own
 * xxx_open(L).
 *
 * Nothing here does I/O: requiring the module must stay cheap and side-effect free.
 * curl_global_init (which also sets up OpenSSL for libcurl) runs once per process, whichever
 * Lua state opens the module first; Session and Multi only use the initialised library.
 */
#include <curl/curl.h>

#include "clock.h"
#include "compat.h"
#include "decode.h"
#include "errors.h"
#include "multi.h"
#include "redact.h"
#include "redis.h"
#include "session.h"
#include "sign.h"
#include "taskset.h"
#include "version.h"

/* ---- process-wide library initialisation ---------------------------------------------- */

static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init(void) {
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* Runs global_init exactly once, even when several threads open Lua states at the same time
 * (curl_global_init itself is not thread-safe in every libcurl we support); 0 on failure. */
#if defined(_WIN32)
#include <windows.h>
static INIT_ONCE global_once = INIT_ONCE_STATIC_INIT;
static BOOL CALLBACK global_init_win(PINIT_ONCE o, PVOID p, PVOID *c) {
    (void)o, (void)p, (void)c;
    global_init();
    return TRUE;
}
static int core_global_init(void) {
    InitOnceExecuteOnce(&global_once, global_init_win, NULL, NULL);
    return global_rc == CURLE_OK;
}
#else
#include <pthread.h>
static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int core_global_init(void) {
    pthread_once(&global_once, global_init);
    return global_rc == CURLE_OK;
}
#endif

/* ---- the module ------------------------------------------------------------------------ */

AIOT_EXPORT int luaopen_aliyun_iot_core(lua_State *L);

int luaopen_aliyun_iot_core(lua_State *L) {
    /* Before any Session or Multi can exist: core.new_session is registered below. */
    if (!core_global_init())
        return luaL_error(L, "aliyun.iot.core: curl_global_init failed");

    lua_newtable(L);
    errors_open(L);
    sign_open(L);
    session_open(L);
    multi_open(L);
    decode_open(L);
    clock_open(L);
    taskset_open(L);
    redact_open(L);
    redis_open(L);

    lua_pushliteral(L, AIOT_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
