# aliyun-iot: build, test and demo.
#   make demo   install what is missing, build, list a demo OTA job from the bundled emulator
#   make test   install what is missing, build, run every test suite
#   make bench  benchmarks (not part of make test), written to bench/RESULTS.md
#   make demo-openresty   the rollout dashboard (examples/openresty) against the emulator
#   make dist   the source rock; make man   the man page and completion scripts in build/
# Each target first installs missing Debian packages (scripts/ensure-debian-packages).

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
BUILD_DIR   ?= build
BUILD_TYPE  ?= RelWithDebInfo

DEB_PACKAGES := gcc make cmake pkg-config curl ca-certificates \
	lua5.4 liblua5.4-dev lua-cjson lua-argparse \
	libcurl4-openssl-dev libssl-dev libhiredis-dev \
	nginx libnginx-mod-http-lua
# luajit2/libluajit2-5.1-dev is OpenResty's LuaJIT, the one nginx's Lua module links;
# Debian's luajit/libluajit-5.1-dev conflict with it.
OPENRESTY_PACKAGES := luajit2 libluajit2-5.1-dev
# make dist: the source rock is a zip of the rockspec and a git archive of the checkout
# (zip; unzip is what luarocks installs it with).
DIST_PACKAGES := git zip unzip luarocks
# (:= expands at once: every list used here is defined above it.)
TEST_PACKAGES := lua-busted lua-check $(DIST_PACKAGES) lua-socket tmux \
	clang libclang-rt-14-dev llvm valgrind \
	lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
	$(OPENRESTY_PACKAGES) \
	redis-server lua-nginx-redis \
	chromium wrk fonts-wqy-microhei
# lua-nginx-redis is lua-resty-redis (as nginx.redis) for the Redis store's OpenResty client;
# it depends on the nginx-extras metapackage, which adds modules beside nginx and
# libnginx-mod-http-lua and replaces neither.
# chromium (headless) and wrk: the dashboard suite's browser and load; fonts-wqy-microhei
# draws the Chinese TaskDesc text in its screenshots.
# make man: the man page is made from aliyun-ota's help (not part of make test).
MAN_PACKAGES := help2man
FUZZ_SECONDS ?= 40

.PHONY: all deps test-deps build test demo lint clean test-asan test-valgrind fuzz bench \
	matrix resty embed redis dashboard demo-openresty dist rock man

all: build

deps:
	@scripts/ensure-debian-packages $(DEB_PACKAGES)

test-deps: deps
	@scripts/ensure-debian-packages $(TEST_PACKAGES)

build: deps
	@cmake -S . -B $(BUILD_DIR) -DLUA_VERSION=$(LUA_VERSION) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j2 -- --no-print-directory

test: test-deps build
	@LUA=$(LUA) BUILD_DIR=$(BUILD_DIR) FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/run-tests

# The memory-safety suites on their own (make test runs them too).
test-asan: test-deps
	@scripts/asan-suite $(LUA)

test-valgrind: test-deps build
	@BUILD_DIR=$(BUILD_DIR) scripts/valgrind-suite $(LUA)

fuzz: test-deps
	@FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz-suite

# Lua 5.1, 5.2, 5.3 and LuaJIT; OpenResty in real nginx; a C host with the static core.
matrix: test-deps
	@scripts/matrix-suite

resty: test-deps
	@scripts/resty-suite

embed: test-deps
	@scripts/embed-suite

# Three Lua processes and a two-worker nginx sharing one budget through Redis.
redis: test-deps build
	@BUILD_DIR=$(BUILD_DIR) scripts/redis-suite

# The rollout dashboard in nginx and headless Chromium (make test runs it too).
dashboard: test-deps
	@BUILD_DIR=$(BUILD_DIR) scripts/dashboard-suite

# The source rock of this checkout: build/dist/aliyun-iot-<version>-<revision>.src.rock.
dist: deps
	@scripts/ensure-debian-packages $(DIST_PACKAGES)
	@BUILD_DIR=$(BUILD_DIR) scripts/dist

# That rock installed into a temporary tree and used from a clean shell (make test runs it).
rock: deps
	@scripts/ensure-debian-packages $(DIST_PACKAGES)
	@LUA=$(LUA) scripts/rock-suite

# build/aliyun-ota.1 from aliyun-ota's help (help2man), and the completion scripts beside it.
man: build
	@scripts/ensure-debian-packages $(MAN_PACKAGES)
	@BUILD_DIR=$(BUILD_DIR) scripts/make-man

# Benchmarks, not part of make test: writes bench/RESULTS.md.
bench: test-deps build
	@scripts/bench

demo: build
	@LUA=$(LUA) BUILD_DIR=$(BUILD_DIR) scripts/demo

# HOLD=1 keeps the dashboard and the emulator running until Ctrl-C.
demo-openresty: deps
	@scripts/ensure-debian-packages $(OPENRESTY_PACKAGES)
	@LUA=$(LUA) HOLD=$(HOLD) scripts/demo-openresty

lint: test-deps
	luacheck lua spec examples bin

clean:
	rm -rf $(BUILD_DIR) build-5.1 build-5.2 build-5.3 build-5.4 build-luajit build-embed build-asan build-fuzz
