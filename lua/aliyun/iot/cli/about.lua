--- aliyun-ota --version: what runs, and where each part was loaded from.
--
--   about.version_text(launcher)   -- launcher: what bin/aliyun-ota found (see there)
--
-- The first line is "aliyun-ota <version>", as help2man and most tools read it.
local iot = require("aliyun.iot")
local core = require("aliyun.iot.core")

local concat, format = table.concat, string.format

local about = {}

--- The rockspec's revision: its version is iot.VERSION .. "-" .. ROCK_REVISION
-- (spec/packaging_spec.lua checks that they agree).
about.ROCK_REVISION = 1

--- The rock version this code is released as.
function about.rock_version()
  return iot.VERSION .. "-" .. about.ROCK_REVISION
end

-- The file `require(name)` finds on `path` (package.searchpath, which Lua 5.1 lacks).
local function found(name, path)
  if package.searchpath then return package.searchpath(name, path) end
  local file = name:gsub("%.", "/")
  for template in path:gmatch("[^;]+") do
    local candidate = template:gsub("%?", file)
    local f = io.open(candidate, "rb")
    if f then
      f:close()
      return candidate
    end
  end
  return nil
end

local function at(path) return path and format(" (%s)", path) or "" end

--- The --version text. launcher (optional): { tree = where the rock is
-- installed, rock = its version } when bin/aliyun-ota ran from a rock tree.
function about.version_text(launcher)
  launcher = launcher or {}
  local rock
  if launcher.rock then
    rock = format("aliyun-iot %s (installed in %s)", launcher.rock, launcher.tree)
  else
    rock = format("aliyun-iot %s (this code's rockspec; not run from a rock tree)", about.rock_version())
  end
  local jit = rawget(_G, "jit")
  return concat({
    "aliyun-ota " .. iot.VERSION,
    "library  aliyun.iot " .. iot.VERSION .. at(found("aliyun.iot", package.path)),
    "C core   aliyun.iot.core " .. core.version .. at(found("aliyun.iot.core", package.cpath)),
    "rock     " .. rock,
    "Lua      " .. (jit and jit.version or _VERSION),
    "libcurl  " .. core.curl_version,
  }, "\n") .. "\n"
end

return about
