#!/usr/bin/env bash
# Builds the benchmark in release mode and runs it: interleaved wrk rounds (server pinned to core
# 0, wrk to core 1) and callgrind instruction counts. Needs wrk and valgrind (Debian packages).
# Extra arguments go to the driver, e.g. `examples/bench/run.sh --rounds 3 --duration 3`.
set -euo pipefail
cd "$(dirname "$0")/../.."
for tool in wrk valgrind taskset; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install -y wrk valgrind util-linux"; exit 1; }
done
cargo build --release -p bench -p local-hub
exec target/release/bench-driver "$@"
