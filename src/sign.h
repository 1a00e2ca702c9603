/* sign.h - request signing: percent-encoding, canonical query, V1 HMAC-SHA1, nonce, clock. */
#ifndef AIOT_SIGN_H
#define AIOT_SIGN_H

#include <stddef.h>

#include "compat.h"

/* Length of s once percent-encoded (RFC 3986 unreserved set, as Alibaba's POP signing wants). */
AIOT_HIDDEN size_t sign_encoded_len(const char *s, size_t len);

/* Percent-encode s into dst, which must hold sign_encoded_len(s, len) bytes; returns dst end. */
AIOT_HIDDEN char *sign_encode(char *dst, const char *s, size_t len);

AIOT_HIDDEN void sign_open(lua_State *L);

#endif
