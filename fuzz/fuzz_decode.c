/*
 * fuzz_decode.c - libFuzzer target for response decoding: core.decode and core.decode_tasks
 * over arbitrary bytes, through a real lua_State with lua-cjson (require "cjson.safe", the
 * system's lua-cjson for Lua 5.4).
 *
 * Input format: the response body, optionally preceded by an HTTP status line of three
 * digits and '\n' ("404\n{...}"). Without one, the body is decoded as HTTP 200 and as HTTP 500.
 *
 * Invariants checked (any violation, and any error raised by the core, aborts):
 *   - each call returns a table, or nil and an error object (core.is_error) whose code and
 *     message are strings, whose retryable is a boolean, and whose tostring() is a string;
 *   - decode_tasks accepts only what decode accepts;
 *   - core.error accepts any number decoded from the body (HttpStatus, Total, PageSize) as
 *     http_status;
 *   - a page has a tasks array (keys exactly 1..#tasks), each task a table with no JSON null
 *     left in it and every integral number in integer range an integer; Total, PageSize,
 *     CurrentPage and PageCount are absent or numbers.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "harness.h"

static const char check[] =
    "local core, body, status = ...\n"
    "local format, mtype, floor = string.format, math.type, math.floor\n"
    "local function fail(fmt, ...) error(format(fmt, ...), 2) end\n"
    "local function check_error(err, fn)\n"
    "  if type(err) ~= 'table' or not core.is_error(err) then\n"
    "    fail('%s returned nil without an error object (%s)', fn, type(err))\n"
    "  end\n"
    "  if type(err.code) ~= 'string' then fail('%s: err.code is a %s', fn, type(err.code)) end\n"
    "  if type(err.message) ~= 'string' then fail('%s: err.message is a %s', fn, type(err.message)) end\n"
    "  if type(err.retryable) ~= 'boolean' then fail('%s: err.retryable is a %s', fn, type(err.retryable)) end\n"
    "  if type(tostring(err)) ~= 'string' then fail('%s: tostring(err) is not a string', fn) end\n"
    "end\n"
    "local function integral_in_range(v)\n"
    "  return v == v and v ~= math.huge and v ~= -math.huge and v == floor(v)\n"
    "    and v >= -2^63 and v < 2^63\n"
    "end\n"
    "\n"
    "local resp, err = core.decode(body, status)\n"
    "if resp == nil then check_error(err, 'decode')\n"
    "elseif type(resp) ~= 'table' or err ~= nil then fail('decode returned %s, %s', type(resp), type(err)) end\n"
    "\n"
    "if resp ~= nil then\n"
    "  -- errors the Lua layer builds from decoded fields: any number may become http_status\n"
    "  for _, f in ipairs({ 'HttpStatus', 'Total', 'PageSize' }) do\n"
    "    local v = resp[f]\n"
    "    if type(v) == 'number' then check_error(core.error({ code = 'X', message = 'm', http_status = v }), 'error') end\n"
    "  end\n"
    "end\n"
    "\n"
    "local page, perr = core.decode_tasks(body, status)\n"
    "if page == nil then check_error(perr, 'decode_tasks') return end\n"
    "if type(page) ~= 'table' or perr ~= nil then fail('decode_tasks returned %s, %s', type(page), type(perr)) end\n"
    "if resp == nil then fail('decode_tasks accepted a body that decode refused') end\n"
    "local tasks = page.tasks\n"
    "if type(tasks) ~= 'table' then fail('page.tasks is a %s', type(tasks)) end\n"
    "local n = #tasks\n"
    "for i, t in pairs(tasks) do\n"
    "  if mtype(i) ~= 'integer' or i < 1 or i > n then fail('tasks has key %s', tostring(i)) end\n"
    "  if type(t) ~= 'table' then fail('task %d is a %s', i, type(t)) end\n"
    "  for k, v in pairs(t) do\n"
    "    if type(v) == 'userdata' then fail('task %d field %s is a JSON null', i, tostring(k)) end\n"
    "    if mtype(v) == 'float' and integral_in_range(v) then\n"
    "      fail('task %d field %s = %s is not an integer', i, tostring(k), tostring(v))\n"
    "    end\n"
    "  end\n"
    "end\n"
    "for _, f in ipairs({ 'Total', 'PageSize', 'CurrentPage', 'PageCount' }) do\n"
    "  local v = page[f]\n"
    "  if v ~= nil and type(v) ~= 'number' then fail('page.%s is a %s', f, type(v)) end\n"
    "  if mtype(v) == 'float' and integral_in_range(v) then fail('page.%s = %s is not an integer', f, tostring(v)) end\n"
    "end\n";

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    lua_State *L;
    (void)argc, (void)argv;
    harness_init("=fuzz_decode", check, NULL);
    /* The core loads cjson lazily; load it here first so a missing lua-cjson fails loudly. */
    L = harness_new_state();
    lua_getglobal(L, "require");
    lua_pushliteral(L, "cjson.safe");
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "fuzz_decode: %s\n(install lua-cjson for Lua 5.4)\n", lua_tostring(L, -1));
        abort();
    }
    harness_pin_module(L, "cjson"); /* not unloaded and reloaded with every state */
    lua_close(L);
    return 0;
}

static void run(const char *body, size_t len, int status) {
    lua_State *L = harness_begin(); /* check function, core */
    lua_pushlstring(L, body, len);
    lua_pushinteger(L, status);
    harness_call(3);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *body = (const char *)data;
    if (size >= 4 && data[3] == '\n' && data[0] >= '0' && data[0] <= '9' && data[1] >= '0' &&
        data[1] <= '9' && data[2] >= '0' && data[2] <= '9') {
        run(body + 4, size - 4, (data[0] - '0') * 100 + (data[1] - '0') * 10 + (data[2] - '0'));
    } else {
        run(body, size, 200);
        run(body, size, 500);
    }
    return 0;
}
