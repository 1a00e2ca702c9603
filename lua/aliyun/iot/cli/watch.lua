--- aliyun-ota watch JOB_ID: redraw the summary every --interval seconds
-- until every task is final (exit 0) or Ctrl-C (exit 130). On a terminal it
-- redraws in place; piped, it appends one summary per refresh. A transient
-- failure is a warning and retried; MAX_RETRIES in a row end the watch.
local exit = require("aliyun.iot.cli.exit")
local summary = require("aliyun.iot.cli.summary")

local concat, format = table.concat, string.format
local pcall, type, error = pcall, type, error

local watch = {}

local MAX_RETRIES = 3

--- The command. Returns 0 or 130; raises the library's error object.
-- ctx.sleep(seconds) waits, returning false when interrupted; ctx.one_line
-- makes an error one line without secrets.
function watch.run(client, args, ctx)
  local failures = 0
  local draws = 0
  while true do
    local ok, s = pcall(summary.collect, client, args.job_id, ctx)
    if ok then
      failures = 0
      draws = draws + 1
      local lines = summary.render(s, ctx)
      local done = s.final == s.total
      lines[#lines + 1] = ""
      lines[#lines + 1] = done and "Every task is in a final state."
        or format("Refreshed %s, every %gs. Ctrl-C to stop.", os.date("%H:%M:%S"), args.interval)
      if ctx.stdout_tty then
        -- Home, each line then erase-to-end-of-line, erase the rest: no flicker.
        ctx.out("\27[H", concat(lines, "\27[K\n"), "\27[K\n\27[J")
      else
        ctx.out(draws > 1 and "\n" or "", concat(lines, "\n"), "\n")
      end
      ctx.stdout:flush()
      if done then return exit.OK end
    else
      -- A watch outlives one transient failure (throttling, a dropped
      -- connection); it gives up after a few in a row, or on a real error.
      if type(s) ~= "table" or not s.retryable or failures + 1 >= MAX_RETRIES then error(s, 0) end
      failures = failures + 1
      ctx.stderr:write("aliyun-ota: warning: ", ctx.one_line(s),
                       format(" (retrying in %gs)\n", args.interval))
    end
    if not ctx.sleep(args.interval) then return exit.INTERRUPTED end
  end
end

return watch
