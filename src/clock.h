/* clock.h - wall and monotonic time, and sleeping, for retries and the rate limiter. */
#ifndef AIOT_CLOCK_H
#define AIOT_CLOCK_H

#include "compat.h"

AIOT_HIDDEN void clock_open(lua_State *L);

#endif
