#!/usr/bin/env bash
# Regenerates tests/conformance/llama-cpp-greedy.json: llama.cpp's greedy
# output on the family conformance test's synthetic models (see
# make_llama_cpp_references.mjs). Installs the pinned node-llama-cpp bindings
# into the build tree on first use (Debian's nodejs and npm).
#
# Usage: tests/conformance/make-llama-cpp-references.sh [build-dir]   (default build/release)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$root/build/release}
peer_dir=$build/llama-cpp-npm
if [ ! -d "$peer_dir/node_modules/node-llama-cpp" ]; then
  mkdir -p "$peer_dir"
  npm install --prefix "$peer_dir" --no-audit --no-fund --ignore-scripts node-llama-cpp@3.22.1 >&2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root/tests/conformance/make_llama_cpp_references.mjs" "$peer_dir/"
node "$peer_dir/make_llama_cpp_references.mjs" "$build/tools/edgellm" "$root/../shared/vocab-tests" "$work" \
  "$root/tests/conformance/llama-cpp-greedy.json"
