#!/usr/bin/env bash
# Validates every manifest under kubeedge/ — and the Secret and ConfigMap
# make-secrets.sh prints from a real PKI and release key — against the
# Kubernetes schemas, offline. A manifest broken on purpose must be refused,
# so a validator that accepts everything fails this test.
#   validate_kubeedge.sh SOURCE_DIR EDGELLM_CLI
set -euo pipefail
src=$1
cli=$2
validator="$src/tests/deploy/validate_manifests.mjs"
if [ ! -d "$src/tests/deploy/node_modules/kubernetes-models" ]; then
  echo "the validator's packages are missing: run npm ci --prefix tests/deploy (deploy/test.sh does)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$src/deploy/pki.sh" "$work/pki" --server aggregator >/dev/null
"$cli" keygen --out "$work/release" >/dev/null
"$src/kubeedge/make-secrets.sh" "$work/pki" "$work/release.pub" > "$work/secrets.yaml"
node "$validator" "$src"/kubeedge/*.yaml "$work/secrets.yaml"

sed 's/replicas: 1/replicas: one/' "$src/kubeedge/aggregator.yaml" > "$work/broken.yaml"
if node "$validator" "$work/broken.yaml" 2>"$work/err"; then
  echo "a Deployment with replicas: one was accepted" >&2
  exit 1
fi
grep -q "replicas must be integer" "$work/err" || { cat "$work/err" >&2; exit 1; }
echo "a broken manifest is refused: $(head -n 1 "$work/err")"
