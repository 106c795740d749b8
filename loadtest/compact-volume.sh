#!/usr/bin/env bash
# Segments at volume: tens of millions of records through a real `glint serve` and `glint
# compact`, pipelined, so that a segment is sealed by size (with an index far over 1 MiB) and
# the last one by SIGTERM; then every acknowledged record must decode from the segments alone
# (decoded = acknowledged, plus at most the requests still unanswered when the load stopped)
# and `decode --verify` must be clean. A 503 (ring full: the compactor fell behind on a busy
# machine) is counted and shown but is not a failure: it acknowledges nothing.
#
#   loadtest/compact-volume.sh [SECONDS]     default 100 seconds of load; loopback only
#
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing),
# SEGMENT_MAX (default 160MiB), CONNS (default 64), PIPELINE (default 16), KEEP=1 keeps the
# work dir. Needs about 3 GB of disk (a 2 GiB ring plus the segments). Exit 1 on any mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-100}
SEGMENT_MAX=${SEGMENT_MAX:-160MiB}
CONNS=${CONNS:-64}
PIPELINE=${PIPELINE:-16}
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "compact-volume: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
WORK=$(mktemp -d /tmp/glint-volume.XXXXXX)
DATA="$WORK/data"
SERVER_PID=""
COMPACT_PID=""
cleanup() {
  for pid in $SERVER_PID $COMPACT_PID; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "compact-volume: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$DATA"
started=$(date +%s)

"$GLINT" serve --listen 127.0.0.1:0 --admin-listen off --threads 1 --ring-slots 4194304 \
  --data-dir "$DATA" 2>"$WORK/serve.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 600); do
  ADDR=$(sed -n 's/^info: listening on \([^ ,]*\).*/\1/p' "$WORK/serve.log")
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$ADDR" ] || { echo "compact-volume: server did not start" >&2; exit 1; }
"$GLINT" compact --data-dir "$DATA" --interval 1s --segment-max-bytes "$SEGMENT_MAX" \
  2>"$WORK/compact.log" &
COMPACT_PID=$!

echo "compact-volume: ${SECS}s of loadgen -c $CONNS --pipeline $PIPELINE against one server thread (4 Mi-slot ring), compact --segment-max-bytes $SEGMENT_MAX beside it"
"$GLINT" loadgen -c "$CONNS" -t 1 --pipeline "$PIPELINE" -d "${SECS}s" --json \
  -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' \
  -H 'Referer: https://shop.example.com/cart?step=2' \
  "http://$ADDR/p.gif?e=pageview&cid=summer-sale-2026&uid=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44&url=https%3A%2F%2Fshop.example.com%2Fcart&res=1920x1080" \
  >"$WORK/load.json"
# The server first (it answers nothing more), then the compactor: SIGTERM makes it drain the
# ring and seal the open segment.
kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || { echo "compact-volume: server exit status $?" >&2; exit 1; }
SERVER_PID=""
kill -TERM "$COMPACT_PID"
wait "$COMPACT_PID" || { echo "compact-volume: compactor exit status $?" >&2; cat "$WORK/compact.log" >&2; exit 1; }
COMPACT_PID=""

# What the segments alone hold (the ring still has its last lap; leave it out).
"$GLINT" decode --stats "$DATA/segments" >"$WORK/stats.txt" 2>"$WORK/decode.err" \
  || { echo "compact-volume: decode --stats failed" >&2; cat "$WORK/decode.err" >&2; exit 1; }
"$GLINT" decode --verify "$DATA" >"$WORK/verify.txt" 2>"$WORK/verify.err" \
  || { echo "compact-volume: decode --verify failed" >&2; tail -5 "$WORK/verify.txt" "$WORK/verify.err" >&2; exit 1; }

python3 - "$WORK" "$SEGMENT_MAX" "$started" <<'PY'
import json, os, re, sys, time
work, seg_max, started = sys.argv[1], sys.argv[2], int(sys.argv[3])
load = json.load(open(f"{work}/load.json"))
req = load["requests"]
acked = sum(v for k, v in load["status"].items() if k.startswith("2"))
full = load["status"].get("503", 0)
other = req["completed"] - acked - full
unanswered = req["sent"] - req["completed"]
stats = open(f"{work}/stats.txt").read()
m = re.search(r"^records:?\s+([0-9,]+)", stats, re.M) or re.search(r"([0-9,]+) records", stats)
decoded = int(m.group(1).replace(",", ""))
verify = open(f"{work}/verify.txt").read().strip().splitlines()
log = open(f"{work}/compact.log").read()
segs = sorted(os.listdir(f"{work}/data/segments"))
segs = [s for s in segs if s.endswith(".gls")]
sizes = [os.path.getsize(f"{work}/data/segments/{s}") for s in segs]
print(f"compact-volume: sent {req['sent']}, acknowledged (2xx) {acked}, 503 (ring full) {full}, other answers {other}, "
      f"unanswered at the end {unanswered}; {load['requests_per_sec']:.0f} req/s")
def index_len(name, size):
    # Trailer: index_offset u64 at the start of the last 40 bytes; the index block (40-byte
    # header and payload) runs from there to the trailer.
    with open(f"{work}/data/segments/{name}", "rb") as f:
        f.seek(size - 40)
        return size - 40 - int.from_bytes(f.read(8), "little") - 40
units = {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}
num, unit = re.match(r"(\d+)(\w*)", seg_max).groups()
limit = int(num) * units.get(unit, 1)
print(f"compact-volume: {len(segs)} sealed segments: " + ", ".join(
    f"{n / 1e6:.1f} MB (index {index_len(s, n) / 1e6:.2f} MB)" for s, n in zip(segs, sizes)))
print(f"compact-volume: decode --stats over the segments: {decoded} records; verify: {verify[-2]} / {verify[-1]}")
ok = True
if not (acked <= decoded <= acked + unanswered):
    print(f"compact-volume: FAIL: decoded {decoded}, acknowledged {acked} (+{unanswered} unanswered)")
    ok = False
if other:
    print(f"compact-volume: FAIL: {other} answers were neither 2xx nor 503")
    ok = False
if len(segs) < 2 or max(sizes) < limit * 0.95 or max(sizes) > limit:
    print(f"compact-volume: FAIL: want a segment sealed by size (just under {limit} bytes) and one sealed by SIGTERM")
    ok = False
if verify[-1] != "OK":
    ok = False
print(f"compact-volume: {'PASS' if ok else 'FAIL'} in {time.time() - started:.0f} s")
sys.exit(0 if ok else 1)
PY
