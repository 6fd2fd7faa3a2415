#!/usr/bin/env bash
# Runs llama.cpp and edgellm's engine benchmark on the very same GGUF files
# with the same thread counts, and prints edgellm ÷ llama.cpp for prefill (a
# 512-token prompt, llama-bench's pp512) and decode (128 tokens from an empty
# context, its tg128): one `compare` line per figure, then a Markdown table of
# them all, with edgellm's decode as a fraction of the memory bandwidth the
# benchmark measures in the same run (weight bytes per token × tok/s ÷ GB/s). The files are the speed targets' shapes (smol-135m, qwen2.5-0.5b,
# llama3.2-1b, tinyllama-1.1b) at Q4_0, Q8_0 and Q4_K_M (laid out as
# llama-quantize lays it out, engine/quant_mix.h), written by `edgellm
# make-model` into the build tree (random weights at the real shapes;
# llama.cpp reads them as any GGUF). Both read the weights into memory
# (edgellm's default, llama.cpp's --no-mmap); with PEER_MMAP=1 llama.cpp maps
# them from the page cache (its default).
#
# Usage: [COMPARE_SHAPES="..."] [COMPARE_TYPES="..."] tests/bench/compare-llama-cpp.sh LLAMA_CPP_BUILD_DIR|npm [threads] [build-dir]
#   threads: a count or a comma-separated list (default 1,2); build-dir
#   defaults to build/release. COMPARE_SHAPES and COMPARE_TYPES choose other
#   make-model shapes and types (e.g. "gemma2-2b" and "Q4_K_M"). With a
#   llama.cpp build directory (cmake -DGGML_NATIVE=ON, from source) it runs
#   that build's llama-bench (needs jq). With `npm` it installs the
#   node-llama-cpp bindings (a pinned version, with llama.cpp's prebuilt CPU
#   libraries) into the build tree and times them with llama_cpp_peer.mjs
#   (needs Debian's nodejs and npm; the figures include the bindings'
#   per-token overhead, a few percent at tinyllama's size).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 LLAMA_CPP_BUILD_DIR|npm [threads] [build-dir]" >&2
  exit 2
fi
thread_counts=${2:-1,2}
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
    out=$(node "$peer_dir/llama_cpp_peer.mjs" "$1" "$2" 2>/dev/null)
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
    json=$("$llama_bench" -m "$1" -t "$2" -p 512 -n 128 -mmp "${PEER_MMAP:-0}" -o json)
    echo "$(jq '.[] | select(.n_prompt == 512 and .n_gen == 0) | .avg_ts' <<<"$json")" \
         "$(jq '.[] | select(.n_prompt == 0 and .n_gen == 128) | .avg_ts' <<<"$json")"
  }
fi

# The figure `metric` from edgellm-bench-engine's lines in $ours.
figure() { sed -n "s/.* metric=$1 value=\([0-9.e+-]*\) .*/\1/p" <<<"$ours"; }

table=()
for shape in ${COMPARE_SHAPES:-smol-135m qwen2.5-0.5b llama3.2-1b tinyllama-1.1b}; do
  for type in ${COMPARE_TYPES:-Q4_0 Q8_0 Q4_K_M}; do
    model=$models/$shape-$type.gguf
    [ -f "$model" ] || "$build/tools/edgellm" make-model --shape "$shape" --type "$type" --out "$model" >&2
    for threads in ${thread_counts//,/ }; do
      read -r llama_prefill llama_decode <<<"$(llama_figures "$model" "$threads")"
      ours=$("$build/tests/bench/edgellm-bench-engine" --model "$model" --threads "$threads" --prefill-tokens 512 \
        --prompt-tokens 1 --decode-tokens 128 --batch-sizes 1)
      ours_prefill=$(figure prefill_tok_s)
      ours_decode=$(figure decode_tok_s)
      fraction=$(figure decode_fraction_of_bandwidth)
      row="| $shape $type | $threads"
      for pair in "prefill_tok_s $ours_prefill $llama_prefill" "decode_tok_s $ours_decode $llama_decode"; do
        read -r metric mine theirs <<<"$pair"
        ratio=$(awk -v a="$mine" -v b="$theirs" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        echo "compare model=$(basename "$model") threads=$threads metric=$metric edgellm=$mine llama_cpp=$theirs ratio=$ratio"
        row+=" | $mine | $theirs | $ratio"
      done
      table+=("$row | $(awk -v f="$fraction" 'BEGIN { printf "%.2f", f }') |")
    done
  done
done
echo
echo "| file | threads | edgellm prefill tok/s | llama.cpp | ratio | edgellm decode tok/s | llama.cpp | ratio | edgellm decode ÷ bandwidth |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
printf '%s\n' "${table[@]}"
