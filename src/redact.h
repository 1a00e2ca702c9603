/* redact.h - the masking loop of errors.scrub/errors.redact in C: a Masker userdata built once
 * per set of secrets, masking every cut of a secret in a text in one pass. */
#ifndef AIOT_REDACT_H
#define AIOT_REDACT_H

#include "compat.h"

#define MASKER_MT "aliyun.iot.Masker"

/* Registers core.new_masker and the Masker metatable in the module table at the top. */
AIOT_HIDDEN void redact_open(lua_State *L);

#endif
