#!/usr/bin/env bash
# Round wall time and bytes per device with three real edgellmd and a real
# edgellm-aggregator on loopback (mutual TLS), for one GGUF:
#
#   tests/bench/run_federated_round_bench.sh BUILD_DIR MODEL.gguf [ROUNDS] [LOCAL_STEPS] [TARGETS]
#
# Each daemon trains LOCAL_STEPS steps (micro-batch 2 x 64 tokens, rank 8 on
# TARGETS) per round on its own facts; the figures come from the
# aggregator's /metrics, one machine-readable line each.
set -euo pipefail
build=${1:?usage: $0 BUILD_DIR MODEL.gguf [ROUNDS] [LOCAL_STEPS] [TARGETS]}
model=$(realpath "${2:?usage: $0 BUILD_DIR MODEL.gguf [ROUNDS] [LOCAL_STEPS] [TARGETS]}")
rounds=${3:-3}
steps=${4:-30}
targets=${5:-all}
build=$(realpath "$build")
root=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
. "$root/deploy/logged_port.sh"

"$root/deploy/pki.sh" "$work/pki" --server aggregator dev-a dev-b dev-c > /dev/null
cat > "$work/aggregator.yaml" <<YAML
listen: 127.0.0.1:0
tls_cert: $work/pki/aggregator.pem
tls_key: $work/pki/aggregator.key
tls_client_ca: $work/pki/ca.pem
metrics_listen: 127.0.0.1:0
state_dir: $work/state
heartbeat_interval_seconds: 1
poll_interval_seconds: 0.2
models:
  - id: bench
    base_model: $model
    rank: 8
    targets: $targets
    rounds: $rounds
    min_devices: 3
    quorum: 3
    round_timeout_seconds: 3600
    local_steps: $steps
    learning_rate: 0.01
    micro_batch: 2
    max_length: 64
YAML
"$build/federated/aggregator/edgellm-aggregator" --config "$work/aggregator.yaml" 2> "$work/aggregator.log" &
pids+=($!)
port=$(logged_port "$work/aggregator.log" "(port " "${pids[0]}")
metrics=$(logged_port "$work/aggregator.log" "metrics on port " "${pids[0]}")
facts=(" there was a purple dragon named Zog." " sang a song about the blue moon." " named Max who loved green apples.")
i=0
for device in dev-a dev-b dev-c; do
  for _ in $(seq 16); do echo "{\"prompt\": \"Once upon a time\", \"completion\": \"${facts[$i]}\"}"; done > "$work/$device.jsonl"
  cat > "$work/$device.yaml" <<YAML
model: $model
listen: unix:$work/$device.sock
threads: 1
train_data: $work/$device.jsonl
train_dir: $work/$device-train
train_rank: 8
train_targets: $targets
train_idle_seconds: 0
train_program: $build/tools/edgellm
federation_aggregator: 127.0.0.1:$port
federation_ca: $work/pki/ca.pem
federation_cert: $work/pki/$device.pem
federation_key: $work/pki/$device.key
federation_model_id: bench
federation_dir: $work/$device-federation
YAML
  "$build/daemon/edgellmd" --config "$work/$device.yaml" 2> "$work/$device.log" &
  pids+=($!)
  i=$((i + 1))
done
until grep -q "round $rounds closed" "$work/aggregator.log"; do
  if ! kill -0 "${pids[0]}" 2>/dev/null; then cat "$work/aggregator.log"; exit 1; fi
  sleep 0.5
done
scrape=$(/usr/bin/python3 -c "import urllib.request, sys; print(urllib.request.urlopen(sys.argv[1]).read().decode())" "http://127.0.0.1:$metrics/metrics")
value() { awk -v name="$1" '$1 ~ "^"name"(\\{|$)" { print $2; exit }' <<< "$scrape"; }
duration_sum=$(value edgellm_aggregator_round_duration_seconds_sum)
duration_count=$(value edgellm_aggregator_round_duration_seconds_count)
received=$(value edgellm_aggregator_received_bytes_total)
prefix="bench model=$(basename "$model") devices=3 steps=$steps targets=$targets"
echo "$prefix metric=round_seconds value=$(awk -v s="$duration_sum" -v c="$duration_count" 'BEGIN { print s / c }') unit=s"
echo "$prefix metric=bytes_per_device_round value=$(awk -v r="$received" -v n="$rounds" 'BEGIN { print r / (3 * n) }') unit=B"
echo "$prefix metric=model_bytes value=$(stat -c %s "$model") unit=B"
echo "$prefix metric=data_bytes_per_device value=$(stat -c %s "$work/dev-a.jsonl") unit=B"
