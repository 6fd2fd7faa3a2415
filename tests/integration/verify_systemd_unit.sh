#!/usr/bin/env bash
# Verifies a systemd unit with systemd-analyze, pointing its ExecStart at the
# binary just built. Fails on a non-zero exit and on any warning, since
# systemd-analyze exits 0 on values it merely ignores (a misspelled Type=).
# Usage: verify_systemd_unit.sh UNIT INSTALLED_PATH BUILT_PATH
set -euo pipefail
unit=$1 installed=$2 built=$3
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|$installed|$built|g" "$unit" > "$work/$(basename "$unit")"
if ! output=$(systemd-analyze verify "$work/$(basename "$unit")" 2>&1); then
  printf '%s\n' "$output"
  exit 1
fi
if [ -n "$output" ]; then
  printf 'systemd-analyze warned:\n%s\n' "$output"
  exit 1
fi
echo "$(basename "$unit"): verified"
