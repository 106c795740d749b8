#!/usr/bin/env bash
# Parquet against the other ways of keeping the same records: bytes per record of the zstd
# segments the compactor writes, of `glint decode` JSON Lines (raw and zstd -3) and of
# `glint decode --format parquet`; and records per CPU-second written as JSON Lines and as
# Parquet (user + system CPU of the decode process, median of ROUNDS runs each, taken in turns
# so machine noise hits both alike); and, when the lake test tools are there (SeaweedFS `weed`
# in target/lake-tools or GLINT_LAKE_TOOLS), records per CPU-second of `glint ship --once --to
# s3://` uploading the same segments as Parquet objects to `weed mini` on loopback (CPU of the
# shipper alone; a fresh cursor and bucket prefix each round), in the same turns.
#
#   loadtest/parquet-size.sh [SECONDS]     default 10 seconds of load; loopback only
#
# The records: one `glint serve` thread fed for SECONDS by three `glint loadgen` streams at
# once: `--vary` pixel GETs (rotating real browser User-Agents and Referers, campaign and user
# ids), `--vary` GETs of the Snowplow /i path, and POSTs of a Snowplow tp2 JSON batch (1.6 KB).
# Environment: GLINT=path/to/glint (default: target/release/glint, built if missing),
# ROUNDS (default 5), KEEP=1 keeps the work dir.
set -euo pipefail
cd "$(dirname "$0")/.."

SECS=${1:-10}
ROUNDS=${ROUNDS:-5}
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "parquet-size: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
WORK=$(mktemp -d /tmp/glint-parquet-size.XXXXXX)
DATA="$WORK/data"
SERVER_PID=""
WEED_PID=""
cleanup() {
  [ -n "$SERVER_PID" ] && kill -9 "$SERVER_PID" 2>/dev/null || true
  [ -n "$WEED_PID" ] && kill -9 "$WEED_PID" 2>/dev/null || true
  wait 2>/dev/null || true
  if [ "${KEEP:-0}" = 1 ]; then echo "parquet-size: work dir kept: $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
mkdir -p "$DATA"

"$GLINT" serve --listen 127.0.0.1:0 --admin-listen off --threads 1 --ring-slots 2097152 \
  --data-dir "$DATA" 2>"$WORK/serve.log" &
SERVER_PID=$!
ADDR=""
for _ in $(seq 1 600); do
  ADDR=$(sed -n 's/^info: listening on \([^ ,]*\).*/\1/p' "$WORK/serve.log")
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 1; }
  sleep 0.05
done
[ -n "$ADDR" ] || { echo "parquet-size: server did not start" >&2; exit 1; }

python3 - "$WORK/tp2.json" <<'PY'
import json, sys
events = [{"e": "pv", "url": f"https://shop.example.com/cat/{i}?utm_source=news&utm_campaign=winter",
           "page": f"Category {i} - Shop", "tv": "js-4.1.0", "p": "web", "aid": "shop", "res": "1920x1080",
           "cd": "24", "cs": "UTF-8", "lang": "en-GB", "vp": "1872x941", "ds": "1857x5312",
           "eid": f"6f0b1d2c-8a4e-4b8f-9d3a-{i:012d}", "dtm": str(1764000000000 + i), "stm": str(1764000000100 + i)}
          for i in range(3)]
json.dump({"schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", "data": events},
          open(sys.argv[1], "w"))
PY

echo "parquet-size: ${SECS}s of three loadgen streams (vary pixel, vary /i, tp2 POST) into one server thread"
"$GLINT" loadgen -c 8 -t 1 -d "${SECS}s" --vary "http://$ADDR/p.gif?e=pv&tv=js-4.1.0" >"$WORK/load1.txt" &
L1=$!
"$GLINT" loadgen -c 4 -t 1 -d "${SECS}s" --vary "http://$ADDR/i?e=se&se_ca=video&se_ac=play" >"$WORK/load2.txt" &
L2=$!
"$GLINT" loadgen -c 2 -t 1 -d "${SECS}s" --body "@$WORK/tp2.json" \
  -H 'Content-Type: application/json' \
  -H 'User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0' \
  "http://$ADDR/com.snowplowanalytics.snowplow/tp2" >"$WORK/load3.txt" &
L3=$!
wait "$L1" "$L2" "$L3"
kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
"$GLINT" compact --once --data-dir "$DATA" 2>"$WORK/compact.log"

