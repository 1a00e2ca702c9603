/*
 * decode.c - turn an API response body into a response table, a page of tasks, or an error.
 *
 * JSON parsing goes through our own lua-cjson instance (require("cjson.safe").new()), created
 * on first use and cached in the registry: changing its settings (depth cap, strict numbers)
 * must not affect the shared cjson module an OpenResty application also uses.
 *
 * Whatever arrives from the network, these functions never raise: odd shapes and types become
 * SDK.BadResponse errors. Only programmer misuse (a body that is not a string, an HTTP status
 * that is not a number from 0 to 999) and a missing lua-cjson raise.
 */
#include <stdio.h>
#include <string.h>

#include "decode.h"
#include "errors.h"

#define CJSON_DECODE_KEY "aliyun.iot.cjson.decode"
#define DECODE_MAX_DEPTH 64
#define SNIPPET_MAX 80

/* Push our cjson instance's decode function, creating the instance on first use. */
static void push_json_decode(lua_State *L) {
    if (aiot_getfield(L, LUA_REGISTRYINDEX, CJSON_DECODE_KEY) == LUA_TFUNCTION)
        return;
    lua_pop(L, 1);
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    lua_call(L, 1, 1);
    if (aiot_getfield(L, -1, "new") != LUA_TFUNCTION)
        luaL_error(L, "cjson.safe has no new(): lua-cjson 2.1 or later is required");
    lua_call(L, 0, 1); /* the private instance */
    lua_getfield(L, -1, "decode_max_depth");
    lua_pushinteger(L, DECODE_MAX_DEPTH);
    lua_call(L, 1, 0);
    /* No NaN/Infinity/hex: they are not JSON and no API response contains them. */
    lua_getfield(L, -1, "decode_invalid_numbers");
    lua_pushboolean(L, 0);
    lua_call(L, 1, 0);
    lua_getfield(L, -1, "decode");
    lua_pushvalue(L, -1);
    lua_setfield(L, LUA_REGISTRYINDEX, CJSON_DECODE_KEY);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Push a printable, escaped copy of the first SNIPPET_MAX bytes of the body. */
static void push_snippet(lua_State *L, const char *s, size_t len) {
    char out[SNIPPET_MAX * 4 + 4];
    size_t i, j = 0, n = len < SNIPPET_MAX ? len : SNIPPET_MAX;
    /* cppcheck generalises from the empty-body call site; len is often > 0 */
    /* cppcheck-suppress knownConditionTrueFalse */
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            out[j++] = (char)c;
        } else {
            snprintf(out + j, 5, "\\x%02X", c);
            j += 4;
        }
    }
    /* cppcheck-suppress knownConditionTrueFalse */
    if (len > n) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    lua_pushlstring(L, out, j);
}

