#!/usr/bin/env bash
# The shipper SIGKILLed 50 times at random moments (100-400 ms after each start) while glint
# serves 5,000 beacons/s: tests/ship.rs's kill test with 50 kills instead of the suite's 20.
# Prints the records, the duplicates on the topic and their bound (kills x --max-in-flight 2000);
# fails if a record is missing or the duplicates exceed the bound. Needs target/ship-tools
# (.ci/run creates it).
#
#   loadtest/ship_kills.sh [KILLS]     default 50; loopback only
set -euo pipefail
cd "$(dirname "$0")/.."
GLINT_SHIP_KILLS=${1:-50} cargo test --release --quiet --test ship repeated_sigkills -- --nocapture 2>&1 |
  grep -E "ship kills:|test result|panicked"
