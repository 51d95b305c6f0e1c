#!/usr/bin/env bash
# The compile cost of the README quickstart against the same app on
# tower-http + tracing-subscriber + tracing-appender (BENCHMARKS.md,
# "Compile cost"): crates compiled, a cold debug build (target/ deleted)
# and an incremental one (main.rs edited), alternating rounds.
# Run by hand: bash benches/compile_cost/measure.sh [ROUNDS]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
rounds="${1:-3}"
for round in $(seq "$rounds"); do
  for app in corrlog_app towerhttp_app; do
    cd "$here/$app"
    # Each app resolves its own versions; both start from the workspace's.
    cp "$here/../../Cargo.lock" Cargo.lock
    rm -rf target
    start=$(date +%s.%N)
    crates=$(cargo build --offline 2>&1 | grep -c '^ *Compiling')
    cold=$(echo "$(date +%s.%N) - $start" | bc)
    cp src/main.rs /tmp/main.rs.orig
    echo "// edit $round" >> src/main.rs
    sleep 1
    start=$(date +%s.%N)
    cargo build --offline >/dev/null 2>&1
    incremental=$(echo "$(date +%s.%N) - $start" | bc)
    mv /tmp/main.rs.orig src/main.rs
    echo "round $round $app: crates=$crates cold=${cold}s incremental=${incremental}s"
  done
done
