/*
 * harness.h - what both libFuzzer targets share: a fresh Lua 5.4 state per input with the
 * standard libraries and the C core (compiled into the fuzzer, opened under its real name), a
 * check function written in Lua, and a rule: any Lua error escaping the check is a crash
 * (abort), so libFuzzer records the input.
 *
 * A fresh state per input, closed after it, keeps every run independent (a crash input
 * reproduces alone) and makes mallocs and frees balance exactly, so libFuzzer's per-input leak
 * detection (-detect_leaks, on by default) points at the input that leaked. Lua modules the
 * checks load (cjson) are pinned with dlopen once, so closing a state does not unload them.
 */
#ifndef AIOT_FUZZ_HARNESS_H
#define AIOT_FUZZ_HARNESS_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

int luaopen_aliyun_iot_core(lua_State *L);

static const char *harness_name, *harness_check;
static void (*harness_extra)(lua_State *L);
static lua_State *harness_L;

static int harness_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg != NULL ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Keep the C module `name` (e.g. "cjson") loaded for the life of the process. */
__attribute__((unused)) static void harness_pin_module(lua_State *L, const char *name) {
    const char *path;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, name);
    lua_getfield(L, -3, "cpath");
    lua_call(L, 2, 1);
    path = lua_tostring(L, -1);
    if (path == NULL || dlopen(path, RTLD_NOW | RTLD_GLOBAL) == NULL) {
        fprintf(stderr, "%s: cannot find the Lua C module '%s' (%s)\n", harness_name, name,
                path != NULL ? dlerror() : "not on package.cpath");
        abort();
    }
    lua_pop(L, 2);
}

/* A new state: standard libraries, the core as package.loaded["aliyun.iot.core"], extras. */
static lua_State *harness_new_state(void) {
    lua_State *L = luaL_newstate();
    if (L == NULL)
        abort();
    luaL_openlibs(L);
    luaL_requiref(L, "aliyun.iot.core", luaopen_aliyun_iot_core, 0);
    lua_pop(L, 1);
    if (harness_extra != NULL)
        harness_extra(L);
    return L;
}

/* Remember the check (a Lua chunk; its arguments come as ...) and try it once to compile. */
static void harness_init(const char *name, const char *check, void (*extra)(lua_State *)) {
    lua_State *L;
    harness_name = name;
    harness_check = check;
    harness_extra = extra;
    L = harness_new_state();
    if (luaL_loadbuffer(L, check, strlen(check), name) != LUA_OK) {
        fprintf(stderr, "%s: cannot compile the check: %s\n", name, lua_tostring(L, -1));
        abort();
    }
    lua_close(L);
}

/*
 * Open a state for one input and push the traceback handler, the check function and the core
 * module; the caller pushes the other arguments, then calls harness_call.
 */
static lua_State *harness_begin(void) {
    lua_State *L = harness_L = harness_new_state();
    lua_pushcfunction(L, harness_traceback);
    if (luaL_loadbuffer(L, harness_check, strlen(harness_check), harness_name) != LUA_OK)
        abort();
    lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "aliyun.iot.core");
    lua_remove(L, -2);
    return L;
}

/* Run the check (nargs counts the core module); abort on any error; close the state. */
static void harness_call(int nargs) {
    lua_State *L = harness_L;
    int status = lua_pcall(L, nargs, 0, 1);
    if (status != LUA_OK && status != LUA_ERRMEM) { /* out of memory is the host's problem */
        fprintf(stderr, "%s: check failed: %s\n", harness_name, lua_tostring(L, -1));
        abort();
    }
    lua_close(L);
    harness_L = NULL;
}

#endif
