#!/usr/bin/env bash
# Makes a small PKI for edgellm's TLS listeners: a CA, a server certificate
# (for localhost and 127.0.0.1, plus any --host given) and one client
# certificate per NAME (its common name, for mutual TLS). EC P-256 keys.
#
#   deploy/make-pki.sh OUT_DIR [--host NAME_OR_IP]... [--days N] [CLIENT_NAME]...
#
# Writes OUT_DIR/ca.pem, ca.key, server.pem, server.key and NAME.pem, NAME.key
# per client. An existing CA in OUT_DIR is reused, so more clients can be added
# later. Keys are created mode 0600.
set -euo pipefail

if [ $# -lt 1 ]; then
  echo "usage: $0 OUT_DIR [--server NAME] [--host NAME_OR_IP]... [--days N] [CLIENT_NAME]..." >&2
  exit 2
fi
out=$1
shift
days=365
server=server
san="DNS:localhost,IP:127.0.0.1"
clients=()
while [ $# -gt 0 ]; do
  case $1 in
    --host)
      if [[ $2 =~ ^[0-9.]+$ || $2 == *:* ]]; then san+=",IP:$2"; else san+=",DNS:$2"; fi
      shift 2 ;;
    --days) days=$2; shift 2 ;;
    --server) server=$2; shift 2 ;;
    *) clients+=("$1"); shift ;;
  esac
done

mkdir -p "$out"
umask 077
cd "$out"

new_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f ca.pem ] || [ ! -f ca.key ]; then
  new_key ca.key
  openssl req -x509 -new -key ca.key -days "$days" -subj "/CN=edgellm CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out ca.pem
fi

# sign NAME SUBJECT EXTENSIONS: NAME.key (new) and NAME.pem signed by the CA.
sign() {
  local name=$1 subject=$2 extensions=$3
  new_key "$name.key"
  openssl req -new -key "$name.key" -subj "$subject" -out "$name.csr"
  printf '%b' "$extensions" > "$name.ext"
  openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days "$days" \
    -extfile "$name.ext" -out "$name.pem" 2>/dev/null
  rm -f "$name.csr" "$name.ext"
}

sign "$server" "/CN=edgellm $server" "subjectAltName=$san\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n"
for client in "${clients[@]}"; do
  sign "$client" "/CN=$client" "subjectAltName=DNS:$client\nextendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\n"
done
chmod 0644 ./*.pem
echo "PKI in $out: ca.pem, $server.pem/.key${clients:+, ${clients[*]/%/.pem/.key}}"
