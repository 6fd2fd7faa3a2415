#!/usr/bin/env bash
# Builds edgellm and runs every test: the README's test command.
#   1. installs the Debian packages (idempotent; needs root or sudo),
#   2. configures, builds and runs ctest with the release preset,
#   3. builds and runs the GGUF parser, tokenizer and quantization tests under
#      AddressSanitizer + UndefinedBehaviorSanitizer (the code that reads
#      untrusted bytes).
# Set EDGELLM_SKIP_DEPS=1 to skip step 1 on a machine that is already set up.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${EDGELLM_SKIP_DEPS:-0}" != 1 ]; then
  deploy/install-deps.sh
fi

cmake --workflow --preset release

cmake --preset asan
cmake --build --preset asan --target edgellm_engine_tests edgellm_common_tests
ctest --preset asan -R '^(GgufReader|GgufReaderMalformed|GgufWriter|QuantTypes|Fp16|Utf8|TextStreamer|SpmTokenizer|BpeTokenizer|BpePreTokenizer|SyntheticVocab|AtomicFile)\.'
