#!/usr/bin/env bash
# Side-by-side benchmark on loopback: glint (--io uring and --io epoll) against nginx empty_gif
# with a buffered access log, under the same glint loadgen load, in interleaved turns.
# Prints one table (req/s, p50, p99, server CPU us per request, ratios to nginx, logged vs
# acknowledged) and a load-generator cross-check against wrk. See loadtest/README.md.
#
# Settings (environment): DURATION=5 (s per measured run), WARMUP=1, ROUNDS=2, CONNS=64,
# DEPTH=16, SERVER_CPUS=0, LOAD_CPUS=1, SERVERS="glint-uring glint-epoll nginx", WRK_CHECK=1,
# GLINT=target/release/glint (built if missing), PORT=18180.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-2}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}
SERVER_CPUS=${SERVER_CPUS:-0}
LOAD_CPUS=${LOAD_CPUS:-1}
SERVERS=${SERVERS:-"glint-uring glint-epoll nginx"}
WRK_CHECK=${WRK_CHECK:-1}
GLINT=${GLINT:-$root/target/release/glint}
PORT=${PORT:-18180}
# Every external command is bounded; a run never waits longer than this for one step.
STEP_LIMIT=$((DURATION + WARMUP + 30))

say() { echo "compare: $*" >&2; }
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
server_threads=$(taskset -c "$SERVER_CPUS" nproc)
# No admin (metrics) listener: it is not under test and its default port may be taken.
glint_extra=()
"$GLINT" serve --help | grep -q -- '--admin-listen' && glint_extra=(--admin-listen off)
load_threads=$(taskset -c "$LOAD_CPUS" nproc)

# --- processes we start, and cleanup ---------------------------------------------------------
work=$(mktemp -d /tmp/glint-compare.XXXXXX)
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    sleep 1
    kill -KILL "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

probes=0
wait_for_port() {
  for _ in $(seq 1 100); do
    probes=$((probes + 1)) # each probe is one more logged request nobody else acknowledged
    curl -s -o /dev/null "http://127.0.0.1:$1/p.gif" && return 0
    kill -0 "$server_pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# start_server NAME: starts it pinned to SERVER_CPUS on $PORT, sets server_pid and server_dir.
start_server() {
  server_dir=$work/$1.$RANDOM
  mkdir -p "$server_dir/tmp"
  case $1 in
    glint-*)
      # Room for a whole turn without a compactor (16M slots, ~1.2M req/s pipelined for 6 s):
      # a full ring would answer 503, and the table flags any non-2xx answer.
      taskset -c "$SERVER_CPUS" "$GLINT" serve --listen "127.0.0.1:$PORT" \
        --threads "$server_threads" --io "${1#glint-}" --data-dir "$server_dir/data" \
        --ring-slots $((1 << 24)) "${glint_extra[@]}" 2>"$server_dir/server.log" &
      ;;
    nginx)
      sed -e "s#@PREFIX@#$server_dir#g" -e "s#@PORT@#$PORT#g" -e "s#@WORKERS@#$server_threads#g" \
        "$here/nginx.conf" >"$server_dir/nginx.conf"
      taskset -c "$SERVER_CPUS" nginx -p "$server_dir" -c "$server_dir/nginx.conf" \
        2>"$server_dir/server.log" &
      ;;
  esac
  server_pid=$!
  if ! wait_for_port "$PORT"; then
    say "$1 did not start: $(tail -1 "$server_dir/server.log")"
    kill -KILL "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
    return 1
  fi
}

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
}

# Server CPU time in clock ticks (user + sys) of the process and its children (nginx workers).
cpu_ticks() {
  local total=0 p
  for p in "$server_pid" $(pgrep -P "$server_pid" || true); do
    # Fields after the ")" that ends the command name: utime is the 12th, stime the 13th.
    total=$((total + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')))
  done
  echo "$total"
}

glint_count_source=server-log
"$GLINT" decode --help 2>/dev/null | grep -q -- '--stats' && glint_count_source=decode
# Records the server logged this turn, after it stopped.
count_logged() {
  case $1 in
    nginx) awk '$9 ~ /^2/' "$server_dir/access.log" | wc -l ;;
    glint-*)
      if [ "$glint_count_source" = decode ]; then
        # Reads and CRC-checks every record in the ring files: independent of the server.
        timeout 300 "$GLINT" decode --stats "$server_dir/data" | sed -n 's/^records: //p'
      else
        # Without `glint decode --stats`: the server's own shutdown count of committed records.
        sed -n 's/.*stopped: \([0-9]*\) records.*/\1/p' "$server_dir/server.log" | tail -1
      fi
      ;;
  esac
}