static void push_bad_json(lua_State *L, const char *body, size_t len, long status) {
    push_snippet(L, body, len);
    lua_pushfstring(L, "response is not valid JSON (HTTP %d, %d bytes): %s", (int)status,
                    (int)len, lua_tostring(L, -1));
    errors_push(L, AIOT_E_BAD_RESPONSE, lua_tostring(L, -1), status);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Replace the message on top of the stack with a BadResponse error carrying it. */
static void bad_shape(lua_State *L, long status) {
    errors_push(L, AIOT_E_BAD_RESPONSE, lua_tostring(L, -1), status);
    lua_replace(L, -2);
}

/* t[field] if it is a string, else NULL; nothing left on the stack (t anchors the string). */
static const char *field_str(lua_State *L, int t, const char *field) {
    const char *s = NULL;
    if (aiot_getfield(L, t, field) == LUA_TSTRING)
        s = lua_tostring(L, -1);
    lua_pop(L, 1);
    return s;
}

/*
 * Decode body (stack index 1) with http_status; leaves on the top either the response table
 * (returns 1) or an error object (returns 0). Never raises for network data.
 * A 1xx or 3xx status is never a result, whatever its body (a proxy or cache answered, not
 * the API). With need_success, a 2xx body is a result only with "Success": true (the boolean):
 * an IoT answer without it (a Code such as Throttling.User and no Success, "Success": "false")
 * is an error carrying its Code, or SDK.BadResponse.
 */
static int decode_response(lua_State *L, const char *body, size_t len, long status,
                           int need_success) {
    const char *p = body, *end = body + len;
    int t, ok;
    const char *code, *msg;
    int has_success, failed;

    if (status < 200 || (status >= 300 && status < 400)) {
        lua_pushfstring(L, "HTTP %d is not an answer of the API", (int)status);
        errors_push(L, AIOT_E_HTTP_ERROR, lua_tostring(L, -1), status);
        lua_replace(L, -2);
        return 0;
    }

    /* cjson also accepts arrays and scalars; only an object is a response. */
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    if (p == end || *p != '{') {
        push_bad_json(L, body, len, status);
        return 0;
    }
    push_json_decode(L);
    lua_pushvalue(L, 1); /* the body string itself (both callers have it at 1): no copy */
    ok = lua_pcall(L, 1, 1, 0) == 0; /* cjson.safe returns nil, msg; pcall guards the rest */
    if (!ok || lua_type(L, -1) != LUA_TTABLE) {
        lua_pop(L, 1);
        push_bad_json(L, body, len, status);
        return 0;
    }
    t = lua_gettop(L);

    code = field_str(L, t, "Code");
    has_success = aiot_getfield(L, t, "Success") == LUA_TBOOLEAN;
    failed = has_success ? !lua_toboolean(L, -1) : need_success;
    lua_pop(L, 1);
    msg = field_str(L, t, "Message");
    if (msg == NULL)
        msg = field_str(L, t, "ErrorMessage");

    if (code != NULL && (status >= 400 || failed)) {
        errors_push(L, code, msg != NULL ? msg : "no error message in the response", status);
        errors_setstr(L, "request_id", field_str(L, t, "RequestId"));
        errors_setstr(L, "host_id", field_str(L, t, "HostId"));
        errors_setstr(L, "recommend", field_str(L, t, "Recommend"));
    } else if (failed && has_success) {
        errors_push(L, "UnknownError",
                    msg != NULL ? msg : "the response says Success=false without an error code",
                    status);
        errors_setstr(L, "request_id", field_str(L, t, "RequestId"));
    } else if (status >= 400) {
        lua_pushfstring(L, "HTTP %d without an error code", (int)status);
        errors_push(L, AIOT_E_HTTP_ERROR, lua_tostring(L, -1), status);
        lua_replace(L, -2);
        errors_setstr(L, "request_id", field_str(L, t, "RequestId"));
    } else if (failed) {
        errors_push(L, AIOT_E_BAD_RESPONSE, "the response has no \"Success\": true", status);
        errors_setstr(L, "request_id", field_str(L, t, "RequestId"));
    } else {
        return 1;
    }
    lua_replace(L, t); /* error replaces the table */
    return 0;
}

static long check_status(lua_State *L, int idx) {
    lua_Number n = luaL_checknumber(L, idx);
    if (!(n >= 0 && n < 1000))
        luaL_argerror(L, idx, "HTTP status out of range");
    return (long)n;
}

/* core.decode(body, http_status [, need_success]) -> response | nil, err */
static int l_decode(lua_State *L) {
    size_t len;
    const char *body = luaL_checklstring(L, 1, &len);
    long status = check_status(L, 2);
    int need_success = lua_toboolean(L, 3);
    lua_settop(L, 2);
    if (decode_response(L, body, len, status, need_success))
        return 1;
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

/* Is the table at idx a JSON array (non-empty with [1])? Empty tables count as either. */
static int is_array(lua_State *L, int idx) {
    int yes;
    lua_rawgeti(L, idx, 1);
    yes = !lua_isnil(L, -1);
    lua_pop(L, 1);
    return yes;
}

static int is_empty(lua_State *L, int idx) {
    lua_pushnil(L);
    if (lua_next(L, idx) == 0)
        return 1;
    lua_pop(L, 2);
    return 0;
}

static int is_null(lua_State *L, int idx) {
    /* cjson.null is a light userdata wrapping NULL */
    return lua_type(L, idx) == LUA_TLIGHTUSERDATA && lua_touserdata(L, idx) == NULL;
}

/*
 * Tidy one task table in place: drop JSON nulls (a light userdata that is truthy in Lua and
 * would fool `if task.TaskDesc then`), and give integral numbers the integer subtype.
 */
static void tidy_task(lua_State *L, int idx) {
    lua_pushnil(L);
    while (lua_next(L, idx) != 0) {
        if (is_null(L, -1)) {
            lua_pushvalue(L, -2);
            lua_pushnil(L);
            lua_rawset(L, idx); /* clearing an existing field during lua_next is allowed */
        } else if (aiot_isintegral(L, -1)) {
            lua_Number n = lua_tonumber(L, -1);
            lua_pushvalue(L, -2);
            aiot_pushintegral(L, n);
            lua_rawset(L, idx);
        }
        lua_pop(L, 1);
    }
}

/* Copy a paging field as an integer; 0 and an error on top when it is not numeric. */
static int copy_count(lua_State *L, int resp, int page, const char *field, long status) {
    int t = aiot_getfield(L, resp, field);
    if (t == LUA_TNUMBER) {
        lua_Number n = lua_tonumber(L, -1);
        lua_pop(L, 1);
        aiot_pushintegral(L, n);
        lua_setfield(L, page, field);
    } else if (t == LUA_TNIL || is_null(L, -1)) {
        lua_pop(L, 1);
    } else {
        const char *tn = luaL_typename(L, -1);
        lua_pop(L, 1);
        lua_pushfstring(L, "%s is not a number (got %s)", field, tn);
        bad_shape(L, status);
        return 0;
    }
    return 1;
}

/* core.decode_tasks(body, http_status) -> page | nil, err */
static int l_decode_tasks(lua_State *L) {
    static const char *const counts[] = {"Total", "PageSize", "CurrentPage", "PageCount"};
    size_t len, i;
    const char *body = luaL_checklstring(L, 1, &len);
    long status = check_status(L, 2);
    int resp = 0, page, tasks, info, t;
    lua_Integer n = 0;

    lua_settop(L, 2);
    if (!decode_response(L, body, len, status, 1))
        goto fail;
    resp = lua_gettop(L);                     /* 3 */
    lua_createtable(L, 0, 6);
    page = lua_gettop(L);                     /* 4 */
    lua_newtable(L);
    tasks = lua_gettop(L);                    /* 5 */

    for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
        if (!copy_count(L, resp, page, counts[i], status))
            goto bad;
    if (aiot_getfield(L, resp, "RequestId") != LUA_TNIL)
        lua_setfield(L, page, "RequestId");
    else
        lua_pop(L, 1);

    /* Data: missing, null, "", {} or [] all mean "no tasks on this page". */
    t = aiot_getfield(L, resp, "Data");        /* 6 */
    if (t == LUA_TNIL || is_null(L, -1) || (t == LUA_TSTRING && aiot_rawlen(L, -1) == 0))
        goto done;
    if (t != LUA_TTABLE || is_array(L, -1)) {
        lua_pushfstring(L, "Data is not an object (got %s)",
                        t == LUA_TTABLE ? "array" : luaL_typename(L, -1));
        bad_shape(L, status);
        goto bad;
    }
    t = aiot_getfield(L, -1, "SimpleOTATaskInfo");  /* 7 */
    info = lua_gettop(L);
    if (t == LUA_TNIL || is_null(L, info))
        goto done;
    if (t != LUA_TTABLE) {
        lua_pushfstring(L, "Data.SimpleOTATaskInfo is not an array (got %s)",
                        luaL_typename(L, info));
        bad_shape(L, status);
        goto bad;
    }
    if (is_empty(L, info))
        goto done;
    if (!is_array(L, info)) {
        /* One task: some serialisers collapse a one-element list into the element itself. */
        tidy_task(L, info);
        lua_pushvalue(L, info);
        lua_rawseti(L, tasks, 1);
        goto done;
    }
    for (n = 1;; n++) {
        lua_rawgeti(L, info, (int)n);
        if (lua_isnil(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        if (lua_type(L, -1) != LUA_TTABLE || (is_array(L, -1))) {
            const char *tn = lua_type(L, -1) == LUA_TTABLE ? "array" : luaL_typename(L, -1);
            lua_pop(L, 1);
            lua_pushfstring(L, "Data.SimpleOTATaskInfo[%d] is not an object (got %s)", (int)n,
                            tn);
            bad_shape(L, status);
            goto bad;
        }
        tidy_task(L, lua_gettop(L));
        lua_rawseti(L, tasks, (int)n);
    }

done:
    lua_pushvalue(L, tasks);
    lua_setfield(L, page, "tasks");
    lua_pushvalue(L, page);
    return 1;

bad:
    /* A shape error on a decoded response: keep its RequestId for the support ticket. */
    errors_setstr(L, "request_id", field_str(L, resp, "RequestId"));
fail:
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
}

void decode_open(lua_State *L) {
    static const luaL_Reg funcs[] = {
        {"decode", l_decode},
        {"decode_tasks", l_decode_tasks},
        {NULL, NULL},
    };
    aiot_setfuncs(L, funcs, 0);
}
