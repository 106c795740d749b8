#!/usr/bin/env bash
# Side-by-side benchmark on loopback, wrk as the client: the floor (examples/floor.rs: glint's
# io_uring driver answering every request head with the pixel, nothing parsed or recorded),
# glint (--io uring and --io epoll, with `glint compact` running beside it) and nginx
# empty_gif with a buffered access log, in alternating turns over several rounds.
# Prints req/s and CPU per request (server, plus the compactor for glint) with ratios to
# nginx and to the floor, and checks that every acknowledged request was logged.
# See loadtest/README.md.
#
# Settings (environment): DURATION=5 (s per measured run), WARMUP=1, ROUNDS=3, CONNS=64,
# DEPTH=16, SERVER_CPUS=0, LOAD_CPUS=1, SERVERS="floor glint-uring glint-epoll nginx",
# GLINT=target/release/glint and FLOOR=target/release/examples/floor (built if missing),
# PORT=18180. ALT_GLINT=PATH adds the servers alt-uring / alt-epoll (another glint build, e.g.
# before a change) and ALT_FLOOR=PATH alt-floor, when named in SERVERS.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-64}
DEPTH=${DEPTH:-16}
LOAD_CPUS=${LOAD_CPUS:-1}
SERVERS=${SERVERS:-"floor glint-uring glint-epoll nginx"}
# Every external command is bounded; a run never waits longer than this for one step.
STEP_LIMIT=$((DURATION + WARMUP + 30))
# shellcheck source=loadtest/servers.sh
. "$here/servers.sh"
load_threads=$(taskset -c "$LOAD_CPUS" nproc)

# run_wrk SECONDS DEPTH OUT: one run; writes "requests non2xx req/s" of it to OUT.
run_wrk() {
  local lua=()
  [ "$2" -gt 1 ] && lua=(-s "$here/pipeline.lua")
  timeout "$STEP_LIMIT" taskset -c "$LOAD_CPUS" wrk -t "$load_threads" -c "$CONNS" -d "${1}s" \
    -H "$UA" -H "$REFERER" "${lua[@]}" "http://127.0.0.1:$PORT$URL_PATH" -- "$2" >"$3.txt"
  awk '/requests in/ {n = $1} /Non-2xx or 3xx responses:/ {e = $5}
       /^Requests\/sec/ {r = $2} END {print n + 0, e + 0, r + 0}' "$3.txt" >"$3"
}

# --- the turns -------------------------------------------------------------------------------
ticks_per_s=$(getconf CLK_TCK)
results=$work/results.tsv
skipped=""
say "$(nproc) CPUs, servers on CPU $SERVER_CPUS ($server_threads workers), wrk on CPU $LOAD_CPUS ($load_threads threads, $CONNS connections)"
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
      run_wrk "$WARMUP" "$depth" "$work/warm"
      before=$(cpu_ticks)
      run_wrk "$DURATION" "$depth" "$work/run"
      after=$(cpu_ticks)
      stop_server "$server"
      logged=$(count_logged "$server")
      read -r warm_n warm_e _ <"$work/warm"
      read -r run_n run_e run_rps <"$work/run"
      acked=$((warm_n - warm_e + run_n - run_e))
      # Requests the server may have logged without wrk counting the answer: at most one
      # batch per connection in flight when each wrk run stopped, plus readiness probes.
      unsure=$((probes + 2 * CONNS * depth))
      # Everything the compactor moved this turn (warm-up and run) shares its CPU time.
      compacted=$((warm_n + run_n))
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$depth" "$server" "$run_rps" \
        "$((after - before))" "$run_n" "$(compact_secs)" "$compacted" \
        "${logged:--}" "$acked" "$unsure" "$((warm_e + run_e))" >>"$results"
      rm -rf "$server_dir"
    done
  done
done

