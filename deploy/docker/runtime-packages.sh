#!/usr/bin/env bash
# Prints the Debian packages that own the shared libraries the given programs
# load: what a runtime image must install for them, and nothing more.
# Paths are tried as ldd prints them and as the package database may record
# them (/lib and /usr/lib are one directory on merged-/usr systems).
#   runtime-packages.sh PROGRAM...
set -euo pipefail
for program in "$@"; do ldd "$program"; done | awk '/=> \// {print $3}' | sort -u |
  while read -r lib; do
    real=$(readlink -f "$lib")
    owner=""
    for candidate in "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"; do
      if owner=$(dpkg -S "$candidate" 2>/dev/null); then break; fi
    done
    if [ -z "$owner" ]; then
      echo "$0: no package owns $lib" >&2
      exit 1
    fi
    echo "$owner"
  done | cut -d: -f1 | sort -u
