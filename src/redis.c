/*
 * redis.c - the rate limiter's Redis connection in plain Lua and embedded hosts: a Redis
 * userdata owning one blocking hiredis context, with a connect timeout and a command timeout.
 * It offers only what the shared store needs: AUTH, SELECT, SCRIPT LOAD and EVALSHA (the
 * protocol is hiredis's; nothing here writes RESP by hand). Inside OpenResty the store talks
 * to Redis through lua-resty-redis over cosockets instead (aliyun.iot.transport.resty_redis).
 *
 *   local r, err = core.redis_connect(host, port, connect_timeout, command_timeout)
 *   r:auth(password) r:select(db)             -> true | nil, err
 *   r:script_load(script)                     -> sha | nil, err
 *   r:evalsha(sha, numkeys, key..., arg...)   -> reply | nil, err
 *   r:close()                                 (also __gc and, on 5.4, __close)
 *
 * Replies: strings and status replies as strings, integers as integers, arrays as tables, a
 * nil reply as false. Failures are the project's error tables: SDK.Timeout or
 * SDK.ConnectionFailed for the network (hiredis cannot use a context after that: every later
 * call returns the same error without I/O, and the caller makes a new connection), and
 * SDK.RedisError for an error reply, with redis_error = its first word (NOSCRIPT, WRONGPASS,
 * NOAUTH, ERR, ...). No message ever holds an argument of a command, so AUTH's password
 * cannot leak through one.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>

#include <hiredis/hiredis.h>

#include "errors.h"
#include "redis.h"

#define MAX_ARGS 32         /* EVALSHA sha numkeys + keys and args: the store sends 8 */
#define MAX_DEPTH 8         /* nested arrays in a reply */

struct redis {
    redisContext *c;        /* NULL once closed (or when connecting failed) */
    char where[280];        /* "host:port", for messages */
};

static struct redis *check_redis(lua_State *L) {
    return luaL_checkudata(L, 1, REDIS_MT);
}

static struct redis *check_open(lua_State *L) {
    struct redis *r = check_redis(L);
    if (r->c == NULL)
        luaL_error(L, "attempt to use a closed Redis connection");
    return r;
}

static struct timeval timeval_of(lua_State *L, int arg, lua_Number s) {
    struct timeval tv;
    if (!(s > 0 && s <= 86400))
        luaL_argerror(L, arg, "timeout must be seconds, > 0 and at most a day");
    tv.tv_sec = (time_t)floor(s);
    tv.tv_usec = (suseconds_t)((s - floor(s)) * 1e6);
    if (tv.tv_sec == 0 && tv.tv_usec == 0)
        tv.tv_usec = 1;
    return tv;
}