loadgen() { # loadgen SECONDS PIPELINE -> JSON summary on stdout ($timed: optional time prefix)
  # shellcheck disable=SC2086
  timeout "$STEP_LIMIT" ${timed:-} taskset -c "$LOAD_CPUS" "$GLINT" loadgen "http://127.0.0.1:$PORT/p.gif" \
    -t "$load_threads" -c "$CONNS" -d "${1}s" --pipeline "$2" --json
}

field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(eval("d"+sys.argv[2]))' "$@"; }

# --- the turns -------------------------------------------------------------------------------
ticks_per_s=$(getconf CLK_TCK)
results=$work/results.tsv
skipped=""
say "$(nproc) CPUs, servers on CPU $SERVER_CPUS ($server_threads workers), loadgen on CPU $LOAD_CPUS ($load_threads threads)"
say "$ROUNDS rounds x {non-pipelined, pipelined $DEPTH} x {$SERVERS}, ${DURATION}s each after ${WARMUP}s warm-up"
for round in $(seq 1 "$ROUNDS"); do
  for depth in 1 "$DEPTH"; do
    for server in $SERVERS; do
      case " $skipped " in *" $server "*) continue ;; esac
      say "round $round, pipeline $depth, $server"
      probes=0
      if ! start_server "$server"; then
        skipped="$skipped $server"
        continue
      fi
      loadgen "$WARMUP" "$depth" >"$work/warm.json"
      before=$(cpu_ticks)
      loadgen "$DURATION" "$depth" >"$work/run.json"
      after=$(cpu_ticks)
      stop_server "$server"
      logged=$(count_logged "$server")
      acked=$(($(field "$work/warm.json" "['requests']['ok_2xx']") + $(field "$work/run.json" "['requests']['ok_2xx']")))
      # Requests the server may have logged without the load generator seeing the answer.
      unsure=$((probes + $(field "$work/warm.json" "['requests']['sent'] - d['requests']['ok_2xx']") + $(field "$work/run.json" "['requests']['sent'] - d['requests']['ok_2xx']")))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$depth" "$server" \
        "$(field "$work/run.json" "['requests_per_sec']")" \
        "$(field "$work/run.json" "['latency_us']['p50']")" \
        "$(field "$work/run.json" "['latency_us']['p99']")" \
        "$((after - before))" "$(field "$work/run.json" "['requests']['completed']")" \
        "${logged:-0}" "$acked" "$unsure" "$(field "$work/run.json" "['requests']['non_2xx']")" >>"$results"
      rm -rf "$server_dir"
    done
  done
done

# --- load generator cross-check: glint loadgen vs wrk against the same server ---------------
wrk_results=$work/wrk.tsv
if [ "$WRK_CHECK" = 1 ]; then
  check_server=$(for s in $SERVERS; do case " $skipped " in *" $s "*) ;; *) echo "$s" ;; esac; done | head -1)
  say "load generator check: glint loadgen vs wrk against $check_server, $ROUNDS rounds"
  for round in $(seq 1 "$ROUNDS"); do
    for depth in 1 "$DEPTH"; do
      # A fresh server (and ring) for each pair of runs, so neither tool meets a full ring.
      start_server "$check_server" || die "$check_server did not start"
      lua=()
      [ "$depth" -gt 1 ] && lua=(-s "$here/pipeline.lua")
      # Each tool's own CPU time (user + sys) comes from /usr/bin/time.
      timeout "$STEP_LIMIT" /usr/bin/time -f '%U+%S' -o "$work/wrk.time" taskset -c "$LOAD_CPUS" \
        wrk -t "$load_threads" -c "$CONNS" -d "${DURATION}s" "${lua[@]}" \
        "http://127.0.0.1:$PORT/p.gif" -- "$depth" >"$work/wrk.out"
      w=$(awk '/^Requests\/sec/ {print $2}' "$work/wrk.out")
      wn=$(awk '/requests in/ {print $1}' "$work/wrk.out")
      timed="/usr/bin/time -f %U+%S -o $work/lg.time" loadgen "$DURATION" "$depth" >"$work/lg.json"
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$depth" "$w" "$(field "$work/lg.json" "['requests_per_sec']")" \
        "$(awk -F+ '{print $1 + $2}' "$work/wrk.time")" "$wn" "$(awk -F+ '{print $1 + $2}' "$work/lg.time")" \
        "$(field "$work/lg.json" "['requests']['completed']")" >>"$wrk_results"
      stop_server "$check_server"
      rm -rf "$server_dir"
    done
  done
