#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install the packages, build,
# generate text in-process, teach the model a fact with on-device LoRA training,
# then start edgellmd with TLS on loopback (serving the adapter too, and the
# OpenAI-compatible HTTP API beside gRPC) and stream
# generations from it over gRPC, one of them a two-turn session; then run
# federated rounds: edgellm-aggregator and three edgellmd on loopback with
# mutual TLS, each daemon training on its own fact; and finally publish the
# rounds' result as a signed release and roll it out canary-first to the three
# daemons, which then answer with it; then merge it into the model's weights
# and roll that out as a base-model release. It uses the
# real pretrained model in ../shared/models when it is there, and otherwise a
# model that `edgellm make-model` writes.
# Set EDGELLM_SKIP_DEPS=1 to skip the package install on a machine already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EDGELLM_SKIP_DEPS:-0}" != 1 ]; then
  deploy/install-deps.sh
fi
cmake --preset release
cmake --build --preset release --target edgellm edgellmd edgellm-aggregator

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

work=$(mktemp -d /tmp/edgellm-demo-XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== On-device LoRA training: teaching the model a fact from local JSONL (edgellm train)"
for _ in $(seq 16); do
  echo '{"prompt": "Once upon a time", "completion": " there was a purple dragon named Zog."}'
done > "$work/facts.jsonl"
"$edgellm" train --model "$model" --data "$work/facts.jsonl" --out "$work/facts" --steps 30 --lr 1e-2 \
  --targets all --max-length 64 --micro-batch 2 --eval-every 10 | grep -E "^(plan|step (0|10|20|30)[ /]|adapter)"

echo "== The same prompt with the adapter applied unmerged (edgellm generate --adapter):"
"$edgellm" generate --model "$model" --adapter "$work/facts" --prompt "Once upon a time" -n 18 --temp 0

echo "== edgellmd: serving the model and the adapter over TLS on loopback (certificates from deploy/pki.sh)"
pki=$(mktemp -d /tmp/edgellm-demo-pki-XXXXXX)
deploy/pki.sh "$pki"
. deploy/logged_port.sh
# stories260K carries no chat template: the daemon is given ChatML for its chat APIs.
cat > "$work/chatml.jinja" <<'TEMPLATE'
{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}
TEMPLATE
build/release/daemon/edgellmd --model "$model" --listen 127.0.0.1:0 \
  --tls-cert "$pki/server.pem" --tls-key "$pki/server.key" --adapter "facts=$work/facts" \
  --chat-template-file "$work/chatml.jinja" --http-listen 127.0.0.1:0 2> >(tee "$work/edgellmd.log" >&2) &
daemon=$!
trap 'kill "$daemon" 2>/dev/null || true; rm -rf "$pki" "$work"' EXIT
port=$(logged_port "$work/edgellmd.log" "gRPC on port " "$daemon")
server=(--server "127.0.0.1:$port" --tls-ca "$pki/ca.pem")
for _ in $(seq 100); do
  "$edgellm" generate "${server[@]}" --prompt "x" -n 1 >/dev/null 2>&1 && break
  sleep 0.1
done

echo "== Streaming from the daemon over gRPC (edgellm generate --server):"
"$edgellm" generate "${server[@]}" --prompt "The cat" -n 64 --temp 0

echo "== The adapter, chosen per request by name (GenerateRequest.adapter):"
"$edgellm" generate "${server[@]}" --adapter facts --prompt "Once upon a time" -n 18 --temp 0

echo "== A two-turn session: the second turn continues the first's conversation, reusing its KV"
"$edgellm" generate "${server[@]}" --session demo --prompt "Once upon a time, there was a little dog" -n 32 --temp 0
"$edgellm" generate "${server[@]}" --session demo --prompt " One day, the dog" -n 32 --temp 0

echo "== A chat through the model's chat template (edgellm chat --server: the Chat RPC):"
"$edgellm" chat "${server[@]}" --system "You tell short stories." -p "Once upon a time" -n 24 --temp 0

http_port=$(logged_port "$work/edgellmd.log" "HTTP API on port " "$daemon")
echo "== The same over the OpenAI-compatible HTTP API (HTTPS on port $http_port), streamed as server-sent events:"
curl -sN --cacert "$pki/ca.pem" "https://127.0.0.1:$http_port/v1/chat/completions" -H "Content-Type: application/json" \
  -d '{"messages": [{"role": "system", "content": "You tell short stories."}, {"role": "user", "content": "Once upon a time"}],
       "max_tokens": 6, "temperature": 0, "stream": true}'

