/* errors.h - the error object shared by C and Lua: a plain table with a registry metatable. */
#ifndef AIOT_ERRORS_H
#define AIOT_ERRORS_H

#include "compat.h"

#define ERRORS_MT "aliyun.iot.Error"

/* Local codes, for failures that happen on our side of the wire. */
#define AIOT_E_INVALID_ARGUMENT "SDK.InvalidArgument"
#define AIOT_E_MISSING_CREDENTIALS "SDK.MissingCredentials"
#define AIOT_E_TIMEOUT "SDK.Timeout"
#define AIOT_E_CONNECTION_FAILED "SDK.ConnectionFailed"
#define AIOT_E_RESPONSE_TOO_LARGE "SDK.ResponseTooLarge"
#define AIOT_E_BAD_RESPONSE "SDK.BadResponse"
#define AIOT_E_HTTP_ERROR "SDK.HttpError"
#define AIOT_E_TRANSPORT_ERROR "SDK.TransportError"
#define AIOT_E_DEPTH_CAP_EXCEEDED "SDK.DepthCapExceeded"
#define AIOT_E_INCOMPLETE_LISTING "SDK.IncompleteListing"
#define AIOT_E_CLIENT_CLOSED "SDK.ClientClosed"
#define AIOT_E_REDIS_ERROR "SDK.RedisError"
#define AIOT_E_RATE_LIMIT_STORE_UNAVAILABLE "SDK.RateLimitStoreUnavailable"

/* 1 when a request that failed this way may be retried (re-signed) with a fair chance. */
AIOT_HIDDEN int errors_is_retryable(const char *code, long http_status);

/*
 * Push a new error table {code, message, http_status, retryable} with the shared metatable.
 * message may be NULL; http_status <= 0 leaves the field out. Callers add request_id etc.
 */
AIOT_HIDDEN void errors_push(lua_State *L, const char *code, const char *message,
                             long http_status);

/* Set t[field] = s on the table at the top of the stack, when s is not NULL. */
AIOT_HIDDEN void errors_setstr(lua_State *L, const char *field, const char *s);

AIOT_HIDDEN void errors_open(lua_State *L);

#endif
