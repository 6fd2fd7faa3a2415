#!/usr/bin/env bash
# Structured output against real edgellmd daemons through the official OpenAI
# SDK, checked by ajv: a random-weight model with Qwen2's real vocabulary and
# the Qwen2.5 chat template (Hermes-style tool calls), and stories260K.
# Usage: structured_output_test.sh EDGELLMD EDGELLM SHARED_DIR
set -euo pipefail
edgellmd=$1 edgellm=$2 shared=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
[ -d "$here/node_modules/ajv" ] || { echo "tests/clients/node_modules is missing: npm ci --prefix tests/clients"; exit 1; }
echo "sk-edgellm-test" > "$work/keys"

. "$here/../support/start_edgellmd.sh"
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }

"$edgellm" make-model --shape test-qwen2 --type F32 --vocab-from "$shared/vocab-tests/ggml-vocab-qwen2.gguf" \
  --ctx 2048 -o "$work/random.gguf" > /dev/null
template=$shared/chat-templates/Qwen-Qwen2.5-7B-Instruct.jinja
start_edgellmd "$work/random.gguf" --http-api-keys-file "$work/keys" --chat-template-file "$template" --threads 2
node "$here/structured_output_test.mjs" "http://127.0.0.1:$port/v1" sk-edgellm-test random random
stop

start_edgellmd "$shared/models/stories260K.gguf" --http-api-keys-file "$work/keys" --chat-template-file "$template" \
  --threads 2
node "$here/structured_output_test.mjs" "http://127.0.0.1:$port/v1" sk-edgellm-test stories260K stories
