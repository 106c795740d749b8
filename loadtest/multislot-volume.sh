#!/usr/bin/env bash
# Multi-slot records at volume (issue 11): millions of requests of real beacon sizes -- one-slot
# pixels, ~1 KB GET /i queries and 2, 9 and 30 KB POST bodies, all at once -- through a real
# `glint serve` whose ring is small (256 Ki slots of 512 bytes, 128 MiB) so that it wraps many
# times, with `glint compact` beside it. Afterwards every acknowledged request must be read back
# WHOLE from the segments alone: each stream's acknowledged ids (loadgen --acked-out) are all
# there exactly once, and every record's target, User-Agent, Referer and body are byte for byte
# what was sent (the body's SHA-256 travels in its own query, so the check does not trust the
# stream it came from). `decode --verify` must be clean. A 503 (ring full: the compactor fell
# behind) is counted and shown but is not a failure: it acknowledges nothing.
#
#   loadtest/multislot-volume.sh [SECONDS] [IO]   default 60 s, --io auto; loopback only
#
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing),
# RING_SLOTS (default 262144), KEEP=1 keeps the work dir. Needs a few GB of disk. Exit 1 on any
# mismatch.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-60}
IO=${2:-auto}
RING_SLOTS=${RING_SLOTS:-262144}
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "multislot-volume: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
WORK=$(mktemp -d /tmp/glint-multislot.XXXXXX)
DATA="$WORK/data"
PIDS=""
cleanup() {
  for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "multislot-volume: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$DATA"
started=$(date +%s)

"$GLINT" serve --listen 127.0.0.1:0 --admin-listen off --threads 1 --io "$IO" \
  --ring-slots "$RING_SLOTS" --data-dir "$DATA" 2>"$WORK/serve.log" &
SERVER_PID=$!
PIDS="$SERVER_PID"
ADDR=""
for _ in $(seq 1 600); do
  ADDR=$(sed -n 's/^info: listening on \([^ ,]*\).*/\1/p' "$WORK/serve.log")
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$ADDR" ] || { echo "multislot-volume: server did not start" >&2; exit 1; }
"$GLINT" compact --data-dir "$DATA" --interval 100ms 2>"$WORK/compact.log" &
COMPACT_PID=$!
PIDS="$PIDS $COMPACT_PID"

# The streams: name, loadgen flags, target. Bodies are random (incompressible) bytes in hex.
UA='Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
REF='https://shop.example.com/cart?step=2&utm_source=newsletter&utm_medium=email'
python3 - "$WORK" <<'PY'
import hashlib, json, os, sys
work = sys.argv[1]
streams = {}
# A Snowplow-tracker-sized GET /i (about 1 KB of query).
iq = "e=pv&url=" + "https%3A%2F%2Fshop.example.com%2Fproducts%2F" + "x" * 200 + "&page=" + "Summer%20sale" * 10 \
     + "&cx=" + os.urandom(300).hex()
streams["pixel"] = {"path": "/p.gif?e=pageview&cid=summer-sale-2026&res=1920x1080", "body": None}
streams["getq"] = {"path": "/i?" + iq, "body": None}
for kb in (2, 9, 30):
    body = os.urandom(kb * 512).hex().encode()
    open(f"{work}/body{kb}", "wb").write(body)
    streams[f"post{kb}"] = {"path": f"/com.snowplowanalytics.snowplow/tp2?sha={hashlib.sha256(body).hexdigest()}",
                            "body": f"body{kb}"}
json.dump(streams, open(f"{work}/streams.json", "w"))
PY
python3 - "$WORK" >"$WORK/streams.txt" <<'PY'
import json, sys
for n, s in json.load(open(sys.argv[1] + "/streams.json")).items():
    print(n, s["path"], s["body"] or "-")
PY

# name connections pipeline rate(0 = closed loop)
LOADS="pixel 32 16 0
getq 8 8 0
post2 4 4 3000
post9 4 4 1500
post30 4 2 400"
echo "multislot-volume: ${SECS}s of five loadgen streams at once (pixels, 1 KB GET /i, 2/9/30 KB POSTs) against one server thread (--io $IO, $RING_SLOTS-slot ring), compact --interval 100ms beside it"
LG_PIDS=""
while read -r name conns pipe rate; do
  path=$(awk -v n="$name" '$1 == n { print $2 }' "$WORK/streams.txt")
  body=$(awk -v n="$name" '$1 == n { print $3 }' "$WORK/streams.txt")
  args=(-c "$conns" -t 1 --pipeline "$pipe" -d "${SECS}s" --json --id-param "id_$name"
        --acked-out "$WORK/acked.$name" -H "User-Agent: $UA" -H "Referer: $REF")
  [ "$rate" != 0 ] && args+=(-R "$rate")
  [ "$body" != - ] && args+=(--body "@$WORK/$body" -H 'Content-Type: application/json')
  "$GLINT" loadgen "${args[@]}" "http://$ADDR$path" >"$WORK/load.$name.json" &
  LG_PIDS="$LG_PIDS $!"
done <<<"$LOADS"
PIDS="$PIDS $LG_PIDS"
for pid in $LG_PIDS; do wait "$pid" || { echo "multislot-volume: loadgen failed" >&2; exit 1; }; done

kill -TERM "$SERVER_PID"
wait "$SERVER_PID" || { echo "multislot-volume: server exit status $?" >&2; exit 1; }
kill -TERM "$COMPACT_PID"
wait "$COMPACT_PID" || { echo "multislot-volume: compactor exit status $?" >&2; cat "$WORK/compact.log" >&2; exit 1; }
PIDS=""

"$GLINT" decode --verify "$DATA" >"$WORK/verify.txt" 2>"$WORK/verify.err" \
  || { echo "multislot-volume: decode --verify failed" >&2; tail -5 "$WORK/verify.txt" "$WORK/verify.err" >&2; exit 1; }

# Every record of the segments alone (the ring still holds its last lap; leave it out).
"$GLINT" decode --format tsv --fields path,query,ua,referer,body_b64,truncated "$DATA/segments" 2>"$WORK/decode.err" \
  | python3 -c '
import base64, hashlib, json, os, sys, time
work, started, ua, ref, ring_slots = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5])
streams = json.load(open(f"{work}/streams.json"))
bodies = {n: open(f"{work}/{s['"'"'body'"'"']}", "rb").read() if s["body"] else b"" for n, s in streams.items()}
prefix = {}
for n, s in streams.items():
    p, q = s["path"].split("?", 1)
    prefix[(p, q)] = n
