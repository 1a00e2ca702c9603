/*
 * fuzz_decode.c - libFuzzer target for response decoding: core.decode and core.decode_tasks
 * over arbitrary bytes, through a real lua_State with lua-cjson (require "cjson.safe", the
 * system's lua-cjson for Lua 5.4); the checks are C.
 *
 * Input format: the response body, optionally preceded by an HTTP status line of three
 * digits and '\n' ("404\n{...}"). Without one, the body is decoded as HTTP 200 and as HTTP 500.
 *
 * Invariants checked (any violation, and any error raised by the core, aborts):
 *   - each call returns a table, or nil and an error object (core.is_error) whose code and
 *     message are strings, whose retryable is a boolean, and whose tostring() is a string;
 *   - decode_tasks accepts only what decode accepts;
 *   - core.error accepts any number decoded from the body (HttpStatus, Total, PageSize) as
 *     http_status;
 *   - a page has a tasks array (keys exactly 1..#tasks), each task a table with no JSON null
 *     left in it and every integral number in integer range an integer; Total, PageSize,
 *     CurrentPage and PageCount are absent or numbers.
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "checks.h"
#include "harness.h"

static int integral_in_range(lua_Number v) {
    return v == v && v == floor(v) && v >= -0x1p63 && v < 0x1p63; /* NaN, inf fail */
}

/* core.decode's answer at r, r + 1: a table and nothing, or nil and an error object. */
static void check_answer(lua_State *L, int r, const char *fn) {
    if (lua_isnil(L, r))
        harness_check_error(L, r + 1, fn);
    else if (lua_type(L, r) != LUA_TTABLE || !lua_isnil(L, r + 1))
        luaL_error(L, "%s returned %s, %s", fn, luaL_typename(L, r), luaL_typename(L, r + 1));
}

/* A paging count is absent or a number, an integer when it is integral and in range. */
static void check_count(lua_State *L, int page, const char *field) {
    int t = lua_getfield(L, page, field);
    if (t != LUA_TNIL && t != LUA_TNUMBER)
        luaL_error(L, "page.%s is a %s", field, luaL_typename(L, -1));
    if (t == LUA_TNUMBER && !lua_isinteger(L, -1) && integral_in_range(lua_tonumber(L, -1)))
        luaL_error(L, "page.%s = %f is not an integer", field, lua_tonumber(L, -1));
    lua_pop(L, 1);
}

static void check_tasks(lua_State *L, int page) {
    lua_Integer n;
    int tasks;
    if (lua_getfield(L, page, "tasks") != LUA_TTABLE)
        luaL_error(L, "page.tasks is a %s", luaL_typename(L, -1));
    tasks = lua_gettop(L);
    n = (lua_Integer)lua_rawlen(L, tasks);
    lua_pushnil(L);
    while (lua_next(L, tasks) != 0) {
        lua_Integer i = lua_tointeger(L, -2);
        if (!lua_isinteger(L, -2) || i < 1 || i > n)
            luaL_error(L, "tasks has key %s", luaL_tolstring(L, -2, NULL));
        if (lua_type(L, -1) != LUA_TTABLE)
            luaL_error(L, "task %d is a %s", (int)i, luaL_typename(L, -1));
        lua_pushnil(L);
        while (lua_next(L, -2) != 0) {
            if (lua_type(L, -1) == LUA_TLIGHTUSERDATA)
                luaL_error(L, "task %d field %s is a JSON null", (int)i,
                           luaL_tolstring(L, -2, NULL));
            if (lua_type(L, -1) == LUA_TNUMBER && !lua_isinteger(L, -1) &&
                integral_in_range(lua_tonumber(L, -1)))
                luaL_error(L, "task %d field %s = %f is not an integer", (int)i,
                           luaL_tolstring(L, -2, NULL), lua_tonumber(L, -1));
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }
    lua_pop(L, 1);
}

/* Both decoders over one body and status. */
static void check_body(lua_State *L, int body, lua_Integer status) {
    static const char *const numeric[] = {"HttpStatus", "Total", "PageSize"};
    static const char *const counts[] = {"Total", "PageSize", "CurrentPage", "PageCount"};
    int r = lua_gettop(L), resp_ok;
    size_t i;

    harness_core(L, "decode");
    lua_pushvalue(L, body);
    lua_pushinteger(L, status);
    lua_call(L, 2, 2); /* r + 1, r + 2 */
    check_answer(L, r + 1, "decode");
    resp_ok = !lua_isnil(L, r + 1);
    /* errors the Lua layer builds from decoded fields: any number may become http_status */
    for (i = 0; resp_ok && i < sizeof numeric / sizeof numeric[0]; i++) {
        if (lua_getfield(L, r + 1, numeric[i]) == LUA_TNUMBER) {
            harness_core(L, "error");
            lua_createtable(L, 0, 3);
            lua_pushliteral(L, "X");
            lua_setfield(L, -2, "code");
            lua_pushliteral(L, "m");
            lua_setfield(L, -2, "message");
            lua_pushvalue(L, -3);
            lua_setfield(L, -2, "http_status");
            lua_call(L, 1, 1);
            harness_check_error(L, lua_gettop(L), "error");
            lua_pop(L, 1);
        }
        lua_pop(L, 1);
    }

    harness_core(L, "decode_tasks");
    lua_pushvalue(L, body);
    lua_pushinteger(L, status);
    lua_call(L, 2, 2); /* r + 3, r + 4 */
    check_answer(L, r + 3, "decode_tasks");
    if (!lua_isnil(L, r + 3)) {
        if (!resp_ok)
            luaL_error(L, "decode_tasks accepted a body that decode refused");
        check_tasks(L, r + 3);
        for (i = 0; i < sizeof counts / sizeof counts[0]; i++)
            check_count(L, r + 3, counts[i]);
    }
    lua_settop(L, r);
}

/* One input: (data, size) as the harness passes them. */
static int check(lua_State *L) {
    const char *data = lua_touserdata(L, 1);
    size_t size = (size_t)lua_tointeger(L, 2);
    if (size >= 4 && data[3] == '\n' && data[0] >= '0' && data[0] <= '9' && data[1] >= '0' &&
        data[1] <= '9' && data[2] >= '0' && data[2] <= '9') {
        lua_pushlstring(L, data + 4, size - 4);
        check_body(L, 3, (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0'));
    } else {
        lua_pushlstring(L, data, size);
        check_body(L, 3, 200);
        check_body(L, 3, 500);
    }
    return 0;
}

/* Creates the core's cjson instance, which lives as long as the state. */
static const char warmup[] = "{\"Success\":true,\"Data\":{\"SimpleOTATaskInfo\":[{\"TaskId\":1}]}}";

static const struct harness_target target = {
    .name = "fuzz_decode",
    .check = check,
    .warmup = warmup,
    .warmup_len = sizeof warmup - 1,
    .pin = "cjson.safe",
};
