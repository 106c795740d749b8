# Sourced by compare.sh, latency.sh and conns.sh: starting and stopping the servers under test
# the same way in every script. Not run on its own.
#
# The caller sets `here` (this directory) and `root` (the repository) and may set, before
# sourcing: PORT=18180, SERVER_CPUS=0, GLINT=target/release/glint and
# FLOOR=target/release/examples/floor (built if missing), ALT_GLINT / ALT_FLOOR (another build,
# as the servers alt-uring, alt-epoll, alt-floor), COMPACT=1 (run `glint compact` beside glint),
# RING_SLOTS=4194304 (slots of each glint server's ring), FRESH_RING=0 (1: a new ring every turn),
# COMPACT_NICE=0 (latency.sh: the Nice= of systemd/glint-compact.service, the niceness its
# CPUWeight=33 matches; one session here, so a nice ranks the processes), SERVE_ARGS (more
# serve flags).
#
# Servers: floor, glint-uring, glint-epoll, nginx (and the alt-* ones).

PORT=${PORT:-18180}
SERVER_CPUS=${SERVER_CPUS:-0}
GLINT=${GLINT:-$root/target/release/glint}
FLOOR=${FLOOR:-$root/target/release/examples/floor}
ALT_GLINT=${ALT_GLINT:-}
ALT_FLOOR=${ALT_FLOOR:-}
COMPACT=${COMPACT:-1}
# The compactor runs at the server's own priority, so under saturating loads (compare.sh,
# conns.sh) it keeps up on the shared CPU: at its unit's Nice=5 it gets a quarter of the CPU,
# falls behind, and the full ring answers 503, cheaper than a kept record. latency.sh, at fixed
# rates, gives it its unit's niceness instead.
COMPACT_NICE=${COMPACT_NICE:-0}
# glint's rings are in their steady state, as in production: each glint server keeps one ring
# over all its turns (drained by the compactor after each turn), its pages read into the page
# cache once before its first turn. FRESH_RING=1 measures the first lap of a new ring instead:
# a new data dir and ring every turn, 16 Mi slots (room for a turn without the compactor).
RING_SLOTS=${RING_SLOTS:-$((1 << 22))}
# Without the compactor a kept ring is never drained (it fills, and decode would count earlier
# turns' records), so COMPACT=0 defaults to a new ring per turn; FRESH_RING=0 keeps it anyway
# (latency.sh, which counts nothing, for short runs).
FRESH_RING=${FRESH_RING:-$([ "$COMPACT" = 1 ] && echo 0 || echo 1)}
# Extra flags for `glint serve` (e.g. SERVE_ARGS="--sync-interval 1h").
SERVE_ARGS=${SERVE_ARGS:-}
# What a browser sends with a beacon: a query, its User-Agent and the page as Referer.
URL_PATH="/p.gif?e=pv&cid=summer-sale-2026&uid=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44&url=https%3A%2F%2Fshop.example.com%2Fcart&res=1920x1080"
UA='User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
REFERER='Referer: https://shop.example.com/cart?step=2'

say() { echo "$(basename "$0" .sh): $*" >&2; }
die() { say "error: $*"; exit 1; }

# --- what it needs -------------------------------------------------------------------------
missing=()
command -v nginx >/dev/null || missing+=(nginx)
command -v wrk >/dev/null || missing+=(wrk)
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
command -v taskset >/dev/null || missing+=(util-linux)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing ${missing[*]}; run as root or install them"
  say "installing ${missing[*]} from the system packages"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -x "$GLINT" ]; then
  say "building glint (cargo build --release)"
  (cd "$root" && cargo build --release --quiet)
fi
if [ ! -x "$FLOOR" ]; then
  say "building the floor (cargo build --release --example floor)"
  (cd "$root" && cargo build --release --quiet --example floor)
fi
server_threads=$(taskset -c "$SERVER_CPUS" nproc)

