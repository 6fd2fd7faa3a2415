#!/usr/bin/env bash
# Runs llama.cpp's llama-bench and edgellm's engine benchmark on the very same
# GGUF files with the same thread count, and prints edgellm ÷ llama.cpp for
# prefill (a 512-token prompt, llama-bench's pp512) and decode (128 tokens from
# an empty context, its tg128). The files are the tinyllama-1.1b and smol-135m
# shapes at Q4_0 and Q8_0, written by `edgellm make-model` into the build tree
# (every matrix of the type; llama.cpp reads them as any GGUF). Both read the
# weights into memory (edgellm's default, llama.cpp's --no-mmap); with
# PEER_MMAP=1 llama.cpp maps them from the page cache (its default).
#
# Usage: [COMPARE_SHAPES="..."] [COMPARE_TYPES="..."] tests/bench/compare-llama-cpp.sh LLAMA_CPP_BUILD_DIR|npm [threads] [build-dir]
#   COMPARE_SHAPES and COMPARE_TYPES choose other make-model shapes and types
#   (e.g. "llama3.2-1b qwen2.5-0.5b gemma2-2b" and "Q4_K_M Q8_0").
#   (defaults: 2 threads, build/release). With a llama.cpp build directory it
#   runs that build's llama-bench (needs jq). With `npm` it installs the
#   node-llama-cpp bindings (a pinned version, with llama.cpp's prebuilt CPU
#   libraries) into the build tree and times them with llama_cpp_peer.mjs
#   (needs Debian's nodejs and npm; the figures include the bindings'
#   per-token overhead, a few percent at tinyllama's size).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 LLAMA_CPP_BUILD_DIR|npm [threads] [build-dir]" >&2
  exit 2
fi
threads=${2:-2}
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${3:-$root/build/release}
models=$build/bench-models
mkdir -p "$models"
if [ "$1" = npm ]; then
  peer_dir=$build/llama-cpp-npm
  if [ ! -d "$peer_dir/node_modules/node-llama-cpp" ]; then
    mkdir -p "$peer_dir"
    npm install --prefix "$peer_dir" --no-audit --no-fund --ignore-scripts node-llama-cpp@3.22.1 >&2
  fi
  cp "$root/tests/bench/llama_cpp_peer.mjs" "$peer_dir/"
  # Prints "prefill decode" in tok/s.
  llama_figures() {
    local out
    out=$(node "$peer_dir/llama_cpp_peer.mjs" "$1" "$threads" 2>/dev/null)
    echo "$(sed -n 's/.* metric=prefill_tok_s value=\([0-9.]*\)/\1/p' <<<"$out")" \
         "$(sed -n 's/.* metric=decode_tok_s value=\([0-9.]*\)/\1/p' <<<"$out")"
  }
else
  llama_bench=$1/bin/llama-bench
  [ -x "$llama_bench" ] || llama_bench=$1/llama-bench
  if [ ! -x "$llama_bench" ]; then
    echo "$0: no llama-bench in $1/bin or $1" >&2
    exit 2
  fi
  llama_figures() {
    local json
    json=$("$llama_bench" -m "$1" -t "$threads" -p 512 -n 128 -mmp "${PEER_MMAP:-0}" -o json)
    echo "$(jq '.[] | select(.n_prompt == 512 and .n_gen == 0) | .avg_ts' <<<"$json")" \
         "$(jq '.[] | select(.n_prompt == 0 and .n_gen == 128) | .avg_ts' <<<"$json")"
  }
fi

# The figure `metric` from edgellm-bench-engine's lines in $ours.
figure() { sed -n "s/.* metric=$1 value=\([0-9.e+-]*\) .*/\1/p" <<<"$ours"; }

for shape in ${COMPARE_SHAPES:-tinyllama-1.1b smol-135m}; do
  for type in ${COMPARE_TYPES:-Q4_0 Q8_0}; do
    model=$models/$shape-$type.gguf
    [ -f "$model" ] || "$build/tools/edgellm" make-model --shape "$shape" --type "$type" --out "$model" >&2
    read -r llama_prefill llama_decode <<<"$(llama_figures "$model")"
    ours=$("$build/tests/bench/edgellm-bench-engine" --model "$model" --threads "$threads" --prefill-tokens 512 \
      --prompt-tokens 1 --decode-tokens 128 --batch-sizes 1)
    ours_prefill=$(figure prefill_tok_s)
    ours_decode=$(figure decode_tok_s)
    for pair in "prefill_tok_s $ours_prefill $llama_prefill" "decode_tok_s $ours_decode $llama_decode"; do
      read -r metric mine theirs <<<"$pair"
      ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN { printf "%.3f", (b > 0 ? a / b : 0) }')
      echo "compare model=$(basename "$model") threads=$threads metric=$metric edgellm=$mine llama_cpp=$theirs ratio=$ratio"
    done
  done
done
