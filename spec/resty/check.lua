--- check.lua FILE EXPR: exit 0 when the Lua expression EXPR is true of the JSON in FILE
-- (bound to `j`), else print why and the (shortened) JSON and exit 1. For the shell
-- suites (spec/resty/suite.sh's check).
local cjson = require("cjson.safe")
local f = assert(io.open(arg[1])); local text = f:read("*a"); f:close()
local j = cjson.decode(text)
if j == nil then print("not JSON: " .. text:sub(1, 300)); os.exit(1) end
local fn = assert((loadstring or load)("local j = ...; return " .. arg[2]))
local ok, res = pcall(fn, j)
if ok and res then os.exit(0) end
print((ok and "false: " or ("error: " .. tostring(res) .. ": ")) .. arg[2])
print(text:sub(1, 600))
os.exit(1)
