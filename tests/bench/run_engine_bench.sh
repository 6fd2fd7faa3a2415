#!/usr/bin/env bash
# Runs the engine benchmark on the README's figure set: stories260K (the real
# model, when ../shared is present), the smol-135m shape at F32, F16, Q8_0 and
# Q4_0 and the tinyllama-1.1b shape at F16, Q8_0 and Q4_0, with 1 and 2
# threads. Synthetic models are written once into the build tree (about 4 GB).
#
# Usage: tests/bench/run_engine_bench.sh [build-dir [bench options...]]
#   build-dir defaults to build/release; the options (e.g. --reps 1) go to
#   every edgellm-bench-engine run.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
shift $(( $# > 0 ? 1 : 0 ))
edgellm=$build/tools/edgellm
bench=$build/tests/bench/edgellm-bench-engine
models=$build/bench-models
mkdir -p "$models"

make_model() {  # shape type
  local out=$models/$1-$2.gguf
  [ -f "$out" ] || "$edgellm" make-model --shape "$1" --type "$2" --out "$out" >&2
}
for type in F32 F16 Q8_0 Q4_0; do make_model smol-135m "$type"; done
for type in F16 Q8_0 Q4_0; do make_model tinyllama-1.1b "$type"; done

targets=()
stories=$root/../shared/models/stories260K.gguf
[ -f "$stories" ] && targets+=("$stories")
for type in F32 F16 Q8_0 Q4_0; do targets+=("$models/smol-135m-$type.gguf"); done
for type in F16 Q8_0 Q4_0; do targets+=("$models/tinyllama-1.1b-$type.gguf"); done

for model in "${targets[@]}"; do
  for threads in 1 2; do
    "$bench" --model "$model" --threads "$threads" "$@"
  done
done
