std = "max"
max_line_length = 120
files["spec/"] = { std = "+busted" }
files["spec/emulator/"] = { globals = { "ngx" } }
exclude_files = { "build/", ".luarocks/" }
-- bin/aliyun-ota has no .lua extension: without this, `luacheck bin` would
-- find no file to check in the directory.
include_files = { "**/*.lua", "bin/aliyun-ota" }
