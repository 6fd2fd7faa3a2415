#!/usr/bin/env bash
# Builds edgellm and runs every test: the README's test command.
#   1. installs the Debian packages (idempotent; needs root or sudo),
#   2. configures, builds and runs ctest with the release preset,
#   3. builds and runs the same tests again under AddressSanitizer +
#      UndefinedBehaviorSanitizer.
# Set EDGELLM_SKIP_DEPS=1 to skip step 1 on a machine that is already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EDGELLM_SKIP_DEPS:-0}" != 1 ]; then
  deploy/install-deps.sh
fi

cmake --workflow --preset release

cmake --workflow --preset asan
