# What the shell suites that drive nginx share (spec/resty/run, scripts/redis-suite):
# sourced, not run. Results: ok / not_ok count, check reads JSON answers, finish prints
# the "N passed, N failed" line and exits. Test nginx servers: start_nginx / stop_nginx.
# The caller sets REPO, BUILD (the core's build dir), NGINX (binary), SCRATCH (its temp
# dir), LUA_JSON (a Lua with cjson), and stops what it started: for each i in
# "${!NGX_PIDS[@]}", stop_nginx "${NGX_PIDS[$i]}" "${NGX_DIRS[$i]}".
passed=0
failed=0
declare -a NGX_PIDS=() NGX_DIRS=()
SUITE_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

ok() { passed=$((passed + 1)); echo "ok   - $*"; }
not_ok() { failed=$((failed + 1)); echo "FAIL - $*"; }

finish() {
  echo
  echo "$passed passed, $failed failed"
  [[ $failed -eq 0 ]]
  exit $?
}

# check NAME FILE LUA_EXPR: the JSON in FILE is `j`; passes when EXPR is true.
# On failure prints the expression and the (shortened) JSON.
check() {
  local name=$1 file=$2 expr=$3 out
  if out=$("$LUA_JSON" "$SUITE_LIB_DIR/check.lua" "$file" "$expr" 2>&1); then
    ok "$name"
  else
    not_ok "$name"
    sed 's/^/       /' <<<"$out"
  fi
}

# Credentials of the emulator's first AK account, in the environment (ALIBABA_CLOUD_*).
export_emulator_credentials() {
  eval "$("$LUA_JSON" -e '
    for _, a in ipairs(dofile("spec/emulator/accounts.lua")) do
      if a.kind == "ak" and not a.inactive then
        print("export ALIBABA_CLOUD_ACCESS_KEY_ID=" .. a.access_key_id)
        print("export ALIBABA_CLOUD_ACCESS_KEY_SECRET=" .. a.access_key_secret)
        return
      end
    end')"
}

# The emulator at $EMU: set its fault config (JSON), clear its state.
faults() { curl -sS -o /dev/null -X POST -H 'Content-Type: application/json' --data-binary "$1" "$EMU/__emulator/faults"; }
emu_reset() { curl -sS -o /dev/null -X POST "$EMU/__emulator/reset"; }

# A float comparison in awk: lt A B
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a < b) }'; }

stop_nginx() { # pid dir
  local pid=$1 dir=$2
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null; then
    local workers
    workers=$(pgrep -P "$pid" 2>/dev/null || true)
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    for w in $workers; do kill -0 "$w" 2>/dev/null && kill -KILL "$w" 2>/dev/null; done
  fi
  if [[ -n $dir && -e $dir/.aiot-resty-test && -z ${KEEP:-} ]]; then rm -rf -- "$dir"; fi
}

# Start an nginx from a config template on a free loopback port.
#   start_nginx TEMPLATE WORKERS  -> sets NGX_PORT, NGX_DIR (and records the pid)
# Template names: @USER_LINE@ @DIR@ @PORT@ @WORKERS@ @REPO@ @BUILD_DIR@, and
# @LIMITER_DICT@ from $LIMITER_DICT_LINE (empty by default).
start_nginx() {
  local template=$1 workers=$2 dir port pid="" user_line=""
  dir=$(mktemp -d "${TMPDIR:-/tmp}/aiot-resty.XXXXXX") || return 1
  touch "$dir/.aiot-resty-test"
  mkdir -p "$dir/logs"
  [[ $(id -u) == 0 ]] && user_line="user root;"
  for _ in $(seq 1 20); do
    port=$((20000 + (RANDOM * 32768 + RANDOM) % 41000))
    sed -e "s|@USER_LINE@|$user_line|" -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" \
        -e "s|@WORKERS@|$workers|g" -e "s|@REPO@|$REPO|g" -e "s|@BUILD_DIR@|$BUILD|g" \
        -e "s|@LIMITER_DICT@|${LIMITER_DICT_LINE:-}|g" -e "s|@SCRATCH@|$SCRATCH|g" \
        -e "s|@TLS_PORT@|$((port + 1))|g" -e "s|@TLS_PORT2@|$((port + 2))|g" \
        "$template" > "$dir/nginx.conf"
    : > "$dir/error.log"
    if "$NGINX" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log" 2>"$dir/nginx.stderr"; then
      for _ in $(seq 1 50); do
        [[ -s $dir/nginx.pid ]] && pid=$(cat "$dir/nginx.pid") && break
        sleep 0.1
      done
      break
    fi
    grep -q "Address already in use" "$dir/error.log" "$dir/nginx.stderr" || break
  done
  if [[ -z $pid ]]; then
    # Started with its pid file somewhere else? Stop it all the same, by that PID.
    local other
    other=$(find "$dir" -name nginx.pid -size +0 2>/dev/null | head -n 1)
    [[ -n $other ]] && stop_nginx "$(cat "$other")" ""
    echo "nginx did not start from $template:" >&2
    tail -n 20 "$dir/error.log" "$dir/nginx.stderr" >&2
    rm -rf -- "$dir"
    return 1
  fi
  NGX_PIDS+=("$pid"); NGX_DIRS+=("$dir")
  NGX_PORT=$port NGX_DIR=$dir
  for _ in $(seq 1 50); do
    curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$port/" && return 0
    sleep 0.1
  done
  echo "nginx on port $port does not answer" >&2
  return 1
}
