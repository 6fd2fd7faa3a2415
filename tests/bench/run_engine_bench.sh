#!/usr/bin/env bash
# Runs the engine benchmark on the README's figure set: stories260K (the real
# model, when ../shared is present) and the smol-135m shape at F32, F16, Q8_0 and Q4_0,
# with 1 and 2 threads. Synthetic models are written once into the build tree.
#
# Usage: tests/bench/run_engine_bench.sh [build-dir]     (default: build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
edgellm=$build/tools/edgellm
bench=$build/tests/bench/edgellm-bench-engine
models=$build/bench-models
mkdir -p "$models"

for type in F32 F16 Q8_0 Q4_0; do
  out=$models/smol-135m-$type.gguf
  [ -f "$out" ] || "$edgellm" make-model --shape smol-135m --type "$type" --out "$out" >&2
done

targets=()
stories=$root/../shared/models/stories260K.gguf
[ -f "$stories" ] && targets+=("$stories")
targets+=("$models/smol-135m-F32.gguf" "$models/smol-135m-F16.gguf" "$models/smol-135m-Q8_0.gguf" "$models/smol-135m-Q4_0.gguf")

for model in "${targets[@]}"; do
  for threads in 1 2; do
    "$bench" --model "$model" --threads "$threads"
  done
done
