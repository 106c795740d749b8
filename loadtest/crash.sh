#!/usr/bin/env bash
# Proof that no acknowledged beacon is lost: drive `glint serve` with `glint loadgen --id-param
# rid --acked-out`, SIGKILL the server at a random moment (and the compactor in some cycles),
# restart, repeat; then compact, decode and compare what was acknowledged with what was logged.
#
#   loadtest/crash.sh [CYCLES]        default 200 cycles; loopback only; bounded in time
#
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing),
# LOAD_SECS (per cycle, default 1), KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."

CYCLES=${1:-200}
LOAD_SECS=${LOAD_SECS:-1}
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "crash.sh: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
WORK=$(mktemp -d /tmp/glint-crash.XXXXXX)
DATA="$WORK/data"
mkdir -p "$DATA"
SERVER_PID=""
COMPACT_PID=""
cleanup() {
  for pid in $SERVER_PID $COMPACT_PID; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "crash.sh: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

# Starts the server on an ephemeral loopback port; sets SERVER_PID and ADDR (no subshell, so the
# PID stays known to this shell).
start_server() {
  local log="$WORK/serve.log"
  : > "$log"
  "$GLINT" serve --listen 127.0.0.1:0 --admin-listen off --threads 2 --ring-slots 65536 \
    --data-dir "$DATA" 2>"$log" &
  SERVER_PID=$!
  for _ in $(seq 1 200); do
    ADDR=$(sed -n 's/^info: listening on \([^ ,]*\).*/\1/p' "$log")
    if [ -n "$ADDR" ]; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$log" >&2; return 1; }
    sleep 0.05
  done
  echo "crash.sh: server did not start" >&2
  cat "$log" >&2
  return 1
}

start_compactor() {
  "$GLINT" compact --data-dir "$DATA" --interval 100ms 2>>"$WORK/compact.log" &
  COMPACT_PID=$!
}

echo "crash.sh: $CYCLES kill cycles of ${LOAD_SECS}s load each, data in $DATA"
started=$(date +%s)
sent_total=0
for cycle in $(seq 1 "$CYCLES"); do
  start_server
  # The compactor runs in two cycles out of three, and is killed too in half of those.
  if [ $((cycle % 3)) -ne 0 ] && [ -z "$COMPACT_PID" ]; then start_compactor; fi
  "$GLINT" loadgen "http://$ADDR/p.gif?e=crash&cycle=$cycle" -c 8 -t 1 -d "${LOAD_SECS}s" \
    --timeout 1s --id-param rid --acked-out "$WORK/acked.$cycle" --json >"$WORK/loadgen.$cycle.json" 2>/dev/null &
  loadgen=$!
  # Kill at a random moment inside the load (50 ms .. LOAD_SECS).
  sleep "$(awk -v s="$RANDOM" -v d="$LOAD_SECS" 'BEGIN { srand(s); printf "%.3f", 0.05 + rand() * (d - 0.05) }')"
  kill -9 "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  if [ -n "$COMPACT_PID" ] && [ $((cycle % 2)) -eq 0 ]; then
    kill -9 "$COMPACT_PID"
    wait "$COMPACT_PID" 2>/dev/null || true
    COMPACT_PID=""
  fi
  wait "$loadgen" || { echo "crash.sh: loadgen failed in cycle $cycle" >&2; exit 1; }
  if [ $((cycle % 20)) -eq 0 ]; then
    echo "crash.sh: cycle $cycle/$CYCLES ($(( $(date +%s) - started )) s)"
  fi
done

# A last clean run recovers the rings; then everything goes into segments and is decoded.
start_server
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" || { echo "crash.sh: final server stop failed" >&2; exit 1; }
SERVER_PID=""
if [ -n "$COMPACT_PID" ]; then kill -TERM "$COMPACT_PID"; wait "$COMPACT_PID" || true; COMPACT_PID=""; fi
"$GLINT" compact --data-dir "$DATA" --once 2>>"$WORK/compact.log"
"$GLINT" decode "$DATA" --format tsv --fields query >"$WORK/logged.tsv"
verify_ok=1
"$GLINT" decode "$DATA" --verify >"$WORK/verify.txt" 2>&1 || verify_ok=0

python3 - "$WORK" "$CYCLES" "$verify_ok" <<'PY'
import collections, json, os, sys, urllib.parse
work, cycles, verify_ok = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
acked, sent = set(), {}
for c in range(1, cycles + 1):
    with open(os.path.join(work, f"acked.{c}")) as f:
        acked.update((c, int(line)) for line in f if line.strip())
    with open(os.path.join(work, f"loadgen.{c}.json")) as f:
        summary = json.load(f)
    sent[c] = summary["requests"]["sent"] if isinstance(summary.get("requests"), dict) else summary["sent"]
logged = collections.Counter()
with open(os.path.join(work, "logged.tsv")) as f:
    next(f)
    for line in f:
        q = urllib.parse.parse_qs(line.rstrip("\n"))
        logged[(int(q["cycle"][0]), int(q["rid"][0]))] += 1
lost = [k for k in acked if k not in logged]
dups = [k for k, n in logged.items() if n > 1]
ids_by_cycle = collections.defaultdict(set)
for (c, rid) in logged:
    ids_by_cycle[c].add(rid)
never_sent = [(c, r) for c, rids in ids_by_cycle.items() for r in rids if c not in sent or r > sent[c] + 1]
unacked = len([k for k in logged if k not in acked])
print(f"cycles: {cycles}")
print(f"requests sent: {sum(sent.values())}")
print(f"acknowledged (2xx): {len(acked)}")
print(f"logged: {sum(logged.values())}")
print(f"lost (acknowledged, not logged): {len(lost)}")
print(f"duplicated: {len(dups)}")
print(f"logged but never sent: {len(never_sent)}")
print(f"logged but not acknowledged (in flight at a kill): {unacked}")
print(f"decode --verify: {'clean' if verify_ok else 'FAILED'}")
ok = not lost and not dups and not never_sent and verify_ok
print("result: " + ("PASS" if ok else "FAIL"))
sys.exit(0 if ok else 1)
PY
echo "crash.sh: done in $(( $(date +%s) - started )) s"
