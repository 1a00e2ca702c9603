--- aliyun-ota: one listing of a job, page by page, with its progress line.
-- The library does the listing: several TaskStatus values are its parts,
-- listed one after the other, every task yielded once across them; each
-- page says which part it belongs to (page.part) and whether more of that
-- part follows (page.last_in_part).
local progress = require("aliyun.iot.cli.progress")

local format, pcall, error = string.format, pcall, error

local listing = {}

-- The progress label of a part: "[FAILED 1/2]" when there are several.
local function label_of(part)
  if part.count <= 1 then return nil end
  return format("[%s %d/%d]", part.TaskStatus, part.index, part.count)
end

--- Call on_page(tasks, page) for every page of the job's listing, in order.
-- `statuses` and `devices` are lists or nil. Raises the library's error
-- object (after erasing the progress line) if a page cannot be fetched.
function listing.each_page(client, job, ctx, statuses, devices, on_page)
  local line = progress.new{ enabled = ctx.stderr_tty, sep = ctx.unicode and " · " or ", ",
                             stderr = ctx.stderr, stdout = ctx.stdout }
  local ok, err = pcall(function()
    local current
    for page in client:pages{ JobId = job, TaskStatus = statuses, DeviceNames = devices,
                              on_progress = line.progress } do
      local part = page.part
      if part.index ~= current then
        current = part.index
        -- A DeviceNames listing is one call per 50 names, each with its own
        -- Total: there is no total for the whole listing.
        line.part(label_of(part), devices == nil)
      end
      line.clear()
      on_page(page.tasks, page)
      line.page(page, not page.last_in_part or part.index < part.count)
    end
  end)
  line.clear()
  if not ok then error(err, 0) end
end

return listing