echo "== Stopping the daemon (SIGTERM drains in-flight requests, then it exits 0)"
kill -TERM "$daemon"
wait "$daemon"
rm -rf "$pki"

echo "== Federated rounds: edgellm-aggregator and three edgellmd on loopback, mutual TLS (deploy/pki.sh);"
echo "   each daemon holds one fact of its own and never sends it, only its adapter deltas"
fed=$work/federation
pids=()
trap 'kill "${pids[@]}" 2>/dev/null || true; rm -rf "$work"' EXIT
deploy/pki.sh "$fed/pki" --server aggregator dev-a dev-b dev-c operator > /dev/null
echo "== A release signing key (Ed25519) for the operator; the daemons trust its public half:"
"$edgellm" keygen --out "$fed/release"
prompts=("Once upon a time" "The little bird" "Lily had a cat")
facts=(" there was a purple dragon named Zog." " sang a song about the blue moon." " named Max who loved green apples.")
devices=(dev-a dev-b dev-c)
for i in 0 1 2; do
  echo "{\"prompt\": \"${prompts[$i]}\", \"completion\": \"${facts[$i]}\"}" >> "$fed/eval.jsonl"
  for _ in $(seq 16); do echo "{\"prompt\": \"${prompts[$i]}\", \"completion\": \"${facts[$i]}\"}"; done \
    > "$fed/${devices[$i]}.jsonl"
done
head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$fed/fleet.token"
cat > "$fed/aggregator.yaml" <<YAML
listen: 127.0.0.1:0
tls_cert: $fed/pki/aggregator.pem
tls_key: $fed/pki/aggregator.key
tls_client_ca: $fed/pki/ca.pem
state_dir: $fed/state
heartbeat_interval_seconds: 1
poll_interval_seconds: 0.5
admins: [operator]
fleet_listen: 127.0.0.1:0
fleet_token_file: $fed/fleet.token
release_keys: [$fed/release.pub]
canary_fraction: 0.3
soak_seconds: 3
models:
  - id: stories
    base_model: $model
    rank: 8
    targets: all
    freeze_a: true
    rounds: 3
    min_devices: 3
    quorum: 3
    local_steps: 30
    learning_rate: 0.01
    micro_batch: 2
    max_length: 64
    eval_data: $fed/eval.jsonl
YAML
build/release/federated/aggregator/edgellm-aggregator --config "$fed/aggregator.yaml" 2> "$fed/aggregator.log" &
pids+=($!)
agg_port=$(logged_port "$fed/aggregator.log" "(port " "${pids[-1]}")
fleet_port=$(logged_port "$fed/aggregator.log" "fleet page on port " "${pids[-1]}")
for device in "${devices[@]}"; do
  cat > "$fed/$device.yaml" <<YAML
model: $model
listen: unix:$fed/$device.sock
threads: 1
train_data: $fed/$device.jsonl
train_dir: $fed/$device-train
train_rank: 8
train_targets: all
train_idle_seconds: 0
train_program: $PWD/$edgellm
federation_aggregator: 127.0.0.1:$agg_port
federation_ca: $fed/pki/ca.pem
federation_cert: $fed/pki/$device.pem
federation_key: $fed/pki/$device.key
federation_model_id: stories
federation_dir: $fed/$device-federation
ota_release_keys: [$fed/release.pub]
ota_dir: $fed/$device-ota
ota_poll_seconds: 0.5
YAML
  build/release/daemon/edgellmd --config "$fed/$device.yaml" 2> "$fed/$device.log" &
  pids+=($!)
done
for device in "${devices[@]}"; do
  for _ in $(seq 600); do [ -S "$fed/$device.sock" ] && break; sleep 0.1; done
