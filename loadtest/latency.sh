#!/usr/bin/env bash
# Latency at a fixed rate: glint (with its compactor) against nginx empty_gif at 50% and 90% of
# nginx's measured maximum, with `glint loadgen -R` (open loop, latency from each request's
# planned send time: coordinated omission corrected). Prints a table of p50/p99/p99.9 and
# the ratios to nginx, the floor's too (examples/floor.rs: glint's I/O, nothing parsed or kept,
# no compactor): what this machine's loopback lets any server reach. See loadtest/README.md.
#
# Settings (environment): DURATION=10 (s per measured run), WARMUP=2, ROUNDS=3, CONNS=64,
# SERVER_CPUS=0, LOAD_CPUS=1, SERVERS="floor glint-uring glint-epoll nginx", FRACTIONS="0.5 0.9",
# MAX_RPS (skip measuring nginx's maximum), GLINT, FLOOR, ALT_GLINT, PORT=18180.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
LOAD_CPUS=${LOAD_CPUS:-1}
SERVERS=${SERVERS:-"floor glint-uring glint-epoll nginx"}
FRACTIONS=${FRACTIONS:-"0.5 0.9"}
MAX_RPS=${MAX_RPS:-}
STEP_LIMIT=$((DURATION + WARMUP + 30))
# The compactor as deployed: below the server for CPU, which its tail latency depends on.
COMPACT_NICE=${COMPACT_NICE:-$(sed -n 's/^Nice=//p' "$root/systemd/glint-compact.service")}
# shellcheck source=loadtest/servers.sh
. "$here/servers.sh"
load_threads=$(taskset -c "$LOAD_CPUS" nproc)

# nginx's maximum: wrk closed loop, as in compare.sh, median of ROUNDS runs.
if [ -z "$MAX_RPS" ]; then
  runs=()
  for round in $(seq 1 "$ROUNDS"); do
    start_server nginx || die "nginx did not start"
    timeout "$STEP_LIMIT" taskset -c "$LOAD_CPUS" wrk -t "$load_threads" -c "$CONNS" -d "${WARMUP}s" \
      -H "$UA" -H "$REFERER" "http://127.0.0.1:$PORT$URL_PATH" >/dev/null
    rps=$(timeout "$STEP_LIMIT" taskset -c "$LOAD_CPUS" wrk -t "$load_threads" -c "$CONNS" \
      -d "${DURATION}s" -H "$UA" -H "$REFERER" "http://127.0.0.1:$PORT$URL_PATH" \
      | awk '/^Requests\/sec/ {print $2}')
    stop_server nginx
    rm -rf "$server_dir"
    say "round $round: nginx maximum $rps req/s (wrk -c $CONNS)"
    runs+=("$rps")
  done
  MAX_RPS=$(printf '%s\n' "${runs[@]}" | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}')
fi
say "nginx maximum (median): $MAX_RPS req/s; rates: $(for f in $FRACTIONS; do printf '%s ' "$f"; done)of it"

results=$work/latency.tsv
for round in $(seq 1 "$ROUNDS"); do
  for fraction in $FRACTIONS; do
    rate=$(awk -v m="$MAX_RPS" -v f="$fraction" 'BEGIN {printf "%d", m * f}')
    for server in $SERVERS; do
      say "round $round, $rate req/s ($fraction of nginx's maximum), $server"
      start_server "$server" || die "$server did not start"
      for phase in warm run; do
        secs=$([ "$phase" = warm ] && echo "$WARMUP" || echo "$DURATION")
        timeout "$STEP_LIMIT" taskset -c "$LOAD_CPUS" "$GLINT" loadgen -t "$load_threads" -c "$CONNS" \
          -R "$rate" -d "${secs}s" -H "$UA" -H "$REFERER" --json \
          "http://127.0.0.1:$PORT$URL_PATH" >"$work/$phase.json"
      done
      stop_server "$server"
      rm -rf "$server_dir"
      python3 - "$work/run.json" "$fraction" "$rate" "$server" >>"$results" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
l = d["latency_us"]
bad = d["requests"]["non_2xx"] + sum(d["errors"].values())
print("\t".join(map(str, [sys.argv[2], sys.argv[3], sys.argv[4], d["requests_per_sec"],
                          l["p50"], l["p99"], l["p99_9"], bad])))
EOF
    done
  done
done

python3 - "$results" "$MAX_RPS" "$CONNS" <<'EOF'
import sys, collections, statistics
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    f, rate, s, rps, p50, p99, p999, bad = line.rstrip("\n").split("\t")
    rows[(float(f), int(rate), s)].append((float(rps), float(p50), float(p99), float(p999), int(bad)))
med = lambda v, i: statistics.median(x[i] for x in v)
print(f"| rate | server | req/s done | p50 us | p99 us | p99.9 us | p99 vs nginx | p99.9 vs nginx | errors, non-2xx |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
order = lambda k: (k[0], k[2] == "nginx", k[2])
for key in sorted(rows, key=order):
    f, rate, s = key
    v = rows[key]; n = rows.get((f, rate, "nginx"))
    ratio = lambda i: f"{med(v, i) / med(n, i):.2f}x" if n and med(n, i) else "-"
    print(f"| {rate} ({f:.0%} of nginx max) | {s} | {med(v, 0):.0f} | {med(v, 1):.0f} | {med(v, 2):.0f} | "
          f"{med(v, 3):.0f} | {ratio(2)} | {ratio(3)} | {sum(x[4] for x in v)} |")
print()
print(f"nginx maximum {float(sys.argv[2]):.0f} req/s (wrk -c {sys.argv[3]}); loadgen -c {sys.argv[3]} -R RATE, "
      f"latency from the planned send time; medians of {max(len(v) for v in rows.values())} rounds.")
print("target (issue 15): glint's p99 and p99.9 at most 0.5x nginx's at the same rate; the floor "
      "(no parsing, no record, no compactor) shows how low this machine lets any server go")
EOF
