# aliyun-iot: build, test and demo.
#   make demo   install what is missing, build, list a demo OTA job from the bundled emulator
#   make test   install what is missing, build, run every test suite
# Each target first installs missing Debian packages (scripts/ensure-debian-packages).

LUA_VERSION ?= 5.4
LUA         ?= lua$(LUA_VERSION)
BUILD_DIR   ?= build
BUILD_TYPE  ?= RelWithDebInfo

DEB_PACKAGES := gcc make cmake pkg-config curl ca-certificates \
	lua5.4 liblua5.4-dev lua-cjson lua-argparse \
	libcurl4-openssl-dev libssl-dev \
	nginx libnginx-mod-http-lua
TEST_PACKAGES := lua-busted lua-check luarocks tmux

.PHONY: all deps test-deps build test demo lint clean

all: build

deps:
	@scripts/ensure-debian-packages $(DEB_PACKAGES)

test-deps: deps
	@scripts/ensure-debian-packages $(TEST_PACKAGES)

build: deps
	@cmake -S . -B $(BUILD_DIR) -DLUA_VERSION=$(LUA_VERSION) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null
	@cmake --build $(BUILD_DIR) -j2 -- --no-print-directory

test: test-deps build
	@LUA=$(LUA) BUILD_DIR=$(BUILD_DIR) scripts/run-tests

demo: build
	@LUA=$(LUA) BUILD_DIR=$(BUILD_DIR) scripts/demo

lint: test-deps
	luacheck lua spec examples

clean:
	rm -rf $(BUILD_DIR)
