#!/usr/bin/env bash
# The object store down for minutes while `glint ship --to s3://` runs: tests/ship_s3.rs's
# outage test with an outage of OUTAGE seconds instead of the suite's 20 (SeaweedFS `weed mini`
# killed, records served and compacted meanwhile, then the store restarted). Before it, the
# shipper is SIGKILLed three times in the middle of a multipart upload and three times at random.
# Prints how long the store was down, the failed uploads, the catch-up time, and the rows read
# back by pyarrow and DuckDB; fails if a row is missing, doubled or differs from `glint decode`.
# Needs target/lake-tools (.ci/run creates it; or GLINT_LAKE_TOOLS=DIR).
#
#   loadtest/s3-outage.sh [OUTAGE]     default 180 seconds; loopback only
set -euo pipefail
cd "$(dirname "$0")/.."
GLINT_S3_OUTAGE_SECS=${1:-180} cargo test --release --quiet --test ship_s3 every_acknowledged -- --nocapture 2>&1 |
  grep -E "ship_s3|test result|panicked"
