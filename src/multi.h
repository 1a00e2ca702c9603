/* multi.h - concurrent transfers: a Multi userdata over a libcurl multi handle and a fixed
 * pool of reused easy handles, for the concurrent pager. */
#ifndef AIOT_MULTI_H
#define AIOT_MULTI_H

#include "compat.h"

#define MULTI_MT "aliyun.iot.Multi"

/* Registers core.new_multi and the Multi metatable in the module table at the top. */
AIOT_HIDDEN void multi_open(lua_State *L);

#endif
