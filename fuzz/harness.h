/*
 * harness.h - what the three libFuzzer targets share: one Lua 5.4 state for a batch of inputs
 * (FUZZ_BATCH, default 1000), then closed and a new one opened; the C core compiled into the
 * fuzzer and opened under its real name; the Lua half of the library on package.path
 * (FUZZ_LUA_DIR, default the worktree's lua/); each input checked by the target's C function
 * under lua_pcall, so that any Lua error escaping the check is a crash (abort) and libFuzzer
 * records the input.
 *
 * A state per input (as this harness once did) made the check cost more than the code under
 * test: opening the libraries and compiling a Lua check chunk took most of each execution.
 * A state is now set up once per batch: the target's check is a C closure created with the
 * state, its upvalues being the core module and whatever the target's setup pushed (Lua
 * functions compiled once), and each input is one lua_pcall of it.
 *
 * Leaks. With a state reused, mallocs and frees no longer balance per input (the garbage
 * collector frees an input's objects during later ones), so libFuzzer's per-input leak
 * detection would rerun and LeakSanitizer-scan nearly every input before giving up; with
 * FUZZ_BATCH > 1 the harness passes it -detect_leaks=0 (unless the command line says
 * otherwise) and checks at each batch boundary instead:
 *   - the Lua heap, counted block by block by our allocator, after a full collection: it may
 *     not grow across a batch by more than HARNESS_GROWTH_SLACK blocks beyond what it held
 *     after the state's warm-up input (something keeping a reference per input: a cache in
 *     the registry, an upvalue, a module table);
 *   - lua_close gives back every block the allocator counted;
 *   - after lua_close, no C block allocated during the batch is unreachable (OpenSSL or
 *     malloc memory the core lost on some path): malloc hooks count the blocks the batch
 *     allocated and freed, and only when more were allocated than freed does the harness ask
 *     LeakSanitizer for a recoverable leak check (a scan costs some 100 ms, more than a
 *     batch; libFuzzer gates its own checks the same way). One-time caches (OpenSSL's, the
 *     harness's own buffers) make the count uneven for a batch or two, and the scan then
 *     finds nothing.
 * A failure there aborts with the batch's last input as libFuzzer's artifact, which need not
 * be the culprit: replay the run's corpus with FUZZ_BATCH=1 (a fresh state per input and
 * libFuzzer's own per-input leak detection, the old behaviour) to find the input. The same
 * applies to a crash that does not reproduce alone. LeakSanitizer also checks at exit.
 *
 * Lua C modules the core loads (cjson) are pinned with dlopen once, so closing a state does
 * not unload them.
 *
 * A target includes this file once and defines `target` (struct harness_target below): its
 * check, setup and warm-up input; libFuzzer's two entry points are defined here.
 */
#ifndef AIOT_FUZZ_HARNESS_H
#define AIOT_FUZZ_HARNESS_H

#include <dlfcn.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#ifndef FUZZ_LUA_DIR
#define FUZZ_LUA_DIR "lua"
#endif

#define HARNESS_BATCH_DEFAULT 1000
/* Blocks the Lua heap may gain across a batch without a leak: CallInfo records of the deepest
 * call so far (Lua 5.4 frees them a half per collection) and the like. */
#define HARNESS_GROWTH_SLACK 64

int luaopen_aliyun_iot_core(lua_State *L);
/* Weak: present with -fsanitize=address (or leak), absent in a plain -fsanitize=fuzzer build. */
int __lsan_do_recoverable_leak_check(void) __attribute__((weak));
int __sanitizer_install_malloc_and_free_hooks(void (*)(const volatile void *, size_t),
                                              void (*)(const volatile void *))
    __attribute__((weak));

struct harness_target {
    const char *name; /* "fuzz_sign": the prefix of every message */
    /*
     * One input: called with (lightuserdata data, integer size); upvalue 1 is the core
     * module, upvalues 2.. what setup pushed. Fails by raising (luaL_error).
     */
    lua_CFunction check;
    /* Once per state, optional, protected: push values for check's upvalues; return their
     * number. The core is in package.loaded and package.path points at FUZZ_LUA_DIR. */
    int (*setup)(lua_State *L);
    /* An input run once per state before the heap is measured: it should reach every lazy
     * cache (cjson's instance, OpenSSL's contexts) so that they do not count as growth. */
    const char *warmup;
    size_t warmup_len;
    /* A Lua C module the core requires (e.g. "cjson.safe"), or NULL; pinned at init. */
    const char *pin;
    /* At exit, after the last batch's checks, optional: the target's summary. */
    void (*report)(void);
    /* Once, from LLVMFuzzerInitialize, before anything else, optional. */
    void (*init)(void);
};

