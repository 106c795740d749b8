#!/usr/bin/env bash
# Many connections: each server (glint with its compactor, nginx empty_gif, the floor) first
# under wrk with 64 connections, then with 10,000 kept-alive connections open of which 1,000
# are active (wrk -c 1000 beside 9,000 idle ones that sent one request each and wait). Prints
# req/s and CPU per request of both, their ratio, and the memory per open connection (the
# server's resident anonymous memory with all 10,000 open, less that before, over 10,000). See
# loadtest/README.md.
#
# Settings (environment): DURATION=5, WARMUP=1, ROUNDS=2, ACTIVE=1000, IDLE=9000, BASE=64
# (the comparison's connections), SERVER_CPUS=0, LOAD_CPUS=1,
# SERVERS="floor glint-uring glint-epoll nginx", GLINT, FLOOR, ALT_GLINT, PORT=18180.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-2}
ACTIVE=${ACTIVE:-1000}
IDLE=${IDLE:-9000}
BASE=${BASE:-64}
LOAD_CPUS=${LOAD_CPUS:-1}
SERVERS=${SERVERS:-"floor glint-uring glint-epoll nginx"}
STEP_LIMIT=$((DURATION + WARMUP + 60))
# shellcheck source=loadtest/servers.sh
. "$here/servers.sh"
load_threads=$(taskset -c "$LOAD_CPUS" nproc)

# Every process started from here (servers, wrk, the idle holder) needs a descriptor per
# connection and some to spare.
want=$((ACTIVE + IDLE + 256))
[ "$(ulimit -Hn)" = unlimited ] || [ "$(ulimit -Hn)" -ge "$want" ] \
  || die "ulimit -Hn is $(ulimit -Hn); $want descriptors are needed (raise the hard limit)"
ulimit -n "$want"

# wrk_run CONNS SECONDS: prints "requests req/s non2xx".
wrk_run() {
  timeout "$STEP_LIMIT" taskset -c "$LOAD_CPUS" wrk -t "$load_threads" -c "$1" -d "${2}s" \
    -H "$UA" -H "$REFERER" "http://127.0.0.1:$PORT$URL_PATH" >"$work/wrk.txt"
  awk '/requests in/ {n = $1} /Non-2xx or 3xx responses:/ {e = $5}
       /^Requests\/sec/ {r = $2} END {print n + 0, r + 0, e + 0}' "$work/wrk.txt"
}

# Opens IDLE connections, sends one beacon on each and reads its answer, says "ready", then
# holds them open until killed.
hold_idle() {
  taskset -c "$LOAD_CPUS" python3 - "$PORT" "$IDLE" "$URL_PATH" "$UA" "$REFERER" >"$work/holder.out" <<'EOF' &
import socket, sys, time
port, n, path, ua, referer = int(sys.argv[1]), int(sys.argv[2]), *sys.argv[3:]
req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{ua}\r\n{referer}\r\n\r\n".encode()
socks = []
for _ in range(n):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(req)
    socks.append(s)
for s in socks:
    got = b""
    while True:
        head, sep, body = got.partition(b"\r\n\r\n")
        if sep:
            length = [int(l.split(b":")[1]) for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
            if len(body) >= (length[0] if length else 0):
                break
        chunk = s.recv(4096)
        if not chunk:
            sys.exit(f"connection closed before its answer: {got[:80]!r}")
        got += chunk
    if not got.startswith(b"HTTP/1.1 200"):
        sys.exit(f"unexpected answer {got[:40]!r}")
print("ready", flush=True)
time.sleep(3600)
EOF
  holder_pid=$!
  extra_pids="$holder_pid"
  for _ in $(seq 1 600); do
    grep -q ready "$work/holder.out" 2>/dev/null && return 0
    kill -0 "$holder_pid" 2>/dev/null || die "the idle connections could not be opened"
    sleep 0.1
  done
  die "the idle connections were not all answered within 60 s"
}

ticks_per_s=$(getconf CLK_TCK)
results=$work/conns.tsv
say "servers on CPU $SERVER_CPUS, wrk and the idle holder on CPU $LOAD_CPUS; $ROUNDS rounds of {$SERVERS}"
for round in $(seq 1 "$ROUNDS"); do
  for server in $SERVERS; do
    say "round $round, $server: $BASE connections, then $ACTIVE active of $((ACTIVE + IDLE))"
    start_server "$server" || die "$server did not start"
    wrk_run "$BASE" "$WARMUP" >/dev/null
    t0=$(cpu_ticks)
    read -r base_n base_rps base_e < <(wrk_run "$BASE" "$DURATION")
    t1=$(cpu_ticks)
    rss_before=$(rss_kib)
    hold_idle
    wrk_run "$ACTIVE" "$WARMUP" >/dev/null
    # Halfway through the measured run every connection is open: sample the RSS then.
    (sleep "$((DURATION / 2 + 1))" && rss_kib >"$work/rss.mid") &
    sampler=$!
    t2=$(cpu_ticks)
    read -r many_n many_rps many_e < <(wrk_run "$ACTIVE" "$DURATION")
    t3=$(cpu_ticks)
    wait "$sampler"
    kill "$holder_pid" 2>/dev/null || true
    wait "$holder_pid" 2>/dev/null || true
    extra_pids=""
    stop_server "$server"
    rm -rf "$server_dir"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$base_rps" "$((t1 - t0))" "$base_n" \
      "$many_rps" "$((t3 - t2))" "$many_n" "$rss_before" "$(cat "$work/rss.mid")" \
      "$((base_e + many_e))" >>"$results"
  done
done

python3 - "$results" "$ticks_per_s" "$BASE" "$ACTIVE" "$((ACTIVE + IDLE))" <<'EOF'
import sys, collections, statistics
rows = collections.defaultdict(list)
tick_us = 1e6 / int(sys.argv[2])
for line in open(sys.argv[1]):
    s, brps, bt, bn, mrps, mt, mn, rss0, rss1, bad = line.rstrip("\n").split("\t")
    rows[s].append(dict(brps=float(brps), bcpu=int(bt) * tick_us / max(1, int(bn)), mrps=float(mrps),
                        mcpu=int(mt) * tick_us / max(1, int(mn)), rss0=int(rss0), rss1=int(rss1),
                        bad=int(bad)))
base, active, total = sys.argv[3], sys.argv[4], int(sys.argv[5])
print(f"| server | req/s, {base} conns | CPU us/req | req/s, {active} active of {total:,} | CPU us/req | "
      f"req/s ratio | anon RSS before | anon RSS with {total:,} open | KiB per open conn | non-2xx |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
order = lambda s: ({"floor": 0, "nginx": 9}.get(s, 5), s)
for s in sorted(rows, key=order):
    v = rows[s]
    m = lambda k: statistics.median(r[k] for r in v)
    per_conn = statistics.median((r["rss1"] - r["rss0"]) / total for r in v)
    print(f"| {s} | {m('brps'):.0f} | {m('bcpu'):.2f} | {m('mrps'):.0f} | {m('mcpu'):.2f} | "
          f"{m('mrps') / m('brps'):.2f}x | {m('rss0') / 1024:.1f} MiB | {m('rss1') / 1024:.1f} MiB | "
          f"{per_conn:.1f} | {sum(r['bad'] for r in v)} |")
print()
print(f"medians of {max(len(v) for v in rows.values())} rounds; CPU is the server's alone (glint's compactor runs but is not counted here);")
print("target (issue 15): req/s with 10,000 open within 10% of the 64-connection figure")
EOF