/* Push the error of a context that failed: hiredis keeps it in c->err and c->errstr. */
static void push_context_error(lua_State *L, const char *where, const redisContext *c, int saved_errno) {
    const char *what = c != NULL && c->errstr[0] ? c->errstr : "cannot allocate a Redis context";
    int timed_out = saved_errno == EAGAIN || saved_errno == EWOULDBLOCK || saved_errno == ETIMEDOUT ||
                    strstr(what, "timed out") != NULL || strstr(what, "temporarily unavailable") != NULL;
    lua_pushnil(L);
    if (timed_out)
        lua_pushfstring(L, "Redis at %s: timed out (%s)", where, what);
    else
        lua_pushfstring(L, "Redis at %s: %s", where, what);
    errors_push(L, timed_out ? AIOT_E_TIMEOUT : AIOT_E_CONNECTION_FAILED, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
}

/* An error reply: SDK.RedisError, not retryable, redis_error = the reply's first word. */
static void push_reply_error(lua_State *L, const char *where, const redisReply *reply) {
    size_t word = strcspn(reply->str, " ");
    lua_pushfstring(L, "Redis at %s answered: %s", where, reply->str);
    errors_push(L, AIOT_E_REDIS_ERROR, lua_tostring(L, -1), 0);
    lua_remove(L, -2);
    lua_pushlstring(L, reply->str, word);
    lua_setfield(L, -2, "redis_error");
}

/*
 * Push a reply as a Lua value. Pushing may raise only on memory errors; the caller frees the
 * reply right after, so such an error would leak one reply, never corrupt anything.
 */
static void push_reply(lua_State *L, const char *where, const redisReply *reply, int depth) {
    size_t i;
    switch (reply->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
        lua_pushlstring(L, reply->str, reply->len);
        break;
    case REDIS_REPLY_INTEGER:
        lua_pushinteger(L, (lua_Integer)reply->integer);
        break;
    case REDIS_REPLY_ARRAY:
        if (depth >= MAX_DEPTH) {
            lua_pushboolean(L, 0);
            break;
        }
        luaL_checkstack(L, 4, "Redis reply nested too deeply");
        lua_createtable(L, reply->elements > 1024 ? 1024 : (int)reply->elements, 0);
        for (i = 0; i < reply->elements; i++) {
            push_reply(L, where, reply->element[i], depth + 1);
            lua_rawseti(L, -2, (int)(i + 1));
        }
        break;
    case REDIS_REPLY_ERROR:
        push_reply_error(L, where, reply); /* inside an array (EXEC): the error as a value */
        break;
    default: /* REDIS_REPLY_NIL, and RESP3 types hiredis 0.14 does not know */
        lua_pushboolean(L, 0);
        break;
    }
}

/*
 * Send `cmd` [`sub`] followed by the arguments at stack indexes first..top (strings or
 * numbers), wait for the reply. Returns what a method returns: 1 value, or nil and an error.
 * `status_ok`: an "OK" status reply becomes true (AUTH, SELECT).
 */
static int run(lua_State *L, const char *cmd, const char *sub, int first, int status_ok) {
    struct redis *r = check_open(L);
    const char *argv[MAX_ARGS];
    size_t lens[MAX_ARGS];
    int argc = 0, i, top = lua_gettop(L), saved_errno;
    redisReply *reply;

    if (top - first + 1 + 2 > MAX_ARGS)
        return luaL_error(L, "too many arguments for a Redis command (at most %d)", MAX_ARGS - 2);
    argv[argc] = cmd, lens[argc++] = strlen(cmd);
    if (sub != NULL)
        argv[argc] = sub, lens[argc++] = strlen(sub);
    for (i = first; i <= top; i++) {
        argv[argc] = luaL_checklstring(L, i, &lens[argc]);
        argc++;
    }
    if (r->c->err) { /* an earlier failure: hiredis cannot use this context any more */
        push_context_error(L, r->where, r->c, 0);
        return 2;
    }
    errno = 0;
    reply = redisCommandArgv(r->c, argc, argv, lens);
    saved_errno = errno;
    if (reply == NULL) {
        push_context_error(L, r->where, r->c, saved_errno);
        return 2;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        lua_pushnil(L);
        push_reply_error(L, r->where, reply);
        freeReplyObject(reply);
        return 2;
    }
    if (status_ok && reply->type == REDIS_REPLY_STATUS && strcmp(reply->str, "OK") == 0)
        lua_pushboolean(L, 1);
    else
        push_reply(L, r->where, reply, 0);
    freeReplyObject(reply);
    return 1;
}

static int l_redis_auth(lua_State *L) {
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    return run(L, "AUTH", NULL, 2, 1);
}

static int l_redis_select(lua_State *L) {
    lua_Integer db;
    if (!aiot_isintegral(L, 2) || (db = (lua_Integer)lua_tonumber(L, 2)) < 0 || db > 1000000)
        return luaL_argerror(L, 2, "database number expected (an integer >= 0)");
    lua_settop(L, 2);
    return run(L, "SELECT", NULL, 2, 1);
}

static int l_redis_script_load(lua_State *L) {
    luaL_checkstring(L, 2);
    lua_settop(L, 2);
    return run(L, "SCRIPT", "LOAD", 2, 0);
}

/* r:evalsha(sha, numkeys, key..., arg...): the arguments as EVALSHA takes them. */
static int l_redis_evalsha(lua_State *L) {
    luaL_checkstring(L, 2);
    if (!aiot_isintegral(L, 3) || lua_tonumber(L, 3) < 0 || lua_tonumber(L, 3) > lua_gettop(L) - 3)
        return luaL_argerror(L, 3, "number of keys expected (at most the number of arguments after it)");
    return run(L, "EVALSHA", NULL, 2, 0);
}

/* close, __gc and __close: idempotent, and safe on a userdata whose connect failed. */
static int l_redis_close(lua_State *L) {
    struct redis *r = check_redis(L);
    if (r->c != NULL) {
        redisFree(r->c);
        r->c = NULL;
    }
    return 0;
}

static int l_redis_tostring(lua_State *L) {
    struct redis *r = check_redis(L);
    if (r->c == NULL)
        lua_pushliteral(L, REDIS_MT " (closed)");
    else
        lua_pushfstring(L, REDIS_MT " (%s%s)", r->where, r->c->err ? ", failed" : "");
    return 1;
}

/* core.redis_connect(host, port, connect_timeout [, command_timeout]) -> Redis | nil, err */
static int l_redis_connect(lua_State *L) {
    const char *host = luaL_checkstring(L, 1);
    lua_Integer port = 0;
    struct timeval connect_tv, command_tv;
    struct redis *r;
    redisContext *c;
    int saved_errno;

    if (!aiot_isintegral(L, 2) || (port = (lua_Integer)lua_tonumber(L, 2)) < 1 || port > 65535)
        return luaL_argerror(L, 2, "port expected (1-65535)");
    connect_tv = timeval_of(L, 3, luaL_checknumber(L, 3));
    command_tv = timeval_of(L, 4, luaL_optnumber(L, 4, luaL_checknumber(L, 3)));

    /* Userdata and metatable first: from here on __gc sees NULL or a valid context. */
    r = aiot_newuserdata(L, sizeof *r);
    memset(r, 0, sizeof *r);
    aiot_setmetatable(L, REDIS_MT);
    snprintf(r->where, sizeof r->where, "%s:%d", host, (int)port);

    errno = 0;
    c = redisConnectWithTimeout(host, (int)port, connect_tv);
    saved_errno = errno;
    if (c == NULL || c->err) {
        push_context_error(L, r->where, c, saved_errno);
        if (c != NULL)
            redisFree(c);
        return 2;
    }
    r->c = c;
    if (redisSetTimeout(c, command_tv) != REDIS_OK) {
        push_context_error(L, r->where, c, errno);
        redisFree(c);
        r->c = NULL;
        return 2;
    }
    return 1;
}

void redis_open(lua_State *L) {
    static const luaL_Reg methods[] = {
        {"auth", l_redis_auth},
        {"select", l_redis_select},
        {"script_load", l_redis_script_load},
        {"evalsha", l_redis_evalsha},
        {"close", l_redis_close},
        {NULL, NULL},
    };
    static const luaL_Reg meta[] = {
        {"__tostring", l_redis_tostring},
        {NULL, NULL},
    };
    static const luaL_Reg funcs[] = {
        {"redis_connect", l_redis_connect},
        {NULL, NULL},
    };
    aiot_register_class(L, REDIS_MT, methods, meta); /* close is __gc and __close too */
    aiot_setfuncs(L, funcs, 0);
    lua_pushfstring(L, "%d.%d.%d", HIREDIS_MAJOR, HIREDIS_MINOR, HIREDIS_PATCH);
    lua_setfield(L, -2, "hiredis_version");
}
