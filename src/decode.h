/* decode.h - response bodies to tables or error objects, through a private lua-cjson. */
#ifndef AIOT_DECODE_H
#define AIOT_DECODE_H

#include "compat.h"

AIOT_HIDDEN void decode_open(lua_State *L);

#endif
