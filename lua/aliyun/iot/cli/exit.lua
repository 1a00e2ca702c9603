--- aliyun-ota: its exit statuses, in one table.
return {
  OK = 0,
  FAILED = 1,          -- API or network error, one line on stderr
  USAGE = 2,           -- bad arguments: the usage on stderr
  INTERRUPTED = 130,   -- Ctrl-C, as a shell reports a process ended by SIGINT
  BROKEN_PIPE = 141,   -- the reader went away, as a shell reports SIGPIPE
}
