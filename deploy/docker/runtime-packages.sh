#!/usr/bin/env bash
# Prints the Debian packages that own the shared libraries the given programs
# load: what a runtime image must install for them, and nothing more.
# Paths are tried as ldd prints them and as the package database may record
# them (/lib and /usr/lib are one directory on merged-/usr systems); the
# package database is asked once for all of them, as each query reads it whole.
#   runtime-packages.sh PROGRAM...
set -euo pipefail
libs=$(for program in "$@"; do ldd "$program"; done | awk '/=> \// {print $3}' | sort -u)
candidates() {
  local lib=$1 real
  real=$(readlink -f "$lib")
  printf '%s\n' "$lib" "$real" "/usr$lib" "/usr$real" "${lib#/usr}" "${real#/usr}"
}
all_candidates=$(while read -r lib; do candidates "$lib"; done <<< "$libs" | sort -u)
# "package[:arch][, package...]: /path" for every candidate some package owns.
# shellcheck disable=SC2086
owners=$(dpkg -S $all_candidates 2>/dev/null | grep -E '^[^ ,]+(, [^ ,]+)*: /' || true)
while read -r lib; do
  owner=""
  while read -r candidate; do
    owner=$(awk -v path="$candidate" 'substr($0, length($0) - length(path) + 1) == path &&
                                      substr($0, length($0) - length(path) - 1, 2) == ": " {
                                        print substr($0, 1, length($0) - length(path) - 2); exit }' <<< "$owners")
    [ -n "$owner" ] && break
  done < <(candidates "$lib")
  if [ -z "$owner" ]; then
    echo "$0: no package owns $lib" >&2
    exit 1
  fi
  tr ',' '\n' <<< "$owner"
done <<< "$libs" | sed 's/^ *//; s/:.*//' | sort -u
