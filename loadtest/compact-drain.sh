#!/usr/bin/env bash
# Does the compactor keep up with a small ring? `glint serve --threads 1 --ring-slots 65536`
# under pipelined load with `glint compact --interval 1s` beside it: a ring that fills answers
# 503, so the 503 count shows how far the compactor fell behind, and the compactor's log shows
# the records it moved per second while the load ran.
#
#   loadtest/compact-drain.sh [SECONDS]     default 15; loopback only
#
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing; set it to
# an older build to compare), RATE (open-loop requests/s, default 130000, the issue's load;
# RATE=0 for a closed loop as fast as the server answers), CONNS (default 64), PIPELINE
# (default 16), INTERVAL (default 1s), COMPACT_ARGS (more `glint compact` flags, e.g.
# "--zstd-level -3" or "--compression none"), LOADGEN_ARGS (more `glint loadgen` flags, e.g.
# "--vary" for browser-like requests with User-Agent and Referer).
# Prints one line: 2xx, 503, records moved and records/s moved during the load.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-15}
CONNS=${CONNS:-64}
PIPELINE=${PIPELINE:-16}
INTERVAL=${INTERVAL:-1s}
RATE=${RATE:-130000}
rate_args=()
[ "$RATE" != 0 ] && rate_args=(-R "$RATE")
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "compact-drain: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
WORK=$(mktemp -d /tmp/glint-drain.XXXXXX)
SERVER_PID=""
COMPACT_PID=""
cleanup() {
  for pid in $SERVER_PID $COMPACT_PID; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK/data"

"$GLINT" serve --listen 127.0.0.1:0 --admin-listen off --threads 1 --ring-slots 65536 \
  --data-dir "$WORK/data" 2>"$WORK/serve.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 200); do
  ADDR=$(sed -n 's/^info: listening on \([^ ,]*\).*/\1/p' "$WORK/serve.log")
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$ADDR" ] || { echo "compact-drain: server did not start" >&2; exit 1; }

# shellcheck disable=SC2086 # COMPACT_ARGS is a list of flags
"$GLINT" compact --data-dir "$WORK/data" --interval "$INTERVAL" ${COMPACT_ARGS:-} 2>"$WORK/compact.log" &
COMPACT_PID=$!
sleep 0.5

echo "compact-drain: $GLINT, ${SECS}s of loadgen -c $CONNS --pipeline $PIPELINE ${rate_args[*]:-(closed loop)} on 1 server thread, 65536-slot ring, compact --interval $INTERVAL ${COMPACT_ARGS:-} ${LOADGEN_ARGS:+(loadgen $LOADGEN_ARGS)}"
# shellcheck disable=SC2086 # LOADGEN_ARGS is a list of flags
"$GLINT" loadgen -c "$CONNS" -t 1 --pipeline "$PIPELINE" "${rate_args[@]}" -d "${SECS}s" --json ${LOADGEN_ARGS:-} \
  "http://$ADDR/p.gif?e=pageview&cid=summer-sale-2026&u=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44" \
  >"$WORK/load.json"
# Records moved while the load ran: the compactor's cycle lines logged up to now; and the CPU
# time (user + system, clock ticks) each process has used, for records per CPU-second.
cp "$WORK/compact.log" "$WORK/compact-during.log"
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
SERVER_TICKS=$(ticks "$SERVER_PID")
COMPACT_TICKS=$(ticks "$COMPACT_PID")
kill -TERM "$COMPACT_PID" "$SERVER_PID"
wait "$COMPACT_PID" || { echo "compact-drain: compactor failed" >&2; cat "$WORK/compact.log" >&2; exit 1; }
wait "$SERVER_PID" || true
COMPACT_PID=""
SERVER_PID=""

python3 - "$WORK/load.json" "$WORK/compact-during.log" "$SECS" "$SERVER_TICKS" "$COMPACT_TICKS" "$(getconf CLK_TCK)" <<'PY'
import json, re, sys
load = json.load(open(sys.argv[1]))
server_cpu, compact_cpu = (float(t) / float(sys.argv[6]) for t in sys.argv[4:6])
moved = sum(int(m.group(1)) for m in re.finditer(r"moved (\d+) records", open(sys.argv[2]).read()))
secs = float(load["duration_s"])
st = load["status"]
ok = sum(v for k, v in st.items() if k.startswith("2"))
print(f"compact-drain: {ok} 2xx, {st.get('503', 0)} 503, {load['requests_per_sec']:.0f} req/s answered; "
      f"compactor moved {moved} records during the load = {moved / secs:.0f} records/s")
# Per CPU-second: what each would do with a core of its own (the 503s cost the server little).
ingest = ok / max(server_cpu, 0.01)
drain = moved / max(compact_cpu, 0.01)
print(f"compact-drain: CPU s server {server_cpu:.2f}, compactor {compact_cpu:.2f}; "
      f"{ingest:.0f} 2xx per server CPU-second, {drain:.0f} records moved per compactor "
      f"CPU-second = {drain / ingest:.2f}x")
PY
