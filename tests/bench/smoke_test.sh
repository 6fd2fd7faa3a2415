#!/usr/bin/env bash
# Runs each benchmark a moment on stories260K and checks that it ends well and
# prints the figures its README rows are read from, so a benchmark that no
# longer runs is found by the tests, not on the day its figures are needed.
# Nothing here is timed against a goal.
# Usage: smoke_test.sh BUILD_DIR MODEL      (MODEL: stories260K.gguf)
set -euo pipefail
build=$1 model=$2
bench=$build/tests/bench edgellmd=$build/daemon/edgellmd
here=$(cd "$(dirname "$0")" && pwd)
# Without ../shared the test skips (77), unless CI is set: then it fails.
if [ ! -f "$model" ]; then
  echo "smoke_test.sh: no model at $model (../shared/models)"
  [ -n "${CI:-}" ] && exit 1
  exit 77
fi
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT

# run NAME METRIC... -- COMMAND...: COMMAND must exit 0 and print a line with
# each metric=METRIC and a numeric value.
run() {
  local name=$1
  shift
  local metrics=()
  while [ "$1" != -- ]; do
    metrics+=("$1")
    shift
  done
  shift
  if ! "$@" > "$work/$name.out" 2>&1; then
    echo "$name failed:"
    cat "$work/$name.out"
    exit 1
  fi
  for metric in "${metrics[@]}"; do
    grep -Eq "metric=$metric value=-?[0-9.]+(e[-+]?[0-9]+)? " "$work/$name.out" ||
      { echo "$name printed no $metric figure:"; cat "$work/$name.out"; exit 1; }
  done
  echo "ok: $name (${metrics[*]})"
}

run engine prefill_tok_s decode_tok_s batch2_decode_tok_s memory_read_gb_s -- \
  "$bench/edgellm-bench-engine" --model "$model" --reps 1 --prompt-tokens 8 --prefill-tokens 16 --decode-tokens 8 \
  --batch-sizes 2
run engine-batch batch4_decode_tok_s -- \
  "$bench/edgellm-bench-engine" --model "$model" --reps 1 --prompt-tokens 8 --decode-tokens 8 --only-batch 4
run grammar cold_vs_free -- "$bench/edgellm-bench-grammar" --model "$model" --reps 1 --max-tokens 16
run train train_peak_rss -- "$bench/edgellm-bench-train" --model "$model" --reps 1 --max-length 32 --micro-batch 1
run aggregate aggregate_megabytes_per_second finish_round -- \
  "$bench/edgellm-bench-aggregate" --model "$model" --updates 4

# Google Benchmark's figures are its own lines: each benchmark named must report a time.
micro='BM_PoolHandOff|BM_MatVec/Q4_0_simd|BM_DecodeAttention/1/3|BM_BatchMatMul/Q4_0_in_cache|BM_Int8MultiplyAddPeak'
if ! "$bench/edgellm-bench-micro" --benchmark_filter="^($micro)\$" --benchmark_min_time=0.01 > "$work/micro.out" 2>&1; then
  echo "micro failed:"
  cat "$work/micro.out"
  exit 1
fi
for name in ${micro//|/ }; do
  grep -Eq "^$name +[0-9.]+ [mun]?s " "$work/micro.out" || { echo "micro reported no time for $name:"; cat "$work/micro.out"; exit 1; }
done
echo "ok: micro"

# The load generator against a real edgellmd, over gRPC and over HTTP.
"$edgellmd" --model "$model" --listen "unix:$work/d.sock" --http-listen 127.0.0.1:0 --threads 1 2> "$work/log" &
pid=$!
port=
for _ in $(seq 1 1200); do
  port=$(sed -n 's/.*HTTP API on port \([0-9]*\).*/\1/p' "$work/log")
  [ -n "$port" ] && [ -S "$work/d.sock" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$work/log"; exit 1; }
  sleep 0.05
done
[ -n "$port" ] || { echo "edgellmd never reported its HTTP port"; cat "$work/log"; exit 1; }
load=("$bench/edgellm-bench-load" --clients 1 2 --requests-per-client 1 --max-tokens 8)
run load-grpc aggregate_tok_s inter_token_p99_ms -- "${load[@]}" --server "unix://$work/d.sock"
run load-http aggregate_tok_s inter_token_p99_ms -- "${load[@]}" --http-port "$port"

# The fleet benchmark: three simulated devices through a real aggregator (mutual TLS).
run fleet aggregator_peak_rss updates_per_second -- "$here/run_aggregator_scale_bench.sh" "$build" "$model" 3

# A federated round of three real edgellmd through a real aggregator, and a
# release reaching two devices canary-first, then a rollback to all at once.
run federated-round round_seconds bytes_per_device_round -- \
  "$here/run_federated_round_bench.sh" "$build" "$model" 1 2
"$here/run_rollout_bench.sh" "$build" "$model" 2 1 > "$work/rollout.out" 2>&1 ||
  { echo "run_rollout_bench.sh failed:"; cat "$work/rollout.out"; exit 1; }
for release in "release=1 devices=2 .* canary_installed_s=[0-9.]+ all_installed_s=[0-9.]+" \
               "release=2 devices=2 .* all_at_once all_installed_s=[0-9.]+"; do
  grep -Eq "^rollout $release\$" "$work/rollout.out" || { echo "no '$release' line:"; cat "$work/rollout.out"; exit 1; }
done
echo "ok: rollout"

# The alternating comparison of two builds (here one build twice).
"$here/compare_builds.sh" "$build" "$build" "$model" 1 -- --only-decode --prompt-tokens 8 --decode-tokens 8 --reps 1 \
  > "$work/compare.out" 2>&1 || { echo "compare_builds.sh failed:"; cat "$work/compare.out"; exit 1; }
grep -Eq '^A mean [0-9.]+ +B mean [0-9.]+ +median B/A [0-9.]+ ' "$work/compare.out" ||
  { echo "compare_builds.sh printed no summary:"; cat "$work/compare.out"; exit 1; }
echo "ok: compare_builds.sh"
