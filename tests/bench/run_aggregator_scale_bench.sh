#!/usr/bin/env bash
# The aggregator's memory with N simulated devices in one round, for each N
# given: makes N device certificates, starts edgellm-aggregator, runs
# edgellm-bench-fleet against it, stops it. FedAvg's running sum keeps the
# aggregate at one adapter whatever N is.
#
#   tests/bench/run_aggregator_scale_bench.sh BUILD_DIR MODEL.gguf [N]...   (default N: 10 1000)
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR MODEL.gguf [N]...}
model=${2:?usage: $0 BUILD_DIR MODEL.gguf [N]...}
shift 2
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(10 1000)
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/logged_port.sh"
work=$(mktemp -d)
trap 'kill $aggregator 2>/dev/null || true; rm -rf "$work"' EXIT
aggregator=

for n in "${counts[@]}"; do
  pki=$work/pki-$n
  names=()
  for ((i = 0; i < n; i++)); do names+=("$(printf 'dev-%04d' "$i")"); done
  "$root/deploy/pki.sh" "$pki" --server aggregator "${names[@]}" > /dev/null
  cat > "$work/aggregator-$n.yaml" <<YAML
listen: 127.0.0.1:0
tls_cert: $pki/aggregator.pem
tls_key: $pki/aggregator.key
tls_client_ca: $pki/ca.pem
state_dir: $work/state-$n
heartbeat_interval_seconds: 30
poll_interval_seconds: 1
liveness_timeout_seconds: 600
models:
  - id: bench
    base_model: $model
    rank: 8
    targets: q_proj,v_proj
    rounds: 1
    min_devices: $n
    quorum: $n
    round_timeout_seconds: 3600
YAML
  "$build/federated/aggregator/edgellm-aggregator" --config "$work/aggregator-$n.yaml" 2> "$work/aggregator-$n.log" &
  aggregator=$!
  port=$(logged_port "$work/aggregator-$n.log" "(port " "$aggregator")
  "$build/tests/bench/edgellm-bench-fleet" --aggregator "127.0.0.1:$port" --aggregator-pid "$aggregator" \
    --pki "$pki" --model "$model" --model-id bench --devices "$n"
  kill "$aggregator"
  wait "$aggregator" || true
  aggregator=
  rm -rf "$work/state-$n"
done