fi

python3 - "$results" "$wrk_results" "$ticks_per_s" "$CONNS" <<'EOF'
import sys, collections, os
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d, s, rps, p50, p99, ticks, done, logged, acked, unsure, non2xx = line.split("\t")
    rows[(int(d), s)].append((float(rps), float(p50), float(p99), int(ticks), int(done),
                              int(logged), int(acked), int(unsure), int(non2xx)))
tick_us = 1e6 / int(sys.argv[3])
def mean(xs): return sum(xs) / len(xs)
agg = {}
for k, v in rows.items():
    agg[k] = dict(rps=mean([r[0] for r in v]), p50=mean([r[1] for r in v]), p99=mean([r[2] for r in v]),
                  cpu=sum(r[3] for r in v) * tick_us / max(1, sum(r[4] for r in v)),
                  logged=sum(r[5] for r in v), acked=sum(r[6] for r in v), unsure=sum(r[7] for r in v),
                  non2xx=sum(r[8] for r in v))
print(f"| load | server | req/s | p50 us | p99 us | CPU us/req | req/s vs nginx | p50 vs nginx | p99 vs nginx | CPU vs nginx | logged / acked 2xx |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
for (d, s) in sorted(agg, key=lambda k: (k[0], k[1] == "nginx", k[1])):
    a = agg[(d, s)]; n = agg.get((d, "nginx"))
    ratio = lambda key: f"{a[key] / n[key]:.2f}x" if n and n[key] else "-"
    # Every acknowledged request must be logged; the excess is bounded by what was sent unacked.
    ok = a["acked"] <= a["logged"] <= a["acked"] + a["unsure"]
    # A non-2xx answer (503: ring full) is cheaper than a logged beacon: flag any, never hide it.
    flag = f" ({a['non2xx']} non-2xx!)" if a["non2xx"] else ""
    load = f"{sys.argv[4]} conns" + (f", pipeline {d}" if d > 1 else "")
    print(f"| {load} | {s} | {a['rps']:.0f} | {a['p50']:.0f} | {a['p99']:.0f} | {a['cpu']:.2f} | "
          f"{ratio('rps')} | {ratio('p50')} | {ratio('p99')} | {ratio('cpu')} | "
          f"{a['logged']} / {a['acked']} {'ok' if ok else 'MISMATCH'} (+{a['logged'] - a['acked']} unacked){flag} |")
if os.path.exists(sys.argv[2]):
    print()
    print("| load | wrk req/s | glint loadgen req/s | loadgen / wrk | wrk CPU us/req | loadgen CPU us/req |")
    print("|---|---:|---:|---:|---:|---:|")
    by = collections.defaultdict(list)
    for line in open(sys.argv[2]):
        d, w, l, wcpu, wn, lcpu, ln = line.split("\t")
        by[int(d)].append((float(w), float(l), float(wcpu), int(wn), float(lcpu), int(ln)))
    for d, v in sorted(by.items()):
        w, l = mean([x[0] for x in v]), mean([x[1] for x in v])
        wc = sum(x[2] for x in v) * 1e6 / max(1, sum(x[3] for x in v))
        lc = sum(x[4] for x in v) * 1e6 / max(1, sum(x[5] for x in v))
        print(f"| {sys.argv[4]} conns{', pipeline ' + str(d) if d > 1 else ''} | {w:.0f} | {l:.0f} | {l / w:.2f}x | {wc:.2f} | {lc:.2f} |")
EOF
echo
echo "glint records counted by: $([ "$glint_count_source" = decode ] && echo "glint decode --stats over the ring files" || echo "the server's shutdown line (glint decode --stats not available)")"
[ -z "$skipped" ] || echo "not measured (did not start):$skipped"
if awk -F'\t' '$8 < $9 {bad=1} END {exit bad ? 0 : 1}' "$results"; then
  die "a server logged fewer requests than it acknowledged"
fi
