/*
 * errors.c - one error object for C and Lua alike.
 *
 * Errors are plain tables (so Lua code can create, inspect and extend them freely) sharing one
 * metatable kept in the registry under "aliyun.iot.Error"; identity of that metatable is what
 * core.is_error checks.
 */
#include <string.h>

#include "errors.h"

static const struct {
    const char *name;
    const char *code;
} error_codes[] = {
    {"INVALID_ARGUMENT", AIOT_E_INVALID_ARGUMENT},
    {"MISSING_CREDENTIALS", AIOT_E_MISSING_CREDENTIALS},
    {"TIMEOUT", AIOT_E_TIMEOUT},
    {"CONNECTION_FAILED", AIOT_E_CONNECTION_FAILED},
    {"RESPONSE_TOO_LARGE", AIOT_E_RESPONSE_TOO_LARGE},
    {"BAD_RESPONSE", AIOT_E_BAD_RESPONSE},
    {"HTTP_ERROR", AIOT_E_HTTP_ERROR},
    {"TRANSPORT_ERROR", AIOT_E_TRANSPORT_ERROR},
    {"DEPTH_CAP_EXCEEDED", AIOT_E_DEPTH_CAP_EXCEEDED},
    {"INCOMPLETE_LISTING", AIOT_E_INCOMPLETE_LISTING},
    {"CLIENT_CLOSED", AIOT_E_CLIENT_CLOSED},
    {"REDIS_ERROR", AIOT_E_REDIS_ERROR},
    {"RATE_LIMIT_STORE_UNAVAILABLE", AIOT_E_RATE_LIMIT_STORE_UNAVAILABLE},
};

int errors_is_retryable(const char *code, long http_status) {
    if (http_status >= 500)
        return 1;
    if (code == NULL)
        return 0;
    /* Throttling, Throttling.User, Throttling.Api, ...: the quota refills, try again later. */
    if (strncmp(code, "Throttling", 10) == 0)
        return 1;
    return strcmp(code, AIOT_E_TIMEOUT) == 0 || strcmp(code, AIOT_E_CONNECTION_FAILED) == 0 ||
           strcmp(code, "ServiceUnavailable") == 0 || strcmp(code, "InternalError") == 0;
}

void errors_setstr(lua_State *L, const char *field, const char *s) {
    if (s != NULL) {
        lua_pushstring(L, s);
        lua_setfield(L, -2, field);
    }
}

void errors_push(lua_State *L, const char *code, const char *message, long http_status) {
    lua_createtable(L, 0, 6);
    errors_setstr(L, "code", code);
    errors_setstr(L, "message", message);
    if (http_status > 0) {
        lua_pushinteger(L, (lua_Integer)http_status);
        lua_setfield(L, -2, "http_status");
    }
    lua_pushboolean(L, errors_is_retryable(code, http_status));
    lua_setfield(L, -2, "retryable");
    aiot_setmetatable(L, ERRORS_MT);
}

/*
 * Push prefix and t[field] when the field is a string or a number; returns how many values
 * were pushed (0 or 2). Pieces are joined with lua_concat rather than a luaL_Buffer, whose
 * stack discipline forbids pushing values while it is open.
 */
static int push_field(lua_State *L, int t, const char *field, const char *prefix) {
    int type = aiot_getfield(L, t, field);
    if (type == LUA_TSTRING || type == LUA_TNUMBER) {
        lua_pushstring(L, prefix);
        lua_insert(L, -2);
        return 2;
    }
    lua_pop(L, 1);
    return 0;
}

/*
 * "Code: message (HTTP 404, RequestId 1A2B..., attempts 4)", omitting what is nil. Never raises on odd
 * contents: a __tostring that fails would hide the original error.
 */
static int l_error_tostring(lua_State *L) {
    int n, paren;
    if (!lua_istable(L, 1)) {
        lua_pushliteral(L, ERRORS_MT);
        return 1;
    }
    lua_settop(L, 1);
    n = push_field(L, 1, "code", "");
    if (n == 0) {
        lua_pushliteral(L, ERRORS_MT);
        n = 1;
    }
    n += push_field(L, 1, "message", ": ");
    paren = push_field(L, 1, "http_status", " (HTTP ");
    paren += push_field(L, 1, "request_id", paren ? ", RequestId " : " (RequestId ");
    /* After retries, say how many tries it took to give up. */
    paren += push_field(L, 1, "attempts", paren ? ", attempts " : " (attempts ");
    n += paren;
    if (paren) {
        lua_pushliteral(L, ")");
        n++;
    }
    lua_concat(L, n);
    return 1;
}

/* core.error(t): bless a table as an error, filling retryable from the code when unset. */
static int l_error(lua_State *L) {
    long status = 0;
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    if (aiot_getfield(L, 1, "code") != LUA_TSTRING)
        return luaL_argerror(L, 1, "field 'code' must be a string");
    if (aiot_getfield(L, 1, "http_status") == LUA_TNUMBER) {
        /* Range first: converting NaN, inf or 1e300 to long is undefined behaviour (UBSan
         * float-cast-overflow). A status outside 0..999 is no HTTP status: treated as none. */
        lua_Number n = lua_tonumber(L, -1);
        if (n >= 0 && n < 1000)
            status = (long)n;
    }
    if (aiot_getfield(L, 1, "retryable") == LUA_TNIL) {
        lua_pushboolean(L, errors_is_retryable(lua_tostring(L, 2), status));
        lua_setfield(L, 1, "retryable");
    }
    lua_settop(L, 1);
    aiot_setmetatable(L, ERRORS_MT);
    return 1;
}

static int l_is_error(lua_State *L) {
    int yes = 0;
    if (lua_type(L, 1) == LUA_TTABLE && lua_getmetatable(L, 1)) {
        luaL_getmetatable(L, ERRORS_MT);
        yes = lua_rawequal(L, -1, -2);
        lua_pop(L, 2);
    }
    lua_pushboolean(L, yes);
    return 1;
}

void errors_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"error", l_error},
        {"is_error", l_is_error},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_error_tostring},
        {NULL, NULL},
    };
    size_t i;

    /* Kept when it exists already: a second require sees the same metatable. */
    aiot_register_class(L, ERRORS_MT, NULL, meta);

    aiot_setfuncs(L, funcs, 0);

    lua_createtable(L, 0, (int)(sizeof error_codes / sizeof error_codes[0]));
    for (i = 0; i < sizeof error_codes / sizeof error_codes[0]; i++) {
        lua_pushstring(L, error_codes[i].code);
        lua_setfield(L, -2, error_codes[i].name);
    }
    lua_setfield(L, -2, "codes");
}