/* Each target defines this, with its check; harness.h defines libFuzzer's entry points. */
static const struct harness_target target;

static const struct harness_target *harness_t;
static lua_State *harness_L;
static long harness_batch = HARNESS_BATCH_DEFAULT;
static long harness_in_batch, harness_batches;
static unsigned long harness_inputs; /* every input of this process, warm-ups not counted */
static size_t harness_base_blocks;   /* live blocks after the warm-up input */
static struct { size_t blocks, bytes; } harness_heap;
/* C blocks allocated minus freed by the fuzzing thread while it ran the current batch (the
 * flag is per thread, so libFuzzer's other threads neither count nor race). */
static long harness_c_balance;
static __thread int harness_counting;

static void harness_malloc_hook(const volatile void *p, size_t size) {
    (void)p, (void)size;
    harness_c_balance += harness_counting;
}

static void harness_free_hook(const volatile void *p) {
    (void)p;
    harness_c_balance -= harness_counting;
}

/* The state's allocator: realloc, counting live blocks and bytes. */
static void *harness_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    void *p;
    (void)ud;
    if (nsize == 0) {
        if (ptr != NULL) {
            harness_heap.blocks--;
            harness_heap.bytes -= osize;
            free(ptr);
        }
        return NULL;
    }
    p = realloc(ptr, nsize);
    if (p == NULL)
        return NULL;
    if (ptr == NULL) { /* osize is then the type of the new object, not a size */
        harness_heap.blocks++;
        harness_heap.bytes += nsize;
    } else {
        harness_heap.bytes = harness_heap.bytes - osize + nsize;
    }
    return p;
}

__attribute__((format(printf, 1, 2), noreturn)) static void harness_die(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "%s: ", harness_t->name);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

static int harness_panic(lua_State *L) {
    const char *msg = lua_tostring(L, -1);
    harness_die("unprotected Lua error: %s", msg != NULL ? msg : "(not a string)");
}

static int harness_traceback(lua_State *L) {
    const char *msg = lua_tostring(L, 1);
    luaL_traceback(L, L, msg != NULL ? msg : "(error object is not a string)", 1);
    return 1;
}

/* Run one input through the check at stack index 2; abort on any error but out of memory. */
static void harness_check(lua_State *L, const void *data, size_t size) {
    int status;
    lua_pushvalue(L, 2);
    lua_pushlightuserdata(L, (void *)data);
    lua_pushinteger(L, (lua_Integer)size);
    status = lua_pcall(L, 2, 0, 1);
    if (status != LUA_OK && status != LUA_ERRMEM) /* out of memory is the host's problem */
        harness_die("check failed: %s", lua_tostring(L, -1));
    lua_settop(L, 2);
}

/* Protected part of opening a state: the core, package.path, the target's setup, the check. */
static int harness_setup(lua_State *L) {
    const char *dir = getenv("FUZZ_LUA_DIR");
    int n = 0;
    if (dir == NULL || *dir == '\0')
        dir = FUZZ_LUA_DIR;
    lua_getglobal(L, "package");
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua", dir, dir);
    lua_setfield(L, -2, "path");
    lua_pop(L, 1);
    luaL_requiref(L, "aliyun.iot.core", luaopen_aliyun_iot_core, 0); /* upvalue 1 */
    if (harness_t->setup != NULL)
        n = harness_t->setup(L);
    lua_pushcclosure(L, harness_t->check, 1 + n);
    return 1;
}

/* A new state: stack slot 1 the traceback handler, slot 2 the check; warmed up, measured. */
static lua_State *harness_open(void) {
    lua_State *L = lua_newstate(harness_alloc, NULL);
    if (L == NULL)
        abort();
    lua_atpanic(L, harness_panic);
    luaL_openlibs(L);
    lua_pushcfunction(L, harness_traceback);
    lua_pushcfunction(L, harness_setup);
    if (lua_pcall(L, 0, 1, 1) != LUA_OK)
        harness_die("cannot set up a Lua state: %s", lua_tostring(L, -1));
    if (harness_t->warmup != NULL)
        harness_check(L, harness_t->warmup, harness_t->warmup_len);
    if (harness_batch > 1) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        lua_gc(L, LUA_GCCOLLECT, 0);
        harness_base_blocks = harness_heap.blocks;
    }
    harness_in_batch = 0;
    return L;
}