[ -s "$results" ] || die "no server could be measured"
status=0
python3 - "$results" "$ticks_per_s" "$CONNS" <<'EOF' || status=$?
import sys, collections, statistics
rows = collections.defaultdict(list)
for line in open(sys.argv[1]):
    d, s, rps, ticks, done, csecs, compacted, logged, acked, unsure, non2xx = line.rstrip("\n").split("\t")
    cpu = int(ticks) * 1e6 / int(sys.argv[2]) / max(1, int(done))
    ccpu = float(csecs) * 1e6 / max(1, int(compacted)) if s not in ("nginx", "floor", "alt-floor") else 0.0
    rows[(int(d), s)].append(dict(rps=float(rps), server=cpu, compact=ccpu, total=cpu + ccpu,
                                  logged=logged, acked=int(acked), unsure=int(unsure), non2xx=int(non2xx)))
agg = {}
for k, v in rows.items():
    med = lambda key: statistics.median(r[key] for r in v)
    logged = None if v[0]["logged"] == "-" else sum(int(r["logged"]) for r in v)
    agg[k] = dict(rps=med("rps"), server=med("server"), compact=med("compact"), total=med("total"),
                  logged=logged, acked=sum(r["acked"] for r in v), unsure=sum(r["unsure"] for r in v),
                  non2xx=sum(r["non2xx"] for r in v), n=len(v))
print("| load | server | req/s | server CPU us/req | compactor us/req | CPU us/req | req/s vs nginx | CPU vs nginx | CPU vs floor | logged / acked 2xx |")
print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
order = lambda k: (k[0], {"floor": 0, "alt-floor": 1, "nginx": 9}.get(k[1], 5), k[1])
bad = False
for (d, s) in sorted(agg, key=order):
    a = agg[(d, s)]; n = agg.get((d, "nginx")); f = agg.get((d, "floor"))
    ratio = lambda ref, key: f"{a[key] / ref[key]:.2f}x" if ref and ref[key] else "-"
    if a["logged"] is None:
        log = "- (logs nothing)"
    else:
        # Every acknowledged request must be logged; the excess is bounded by what was in flight.
        ok = a["acked"] <= a["logged"] <= a["acked"] + a["unsure"]
        bad |= a["logged"] < a["acked"]
        log = f"{a['logged']} / {a['acked']} {'ok' if ok else 'MISMATCH'} (+{a['logged'] - a['acked']} unacked)"
    # A non-2xx answer (503: ring full) is cheaper than a logged beacon: flag any, never hide it.
    if a["non2xx"]:
        log += f" ({a['non2xx']} non-2xx!)"
    load = f"{sys.argv[3]} conns" + (f", pipeline {d}" if d > 1 else "")
    print(f"| {load} | {s} | {a['rps']:.0f} | {a['server']:.2f} | {a['compact']:.2f} | {a['total']:.2f} | "
          f"{ratio(n, 'rps')} | {ratio(n, 'total')} | {ratio(f, 'total')} | {log} |")
print()
print("medians of", max(a["n"] for a in agg.values()), "rounds; CPU us/req = server + compactor (glint); targets (issue 15):")
for (d, s) in sorted(agg, key=order):
    if not s.endswith("uring"):
        continue
    a = agg[(d, s)]; n = agg.get((d, "nginx")); f = agg.get((d, "floor"))
    want_rps = 1.5 if d == 1 else 10
    parts = []
    if f:
        r = a["total"] / f["total"]; parts.append(f"CPU/req {r:.2f}x floor ({'met' if r <= 1.15 else 'NOT met'}, <= 1.15x)")
    if n:
        r = a["rps"] / n["rps"]; parts.append(f"req/s {r:.2f}x nginx ({'met' if r >= want_rps else 'NOT met'}, >= {want_rps}x)")
        r = a["total"] / n["total"]; parts.append(f"CPU/req {r:.2f}x nginx ({'met' if r <= 0.6 else 'NOT met'}, <= 0.6x)")
    print(f"- {s}, {'pipeline ' + str(d) if d > 1 else 'non-pipelined'}: " + "; ".join(parts))
sys.exit(3 if bad else 0)
EOF
[ -z "$skipped" ] || echo "not measured (did not start):$skipped"
[ "$status" = 3 ] && die "a server logged fewer requests than it acknowledged"
exit "$status"
