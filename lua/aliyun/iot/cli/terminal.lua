--- aliyun-ota: facts about the terminal and the process, without a C module:
-- is a descriptor a terminal, how wide is it, does the locale draw UTF-8,
-- and an interruptible sleep. Works with both os.execute conventions (5.1/LuaJIT
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

-- The first line a shell command writes, or nil.
local function first_line(cmd)
  local f = io.popen(cmd)
  if not f then return nil end
  local line = f:read("*l")
  f:close()
  return line
end

--- Columns of the terminal a table is written to: COLUMNS when set (also
-- when piped: the user asked for it), else, when stdout is a terminal (`tty`),
-- what the terminal says (stty size on /dev/tty, then tput cols); nil when
-- unknown or not a terminal. `getenv` defaults to os.getenv.
function terminal.columns(getenv, tty)
  local n = tonumber((getenv or os.getenv)("COLUMNS") or "")
  if n and n >= 1 and n == floor(n) then return n end
  if not tty then return nil end
  n = tonumber((first_line("stty size </dev/tty 2>/dev/null") or ""):match("^%d+ (%d+)$"))
  if n and n >= 1 then return n end
  n = tonumber(first_line("tput cols 2>/dev/null") or "")
  if n and n >= 1 then return n end
  return nil
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
