#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the packages, build,
# generate text in-process, then start edgellmd and stream a generation from it
# over gRPC. It uses the real pretrained model in ../shared/models when it is
# there, and otherwise a model that `edgellm make-model` writes.
# Set EDGELLM_SKIP_DEPS=1 to skip the package install on a machine already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EDGELLM_SKIP_DEPS:-0}" != 1 ]; then
  deploy/install-deps.sh
fi
cmake --preset release
cmake --build --preset release --target edgellm edgellmd

edgellm=build/release/tools/edgellm
model=../shared/models/stories260K.gguf
if [ ! -f "$model" ]; then
  model=build/release/demo-stories260k.gguf
  echo "== ../shared/models/stories260K.gguf not found: writing a synthetic model (random weights)"
  "$edgellm" make-model --shape stories260k --type F32 --out "$model"
fi

echo "== Tokens of \"Once upon a time\":"
"$edgellm" tokenize --model "$model" --prompt "Once upon a time"

echo "== Greedy generation (the same tokens llama.cpp produces):"
"$edgellm" generate --model "$model" --prompt "Once upon a time" -n 96 --temp 0

echo "== Sampled generation (temperature 0.8, top-p 0.95, seed 42):"
"$edgellm" generate --model "$model" --prompt "Lily and Ben went to the park" -n 96 --temp 0.8 --top-p 0.95 --seed 42

echo "== edgellmd: serving the model on a unix socket"
socket=$(mktemp -u /tmp/edgellmd-demo-XXXXXX.sock)
build/release/daemon/edgellmd --model "$model" --listen "unix:$socket" &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$socket" ] && break; sleep 0.1; done

echo "== Streaming from the daemon over gRPC (edgellm generate --server):"
"$edgellm" generate --server "unix://$socket" --prompt "The cat" -n 64 --temp 0

echo "== Stopping the daemon (SIGTERM drains in-flight requests, then it exits 0)"
kill -TERM "$daemon"
wait "$daemon"
trap - EXIT