# --- processes we start, and cleanup ---------------------------------------------------------
work=$(mktemp -d /tmp/glint-loadtest.XXXXXX)
server_pid=""
compact_pid=""
extra_pids=""
cleanup() {
  for pid in $server_pid $compact_pid $extra_pids; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  sleep 1
  for pid in $server_pid $compact_pid $extra_pids; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

probes=0
wait_for_port() {
  # Up to 30 s: on a busy machine creating a 16 Mi-slot ring file can take a while.
  for _ in $(seq 1 300); do
    probes=$((probes + 1)) # each probe is one more logged request nobody else acknowledged
    curl -s -o /dev/null "http://127.0.0.1:$1/p.gif" && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

glint_of() { case $1 in alt-*) echo "$ALT_GLINT" ;; *) echo "$GLINT" ;; esac; }
is_glint() { case $1 in glint-* | alt-uring | alt-epoll) return 0 ;; *) return 1 ;; esac; }
logs_nothing() { case $1 in floor | alt-floor) return 0 ;; *) return 1 ;; esac; }

# start_server NAME: starts it pinned to SERVER_CPUS on $PORT (glint with its compactor when
# COMPACT=1), sets server_pid, compact_pid, server_dir and data_dir (glint's); 1 if it does
# not start.
start_server() {
  server_dir=$work/$1.$RANDOM
  mkdir -p "$server_dir/tmp"
  compact_pid=""
  data_dir=$server_dir/data
  local slots=$((1 << 24)) prime=0
  if is_glint "$1" && [ "$FRESH_RING" != 1 ]; then
    data_dir=$work/rings/$1
    slots=$RING_SLOTS
    rm -rf "$data_dir/segments" # the last turn's, already counted
    [ -d "$data_dir" ] || prime=1
  fi
  rm -f "$server_dir/times.before" "$server_dir/times.after" "$server_dir/once.time"
  case $1 in
    glint-* | alt-uring | alt-epoll)
      local bin extra=()
      bin=$(glint_of "$1")
      [ -x "$bin" ] || { say "$1: no binary (set ALT_GLINT)"; return 1; }
      # No admin (metrics) listener: it is not under test and its default port may be taken.
      "$bin" serve --help | grep -q -- '--admin-listen' && extra=(--admin-listen off)
      # A full ring answers 503, and the tables flag any non-2xx answer.
      taskset -c "$SERVER_CPUS" "$bin" serve --listen "127.0.0.1:$PORT" \
        --threads "$server_threads" --io "${1##*-}" --data-dir "$data_dir" \
        --ring-slots "$slots" $SERVE_ARGS "${extra[@]}" 2>"$server_dir/server.log" &
      ;;
    floor | alt-floor)
      local bin=$FLOOR
      [ "$1" = alt-floor ] && bin=$ALT_FLOOR
      [ -x "$bin" ] || { say "$1: no binary (set ALT_FLOOR)"; return 1; }
      taskset -c "$SERVER_CPUS" "$bin" --listen "127.0.0.1:$PORT" --threads "$server_threads" \
        2>"$server_dir/server.log" &
      ;;
    nginx)
      sed -e "s#@PREFIX@#$server_dir#g" -e "s#@PORT@#$PORT#g" -e "s#@WORKERS@#$server_threads#g" \
        "$here/nginx.conf" >"$server_dir/nginx.conf"
      taskset -c "$SERVER_CPUS" nginx -p "$server_dir" -c "$server_dir/nginx.conf" \
        2>"$server_dir/server.log" &
      ;;
    *) die "unknown server $1" ;;
  esac
  server_pid=$!
  if ! wait_for_port "$PORT"; then
    say "$1 did not start: $(tail -1 "$server_dir/server.log")"
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    return 1
  fi
  if [ "$prime" = 1 ]; then
    # A ring lapped before has its pages in the page cache; a new one's first write to each
    # page reads it in (zero-filled) on the request path, which on this project's VM costs more
    # than the request (loadtest/README.md). Reading the file once does that work up front.
    local t0=$SECONDS
    cat "$data_dir"/ring-*.glr >/dev/null
    say "$1: ring of $slots slots read into the page cache in $((SECONDS - t0)) s"
  fi
  if is_glint "$1" && [ "$COMPACT" = 1 ]; then
    # The compactor shares the server's CPU: keeping the records is part of glint's cost,
    # as the access log is part of nginx's. Its CPU time is read when it is reaped. Niced by
    # COMPACT_NICE: its cycle is a burst of CPU each second (20-45 ms at 64-115 k req/s) that
    # at the server's own priority shows in the server's tail latency.
    taskset -c "$SERVER_CPUS" nice -n "$COMPACT_NICE" "$(glint_of "$1")" compact --data-dir "$data_dir" \
      --interval 1s 2>"$server_dir/compact.log" &
    compact_pid=$!
  fi
}

