#!/usr/bin/env bash
# deploy/install-node.sh into a scratch root: every file where the units
# expect it, the installed units verify with systemd-analyze against the
# installed programs, and a second run keeps the operator's edited config.
#   install_node_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
"$src/deploy/install-node.sh" --role both --build "$build" --root "$root"
for f in usr/local/bin/edgellmd usr/local/bin/edgellm usr/local/bin/edgellm-aggregator; do
  [ -x "$root/$f" ] || { echo "missing $f" >&2; exit 1; }
done
for f in etc/systemd/system/edgellmd.service etc/systemd/system/edgellm-aggregator.service \
         usr/lib/sysusers.d/edgellm.conf etc/edgellm/edgellmd.yaml etc/edgellm/aggregator.yaml; do
  [ -f "$root/$f" ] || { echo "missing $f" >&2; exit 1; }
done
"$root/usr/local/bin/edgellmd" --help >/dev/null
for unit in edgellmd edgellm-aggregator; do
  "$src/tests/integration/verify_systemd_unit.sh" "$root/etc/systemd/system/$unit.service" \
    "/usr/local/bin/$unit" "$root/usr/local/bin/$unit"
done
echo "# edited by the operator" >> "$root/etc/edgellm/edgellmd.yaml"
again=$("$src/deploy/install-node.sh" --role device --build "$build" --root "$root")
grep -q "kept the existing /etc/edgellm/edgellmd.yaml" <<< "$again"
grep -q "edited by the operator" "$root/etc/edgellm/edgellmd.yaml"
echo "install-node.sh: installs, verifies and keeps the operator's config"
