--- What the CLI specs share: an output buffer for cli.main in-process, text
-- helpers, a strict CSV parser, and a harness that runs bin/aliyun-ota as a
-- child process, piped or in a tmux pane, against the emulator.
local assert = require("luassert")
local cjson = require("cjson")
local helpers = require("helpers")

local h = {}

-- Under Lua 5.4 the script runs by its own #! line, as a person runs it;
-- under another interpreter being tested (scripts/matrix-suite sets LUA and
-- BUILD_DIR) it runs with that one, so it loads the core built for it.
local LUA = os.getenv("LUA")
h.CLI = (LUA == nil or LUA == "lua5.4") and "bin/aliyun-ota" or (LUA .. " bin/aliyun-ota")
h.BUILD_DIR = os.getenv("BUILD_DIR") or "build"

--- An output handle keeping what is written; fail = "message" makes every
-- write fail the way a Lua file reports it.
function h.buffer(fail)
  local b = { parts = {} }
  function b.write(self, ...)
    if fail then return nil, fail end
    for i = 1, select("#", ...) do self.parts[#self.parts + 1] = tostring((select(i, ...))) end
    return self
  end
  function b.flush(self) return self end
  function b.text(self) return table.concat(self.parts) end
  return b
end

--- cli.main's client factory: the options main builds, plus the emulator
-- account's keys, no retries, no rate limit; `wrap(client)` may stand in
-- front of the client.
function h.new_client(wrap)
  return function(opts)
    opts.access_key_id = helpers.ak.access_key_id
    opts.access_key_secret = helpers.ak.access_key_secret
    opts.max_retries, opts.rate_limit = 0, false
    local c, err = require("aliyun.iot").new(opts)
    if c and wrap then return wrap(c) end
    return c, err
  end
end

--- Run cli.main in-process against `emu` (its endpoint first): status,
-- stdout, stderr. Not a terminal, a UTF-8 locale, no sleeping; env fields
-- override.
function h.main(emu, argv, env)
  local out, err = h.buffer(), h.buffer()
  local full = { "--endpoint", emu.url, "--region", "cn-shanghai" }
  for _, a in ipairs(argv) do full[#full + 1] = a end
  local e = {
    stdout = out, stderr = err,
    getenv = function(name) if name == "LANG" then return "C.UTF-8" end end,
    isatty = function() return false end,
    sleep = function() return false end,
    new_client = h.new_client(),
  }
  for k, v in pairs(env or {}) do e[k] = v end
  local status = require("aliyun.iot.cli").main(full, e)
  helpers.assert_no_secret(out:text())
  helpers.assert_no_secret(err:text())
  return status, out:text(), err:text()
end

--- The lines of s, each ended by "\n" (without it).
function h.lines_of(s)
  local list = {}
  for line in s:gmatch("([^\n]*)\n") do list[#list + 1] = line end
  return list
end

function h.q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

--- Output of a shell command, whether it exited 0, and its status. (Lua 5.1
-- pipes do not report an exit status, so the shell is asked for it.)
function h.sh(cmd)
  local f = assert(io.popen(cmd .. "; echo \"<exit $?>\"", "r"))
  local out = f:read("*a")
  f:close()
  local text, code = out:match("^(.-)<exit (%d+)>\n$")
  return text, tonumber(code) == 0, tonumber(code)
end

function h.sleep(seconds) os.execute(string.format("sleep %.2f", seconds)) end

function h.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Display width, as a terminal draws it, of the text our data holds: ASCII,
-- "…" and Chinese (3-byte sequences from U+2E80 up: lead byte E2 with BA+, or
-- above). No utf8 library, so the specs also run under Lua 5.1 and LuaJIT.
function h.width(s)
  local w = 0
  for ch in s:gmatch("[%z\1-\127\194-\244][\128-\191]*") do
    local b1, b2 = ch:byte(1, 2)
    local wide = #ch == 3 and (b1 > 0xE2 or (b1 == 0xE2 and b2 >= 0xBA))
    w = w + (wide and 2 or 1)
  end
  return w
end

--- A strict RFC 4180 parser: quoted fields ("" for a quote, may hold commas,
-- CR and LF), records ending in CRLF, no bare CR or LF outside quotes.
function h.parse_csv(text)
  local records, record = {}, {}
  local i, n = 1, #text
  local at_field_start = true
  while i <= n do
    local c = text:sub(i, i)
    if at_field_start and c == '"' then
      local parts = {}
      i = i + 1
      while true do
        local j = text:find('"', i, true)
        assert(j, "unterminated quoted field")
        parts[#parts + 1] = text:sub(i, j - 1)
        if text:sub(j + 1, j + 1) == '"' then
          parts[#parts + 1] = '"'
          i = j + 2
        else
          i = j + 1
          break
        end
      end
      record[#record + 1] = table.concat(parts)
      local after = text:sub(i, i)
      assert(after == "," or after == "\r", "text after a closing quote at byte " .. i)
      at_field_start = false
    elseif c == "," then
      if at_field_start then record[#record + 1] = "" end
      at_field_start = true
      i = i + 1
    elseif c == "\r" then
      assert(text:sub(i + 1, i + 1) == "\n", "CR without LF at byte " .. i)
      if at_field_start then record[#record + 1] = "" end
      records[#records + 1] = record
      record, at_field_start = {}, true
      i = i + 2
    else
      assert(at_field_start, "unexpected character at byte " .. i)
      local j = text:find('[,\r\n"]', i) or n + 1
      local stop = text:sub(j, j)
      assert(stop ~= '"' and stop ~= "\n", "quote or bare LF in an unquoted field at byte " .. j)
      record[#record + 1] = text:sub(i, j - 1)
      at_field_start = false
      i = j
    end
  end
  assert(#record == 0, "the last record does not end with CRLF")
  return records
end

--- Every expected task index once, in order, with the given fields' values.
function h.assert_tasks(job_id, indices, rows, fields)
  assert.are.equal(#indices, #rows)
  local seen = {}
  for k, i in ipairs(indices) do
    local want, got = helpers.jobs.task(job_id, i), rows[k]
    assert.is_nil(seen[got.TaskId], "duplicate " .. tostring(got.TaskId))
    seen[got.TaskId] = true
    for _, f in ipairs(fields) do
      local value = got[f]
      if value == cjson.null then value = nil end
      assert.are.equal(want[f], value, f .. " of task " .. i)
    end
  end
end

-- ---- bin/aliyun-ota as a child process ------------------------------------

local Harness = {}
Harness.__index = Harness

--- A harness for one describe block: a private temporary directory, the
-- emulator, and tmux on a private socket; h.harness():setup() in setup,
-- :teardown() in teardown.
function h.harness() return setmetatable({ sessions = 0 }, Harness) end

--- Give a describe block a harness: set up in setup, torn down in teardown,
-- its emulator (harness.emu) reset before each test.
function h.use_harness()
  local busted = require("busted")
  local harness = h.harness()
  busted.setup(function() harness:setup() end)
  busted.teardown(function() harness:teardown() end)
  busted.before_each(function() harness.emu:reset() end)
  return harness
end

function Harness:setup()
  local tmp = os.tmpname()
  os.remove(tmp)
  assert(os.execute("mkdir -m 700 " .. h.q(tmp)))
  self.tmp = tmp
  self.cwd = (h.sh("pwd")):match("^(.-)\n")
  -- Named after the private temporary directory: unique even when several
  -- runs of a suite start in the same second.
  self.socket = "aliyun-ota-spec-" .. tmp:match("([^/]+)$")
  self.tmux_conf = tmp .. "/tmux.conf"
  local f = assert(io.open(self.tmux_conf, "w"))
  f:write("set -g history-limit 50000\nset -g status off\n")
  f:close()
  self.emu = helpers.start_emulator()
  return self
end

function Harness:teardown()
  if self.tmux_conf then self:tmux("kill-server") end
  if self.emu then self.emu:stop() end
  if self.tmp then os.execute("rm -rf " .. h.q(self.tmp)) end
end

--- The child's environment: only the first emulator account, no other
-- credential source (HOME points at an empty directory). env: id = false
-- (no keys), secret, LANG, and any NAME = value (false unsets it).
function Harness:env_prefix(env)
  env = env or {}
  local unset = { "ALIBABA_CLOUD_SECURITY_TOKEN", "ALIBABA_CLOUD_REGION_ID", "ALIBABA_CLOUD_PROFILE",
                  "ALIBABA_CLOUD_CONFIG_FILE", "ALIBABA_CLOUD_CREDENTIALS_FILE", "ALIBABA_CLOUD_ECS_METADATA",
                  "LC_ALL", "LC_CTYPE", "COLUMNS", "ALIYUN_IOT_INSTANCE_ID" }
  if env.id == false then
    unset[#unset + 1] = "ALIBABA_CLOUD_ACCESS_KEY_ID"
    unset[#unset + 1] = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
  end
  local set = {
    "HOME=" .. h.q(self.tmp), "LANG=" .. h.q(env.LANG or "C.UTF-8"),
    "LUA_PATH='./lua/?.lua;./lua/?/init.lua;;'", "LUA_CPATH=" .. h.q("./" .. h.BUILD_DIR .. "/?.so;;"),
  }
  if env.id ~= false then
    set[#set + 1] = "ALIBABA_CLOUD_ACCESS_KEY_ID=" .. h.q(env.id or helpers.ak.access_key_id)
    set[#set + 1] = "ALIBABA_CLOUD_ACCESS_KEY_SECRET=" .. h.q(env.secret or helpers.ak.access_key_secret)
  end
  for name, value in pairs(env) do
    if name:find("^[%u_]+$") and name ~= "LANG" then
      if value == false then unset[#unset + 1] = name else set[#set + 1] = name .. "=" .. h.q(value) end
    end
  end
  -- (env wants its -u options before any NAME=VALUE)
  return "env -u " .. table.concat(unset, " -u ") .. " " .. table.concat(set, " ")
end

--- The shell command running the CLI with `args` (before them the
-- emulator's endpoint, unless env.no_endpoint).
function Harness:command(args, env)
  local words = { self:env_prefix(env), (env and env.cli) or h.CLI }
  if not (env and env.no_endpoint) then
    words[#words + 1] = "--endpoint " .. h.q(self.emu.url) .. " --region cn-shanghai"
  end
  for _, a in ipairs(args) do words[#words + 1] = h.q(a) end
  return table.concat(words, " ")
end

--- Run piped (stdout and stderr are not terminals): stdout, stderr, status.
function Harness:run(args, env)
  local out_file, err_file = self.tmp .. "/stdout", self.tmp .. "/stderr"
  local _, _, code = h.sh(self:command(args, env) .. " >" .. out_file .. " 2>" .. err_file .. " </dev/null")
  assert.is_true(code < 128, "the CLI was killed by a signal")
  local out, err = h.read_file(out_file) or "", h.read_file(err_file) or ""
  helpers.assert_no_secret(out)
  helpers.assert_no_secret(err)
  return out, err, code
end

--- One line on stderr, no traceback, nothing on stdout.
function h.assert_one_error_line(out, err)
  assert.are.equal("", out)
  local lines = h.lines_of(err)
  assert.are.equal(1, #lines, "expected one line on stderr, got: " .. err)
  assert.is_nil(err:find("traceback", 1, true))
  return lines[1]
end

--- A usage error: status 2, nothing on stdout, the usage and "Error: " on stderr.
function h.assert_usage(out, err, code)
  assert.are.equal(2, code, err)
  assert.are.equal("", out)
  assert.truthy(err:find("^Usage: aliyun%-ota"), err)
  assert.truthy(err:find("\nError: "), err)
end

-- ---- tmux -----------------------------------------------------------------
-- Each run is one session: bash runs the script, writes its exit status to a
-- file (tmux's own #{pane_dead_status} proved unreliable: tmux 3.3a
-- sometimes leaves the exited process unreaped), then keeps the pane
-- readable for 30 s. teardown kills the server; should the spec itself be
-- killed, finished sessions still end and the server exits.

function Harness:tmux(args)
  return h.sh("LC_ALL=C.UTF-8 tmux -u -L " .. self.socket .. " -f " .. self.tmux_conf .. " " .. args .. " 2>&1")
end

local Pane = {}
Pane.__index = Pane

--- A pane `opts.width` x `opts.height` (220 x 50) running `script` in bash.
function Harness:pane(script, opts)
  opts = opts or {}
  self.sessions = self.sessions + 1
  local name = "s" .. self.sessions
  local status_file = self.tmp .. "/status-" .. name
  local full = script .. "; echo $? > " .. h.q(status_file) .. "; exec sleep 30"
  local out, ok = self:tmux(string.format("new-session -d -s %s -x %d -y %d -c %s %s", name,
    opts.width or 220, opts.height or 50, h.q(self.cwd), h.q("exec bash " .. (opts.bash or "") .. " -c " .. h.q(full))))
  assert.is_truthy(ok, "tmux new-session failed: " .. tostring(out))
  return setmetatable({ harness = self, name = name, status_file = status_file }, Pane)
end

--- A pane running the CLI with `args` (see command).
function Harness:start_pane(args, env, opts)
  return self:pane(self:command(args, env), opts)
end

function Pane:screen() return (self.harness:tmux("capture-pane -p -J -t " .. self.name)) end
function Pane:history() return (self.harness:tmux("capture-pane -p -J -S - -E - -t " .. self.name)) end
--- Lines as the terminal shows them, without joining wrapped ones.
function Pane:rows() return (self.harness:tmux("capture-pane -p -S - -E - -t " .. self.name)) end
function Pane:keys(keys) self.harness:tmux("send-keys -t " .. self.name .. " -- " .. keys) end

--- Poll until `pred(screen)` holds; returns the screen, or nil at the deadline.
function Pane:wait_for(pred, seconds)
  local deadline = os.time() + (seconds or 10)
  repeat
    local screen = self:screen()
    if pred(screen) then return screen end
    h.sleep(0.05)
  until os.time() > deadline
  return nil
end

--- Wait for the script to exit; returns its exit status.
function Pane:status(seconds)
  -- Generous: it only bounds a failing run, and the suites under valgrind or
  -- ASan run the CLI many times slower.
  local deadline = os.time() + (seconds or 60)
  repeat
    local status = tonumber((h.read_file(self.status_file) or ""):match("^(%d+)\n"))
    if status then return status end
    h.sleep(0.05)
  until os.time() > deadline
  error("the CLI did not exit in time")
end

return h
