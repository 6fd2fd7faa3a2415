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

# capture NAME COMMAND...: runs COMMAND into $work/NAME.out, and fails with
# its output if it fails.
capture() {
  local name=$1
  shift
  "$@" > "$work/$name.out" 2>&1 || { echo "$name failed:"; cat "$work/$name.out"; exit 1; }
}
# expect NAME REGEX WHAT: some line of $work/NAME.out matches REGEX, or the
# test fails saying that NAME printed no WHAT.
expect() {
  grep -Eq "$2" "$work/$1.out" || { echo "$1 printed no $3:"; cat "$work/$1.out"; exit 1; }
}
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
  capture "$name" "$@"
  for metric in "${metrics[@]}"; do
    expect "$name" "metric=$metric value=-?[0-9.]+(e[-+]?[0-9]+)? " "$metric figure"
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
capture micro "$bench/edgellm-bench-micro" --benchmark_filter="^($micro)\$" --benchmark_min_time=0.01
for name in ${micro//|/ }; do expect micro "^$name +[0-9.]+ [mun]?s " "time for $name"; done
echo "ok: micro"

# The load generator against a real edgellmd, over gRPC and over HTTP.
. "$here/../support/start_edgellmd.sh"
start_edgellmd "$model" --threads 1
load=("$bench/edgellm-bench-load" --clients 1 2 --requests-per-client 1 --max-tokens 8)
run load-grpc aggregate_tok_s inter_token_p99_ms -- "${load[@]}" --server "unix://$work/d.sock"
run load-http aggregate_tok_s inter_token_p99_ms -- "${load[@]}" --http-port "$port"

# The fleet benchmark: three simulated devices through a real aggregator (mutual TLS).
run fleet aggregator_peak_rss updates_per_second -- "$here/run_aggregator_scale_bench.sh" "$build" "$model" 3

# A federated round of three real edgellmd through a real aggregator, and a
# release reaching two devices canary-first, then a rollback to all at once.
run federated-round round_seconds bytes_per_device_round -- \
  "$here/run_federated_round_bench.sh" "$build" "$model" 1 2
capture rollout "$here/run_rollout_bench.sh" "$build" "$model" 2 1
expect rollout "^rollout release=1 devices=2 .* canary_installed_s=[0-9.]+ all_installed_s=[0-9.]+$" "canary release"
expect rollout "^rollout release=2 devices=2 .* all_at_once all_installed_s=[0-9.]+$" "rollback to all at once"
echo "ok: rollout"

# The alternating comparison of two builds (here one build twice).
capture compare "$here/compare_builds.sh" "$build" "$build" "$model" 1 -- --only-decode --prompt-tokens 8 \
  --decode-tokens 8 --reps 1
expect compare '^A mean [0-9.]+ +B mean [0-9.]+ +median B/A [0-9.]+ ' "summary"
echo "ok: compare_builds.sh"
