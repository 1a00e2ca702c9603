-- What a release is made of agrees with itself: one version (src/version.h,
-- the C core, iot.VERSION, the rockspec's name, version and source, the
-- CLI's --version), a rockspec that names every Lua module of the checkout,
-- and the LICENSE it declares.
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")
local about = require("aliyun.iot.cli.about")
local h = require("cli_helpers")

local function read(path) return assert(h.read_file(path), path) end
local function lines(cmd) return h.lines_of((h.sh(cmd))) end

-- The one rockspec of the checkout, loaded as luarocks loads it: a chunk
-- run in an empty environment.
local function load_rockspec()
  local files = lines("ls *.rockspec")
  assert.are.equal(1, #files, "expected exactly one rockspec, found: " .. table.concat(files, " "))
  local spec = {}
  local chunk = assert(loadfile(files[1], "t", spec))
  if setfenv then setfenv(chunk, spec) end
  chunk()
  return spec, files[1]
end

describe("packaging", function()
  local spec, file = load_rockspec()
  local version = read("src/version.h"):match('#define AIOT_VERSION "([^"]+)"')

  it("has one version: src/version.h, the core, iot.VERSION, the rockspec", function()
    assert.is_string(version)
    assert.truthy(version:match("^%d+%.%d+%.%d+$"), version)
    assert.are.equal(version, core.version)
    assert.are.equal(version, iot.VERSION)
    assert.are.equal(version .. "-" .. about.ROCK_REVISION, spec.version)
    assert.are.equal(spec.package .. "-" .. spec.version .. ".rockspec", file)
    assert.are.equal("aliyun-iot", spec.package)
  end)

  it("says the same version in aliyun-ota --version", function()
    local lua = os.getenv("LUA")
    local cli = (lua == nil or lua == "lua5.4") and "bin/aliyun-ota" or (lua .. " bin/aliyun-ota")
    local out = lines(cli .. " --version")
    assert.are.equal("aliyun-ota " .. version, out[1])
    assert.truthy(out[2]:find("^library  aliyun%.iot " .. version:gsub("%.", "%%.") .. " "), out[2])
    assert.truthy(out[4]:find("^rock     aliyun%-iot " .. spec.version:gsub("[%.%-]", "%%%0") .. " "), out[4])
  end)

  it("names the archive make dist builds as the source, with its top directory", function()
    assert.are.equal("aliyun-iot-" .. version .. ".tar.gz", spec.source.url:match("([^/]+)$"))
    assert.are.equal("aliyun-iot-" .. version, spec.source.dir)
  end)

  it("declares the MIT license that LICENSE holds", function()
    assert.are.equal("MIT", spec.description.license)
    local text = read("LICENSE")
    assert.truthy(text:find("^MIT License\n"))
    assert.truthy(text:find("Copyright %(c%) %d+ aliyun%-iot authors\n"))
  end)

  it("installs with make test every tool the suites call (luarocks, zip, tmux, ...)", function()
    -- CI starts from a machine with only what make test-deps installs; a list
    -- named in TEST_PACKAGES before it is defined expands to nothing (:=).
    local db = h.sh("make -pn test-deps 2>/dev/null")
    local list = assert(db:match("\nTEST_PACKAGES := ([^\n]*)"), "no TEST_PACKAGES in make's database")
    local packages = {}
    for p in list:gmatch("%S+") do packages[p] = true end
    for _, p in ipairs({ "luarocks", "zip", "unzip", "git", "lua-busted", "lua-check", "tmux", "valgrind",
                         "clang", "luajit2", "redis-server", "chromium", "lua5.1", "lua5.2", "lua5.3" }) do
      assert(packages[p], p .. " is not in TEST_PACKAGES: " .. list)
    end
  end)

  it("installs every Lua module of the checkout, each from its own file", function()
    local listed = {}
    for name, source in pairs(spec.build.modules) do
      if type(source) == "string" then
        listed[source] = name
        local want = "lua/" .. name:gsub("%.", "/")
        assert.truthy(source == want .. ".lua" or source == want .. "/init.lua", name .. " = " .. source)
      end
    end
    for _, path in ipairs(lines("find lua -name '*.lua' | sort")) do
      assert.is_string(listed[path], path .. " is not in " .. file)
    end
    assert.are.equal("bin/aliyun-ota", spec.build.install.bin["aliyun-ota"])
  end)
end)
