--- aliyun-ota: writing to an output handle. A write that fails (a closed
-- pipe when SIGPIPE is ignored, a full disk) becomes one error object,
-- raised, so the command stops at once and main can tell it apart.
--
--   local out = output.writer(io.stdout)   -- out(...) writes or raises
--   output.is_error(e), output.is_broken_pipe(e)
--
-- A handle is anything with handle:write(...) returning a true value on
-- success and nil, message on failure (a Lua file, or a spec's buffer).

local setmetatable, getmetatable, tostring = setmetatable, getmetatable, tostring

local output = {}

local OutputError = {}
OutputError.__index = OutputError
OutputError.__tostring = function(e) return "cannot write output: " .. e.message end

--- A function writing its arguments to `handle`, raising on failure.
function output.writer(handle)
  return function(...)
    local ok, err = handle:write(...)
    if not ok then error(setmetatable({ message = tostring(err) }, OutputError), 0) end
  end
end

--- Is e a failed write raised by a writer?
function output.is_error(e)
  return getmetatable(e) == OutputError
end

--- Is e a failed write because the reader went away (`| head`)?
function output.is_broken_pipe(e)
  return output.is_error(e) and e.message:find("Broken pipe", 1, true) ~= nil
end

return output
