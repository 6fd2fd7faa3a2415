#!/usr/bin/env bash
# Serves a synthetic model (smol-135m Q8_0 unless told) with edgellmd and runs
# the load generator against it with 1, 4 and 16 concurrent clients, over gRPC
# and over the OpenAI-compatible HTTP API, alternating, in the same run.
# Usage: tests/bench/run_load_bench.sh [build-dir]     (default: build/release)
#   LOAD_CLIENTS (default 1,4,16), LOAD_REQUESTS (per client, default 4),
#   LOAD_SHAPE (default smol-135m), LOAD_TYPE (default Q8_0), LOAD_APIS
#   (default grpc,http), LOAD_MAX_TOKENS (per request, default 64), LOAD_KV_TYPE
#   (edgellmd's --kv-type, default f16), LOAD_TEMPERATURE (default 0: greedy)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/logged_port.sh"
build=${1:-$root/build/release}
shape=${LOAD_SHAPE:-smol-135m}
type=${LOAD_TYPE:-Q8_0}
model=$build/bench-models/$shape-$type.gguf
mkdir -p "$(dirname "$model")"
[ -f "$model" ] || "$build/tools/edgellm" make-model --shape "$shape" --type "$type" --out "$model" >&2

work=$(mktemp -d)
socket=$work/edgellmd.sock
"$build/daemon/edgellmd" --model "$model" --listen "unix:$socket" --max-active 16 --max-waiting 64 \
  --kv-type "${LOAD_KV_TYPE:-f16}" --http-listen 127.0.0.1:0 2> "$work/log" &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$work"' EXIT
# The socket is bound before the HTTP API starts: once its port is logged, both are up.
port=$(logged_port "$work/log" "HTTP API on port " "$daemon")

IFS=, read -ra counts <<< "${LOAD_CLIENTS:-1,4,16}"
IFS=, read -ra apis <<< "${LOAD_APIS:-grpc,http}"
for k in "${counts[@]}"; do
  for api in "${apis[@]}"; do
    case $api in
      grpc) where=(--server "unix://$socket") ;;
      http) where=(--http-port "$port") ;;
      *) echo "LOAD_APIS: '$api' is neither grpc nor http" >&2; exit 2 ;;
    esac
    "$build/tests/bench/edgellm-bench-load" "${where[@]}" --clients "$k" \
      --requests-per-client "${LOAD_REQUESTS:-4}" --max-tokens "${LOAD_MAX_TOKENS:-64}" \
      --temperature "${LOAD_TEMPERATURE:-0}"
  done
done
kill -TERM "$daemon"
wait "$daemon"
trap 'rm -rf "$work"' EXIT
