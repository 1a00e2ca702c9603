--- aliyun-ota: facts about the terminal and the process, without a C module:
-- is a descriptor a terminal, does the locale draw UTF-8, and an
-- interruptible sleep. Works with both os.execute conventions (5.1/LuaJIT
-- and 5.2+).

local exit = require("aliyun.iot.cli.exit")

local floor, format = math.floor, string.format
local execute_command = os.execute

local terminal = {}

--- os.execute as Lua 5.2+ reports it, also on 5.1/LuaJIT (a raw wait status):
-- true, or false plus "exit" and the status or "signal" and the signal.
function terminal.execute(cmd)
  local a, how, code = execute_command(cmd)
  if type(a) == "number" then
    if a == 0 then return true end
    if a % 256 ~= 0 then return false, "signal", a % 128 end
    return false, "exit", floor(a / 256)
  end
  if a then return true end
  return false, how, code
end
local execute = terminal.execute

--- Is descriptor fd (0, 1, 2) a terminal? The shell's `test -t` on an
-- inherited descriptor. (luasystem has system.isatty only from 0.3; Debian
-- 12 ships 0.2.)
function terminal.isatty(fd)
  return execute("test -t " .. fd) == true
end

--- Block characters and the ellipsis need a UTF-8 terminal; the locale is the
-- only portable hint we have. `getenv` defaults to os.getenv.
function terminal.utf8_locale(getenv)
  getenv = getenv or os.getenv
  local loc = getenv("LC_ALL")
  if loc == nil or loc == "" then loc = getenv("LC_CTYPE") end
  if loc == nil or loc == "" then loc = getenv("LANG") end
  return loc ~= nil and (loc:lower():find("utf%-?8") ~= nil)
end

--- Sleep without a C module: sleep(1) from coreutils takes fractions. While
-- it runs, system() ignores SIGINT in this process and the child dies of it,
-- so Ctrl-C ends the wait at once (luasocket's sleep would restart on EINTR
-- and finish the interval first). Returns false when interrupted.
function terminal.sleep(seconds)
  local ok, how, code = execute(format("sleep %.3f", seconds))
  if ok then return true end
  if how == "signal" or (how == "exit" and code == exit.INTERRUPTED) then return false end
  error("sleep failed: " .. tostring(how) .. " " .. tostring(code), 0)
end

return terminal
