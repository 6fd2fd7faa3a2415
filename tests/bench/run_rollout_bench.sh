#!/usr/bin/env bash
# How long a release takes to reach a fleet: a real edgellm-aggregator and
# DEVICES real edgellmd (releases only) on loopback with mutual TLS, one GGUF.
# Release 1 (the model's first adapter version, rank 8 on TARGETS) goes
# canary-first (one canary, no soak); then REPEATS signed rollbacks to the
# same version go to every device at once. Each install is a full cycle:
# poll, verify signatures, download, sha256, atomic install, smoke test
# (8 greedy tokens through the scheduler), swap. With EVAL_EXAMPLES=N,
# release 1 carries an evaluation: N held-out examples of about 64 tokens,
# each device measuring the release and the version it serves on them before
# serving (their time per device is printed). With BASE_MODEL=FILE.gguf,
# release 1 is that file as a base-model release instead (uploaded by
# `edgellm publish --base`, downloaded whole, loaded beside the model serving,
# smoke-tested, swapped in), no rollbacks follow, and each device's peak
# resident memory (VmHWM) before the release and after the swap is printed;
# with BASE_DELTAS=false the aggregator offers no delta (the whole file).
# One line per release:
#
#   [EVAL_EXAMPLES=N] [BASE_MODEL=NEW.gguf] tests/bench/run_rollout_bench.sh BUILD_DIR MODEL.gguf [DEVICES] [REPEATS] [TARGETS]
set -euo pipefail
usage="usage: $0 BUILD_DIR MODEL.gguf [DEVICES] [REPEATS] [TARGETS]"
build=$(realpath "${1:?$usage}")
model=$(realpath "${2:?$usage}")
devices=${3:-3}
repeats=${4:-3}
targets=${5:-q_proj,v_proj}
root=$(cd "$(dirname "$0")/../.." && pwd)
. "$root/deploy/logged_port.sh"
work=$(mktemp -d)
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$work"' EXIT
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
names=()
daemon_pids=()
for i in $(seq "$devices"); do names+=("dev-$i"); done
"$root/deploy/pki.sh" "$work/pki" --server aggregator "${names[@]}" operator > /dev/null
"$build/tools/edgellm" keygen --out "$work/release" > /dev/null
cat > "$work/aggregator.yaml" <<YAML
listen: 127.0.0.1:0
tls_cert: $work/pki/aggregator.pem
tls_key: $work/pki/aggregator.key
tls_client_ca: $work/pki/ca.pem
state_dir: $work/state
poll_interval_seconds: 0.2
admins: [operator]
release_keys: [$work/release.pub]
base_deltas: ${BASE_DELTAS:-true}
models:
  - id: bench
    base_model: $model
    rank: 8
    targets: $targets
    rounds: 1
    min_devices: 1000
    quorum: 1
YAML
"$build/federated/aggregator/edgellm-aggregator" --config "$work/aggregator.yaml" 2> "$work/aggregator.log" &
pids+=($!)
# It chose a free port (listen: ...:0) and logged it.
port=$(logged_port "$work/aggregator.log" "(port " "${pids[-1]}")
for name in "${names[@]}"; do
  cat > "$work/$name.yaml" <<YAML
model: $model
listen: unix:$work/$name.sock
threads: 1
federation_aggregator: 127.0.0.1:$port
federation_ca: $work/pki/ca.pem
federation_cert: $work/pki/$name.pem
federation_key: $work/pki/$name.key
federation_model_id: bench
ota_release_keys: [$work/release.pub]
ota_dir: $work/$name-ota
ota_poll_seconds: 0.2
YAML
  "$build/daemon/edgellmd" --config "$work/$name.yaml" 2> "$work/$name.log" &
  pids+=($!)
  daemon_pids+=($!)
done
for name in "${names[@]}"; do
  for _ in $(seq 1200); do grep -q "serving bench\|serving $(basename "$model" .gguf)" "$work/$name.log" && break; sleep 0.1; done
done
sleep 1  # every daemon has asked for releases once: the aggregator knows the fleet
admin=(--aggregator "127.0.0.1:$port" --ca "$work/pki/ca.pem" --cert "$work/pki/operator.pem"
       --key "$work/pki/operator.key" -m bench --signing-key "$work/release.key")