LAKE=${GLINT_LAKE_TOOLS:-target/lake-tools}
S3=""
if [ -x "$LAKE/bin/weed" ]; then
  B=$((30000 + RANDOM % 2000 * 10))
  mkdir -p "$WORK/weed"
  AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=benchsecret "$LAKE/bin/weed" mini -dir="$WORK/weed" \
    -ip 127.0.0.1 -ip.bind 127.0.0.1 -master.port=$B -volume.port=$((B + 1)) -filer.port=$((B + 2)) \
    -s3.port=$((B + 3)) -admin.port=$((B + 4)) -metricsPort=$((B + 6)) -webdav=false -admin.ui=false \
    -s3.port.iceberg=0 -s3.port.lance=0 -master.telemetry=false -bucket bench >"$WORK/weed.log" 2>&1 &
  WEED_PID=$!
  for _ in $(seq 1 600); do (echo >/dev/tcp/127.0.0.1/$((B + 3))) 2>/dev/null && break; sleep 0.1; done
  sleep 3  # the bucket is made once the filer is up
  S3="http://127.0.0.1:$((B + 3))"
else
  echo "parquet-size: no $LAKE/bin/weed (run .ci/run): the ship --to s3:// figure is left out"
fi

python3 - "$GLINT" "$DATA" "$WORK" "$ROUNDS" "$S3" <<'PY'
import glob, os, resource, shutil, statistics, subprocess, sys
glint, data, work, rounds, s3 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5]
segs = os.path.join(data, "segments")
jsonl, pq = os.path.join(work, "all.jsonl"), os.path.join(work, "all.parquet")

def cpu_of(args, out=subprocess.DEVNULL):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(args, stdout=out, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

with open(jsonl, "wb") as f:
    subprocess.run([glint, "decode", segs], stdout=f, check=True)
records = sum(1 for _ in open(jsonl, "rb"))
subprocess.run(["zstd", "-q", "-3", "-f", jsonl, "-o", jsonl + ".zst"], check=True)
subprocess.run([glint, "decode", segs, "--format", "parquet", "-o", pq], check=True)
seg_bytes = sum(os.path.getsize(p) for p in glob.glob(os.path.join(segs, "*.gls*")))
rows = [("zstd segments (.gls)", seg_bytes), ("JSON Lines", os.path.getsize(jsonl)),
        ("JSON Lines, zstd -3", os.path.getsize(jsonl + ".zst")), ("Parquet (zstd)", os.path.getsize(pq))]
print(f"parquet-size: {records} records")
print(f"{'form':<24} {'bytes':>12} {'bytes/record':>13} {'vs Parquet':>11}")
for name, n in rows:
    print(f"{name:<24} {n:>12} {n / records:>13.1f} {n / rows[-1][1]:>10.2f}x")
cpu = {"jsonl": [], "parquet": []}
if s3:
    cpu["ship s3"] = []
    env = dict(os.environ, AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="benchsecret",
               AWS_ENDPOINT_URL=s3, AWS_ALLOW_HTTP="true", AWS_REGION="us-east-1")
ship_rss = 0
for n in range(rounds):
    cpu["jsonl"].append(cpu_of([glint, "decode", segs]))
    cpu["parquet"].append(cpu_of([glint, "decode", segs, "--format", "parquet", "-o", pq]))
    if s3:
        for f in ("ship-cursor.json", "ship-spool"):
            p = os.path.join(data, f)
            shutil.rmtree(p) if os.path.isdir(p) else os.path.exists(p) and os.remove(p)
        child = subprocess.Popen([glint, "ship", "--once", "--data-dir", data, "--to",
                                  f"s3://bench/round{n}", "--admin-listen", "off"],
                                 env=env, stderr=open(os.path.join(work, "ship.log"), "w"))
        _, status, ru = os.wait4(child.pid, 0)
        assert status == 0, open(os.path.join(work, "ship.log")).read()
        cpu["ship s3"].append(ru.ru_utime + ru.ru_stime)
        ship_rss = max(ship_rss, ru.ru_maxrss)
print(f"records per CPU-second written (median of {rounds}, the same segments; shared machine):")
for k, v in cpu.items():
    m = statistics.median(v)
    print(f"  {k:<8} {records / m:>12.0f} records/CPU-s  ({m:.2f} CPU s)")
print(f"  parquet/jsonl ratio {statistics.median(cpu['jsonl']) / statistics.median(cpu['parquet']):.2f}")
if s3:
    print(f"  ship s3/parquet ratio {statistics.median(cpu['parquet']) / statistics.median(cpu['ship s3']):.2f};"
          f" ship peak RSS {ship_rss / 1024:.0f} MiB (objects of {os.path.getsize(pq) / 2**20:.1f} MiB in all, --part-size 16 MiB)")
PY