/* Batch boundary: the leak checks described at the top, then the state is closed. */
static void harness_close(void) {
    lua_State *L = harness_L;
    if (L == NULL)
        return;
    harness_L = NULL;
    harness_batches++;
    if (harness_batch > 1) {
        lua_gc(L, LUA_GCCOLLECT, 0);
        lua_gc(L, LUA_GCCOLLECT, 0);
        if (harness_heap.blocks > harness_base_blocks + HARNESS_GROWTH_SLACK)
            harness_die("the Lua heap grew by %zu blocks over the %ld inputs of this batch "
                        "(something keeps a reference per input; FUZZ_BATCH=1 replays them "
                        "one state each)",
                        harness_heap.blocks - harness_base_blocks, harness_in_batch);
    }
    lua_close(L);
    if (harness_heap.blocks != 0)
        harness_die("lua_close left %zu blocks allocated", harness_heap.blocks);
    if (harness_batch > 1 && harness_c_balance > 0 && __lsan_do_recoverable_leak_check != NULL &&
        __lsan_do_recoverable_leak_check() != 0)
        harness_die("C memory leaked in the last batch of inputs (above); replay the "
                    "corpus with FUZZ_BATCH=1 to find the input");
}

static void harness_exit(void) {
    harness_counting = 1;
    harness_close();
    if (harness_t->report != NULL)
        harness_t->report();
}

/*
 * Require the C module `name` (e.g. "cjson.safe") once, so that a missing one fails loudly,
 * and keep its library loaded for the life of the process: the file of `name` on
 * package.cpath, or of its root ("cjson"), which is where require found a submodule.
 */
static void harness_pin(const char *name) {
    lua_State *L = luaL_newstate();
    const char *path;
    size_t root = strcspn(name, ".");
    int i;
    luaL_openlibs(L);
    lua_getglobal(L, "require");
    lua_pushstring(L, name);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK)
        harness_die("%s\n(install the Lua 5.4 module, e.g. Debian's lua-cjson)",
                    lua_tostring(L, -1));
    for (i = 0, path = NULL; i < 2 && path == NULL; i++) {
        lua_getglobal(L, "package");
        lua_getfield(L, -1, "searchpath");
        lua_pushlstring(L, name, i == 0 ? strlen(name) : root);
        lua_getfield(L, -3, "cpath");
        lua_call(L, 2, 1);
        path = lua_tostring(L, -1);
    }
    if (path == NULL || dlopen(path, RTLD_NOW | RTLD_GLOBAL) == NULL)
        harness_die("cannot pin the Lua C module '%s' (%s)", name,
                    path != NULL ? dlerror() : "not on package.cpath");
    lua_close(L);
}

/*
 * Run the target's init, read FUZZ_BATCH, pin the target's module, and with batches
 * append -detect_leaks=0 to libFuzzer's flags (which it parses after this returns) unless
 * the command line sets -detect_leaks itself.
 */
static void harness_init(const struct harness_target *t, int *argc, char ***argv) {
    static char **args; /* libFuzzer keeps using argv: never freed */
    const char *batch = getenv("FUZZ_BATCH");
    int i;
    harness_t = t;
    if (t->init != NULL)
        t->init();
    if (batch != NULL && *batch != '\0') {
        harness_batch = strtol(batch, NULL, 10);
        if (harness_batch < 1)
            harness_batch = 1;
    }
    if (t->pin != NULL)
        harness_pin(t->pin);
    atexit(harness_exit);
    if (harness_batch == 1)
        return;
    if (__sanitizer_install_malloc_and_free_hooks != NULL)
        __sanitizer_install_malloc_and_free_hooks(harness_malloc_hook, harness_free_hook);
    for (i = 1; i < *argc; i++)
        if (strncmp((*argv)[i], "-detect_leaks=", 14) == 0)
            return;
    args = malloc(((size_t)*argc + 2) * sizeof *args);
    if (args == NULL)
        abort();
    memcpy(args, *argv, (size_t)*argc * sizeof *args);
    args[*argc] = "-detect_leaks=0";
    args[*argc + 1] = NULL;
    *argv = args;
    (*argc)++;
}

/* Check one input in the batch's state. */
static void harness_run(const uint8_t *data, size_t size) {
    harness_counting = 1;
    if (harness_L == NULL) {
        harness_c_balance = 0;
        harness_L = harness_open();
    }
    harness_inputs++;
    harness_check(harness_L, data, size);
    if (++harness_in_batch >= harness_batch)
        harness_close();
    harness_counting = 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    harness_init(&target, argc, argv);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    harness_run(data, size);
    return 0;
}

#endif