# stop_server NAME: graceful stop; for glint then its compactor and a last `compact --once`.
stop_server() {
  # nginx: SIGQUIT is its graceful stop (flushes the log buffer); glint: SIGTERM drains.
  kill "-$([ "$1" = nginx ] && echo QUIT || echo TERM)" "$server_pid"
  for _ in $(seq 1 200); do
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$server_pid" 2>/dev/null && die "$1 did not stop within 20 s"
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
  if [ -n "$compact_pid" ]; then
    # The CPU time of the children this shell reaped, around reaping the compactor alone
    # (the watchdog that bounds the wait is reaped after). The watchdog is its own `sh`, not
    # a subshell: a subshell would inherit this script's traps and clean up on its SIGTERM.
    sh -c 'sleep 30 && kill -KILL "$1"' sh "$compact_pid" 2>/dev/null &
    local watchdog=$!
    times >"$server_dir/times.before"
    # Its SIGTERM ends the loop after the current cycle.
    kill -TERM "$compact_pid"
    wait "$compact_pid" || die "glint compact failed or hung: $(tail -1 "$server_dir/compact.log")"
    times >"$server_dir/times.after"
    kill "$watchdog" 2>/dev/null || true
    wait "$watchdog" 2>/dev/null || true
    compact_pid=""
    # A last cycle moves whatever the ring still holds, on the same CPU; its time counts too.
    /usr/bin/time -f '%U %S' -o "$server_dir/once.time" taskset -c "$SERVER_CPUS" \
      "$(glint_of "$1")" compact --data-dir "$data_dir" --once 2>>"$server_dir/compact.log" \
      || die "glint compact --once failed: $(tail -1 "$server_dir/compact.log")"
  fi
}

# The server's processes: itself and its children (nginx workers).
server_pids() { echo "$server_pid" $(pgrep -P "$server_pid" || true); }

# Server CPU time in clock ticks (user + sys).
cpu_ticks() {
  local total=0 p
  for p in $(server_pids); do
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

# Server resident anonymous memory in KiB (heap and stacks, summed over its processes): what
# connections cost. Not VmRSS, which also counts the pages of glint's mmap'd ring files that
# the run's records touched (and nginx's none), so it grows with the requests, not the
# connections.
rss_kib() {
  local total=0 p
  for p in $(server_pids); do
    total=$((total + $(awk '/^RssAnon:/ {print $2}' "/proc/$p/status")))
  done
  echo "$total"
}

# Seconds of user + sys of reaped children in the output of `times` (its second line).
children_secs() {
  awk 'NR == 2 { for (i = 1; i <= 2; i++) { split($i, t, /[ms]/); s += t[1] * 60 + t[2] } }
       END { printf "%.3f", s }' "$1"
}

# The compactor's CPU seconds over the turn (its loop and the final --once); 0 without one.
compact_secs() {
  [ -f "$server_dir/times.after" ] || { echo 0; return; }
  local loop
  loop=$(awk -v a="$(children_secs "$server_dir/times.after")" \
    -v b="$(children_secs "$server_dir/times.before")" 'BEGIN { printf "%.3f", a - b }')
  awk -v l="$loop" '{ s = l + $1 + $2 } END { printf "%.3f", s }' "$server_dir/once.time"
}

# Records the server logged this turn, after it stopped; "-" for the floor.
count_logged() {
  if logs_nothing "$1"; then
    echo -
  elif [ "$1" = nginx ]; then
    awk '$9 ~ /^2/' "$server_dir/access.log" | wc -l
  elif [ "$COMPACT" = 1 ]; then
    # Every record CRC-checked, read from the segments the compactor wrote.
    timeout 300 "$(glint_of "$1")" decode --stats "$data_dir/segments" | sed -n 's/^records: //p'
  else
    timeout 300 "$(glint_of "$1")" decode --stats "$data_dir" | sed -n 's/^records: //p'
  fi
}
