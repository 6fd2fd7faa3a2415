#!/usr/bin/env bash
# Time to first token of requests that arrive while edgellmd trains a LoRA
# adapter on the same model, against the same daemon without training.
# The model is the synthetic smol-135m (Q8_0), whose training steps take
# seconds: a request that waited for a step would show it. One client sends
# requests with a pause before each, long enough for training to resume.
# Usage: tests/bench/run_training_ttft_bench.sh [build-dir [requests]]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
requests=${2:-12}
model=$build/bench-models/smol-135m-Q8_0.gguf
mkdir -p "$(dirname "$model")"
[ -f "$model" ] || "$build/tools/edgellm" make-model --shape smol-135m --type Q8_0 --out "$model" >&2

work=$(mktemp -d /tmp/edgellm-ttft-XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
for i in $(seq 400); do
  echo "{\"text\": \"Story $i. The small robot walked to the market and bought bread, apples and a map of the old town.\"}"
done > "$work/data.jsonl"

run() {  # label, extra config lines
  local label=$1 config=$work/$1.yaml socket=$work/$1.sock
  { echo "model: $model"; echo "listen: unix:$socket"; echo "metrics_listen: 127.0.0.1:0"; echo "threads: 2"
    echo -e "$2"; } > "$config"
  "$build/daemon/edgellmd" --config "$config" 2>"$work/$label.log" &
  local daemon=$!
  for _ in $(seq 300); do [ -S "$socket" ] && break; sleep 0.1; done
  if [ -n "$2" ]; then  # wait for the first training step, so that training is under way
    for _ in $(seq 600); do
      grep -q "step 1/" "$work/$label.log" && break
      sleep 0.1
    done
  fi
  echo "# $label"
  "$build/tests/bench/edgellm-bench-load" --server "unix://$socket" --clients 1 --requests-per-client "$requests" \
    --pause-ms 1500 --max-tokens 16 | sed "s/^bench /bench case=$label /"
  [ -n "$2" ] && grep -o "training: step [0-9]*/[0-9]* .*" "$work/$label.log" | tail -1 | sed 's/^/# last /'
  kill -TERM "$daemon"
  wait "$daemon" || true
}

run idle ""
run training "train_data: $work/data.jsonl\ntrain_dir: $work/train\ntrain_steps: 1000\ntrain_targets: all\ntrain_program: $build/tools/edgellm"
