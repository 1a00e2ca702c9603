-- cli.main in-process for what came with the "ready for real accounts" work:
-- commands that need no client, call and jobs against the emulator (jobs
-- --device against a stand-in, since the emulator has no ListOTAJobByDevice),
-- values the library refuses as usage errors, and the table fitted to the
-- terminal's width.
local helpers = require("helpers")
local h = require("cli_helpers")
local cjson = require("cjson")
local iot = require("aliyun.iot")
local about = require("aliyun.iot.cli.about")
local jobs_command = require("aliyun.iot.cli.jobs")
local jobs = helpers.jobs

local lines_of = h.lines_of

describe("cli.main", function()
  local emu
  helpers.use_emulator(function(e) emu = e end, false)
  local function main(argv, env) return h.main(emu, argv, env) end

  -- A client factory that must not be called.
  local function no_client() error("a client was made") end

  it("help, completion and --version make no client", function()
    local status, out, err = main({ "help", "jobs" }, { new_client = no_client })
    assert.are.equal(0, status, err)
    assert.truthy(out:find("^Usage: aliyun%-ota jobs"))
    status, out = main({ "completion", "zsh" }, { new_client = no_client })
    assert.are.equal(0, status)
    assert.truthy(out:find("^#compdef aliyun%-ota\n"))
    status, out = main({ "--version" }, { new_client = no_client, launcher = { tree = "/t", rock = "9.9.9-9" } })
    assert.are.equal(0, status)
    local lines = lines_of(out)
    assert.are.equal("aliyun-ota " .. iot.VERSION, lines[1])
    assert.truthy(out:find("\nrock     aliyun-iot 9.9.9-9 (installed in /t)\n", 1, true), out)
    assert.truthy(out:find("\nlibcurl  " .. require("aliyun.iot.core").curl_version .. "\n", 1, true), out)
    local own = "\nrock     aliyun-iot " .. about.rock_version() .. " (this code's"
    assert.truthy(about.version_text():find(own, 1, true))
  end)

  it("call: the answer as JSON; an API error one line, status 1", function()
    local status, out, err = main{ "call", "QueryOTAJob", "--JobId", "job-10" }
    assert.are.equal(0, status, err)
    local doc = cjson.decode(out)
    assert.are.equal("job-10", doc.Data.JobId)
    assert.are.equal("pk-job-10", doc.Data.ProductKey)
    status, out, err = main{ "call", "CancelOTATaskByJob", "--JobId", "no-such-job", "--CancelQueuedTask", "true" }
    assert.are.equal(1, status)
    assert.are.equal("", out)
    assert.truthy(err:find("^aliyun%-ota: iot%.ota%.OtaJobNotExist: .*RequestId [%x-]+%)\n$"), err)
  end)

  it("a value the library refuses before sending is a usage error, status 2", function()
    for _, argv in ipairs({ { "call", "ListOTATaskByJob", "--JobId", "j", "--PageSize", "1000" },
                            { "summary", "j", "--region", "Shanghai" },
                            { "call", "ListOTATaskByJob", "--JobId", "j", "--TaskStatus", "done" } }) do
      local status, out, err = main(argv)
      assert.are.equal(2, status, err)
      assert.are.equal("", out)
      assert.truthy(err:find("^Usage: aliyun%-ota " .. argv[1]), err)
      assert.truthy(err:find("\n\nError: ", 1, true), err)
    end
    assert.are.same({}, emu:log())
  end)

  it("jobs: every page of ListOTAJobByFirmware, each job once", function()
    local page_size = jobs_command.PAGE_SIZE
    jobs_command.PAGE_SIZE = 30
    local status, out, err = main{ "jobs", "--firmware", jobs.SHARED_FIRMWARE, "--output", "jsonl",
                                   "--fields", "JobId" }
    jobs_command.PAGE_SIZE = page_size
    assert.are.equal(0, status, err)
    local ids = {}
    for _, line in ipairs(lines_of(out)) do ids[#ids + 1] = cjson.decode(line).JobId end
    assert.are.equal(jobs.SHARED_FIRMWARE_JOBS, #ids)
    for k, id in ipairs(ids) do assert.are.equal("job-" .. (k - 1), id) end
    local pages = {}
    for _, e in ipairs(emu:log()) do pages[#pages + 1] = e.params.CurrentPage .. "/" .. e.params.PageSize end
    assert.are.same({ "1/30", "2/30", "3/30", "4/30" }, pages)
  end)

  it("jobs --device: ListOTAJobByDevice with the firmware, product and device, until Total", function()
    local calls = {}
    local stand_in = {
      call = function(_, action, p)
        calls[#calls + 1] = { action = action, FirmwareId = p.FirmwareId, ProductKey = p.ProductKey,
                              DeviceName = p.DeviceName, CurrentPage = p.CurrentPage }
        local list = {}
        for i = 1, (p.CurrentPage == 1 and 100 or 20) do
          list[i] = { JobId = ("job-%d-%d"):format(p.CurrentPage, i), JobStatus = "IN_PROGRESS" }
        end
        return { Total = 120, Data = { SimpleOTAJobInfo = list } }
      end,
      close = function() end,
    }
    local status, out, err = main({ "jobs", "--firmware", "FW-1", "--device", "a1PK/gw/floor1", "--output", "csv",
                                    "--fields", "JobId,JobStatus" }, { new_client = function() return stand_in end })
    assert.are.equal(0, status, err)
    assert.are.equal(121, #h.parse_csv(out))
    assert.are.same({ action = "ListOTAJobByDevice", FirmwareId = "FW-1", ProductKey = "a1PK",
                      DeviceName = "gw/floor1", CurrentPage = 1 }, calls[1])
    assert.are.equal(2, #calls)
  end)

  it("fits the default table to the terminal's width; fields asked for are all shown", function()
    local env = { isatty = function(fd) return fd == 1 end, columns = function(_, tty) return tty and 80 or nil end }
    local status, out = main({ "tasks", "demo-job" }, env)
    assert.are.equal(0, status)
    for _, line in ipairs(lines_of(out)) do assert.is_true(h.width(line) <= 80, line) end
    assert.are.same({ "DeviceName", "TaskStatus", "Progress", "TaskDesc" },
                    helpers.collect(lines_of(out)[1]:gmatch("%S+")))
    status, out = main({ "tasks", "demo-job", "--fields", "TaskId,DeviceName,UtcCreate,IotId,JobId" }, env)
    assert.are.equal(0, status)
    assert.are.same({ "TaskId", "DeviceName", "UtcCreate", "IotId", "JobId" },
                    helpers.collect(lines_of(out)[1]:gmatch("%S+")))
  end)
end)
