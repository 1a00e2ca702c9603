--- aliyun.iot.cli: the aliyun-ota command, callable in-process.
--
--   local cli = require("aliyun.iot.cli")
--   local status = cli.main({ "tasks", "job-1", "--output", "jsonl" }, env)
--
-- main returns the exit status (cli.EXIT) and never calls os.exit: usage
-- errors, --help, API and network errors all end in a status, with their
-- message written to env.stderr. It raises only for what ends the process
-- from outside, which the launcher (bin/aliyun-ota) turns into a status:
-- Ctrl-C (the interpreter's "interrupted!", cli.is_interrupt) and a reader
-- that went away (cli.is_broken_pipe).
--
-- `env` (every field optional; the defaults are the process's own):
--   stdout, stderr   handles with :write(...) and :flush()   (io.stdout, io.stderr)
--   getenv           function(name) -> value                 (os.getenv)
--   isatty           function(fd) -> boolean                 (terminal.isatty)
--   columns          function(getenv, stdout_tty) -> width or nil (terminal.columns)
--   sleep            function(seconds) -> false if interrupted (terminal.sleep)
--   new_client       function(opts) -> client or nil, err    (iot.new)
--   launcher         what bin/aliyun-ota found: { tree, rock } (for --version)
local iot = require("aliyun.iot")
local about = require("aliyun.iot.cli.about")
local args = require("aliyun.iot.cli.args")
local exit = require("aliyun.iot.cli.exit")
local output = require("aliyun.iot.cli.output")
local terminal = require("aliyun.iot.cli.terminal")

local type, tostring, ipairs, pcall, xpcall, error = type, tostring, ipairs, pcall, xpcall, error

local cli = { EXIT = exit }

-- Each command: run(client, args, ctx) -> status, or for the ones that need
-- no client (no_client) run(args, ctx) -> status.
local COMMANDS = {
  tasks = { run = require("aliyun.iot.cli.tasks").run },
  summary = { run = require("aliyun.iot.cli.summary").run },
  watch = { run = require("aliyun.iot.cli.watch").run },
  jobs = { run = require("aliyun.iot.cli.jobs").run },
  call = { run = require("aliyun.iot.cli.call").run },
  help = { no_client = true, run = function(a, ctx) ctx.out(args.help(a.topic)); return exit.OK end },
  completion = { no_client = true, run = function(a, ctx) ctx.out(args.completion(a.shell)); return exit.OK end },
}

-- Environment variables whose values never appear in our output, even should
-- the library let one through (belt and braces: it scrubs its errors). Values
-- shorter than MIN_SECRET are left alone: masking them would garble text.
local SECRET_VARS = { "ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ALIBABA_CLOUD_SECURITY_TOKEN" }
local MIN_SECRET = 4

--- Is e the error the standalone interpreter raises on SIGINT?
function cli.is_interrupt(e)
  return type(e) == "string" and e:find("interrupted!$") ~= nil
end

cli.is_broken_pipe = output.is_broken_pipe

-- A function making any error one line of text without a secret from the
-- environment.
local function one_line_for(getenv)
  return function(text)
    -- The server's bytes never drive the terminal: line ends become spaces,
    -- every other control character (ESC, BEL, C1) a visible \xNN.
    text = tostring(text):gsub("[\r\n]+", " "):gsub("%c", function(c) return string.format("\\x%02x", c:byte()) end)
      :gsub("\194([\128-\159])", function(c) return string.format("\\xc2\\x%02x", c:byte()) end)
    local secrets = {}
    for _, name in ipairs(SECRET_VARS) do
      local secret = getenv(name)
      if secret and #secret >= MIN_SECRET then secrets[#secrets + 1] = secret end
    end
    return iot.scrub(text, secrets)
  end
end

-- Parse, make the client, run the command; returns the exit status.
local function run(argv, env, ctx)
  local a, outcome = args.parse(argv, { version = function() return about.version_text(env.launcher) end })
  if not a then
    ctx[outcome.stream]:write(outcome.text)
    return outcome.status
  end
  ctx.usage_text = a.usage_text
  local command = COMMANDS[a.command]
  if command.no_client then return command.run(a, ctx) end
  local isatty = env.isatty or terminal.isatty
  ctx.stdout_tty, ctx.stderr_tty = isatty(1), isatty(2)
  ctx.unicode = terminal.utf8_locale(ctx.getenv)
  ctx.ellipsis = ctx.unicode and "…" or "..."
  ctx.columns = function() return (env.columns or terminal.columns)(ctx.getenv, ctx.stdout_tty) end

  local opts = {
    region = a.region, endpoint = a.endpoint, iot_instance_id = a.instance,
    timeout = a.timeout, max_retries = a.retries,
  }
  -- argparse stores --rate-limit as rate_limit; false (off) must reach iot.new.
  if a.rate_limit ~= nil then opts.rate_limit = a.rate_limit end
  if a.profile then opts.profile = a.profile end   -- only when asked for
  local client, err = (env.new_client or iot.new)(opts)
  if not client then error(err, 0) end

  local ok, result = pcall(command.run, client, a, ctx)
  client:close()
  if not ok then error(result, 0) end
  return result
end

--- Run aliyun-ota with the arguments `argv` (a list of strings) in `env`.
-- Returns the exit status. See the top of this file.
function cli.main(argv, env)
  env = env or {}
  local getenv = env.getenv or os.getenv
  local ctx = {
    stdout = env.stdout or io.stdout,
    stderr = env.stderr or io.stderr,
    getenv = getenv,
    sleep = env.sleep or terminal.sleep,
    one_line = one_line_for(getenv),
  }
  ctx.out = output.writer(ctx.stdout)
  local function fail(message)
    ctx.stderr:write("aliyun-ota: ", message, "\n")
    return exit.FAILED
  end

  local trace
  local ok, result = xpcall(function() return run(argv, env, ctx) end, function(e)
    if type(e) == "string" and not cli.is_interrupt(e) then trace = debug.traceback(e, 2) end
    return e
  end)
  if ok then return result end
  if cli.is_interrupt(result) or cli.is_broken_pipe(result) then error(result, 0) end
  if output.is_error(result) then return fail(tostring(result)) end
  -- A value the library refused before sending anything (a region that is
  -- not one, a parameter of `call`) is a usage error like any other.
  if type(result) == "table" and result.code == iot.codes.INVALID_ARGUMENT and ctx.usage_text then
    ctx.stderr:write(ctx.usage_text, "\n\nError: ", ctx.one_line(result.message), "\n")
    return exit.USAGE
  end
  if type(result) == "table" and result.code then return fail(ctx.one_line(result)) end
  if getenv("ALIYUN_OTA_DEBUG") then ctx.stderr:write(trace or tostring(result), "\n") end
  return fail("internal error: " .. ctx.one_line(result))
end

return cli
