/*
 * clock.c - time for the Lua layer: plain Lua has only whole-second os.time() and no sleep,
 * while backoff and a 10-requests-per-second limiter need milliseconds. Inside OpenResty the
 * Lua layer uses ngx.now/ngx.sleep instead, so nothing here blocks an nginx worker.
 */
#if !defined(_WIN32) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime, nanosleep */
#endif
#include <errno.h>
#include <math.h>
#include <time.h>

#include "clock.h"

static lua_Number seconds_of(clockid_t id) {
    struct timespec ts;
    clock_gettime(id, &ts);
    return (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec / 1e9;
}

/* core.now() -> seconds since the epoch, with sub-second precision */
static int l_now(lua_State *L) {
    lua_pushnumber(L, seconds_of(CLOCK_REALTIME));
    return 1;
}

/* core.monotonic() -> seconds from an arbitrary origin; never jumps with the wall clock */
static int l_monotonic(lua_State *L) {
    lua_pushnumber(L, seconds_of(CLOCK_MONOTONIC));
    return 1;
}

/* core.sleep(seconds): blocks the calling thread; resumes the rest of the wait after signals */
static int l_sleep(lua_State *L) {
    lua_Number s = luaL_checknumber(L, 1);
    struct timespec req, rem;
    if (!(s > 0))
        return 0;
    if (s > 86400)
        return luaL_argerror(L, 1, "sleep longer than a day");
    req.tv_sec = (time_t)floor(s);
    req.tv_nsec = (long)((s - floor(s)) * 1e9);
    while (nanosleep(&req, &rem) != 0 && errno == EINTR)
        req = rem;
    return 0;
}

void clock_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"now", l_now},
        {"monotonic", l_monotonic},
        {"sleep", l_sleep},
        {NULL, NULL},
    };
    aiot_setfuncs(L, funcs, 0);
}
