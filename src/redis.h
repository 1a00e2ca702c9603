/* redis.h - a blocking Redis connection (hiredis) for the rate limiter's shared store. */
#ifndef AIOT_REDIS_H
#define AIOT_REDIS_H

#include "compat.h"

#define REDIS_MT "aliyun.iot.Redis"

AIOT_HIDDEN void redis_open(lua_State *L);

#endif
