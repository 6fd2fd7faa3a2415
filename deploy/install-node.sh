#!/usr/bin/env bash
# Installs edgellm on a bare Debian 12 node from a build tree: the three
# programs, the hardened systemd units, the system user, example configs
# (an existing config is never overwritten) and the state directories; then
# reloads systemd and enables the units for the node's role.
#
#   deploy/install-node.sh [--role device|aggregator|both] [--build DIR] [--root DIR] [--start]
#
#   --role    device: edgellmd (default); aggregator: edgellm-aggregator; both
#   --build   the build tree (default build/release: cmake --workflow --preset release)
#   --root    install under DIR instead of / (an image being assembled, or a
#             test); systemd is then left alone
#   --start   start (or restart) the units after enabling them
#
# Afterwards: put the model at the path edgellmd.yaml names, the device's
# certificate and key in /etc/edgellm/pki (deploy/pki.sh), and the release
# public keys where ota_release_keys says.
set -euo pipefail
cd "$(dirname "$0")/.."

role=device
build=build/release
root=/
start=0
while [ $# -gt 0 ]; do
  case $1 in
    --role) role=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --root) root=$2; shift 2 ;;
    --start) start=1; shift ;;
    *) echo "usage: $0 [--role device|aggregator|both] [--build DIR] [--root DIR] [--start]" >&2; exit 2 ;;
  esac
done
case $role in
  device) units=(edgellmd) ;;
  aggregator) units=(edgellm-aggregator) ;;
  both) units=(edgellmd edgellm-aggregator) ;;
  *) echo "$0: --role must be device, aggregator or both" >&2; exit 2 ;;
esac
root=${root%/}
for program in "$build/daemon/edgellmd" "$build/tools/edgellm" "$build/federated/aggregator/edgellm-aggregator"; do
  [ -x "$program" ] || { echo "$0: $program is missing: build first (cmake --workflow --preset release)" >&2; exit 1; }
done

install -d -m 0755 "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib/sysusers.d" "$root/etc/edgellm"
install -m 0755 "$build/daemon/edgellmd" "$build/tools/edgellm" "$build/federated/aggregator/edgellm-aggregator" \
  "$root/usr/local/bin/"
install -m 0644 deploy/edgellm.sysusers.conf "$root/usr/lib/sysusers.d/edgellm.conf"
install -d -m 0750 "$root/etc/edgellm/pki" "$root/etc/edgellm/release"
for unit in "${units[@]}"; do
  install -m 0644 "deploy/$unit.service" "$root/etc/systemd/system/$unit.service"
done
# Configs are the operator's once installed: keep theirs.
for unit in "${units[@]}"; do
  config=$([ "$unit" = edgellmd ] && echo edgellmd.yaml || echo aggregator.yaml)
  if [ -e "$root/etc/edgellm/$config" ]; then
    echo "kept the existing /etc/edgellm/$config"
  else
    install -m 0640 "deploy/$config" "$root/etc/edgellm/$config"
  fi
done
install -d -m 0750 "$root/var/lib/edgellm/models" "$root/var/lib/edgellm/data"

if [ -n "$root" ]; then  # not the live system
  echo "installed ${units[*]} under $root"
  exit 0
fi
systemd-sysusers /usr/lib/sysusers.d/edgellm.conf
chown -R edgellm:edgellm /var/lib/edgellm
chgrp -R edgellm /etc/edgellm
systemctl daemon-reload
for unit in "${units[@]}"; do
  systemctl enable "$unit.service"
  if [ $start = 1 ]; then systemctl restart "$unit.service"; fi
done
echo "installed and enabled ${units[*]}"
