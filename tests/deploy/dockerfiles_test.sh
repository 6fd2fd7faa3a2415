#!/usr/bin/env bash
# The Dockerfiles pass the Dockerfile checker, and the script that lists their
# runtime packages finds an owning package for every library the built
# programs load (no image can be built here: base images are not reachable).
#   dockerfiles_test.sh SOURCE_DIR BUILD_DIR
set -euo pipefail
src=$1
build=$2
if [ ! -d "$src/tests/deploy/node_modules/dockerfile-utils" ]; then
  echo "the checkers' packages are missing: run npm ci --prefix tests/deploy (deploy/test.sh does)" >&2
  exit 1
fi
node "$src/tests/deploy/lint_dockerfiles.mjs" "$src"/deploy/docker/Dockerfile*
packages=$("$src/deploy/docker/runtime-packages.sh" "$build/daemon/edgellmd" "$build/tools/edgellm" \
  "$build/federated/aggregator/edgellm-aggregator")
for needed in libc6 libtorch1.13 libopenblas0-pthread libsqlite3-0; do
  grep -qx "$needed" <<< "$packages" || { echo "runtime packages lack $needed" >&2; exit 1; }
done
echo "runtime packages: $(wc -l <<< "$packages")"
