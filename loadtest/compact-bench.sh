#!/usr/bin/env bash
# Compactor vs server on this machine: drive `glint serve` at its peak with wrk, then time
# `glint compact --once` on the rings it wrote, with zstd and without. Prints the server's
# req/s, the compactor's records/s (wall and CPU) and the ring : segment size ratio.
# Usage: loadtest/compact-bench.sh [SECONDS=6] [PORT=18391]   (needs wrk; builds release)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-6}
port=${2:-18391}
command -v wrk >/dev/null || { echo "compact-bench: wrk is not installed" >&2; exit 1; }
cargo build --release --quiet
glint=target/release/glint
dir=$(mktemp -d /tmp/glint-compact-bench.XXXXXX)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$dir"' EXIT

echo "compact-bench: starting glint serve on 127.0.0.1:$port (2 threads, data in $dir/data)"
mkdir -p "$dir/data"
"$glint" serve --listen "127.0.0.1:$port" --data-dir "$dir/data" --threads 2 --ring-slots 1048576 2>"$dir/serve.log" &
server=$!
for _ in $(seq 1 120); do grep -q "listening on" "$dir/serve.log" && break; sleep 0.5; done
grep -q "listening on" "$dir/serve.log" || { cat "$dir/serve.log" >&2; exit 1; }

echo "compact-bench: wrk -t2 -c64 -d${secs}s with a browser-like beacon"
wrk -t2 -c64 -d"${secs}s" \
  -H 'User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36' \
  -H 'Referer: https://shop.example.com/cart?step=2' \
  "http://127.0.0.1:$port/p.gif?e=pageview&cid=summer-sale-2026&uid=6f1c2a9e-41d7-4b8e-9a53-0c7d2f1e8b44&url=https%3A%2F%2Fshop.example.com%2Fcart&res=1920x1080" \
  | grep -E "Requests/sec|requests in"
kill -TERM "$server"; wait "$server" || true

cp -r "$dir/data" "$dir/data-none"
for codec in zstd none; do
  d="$dir/data"; [ "$codec" = none ] && d="$dir/data-none"
  /usr/bin/time -f "%e %U %S" -o "$dir/time" "$glint" compact --once --data-dir "$d" --compression "$codec" 2>"$dir/compact.log"
  read -r wall user sys <"$dir/time"
  line=$(grep "moved" "$dir/compact.log")
  moved=$(sed -E 's/.*moved ([0-9]+) records.*/\1/' <<<"$line")
  ring=$(sed -E 's/.* ([0-9]+) ring bytes.*/\1/' <<<"$line")
  seg=$(du -cb "$d"/segments/*.gls | tail -1 | cut -f1)
  awk -v c="$codec" -v m="$moved" -v w="$wall" -v u="$user" -v s="$sys" -v r="$ring" -v g="$seg" 'BEGIN {
    printf "compact-bench: %s: %d records in %.2f s wall (%.0f rec/s), %.2f s CPU (%.0f rec/s per core); ring bytes %d : segment bytes %d = %.2f : 1\n",
      c, m, w, m / w, u + s, m / (u + s), r, g, r / g }'
done
