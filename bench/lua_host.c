/*
 * lua_host.c - a minimal stand-alone Lua 5.4 interpreter linked against the static liblua5.4.a,
 * only so that callgrind can name Lua's internal functions (Debian's lua5.4 binary is
 * stripped). Runs `lua_host script.lua args...` like `lua5.4 script.lua args...` (global `arg`,
 * standard libraries, C modules loaded through LUA_CPATH).
 * Built by scripts/bench with:
 *   cc -O2 -g -Wl,-E -o build/bench/lua_host bench/lua_host.c \
 *      /usr/lib/x86_64-linux-gnu/liblua5.4.a -lm -ldl
 */
#include <stdio.h>

#include <lua5.4/lauxlib.h>
#include <lua5.4/lua.h>
#include <lua5.4/lualib.h>

static int traceback(lua_State *L) {
    luaL_traceback(L, L, lua_tostring(L, 1), 1);
    return 1;
}

int main(int argc, char **argv) {
    lua_State *L;
    int i, rc;
    if (argc < 2) {
        fprintf(stderr, "usage: %s script.lua [args...]\n", argv[0]);
        return 2;
    }
    L = luaL_newstate();
    if (L == NULL)
        return 1;
    luaL_openlibs(L);
    lua_createtable(L, argc, 1);
    for (i = 0; i < argc; i++) {
        lua_pushstring(L, argv[i]);
        lua_rawseti(L, -2, i - 1); /* script at [0], its arguments from [1] */
    }
    lua_setglobal(L, "arg");
    lua_pushcfunction(L, traceback);
    if (luaL_loadfile(L, argv[1]) != LUA_OK) {
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    rc = lua_pcall(L, 0, 0, 1);
    if (rc != LUA_OK)
        fprintf(stderr, "%s\n", lua_tostring(L, -1));
    lua_close(L);
    return rc == LUA_OK ? 0 : 1;
}
