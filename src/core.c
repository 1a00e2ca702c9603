/*
 * core.c - luaopen_aliyun_iot_core, the module's only exported symbol.
 *
 * Each concern fills the module table through its own xxx_open(L). Nothing here does I/O:
 * requiring the module must stay cheap and side-effect free (curl_global_init only sets up
 * libraries, and runs once per process).
 */
#include <curl/curl.h>

#include "clock.h"
#include "compat.h"
#include "decode.h"
#include "errors.h"
#include "multi.h"
#include "session.h"
#include "sign.h"
#include "version.h"

AIOT_EXPORT int luaopen_aliyun_iot_core(lua_State *L);

int luaopen_aliyun_iot_core(lua_State *L) {
    /* Before any Session exists, and thread-safely: hosts may open several Lua states. */
    if (!session_global_init())
        return luaL_error(L, "aliyun.iot.core: curl_global_init failed");

    lua_newtable(L);
    errors_open(L);
    sign_open(L);
    session_open(L);
    multi_open(L);
    decode_open(L);
    clock_open(L);

    lua_pushliteral(L, AIOT_VERSION);
    lua_setfield(L, -2, "version");
    lua_pushstring(L, curl_version_info(CURLVERSION_NOW)->version);
    lua_setfield(L, -2, "curl_version");
    return 1;
}
