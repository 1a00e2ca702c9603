/* session.h - the libcurl transport: a Session userdata owning one reusable easy handle. */
#ifndef AIOT_SESSION_H
#define AIOT_SESSION_H

#include "compat.h"

#define SESSION_MT "aliyun.iot.Session"

AIOT_HIDDEN void session_open(lua_State *L);

#endif
