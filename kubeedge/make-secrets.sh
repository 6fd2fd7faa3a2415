#!/usr/bin/env bash
# Prints the cluster objects that carry key material, from files made by
# deploy/pki.sh and `edgellm keygen`:
#   Secret edgellm-aggregator-tls   the aggregator's certificate and key, and
#                                   the CA that signs device certificates
#   ConfigMap edgellm-release-keys  the public keys releases are checked with
#   Secret edgellm-fleet-token      the token that opens the fleet page, kept
#                                   in PKI_DIR/fleet.token (made once, random)
#
#   kubeedge/make-secrets.sh PKI_DIR RELEASE_PUB... | kubectl apply -f -
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 PKI_DIR RELEASE_PUB..." >&2
  exit 2
fi
pki=$1
shift
for f in "$pki/aggregator.pem" "$pki/aggregator.key" "$pki/ca.pem" "$@"; do
  [ -r "$f" ] || { echo "$0: cannot read $f" >&2; exit 1; }
done
b64() { base64 -w0 < "$1"; }
token_file="$pki/fleet.token"
if [ ! -s "$token_file" ]; then
  (umask 077 && openssl rand -hex 24 > "$token_file")
  echo "$0: the fleet page's token is in $token_file" >&2
fi
cat <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: edgellm-aggregator-tls
  namespace: edgellm
  labels: {app.kubernetes.io/name: edgellm-aggregator}
type: Opaque
data:
  aggregator.pem: $(b64 "$pki/aggregator.pem")
  aggregator.key: $(b64 "$pki/aggregator.key")
  ca.pem: $(b64 "$pki/ca.pem")
---
apiVersion: v1
kind: Secret
metadata:
  name: edgellm-fleet-token
  namespace: edgellm
  labels: {app.kubernetes.io/name: edgellm-aggregator}
type: Opaque
data:
  token: $(b64 "$token_file")
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: edgellm-release-keys
  namespace: edgellm
data:
YAML
first=1
for key in "$@"; do
  # The first key is release.pub, the name the example configs trust.
  name=$(basename "$key")
  if [ $first = 1 ]; then name=release.pub; first=0; fi
  echo "  $name: |"
  sed 's/^/    /' "$key"
done
