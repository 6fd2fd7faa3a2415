#!/usr/bin/env bash
# Serves the synthetic smol-135m (Q8_0) with edgellmd and runs the load
# generator with 1, 4 and 16 concurrent clients against it.
# Usage: tests/bench/run_load_bench.sh [build-dir]     (default: build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
model=$build/bench-models/smol-135m-Q8_0.gguf
mkdir -p "$(dirname "$model")"
[ -f "$model" ] || "$build/tools/edgellm" make-model --shape smol-135m --type Q8_0 --out "$model" >&2

socket=$(mktemp -u /tmp/edgellmd-bench-XXXXXX.sock)
"$build/daemon/edgellmd" --model "$model" --listen "unix:$socket" --max-active 16 --max-waiting 64 2>/dev/null &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 300); do [ -S "$socket" ] && break; sleep 0.1; done

"$build/tests/bench/edgellm-bench-load" --server "unix://$socket" --clients 1,4,16
kill -TERM "$daemon"
wait "$daemon"
trap - EXIT
