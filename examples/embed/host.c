/*
 * host.c - a C program that embeds Lua and links the aliyun-iot core statically.
 *
 *   host [--endpoint URL] [--region REGION] [--instance ID] [--lua-dir DIR] [--status STATUS] JOB_ID
 *
 * Lists every task of an OTA job and prints "<n> tasks in job <JobId>" and the counts by
 * status; exits 0 on success, 1 on an API or network error, 2 on bad usage. Credentials
 * come from ALIBABA_CLOUD_ACCESS_KEY_ID / ALIBABA_CLOUD_ACCESS_KEY_SECRET (and
 * ALIBABA_CLOUD_SECURITY_TOKEN), the region from --region or ALIBABA_CLOUD_REGION_ID, an
 * enterprise instance's id from --instance or (read by iot.new) ALIYUN_IOT_INSTANCE_ID.
 *
 * The C core comes from libaliyun_iot_core.a (cmake -DAIOT_STATIC=ON), registered in
 * package.preload, so no aliyun/iot/core.so is looked up on package.cpath; the Lua half
 * of the library is loaded from --lua-dir (default: AIOT_LUA_DIR, set when compiling).
 * lua-cjson stays a loadable module (the core requires "cjson.safe" on first decode).
 *
 * Build: the commands in the README's "Embedding in a C host", which scripts/embed-suite
 * runs as they are written there.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef AIOT_LUA_DIR
#define AIOT_LUA_DIR "lua"
#endif

/* From libaliyun_iot_core.a: the module's only exported symbol. */
int luaopen_aliyun_iot_core(lua_State *L);

/* The work, in Lua: arguments job, endpoint, region, status, instance; returns the task
 * count. An instance of nil leaves iot.new to read ALIYUN_IOT_INSTANCE_ID. */
static const char SCRIPT[] =
    "local job, endpoint, region, status, instance = ...\n"
    "local iot = require('aliyun.iot')\n"
    "local client, err = iot.new{ endpoint = endpoint, region = region, iot_instance_id = instance }\n"
    "if not client then error(err, 0) end\n"
    "local n, by = 0, {}\n"
    "local ok, lerr = pcall(function()\n"
    "  for task in client:tasks{ JobId = job, TaskStatus = status } do\n"
    "    n = n + 1\n"
    "    by[task.TaskStatus] = (by[task.TaskStatus] or 0) + 1\n"
    "  end\n"
    "end)\n"
    "client:close()\n"
    "if not ok then error(lerr, 0) end\n"
    "print(string.format('%d tasks in job %s', n, job))\n"
    "for _, s in ipairs(iot.TASK_STATUSES) do\n"
    "  if by[s] then print(string.format('  %-12s %d', s, by[s])) end\n"
    "end\n"
    "local searchpath = package.searchpath or function() return nil end\n"
    "print('core: ' .. (searchpath('aliyun.iot.core', package.cpath) or 'linked in (package.preload)'))\n"
    "return n\n";

/* Message handler: keep error objects intact (their __tostring renders them), add a
 * traceback to plain string errors, which are bugs rather than API failures. */
static int on_error(lua_State *L) {
    if (lua_type(L, 1) == LUA_TSTRING) {
#if LUA_VERSION_NUM >= 502
        luaL_traceback(L, L, lua_tostring(L, 1), 1);
#endif
    }
    return 1;
}

static const char *describe(lua_State *L, int idx) {
    if (luaL_callmeta(L, idx, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        return lua_tostring(L, -1);
    if (lua_type(L, idx) == LUA_TSTRING)
        return lua_tostring(L, idx);
    return lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, idx));
}

static void usage(const char *msg) {
    fprintf(stderr, "host: %s\nusage: host [--endpoint URL] [--region REGION] [--instance ID] "
                    "[--lua-dir DIR] [--status STATUS] JOB_ID\n", msg);
    exit(2);
}

int main(int argc, char **argv) {
    const char *endpoint = NULL, *region = NULL, *status = NULL, *job = NULL, *instance = NULL;
    const char *lua_dir = AIOT_LUA_DIR;
    lua_State *L;
    int i, rc;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--endpoint") == 0 || strcmp(a, "--region") == 0 || strcmp(a, "--instance") == 0 ||
            strcmp(a, "--lua-dir") == 0 || strcmp(a, "--status") == 0) {
            if (i + 1 >= argc)
                usage("an option needs a value");
            if (strcmp(a, "--endpoint") == 0)
                endpoint = argv[++i];
            else if (strcmp(a, "--region") == 0)
                region = argv[++i];
            else if (strcmp(a, "--instance") == 0)
                instance = argv[++i];
            else if (strcmp(a, "--lua-dir") == 0)
                lua_dir = argv[++i];
            else
                status = argv[++i];
        } else if (a[0] == '-') {
            usage("unknown option");
        } else if (job == NULL) {
            job = a;
        } else {
            usage("only one JOB_ID, please");
        }
    }
    if (job == NULL)
        usage("JOB_ID is missing");

    L = luaL_newstate();
    if (L == NULL) {
        fprintf(stderr, "host: cannot create a Lua state\n");
        return 1;
    }
    luaL_openlibs(L);

    /* package.preload["aliyun.iot.core"] = luaopen_aliyun_iot_core; package.path = lua_dir */
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_aliyun_iot_core);
    lua_setfield(L, -2, "aliyun.iot.core");
    lua_pop(L, 1);
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", lua_dir, lua_dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);

    lua_pushcfunction(L, on_error);
    if (luaL_loadbuffer(L, SCRIPT, sizeof SCRIPT - 1, "=host") != 0) {
        fprintf(stderr, "host: %s\n", lua_tostring(L, -1));
        lua_close(L);
        return 1;
    }
    lua_pushstring(L, job);
    if (endpoint) lua_pushstring(L, endpoint); else lua_pushnil(L);
    if (region) lua_pushstring(L, region); else lua_pushnil(L);
    if (status) lua_pushstring(L, status); else lua_pushnil(L);
    if (instance) lua_pushstring(L, instance); else lua_pushnil(L);
    rc = lua_pcall(L, 5, 1, 1);
    if (rc != 0) {
        fprintf(stderr, "host: %s\n", describe(L, -1));
        lua_close(L);
        return 1;
    }
    lua_close(L);
    return 0;
}
