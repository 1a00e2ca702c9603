/* taskset.h - the listing's TaskId ledger outside the Lua heap: a TaskSet userdata mapping
 * each TaskId (as a keyed 128-bit fingerprint) to a small mark, the pass that saw it last. */
#ifndef AIOT_TASKSET_H
#define AIOT_TASKSET_H

#include "compat.h"

#define TASKSET_MT "aliyun.iot.TaskSet"

/* Registers core.new_taskset and the TaskSet metatable in the module table at the top. */
AIOT_HIDDEN void taskset_open(lua_State *L);

#endif