await() {  # waits for $1 in the aggregator's log
  for _ in $(seq 1200); do grep -q "$1" "$work/aggregator.log" && return 0; sleep 0.1; done
  echo "timed out waiting for: $1" >&2
  exit 1
}
# Each daemon's peak resident memory so far, in MiB.
peaks() {
  for pid in "${daemon_pids[@]}"; do
    awk '/^VmHWM:/ { printf "%d ", $2 / 1024 }' "/proc/$pid/status"
  done
}
if [ -n "${BASE_MODEL:-}" ]; then
  base=$(realpath "$BASE_MODEL")
  before=$(peaks)
  start=$(now)
  upload=$("$build/tools/edgellm" publish "${admin[@]}" --base "$base" --no-evaluation --canary-fraction 0.01 \
             --soak-seconds 0 2>&1 > /dev/null | sed -n 's/^uploaded .* in \([0-9.]*\) s$/\1/p')
  await "release 1 rollout: canary -> soak"
  canary=$(now)
  await "release 1 rollout: .* -> done"
  done_at=$(now)
  sleep 2  # the replaced models finish and are freed
  # A delta's bytes when one was fetched, else the whole file's.
  fetched=$(grep -h "ota: release 1: fetching it as a delta of" "$work"/dev-*.log | sed -n 's/.*delta of \([0-9]*\) bytes.*/\1/p' | head -1 || true)
  [ -n "$fetched" ] || fetched=$(grep -h "ota: release 1 (version" "$work"/dev-*.log | sed -n 's/.*, \([0-9]*\) bytes.*/\1/p' | head -1)
  delta_made=$(sed -n 's/.*: a delta of [0-9]* bytes .* made in \([0-9.]*\) s$/\1/p' "$work/aggregator.log" || true)
  printf 'base_rollout devices=%d model_bytes=%d new_bytes=%d fetched_bytes_per_device=%s upload_s=%s delta_made_s=%s canary_serving_s=%s all_serving_s=%s\n' \
    "$devices" "$(stat -c %s "$model")" "$(stat -c %s "$base")" "$fetched" "$upload" "${delta_made:-none}" \
    "$(seconds "$canary" "$start")" "$(seconds "$done_at" "$start")"
  printf 'peak_rss_mib before=[ %s] after_swap=[ %s] freed=%d of %d devices\n' "$before" "$(peaks)" \
    "$(grep -l "its memory is returned" "$work"/dev-*.log | wc -l)" "$devices"
  exit 0
fi
bytes=$(du -b "$work/state/models/bench/v1/adapter_model.safetensors" | cut -f1)
evaluation=()
if [ "${EVAL_EXAMPLES:-0}" -gt 0 ]; then
  for i in $(seq "$EVAL_EXAMPLES"); do
    printf '{"text": "Once upon a time, in a village by the sea, there lived a girl named Mia number %d. Every morning she walked to the harbour to watch the boats come in, and every evening she told her little brother what she had seen."}\n' "$i"
  done > "$work/eval.jsonl"
  evaluation=(--eval-data "$work/eval.jsonl" --max-loss-ratio 1.05)
fi
start=$(now)
"$build/tools/edgellm" publish "${admin[@]}" "${evaluation[@]}" --canary-fraction 0.01 --soak-seconds 0 > /dev/null
await "release 1 rollout: canary -> soak"
canary=$(now)
await "release 1 rollout: .* -> done"
done_at=$(now)
printf 'rollout release=1 devices=%d artifact_bytes=%d canary_installed_s=%s all_installed_s=%s\n' \
  "$devices" "$bytes" "$(seconds "$canary" "$start")" "$(seconds "$done_at" "$start")"
for r in $(seq 2 $((repeats + 1))); do
  start=$(now)
  "$build/tools/edgellm" rollout rollback "${admin[@]}" --to-version 1 --soak-seconds 0 > /dev/null
  await "release $r rollout: .* -> done"
  done_at=$(now)
  printf 'rollout release=%d devices=%d artifact_bytes=%d all_at_once all_installed_s=%s\n' \
    "$r" "$devices" "$bytes" "$(seconds "$done_at" "$start")"
done
if [ "${#evaluation[@]}" -gt 0 ]; then
  # "...; eval loss L vs L replaced (x1.000) on N examples, T s": each device's T.
  times=$(grep -h "ota: now serving version .* (release 1);" "$work"/dev-*.log | sed -n 's/.*, \([0-9.]*\) s$/\1/p' | tr '\n' ' ')
  printf 'evaluation release=1 examples=%d seconds_per_device=%s\n' "$EVAL_EXAMPLES" "$times"
fi
grep -h "ota: now serving" "$work"/dev-*.log | sed 's/;.*//' | sort | uniq -c | sed 's/^/  /'
