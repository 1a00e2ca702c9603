rockspec_format = "3.0"
package = "aliyun-iot"
version = "0.2.0-1"   -- src/version.h's AIOT_VERSION, then the rockspec revision
source = {
   -- The release archive `make dist` builds from the checkout (git archive, top
   -- directory aliyun-iot-0.2.0) and packs with this rockspec into
   -- aliyun-iot-0.2.0-1.src.rock. Installing that source rock unpacks the
   -- archive from inside it, `luarocks build` finds it beside this file, and
   -- `luarocks make` builds the checkout itself: none of them fetches. A
   -- project with a public home changes this to the archive's URL there (same
   -- file name); until then there is no address to give that would work.
   url = "aliyun-iot-0.2.0.tar.gz",
   dir = "aliyun-iot-0.2.0",
}
description = {
   summary = "Alibaba Cloud IoT Platform OTA API (ListOTATaskByJob) for Lua",
   detailed = [[
      A native extension: signing (OpenSSL), HTTP (libcurl) and response
      decoding (lua-cjson) in C, with a coroutine pager that lists every task
      of an OTA job exactly once.
   ]],
   license = "MIT",
   labels = { "aliyun", "alibaba-cloud", "iot", "ota" },
}
dependencies = {
   "lua >= 5.1, < 5.5",
   "lua-cjson >= 2.1",
   "argparse >= 0.6",   -- bin/aliyun-ota only
}
external_dependencies = {
   -- Debian puts curl/curl.h under a multiarch include dir; look for the library.
   CURL = { library = "curl" },
   OPENSSL = { header = "openssl/hmac.h", library = "crypto" },
   -- The rate limiter's Redis store outside nginx (Debian: libhiredis-dev).
   HIREDIS = { header = "hiredis/hiredis.h", library = "hiredis" },
}
build = {
   type = "builtin",
   modules = {
      ["aliyun.iot.core"] = {
         sources = { "src/clock.c", "src/core.c", "src/sign.c", "src/session.c", "src/multi.c", "src/xfer.c", "src/decode.c",
                     "src/errors.c", "src/taskset.c", "src/redact.c", "src/redis.c" },
         libraries = { "curl", "crypto", "hiredis" },
         incdirs = { "src", "$(CURL_INCDIR)", "$(OPENSSL_INCDIR)", "$(HIREDIS_INCDIR)" },
         libdirs = { "$(CURL_LIBDIR)", "$(OPENSSL_LIBDIR)", "$(HIREDIS_LIBDIR)" },
      },
      ["aliyun.iot"] = "lua/aliyun/iot.lua",
      ["aliyun.iot.errors"] = "lua/aliyun/iot/errors.lua",
      ["aliyun.iot.params"] = "lua/aliyun/iot/params.lua",
      ["aliyun.iot.request"] = "lua/aliyun/iot/request.lua",
      ["aliyun.iot.pager"] = "lua/aliyun/iot/pager.lua",
      ["aliyun.iot.walk"] = "lua/aliyun/iot/walk.lua",
      ["aliyun.iot.devices"] = "lua/aliyun/iot/devices.lua",
      ["aliyun.iot.schedule"] = "lua/aliyun/iot/schedule.lua",
      ["aliyun.iot.defaults"] = "lua/aliyun/iot/defaults.lua",
      ["aliyun.iot.options"] = "lua/aliyun/iot/options.lua",
      ["aliyun.iot.time"] = "lua/aliyun/iot/time.lua",
      ["aliyun.iot.credentials"] = "lua/aliyun/iot/credentials/init.lua",
      ["aliyun.iot.credentials.common"] = "lua/aliyun/iot/credentials/common.lua",
      ["aliyun.iot.credentials.keys"] = "lua/aliyun/iot/credentials/keys.lua",
      ["aliyun.iot.credentials.provider"] = "lua/aliyun/iot/credentials/provider.lua",
      ["aliyun.iot.credentials.profile"] = "lua/aliyun/iot/credentials/profile.lua",
      ["aliyun.iot.credentials.cli_config"] = "lua/aliyun/iot/credentials/cli_config.lua",
      ["aliyun.iot.credentials.ini"] = "lua/aliyun/iot/credentials/ini.lua",
      ["aliyun.iot.credentials.ecs"] = "lua/aliyun/iot/credentials/ecs.lua",
      ["aliyun.iot.credentials.sts"] = "lua/aliyun/iot/credentials/sts.lua",
      ["aliyun.iot.credentials.assume_role"] = "lua/aliyun/iot/credentials/assume_role.lua",
      ["aliyun.iot.credentials.uri"] = "lua/aliyun/iot/credentials/uri.lua",
      ["aliyun.iot.limiter"] = "lua/aliyun/iot/limiter/init.lua",
      ["aliyun.iot.limiter.local_store"] = "lua/aliyun/iot/limiter/local_store.lua",
      ["aliyun.iot.limiter.shared_dict"] = "lua/aliyun/iot/limiter/shared_dict.lua",
      ["aliyun.iot.limiter.redis"] = "lua/aliyun/iot/limiter/redis.lua",
      ["aliyun.iot.limiter.fallback"] = "lua/aliyun/iot/limiter/fallback.lua",
      ["aliyun.iot.transport"] = "lua/aliyun/iot/transport/init.lua",
      ["aliyun.iot.transport.curl"] = "lua/aliyun/iot/transport/curl.lua",
      ["aliyun.iot.transport.resty"] = "lua/aliyun/iot/transport/resty.lua",
      ["aliyun.iot.transport.http1"] = "lua/aliyun/iot/transport/http1.lua",
      -- bin/aliyun-ota is a launcher over these.
      ["aliyun.iot.cli"] = "lua/aliyun/iot/cli/init.lua",
      ["aliyun.iot.cli.about"] = "lua/aliyun/iot/cli/about.lua",
      ["aliyun.iot.cli.args"] = "lua/aliyun/iot/cli/args.lua",
      ["aliyun.iot.cli.call"] = "lua/aliyun/iot/cli/call.lua",
      ["aliyun.iot.cli.convert"] = "lua/aliyun/iot/cli/convert.lua",
      ["aliyun.iot.cli.exit"] = "lua/aliyun/iot/cli/exit.lua",
      ["aliyun.iot.cli.fields"] = "lua/aliyun/iot/cli/fields.lua",
      ["aliyun.iot.cli.jobs"] = "lua/aliyun/iot/cli/jobs.lua",
      ["aliyun.iot.cli.json"] = "lua/aliyun/iot/cli/json.lua",
      ["aliyun.iot.cli.layout"] = "lua/aliyun/iot/cli/layout.lua",
      ["aliyun.iot.cli.listing"] = "lua/aliyun/iot/cli/listing.lua",
      ["aliyun.iot.cli.output"] = "lua/aliyun/iot/cli/output.lua",
      ["aliyun.iot.cli.progress"] = "lua/aliyun/iot/cli/progress.lua",
      ["aliyun.iot.cli.summary"] = "lua/aliyun/iot/cli/summary.lua",
      ["aliyun.iot.cli.tasks"] = "lua/aliyun/iot/cli/tasks.lua",
      ["aliyun.iot.cli.terminal"] = "lua/aliyun/iot/cli/terminal.lua",
      ["aliyun.iot.cli.watch"] = "lua/aliyun/iot/cli/watch.lua",
      ["aliyun.iot.cli.width"] = "lua/aliyun/iot/cli/width.lua",
      ["aliyun.iot.cli.writers"] = "lua/aliyun/iot/cli/writers.lua",
      ["aliyun.iot.transport.hiredis"] = "lua/aliyun/iot/transport/hiredis.lua",
      ["aliyun.iot.transport.resty_redis"] = "lua/aliyun/iot/transport/resty_redis.lua",
   },
   install = {
      bin = { ["aliyun-ota"] = "bin/aliyun-ota" },
   },
}
