/*
 * compat.h - the only place that knows about Lua 5.1/5.2/5.3/5.4/LuaJIT differences: the
 * prefixed shims, the linkage macros (AIOT_HIDDEN, AIOT_EXPORT) and aiot_register_class, the
 * one way our C files register a metatable.
 *
 * Every shim carries the aiot_ prefix. We never define bare luaL_* / lua_* names: LuaJIT 2.1
 * exports some 5.2 functions itself, and a second definition with the same name would clash
 * at link or load time.
 */
#ifndef AIOT_COMPAT_H
#define AIOT_COMPAT_H

#include <math.h>
#include <string.h>

#include <lua.h>
#include <lauxlib.h>

/* Internal (non-exported) linkage for functions shared between our translation units. */
#if defined(__GNUC__) || defined(__clang__)
#define AIOT_HIDDEN __attribute__((visibility("hidden")))
#else
#define AIOT_HIDDEN
#endif

#if defined(_WIN32)
#define AIOT_EXPORT __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define AIOT_EXPORT __attribute__((visibility("default")))
#else
#define AIOT_EXPORT
#endif

#if LUA_VERSION_NUM >= 502
#define aiot_setfuncs(L, l, nup) luaL_setfuncs((L), (l), (nup))
#define aiot_rawlen(L, i) lua_rawlen((L), (i))
#define aiot_absindex(L, i) lua_absindex((L), (i))
#define aiot_testudata(L, i, tn) luaL_testudata((L), (i), (tn))
#define aiot_setmetatable(L, tn) luaL_setmetatable((L), (tn))
#else
/* 5.1 / LuaJIT: luaL_register with a NULL name, plus upvalue support like 5.2's setfuncs. */
static inline void aiot_setfuncs(lua_State *L, const luaL_Reg *l, int nup) {
    luaL_checkstack(L, nup + 1, "too many upvalues");
    for (; l->name != NULL; l++) {
        int i;
        for (i = 0; i < nup; i++)
            lua_pushvalue(L, -nup);
        lua_pushcclosure(L, l->func, nup);
        lua_setfield(L, -(nup + 2), l->name);
    }
    lua_pop(L, nup);
}
#define aiot_rawlen(L, i) lua_objlen((L), (i))
#define aiot_absindex(L, i) \
    (((i) > 0 || (i) <= LUA_REGISTRYINDEX) ? (i) : lua_gettop(L) + (i) + 1)
static inline void *aiot_testudata(lua_State *L, int i, const char *tn) {
    void *p = lua_touserdata(L, i);
    if (p == NULL || !lua_getmetatable(L, i))
        return NULL;
    luaL_getmetatable(L, tn);
    if (!lua_rawequal(L, -1, -2))
        p = NULL;
    lua_pop(L, 2);
    return p;
}
static inline void aiot_setmetatable(lua_State *L, const char *tn) {
    luaL_getmetatable(L, tn);
    lua_setmetatable(L, -2);
}
#endif

/* "Lua 5.4.6" for the User-Agent: LUA_RELEASE where lua.h has it, else LUA_VERSION. */
#if defined(LUA_RELEASE)
#define AIOT_LUA_RELEASE LUA_RELEASE
#else
#define AIOT_LUA_RELEASE LUA_VERSION
#endif

/* luaL_typerror (5.1) became luaL_typeerror only in 5.4's public API; 5.2/5.3 have neither. */
static inline int aiot_typeerror(lua_State *L, int arg, const char *tname) {
    const char *msg = lua_pushfstring(L, "%s expected, got %s", tname, luaL_typename(L, arg));
    return luaL_argerror(L, arg, msg);
}

/* 5.4 userdata carry user values; we never use them, so ask for none. */
#if LUA_VERSION_NUM >= 504
#define aiot_newuserdata(L, sz) lua_newuserdatauv((L), (sz), 0)
#else
#define aiot_newuserdata(L, sz) lua_newuserdata((L), (sz))
#endif

/* lua_getfield/lua_rawget return the value's type only from 5.3 on. */
#if LUA_VERSION_NUM >= 503
#define aiot_getfield(L, i, k) lua_getfield((L), (i), (k))
#else
static inline int aiot_getfield(lua_State *L, int i, const char *k) {
    lua_getfield(L, i, k);
    return lua_type(L, -1);
}
#endif

/*
 * Push a number as an integer when it has an exact integer representation (5.3+ has a
 * separate integer subtype, and math.type() callers want it); earlier Lua has only numbers.
 */
#if LUA_VERSION_NUM >= 503
static inline void aiot_pushintegral(lua_State *L, lua_Number n) {
    lua_Integer i;
    if (lua_numbertointeger(n, &i) && (lua_Number)i == n)
        lua_pushinteger(L, i);
    else
        lua_pushnumber(L, n);
}
#else
#define aiot_pushintegral(L, n) lua_pushnumber((L), (n))
#endif

/* True when the value is a number with no fractional part (NaN and inf excluded). */
static inline int aiot_isintegral(lua_State *L, int i) {
    lua_Number n;
    if (lua_type(L, i) != LUA_TNUMBER)
        return 0;
#if LUA_VERSION_NUM >= 503
    if (lua_isinteger(L, i))
        return 1;
#endif
    n = lua_tonumber(L, i);
    return n == n && n - n == 0 && floor(n) == n; /* rejects NaN, +-inf, fractions */
}

/*
 * Register the metatable `name` in the registry (a class: a userdata type, or the error
 * tables): metamethods from `meta`, methods from `methods` in __index, and __name (5.1 and
 * 5.2's luaL_newmetatable do not set it). A method named "close" is also __gc and, on 5.4,
 * __close: one idempotent function, whichever way the object ends. Either list may be NULL.
 * An existing metatable is kept as it is, so a second luaopen sees the same class. Leaves
 * the stack as it was.
 */
static inline void aiot_register_class(lua_State *L, const char *name, const luaL_Reg *methods,
                                       const luaL_Reg *meta) {
    const luaL_Reg *m;
    if (luaL_newmetatable(L, name)) {
        if (meta != NULL)
            aiot_setfuncs(L, meta, 0);
        if (methods != NULL) {
            lua_newtable(L);
            aiot_setfuncs(L, methods, 0);
            lua_setfield(L, -2, "__index");
            for (m = methods; m->name != NULL; m++) {
                if (strcmp(m->name, "close") != 0)
                    continue;
                lua_pushcfunction(L, m->func);
                lua_setfield(L, -2, "__gc");
#if LUA_VERSION_NUM >= 504
                lua_pushcfunction(L, m->func);
                lua_setfield(L, -2, "__close");
#endif
            }
        }
        lua_pushstring(L, name);
        lua_setfield(L, -2, "__name");
    }
    lua_pop(L, 1);
}

#endif /* AIOT_COMPAT_H */
