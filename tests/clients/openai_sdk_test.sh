#!/usr/bin/env bash
# Starts a real edgellmd (stories260K, a real chat template, an API key file,
# the HTTP API on a port it picks) and runs the official OpenAI SDK and
# curl -N against it.
# Usage: openai_sdk_test.sh EDGELLMD MODEL CHAT_TEMPLATE
set -euo pipefail
edgellmd=$1 model=$2 template=$3
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
pid=
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
[ -d "$here/node_modules/openai" ] || { echo "tests/clients/node_modules is missing: npm ci --prefix tests/clients"; exit 1; }
echo "sk-edgellm-test" > "$work/keys"
. "$here/../support/start_edgellmd.sh"
start_edgellmd "$model" --http-api-keys-file "$work/keys" --chat-template-file "$template" --threads 1
name=$(basename "$model" .gguf)
node "$here/openai_sdk_test.mjs" "http://127.0.0.1:$port/v1" sk-edgellm-test "$name"

# Raw server-sent events as curl -N shows them: data lines, then [DONE], then the end.
curl -sSN --max-time 60 "http://127.0.0.1:$port/v1/completions" -H "Authorization: Bearer sk-edgellm-test" \
  -H "Content-Type: application/json" \
  -d '{"prompt": "Once upon a time", "max_tokens": 6, "temperature": 0, "stream": true}' > "$work/sse"
grep -q '^data: {"id":"cmpl-' "$work/sse" || { echo "no completion chunk in:"; cat "$work/sse"; exit 1; }
[ "$(grep -v '^$' "$work/sse" | tail -n 1)" = "data: [DONE]" ] || { echo "the stream does not end with [DONE]:"; cat "$work/sse"; exit 1; }
status=$(curl -s -o "$work/err" -w '%{http_code}' "http://127.0.0.1:$port/v1/chat/completions" \
  -H "Authorization: Bearer sk-edgellm-test" -d '{"messages": "hi"}')
[ "$status" = 400 ] && grep -q '"param":"messages"' "$work/err" || { echo "curl: expected 400 naming messages, got $status"; cat "$work/err"; exit 1; }
echo "ok: curl -N streams server-sent events ending in [DONE]"