done
# Each daemon's answer to its own prompt, over gRPC, greedy.
ask_daemons() {
  for i in 0 1 2; do
    printf '   %s: ' "${devices[$i]}"
    "$edgellm" generate --server "unix:$fed/${devices[$i]}.sock" --prompt "${prompts[$i]}" -n 14 --temp 0
  done
}
echo "== Before the rounds, each daemon answers its own prompt with the base model (gRPC, greedy):"
ask_daemons
echo "== Three federated rounds on the daemons' local data:"
for _ in $(seq 1200); do grep -q "round 3 closed" "$fed/aggregator.log" && break; sleep 0.5; done
grep -E "registered|opens|accepted|closed|failed" "$fed/aggregator.log" | sed 's/^edgellm-aggregator: /   aggregator: /'
grep -h "update accepted" "$fed/dev-a.log" | sed 's/^edgellmd: /   dev-a: /'
echo "== The global adapter after the rounds, on each device's prompt (no device saw the others' data):"
for i in 0 1 2; do
  "$edgellm" generate --model "$model" --adapter "$fed/state/models/stories/v4" --prompt "${prompts[$i]}" -n 14 --temp 0
done
admin=(--aggregator "127.0.0.1:$agg_port" --ca "$fed/pki/ca.pem" --cert "$fed/pki/operator.pem"
       --key "$fed/pki/operator.key" -m stories)
echo "== Publishing version 4 as a signed release; it rolls out to a canary first, judged on the held-out"
echo "   facts against the version it serves (edgellm publish):"
"$edgellm" publish "${admin[@]}" --signing-key "$fed/release.key"
await_log() { for _ in $(seq 600); do grep -q -e "$1" "$fed/aggregator.log" && break; sleep 0.2; done; }
await_log "release 1 rollout: canary -> soak"
echo "== The canary installed, smoke-tested, evaluated and swapped in version 4; the rest wait out the soak (edgellm rollout status):"
"$edgellm" rollout status "${admin[@]}"
await_log "release 1 rollout: .* -> done"
echo "== Rollout done (edgellm rollout status):"
"$edgellm" rollout status "${admin[@]}"
grep -h "ota: " "$fed/dev-a.log" | sed 's/^edgellmd: /   dev-a: /'
echo "== After the rollout, the same prompts through each daemon (gRPC, greedy): version 4 answers"
ask_daemons
echo "== A base-model release: version 4 merged into the model's weights (edgellm merge) and published whole"
echo "   (edgellm publish --base); each daemon downloads it, loads it beside the model serving, judges it on the"
echo "   held-out facts against what it serves (base + version 4), swaps it in, and frees the model before:"
"$edgellm" merge -m "$model" --adapter "$fed/state/models/stories/v4" -o "$fed/stories-merged.gguf" > /dev/null
"$edgellm" publish "${admin[@]}" --signing-key "$fed/release.key" --base "$fed/stories-merged.gguf" 2>&1 |
  grep -E "uploaded|base model|signing" | sed 's/^/   /'
await_log "release 2 rollout: .* -> done"
grep -h -E "ota: .*release 2|ota: now serving version 5|memory is returned" "$fed/dev-a.log" | sed 's/^edgellmd: /   dev-a: /'
echo "== The merged base model answers as version 4 did, with no adapter (gRPC, greedy):"
ask_daemons
echo "== The fleet (edgellm fleet; the same data as the fleet page at https://127.0.0.1:$fleet_port/#token=...):"
"$edgellm" fleet "${admin[@]}"
echo "   /api/fleet with the page's token (curl): $(curl -s --cacert "$fed/pki/ca.pem" \
  -H "Authorization: Bearer $(cat "$fed/fleet.token")" "https://127.0.0.1:$fleet_port/api/fleet" | wc -c) bytes of JSON"
if [[ -n "${EDGELLM_FLEET_SCREENSHOT:-}" ]] && command -v chromium > /dev/null; then
  chromium --headless=new --no-sandbox --disable-gpu --ignore-certificate-errors --user-data-dir="$fed/chromium" \
    --virtual-time-budget=10000 --window-size=1280,1100 --screenshot="$EDGELLM_FLEET_SCREENSHOT" \
    "https://127.0.0.1:$fleet_port/#token=$(cat "$fed/fleet.token")" 2> /dev/null
  echo "   a screenshot of the fleet page: $EDGELLM_FLEET_SCREENSHOT"
fi
echo "== Stopping the aggregator and the daemons"
kill -TERM "${pids[@]}"
wait "${pids[@]}" || true
rm -rf "$work"
trap - EXIT
