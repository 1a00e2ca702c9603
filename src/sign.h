/*
 * sign.h - request signing (sign.c): core.percent_encode, core.sign_v1 (HMAC-SHA1),
 * core.sign_v3 (ACS3-HMAC-SHA256), core.nonce and core.timestamp. Everything else in sign.c
 * is static.
 */
#ifndef AIOT_SIGN_H
#define AIOT_SIGN_H

#include "compat.h"

/* Registers the signing functions in the module table at the top of the stack. */
AIOT_HIDDEN void sign_open(lua_State *L);

#endif