seen = {n: set() for n in streams}
bad = 0; records = 0; nbytes = 0; dups = 0
def fail(msg):
    global bad
    bad += 1
    if bad <= 5: print("multislot-volume: FAIL:", msg)
first = True
for line in sys.stdin.buffer:
    cols = line.rstrip(b"\n").split(b"\t")
    if first and cols[0] == b"path":
        first = False; continue
    first = False
    records += 1
    path, query, u, r, b64, trunc = [c.decode() for c in cols] + [""] * (6 - len(cols))
    base, _, idpart = query.rpartition("&")
    n = prefix.get((path, base))
    if n is None or not idpart.startswith(f"id_{n}="):
        fail(f"record {records}: unknown target {path}?{query[:80]}..."); continue
    i = int(idpart.split("=", 1)[1])
    if i in seen[n]: dups += 1; fail(f"{n} id {i} twice")
    seen[n].add(i)
    body = base64.b64decode(b64) if b64 else b""
    nbytes += len(path) + 1 + len(query) + len(u) + len(r) + len(body)
    if u != ua or r != ref: fail(f"{n} id {i}: ua/referer differ ({len(u)}/{len(r)} bytes)")
    if trunc: fail(f"{n} id {i}: truncated {trunc}")
    if body != bodies[n]: fail(f"{n} id {i}: body {len(body)} bytes, sent {len(bodies[n])}")
    if n.startswith("post") and hashlib.sha256(body).hexdigest() != base.split("sha=", 1)[1]:
        fail(f"{n} id {i}: body checksum differs")
tot_acked = tot_503 = 0
for n in streams:
    load = json.load(open(f"{work}/load.{n}.json"))
    req = load["requests"]
    acked = set(int(x) for x in open(f"{work}/acked.{n}") if x.strip())
    a2 = sum(v for k, v in load["status"].items() if k.startswith("2"))
    full = load["status"].get("503", 0)
    other = req["completed"] - a2 - full
    unanswered = req["sent"] - req["completed"]
    missing = acked - seen[n]
    extra = len(seen[n] - acked)
    tot_acked += len(acked); tot_503 += full
    print(f"multislot-volume: {n:6} {len(bodies[n]):6}-byte body: sent {req['"'"'sent'"'"']}, acknowledged {a2} "
          f"({len(acked)} ids), 503 {full}, other {other}; decoded {len(seen[n])}, acknowledged but missing {len(missing)}, "
          f"decoded but unacknowledged {extra} (<= {unanswered} unanswered + errors)")
    if len(acked) != a2: fail(f"{n}: acked-out lists {len(acked)} ids, loadgen counted {a2} 2xx")
    if missing: fail(f"{n}: {len(missing)} acknowledged ids missing, e.g. {sorted(missing)[:5]}")
    if other: fail(f"{n}: {other} answers neither 2xx nor 503")
    if extra > req["sent"] - a2 - full: fail(f"{n}: {extra} records that were never acknowledged")
verify = open(f"{work}/verify.txt").read().strip().splitlines()
print(f"multislot-volume: segments hold {records} records, {nbytes / 1e9:.2f} GB of target, UA, referer and body; "
      f"{tot_acked} acknowledged, {tot_503} answered 503; the ring wrapped at least {nbytes / (512 * ring_slots):.0f} times")
print(f"multislot-volume: verify: {verify[-2]} / {verify[-1]}")
if verify[-1] != "OK": bad += 1
print(f"multislot-volume: {'"'"'PASS'"'"' if bad == 0 else '"'"'FAIL'"'"'} in {time.time() - started:.0f} s")
sys.exit(0 if bad == 0 else 1)
' "$WORK" "$started" "$UA" "$REF" "$RING_SLOTS"
