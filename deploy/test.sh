#!/usr/bin/env bash
# Builds edgellm and runs every test: the README's test command.
#   1. installs the Debian packages (idempotent; needs root or sudo),
#   2. installs the npm packages of the deployment-file checkers and of the
#      OpenAI SDK client test, then
#      configures, builds and runs ctest with the release preset (the fleet
#      soak among them: 16 rounds when CI is set),
#   3. builds and runs the same tests again under AddressSanitizer +
#      UndefinedBehaviorSanitizer, then the unit tests of threaded code (engine,
#      serve, aggregator logic) under ThreadSanitizer,
#   4. fuzzes the GGUF reader, the model loader, the tokenizers, the safetensors reader, the
#      federated update decoder, the chat-template interpreter, the OpenAI request parser
#      and the validation of structured device and client requests (Register, upload
#      headers, install reports, release polls, Generate) with libFuzzer (clang) for
#      EDGELLM_FUZZ_SECONDS
#      each (default 60, 30 when CI is set), two at a time; the same clang build checks the
#      locking code with -Wthread-safety -Werror=thread-safety.
# Set EDGELLM_SKIP_DEPS=1 to skip step 1 on a machine that is already set up,
# and EDGELLM_FREE_BUILD_DIRS=1 (CI does) to delete each build tree once its
# tests have passed: the next one then has its disk space (ccache keeps what
# a rebuild needs).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EDGELLM_SKIP_DEPS:-0}" != 1 ]; then
  deploy/install-deps.sh
fi

# The offline checkers of the deployment files and the OpenAI SDK the HTTP API
# is tested with (npm, pinned by their lockfiles).
npm ci --prefix tests/deploy --no-audit --no-fund --loglevel=error
npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error

# Deletes a build tree whose tests passed, when asked to.
free_build_dir() {
  if [ "${EDGELLM_FREE_BUILD_DIRS:-0}" = 1 ]; then rm -rf "build/$1"; fi
}

cmake --workflow --preset release
free_build_dir release

cmake --workflow --preset asan
free_build_dir asan

cmake --workflow --preset tsan
free_build_dir tsan

if [ -n "${CI:-}" ]; then default_fuzz_seconds=30; else default_fuzz_seconds=60; fi
cmake --preset fuzz -DEDGELLM_FUZZ_SECONDS="${EDGELLM_FUZZ_SECONDS:-$default_fuzz_seconds}"
cmake --build --preset fuzz
ctest --preset fuzz
