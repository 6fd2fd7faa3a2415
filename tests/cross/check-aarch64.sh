#!/usr/bin/env bash
# Cross-builds the quantized kernels for aarch64 with Debian's
# g++-aarch64-linux-gnu and runs their check against the scalar reference
# under qemu-user. Without the toolchain it skips (exit 77), unless CI is set:
# then that is a failure.
#
# Usage: tests/cross/check-aarch64.sh SOURCE_DIR OUT_DIR
set -euo pipefail
src=$1
out=$2
for tool in aarch64-linux-gnu-g++ qemu-aarch64; do
  if ! command -v "$tool" >/dev/null; then
    echo "$tool is missing (deploy/install-deps.sh installs it)"
    [ -n "${CI:-}" ] && exit 1
    exit 77
  fi
done
mkdir -p "$out"
engine=$src/daemon/engine
aarch64-linux-gnu-g++ -std=c++20 -O2 -Wall -Wextra -Werror -I"$src" \
  "$engine/quant_kernels.cpp" "$engine/quant_kernels_scalar.cpp" "$engine/quant_kernels_neon.cpp" \
  "$engine/quant_kernels_avx2.cpp" "$engine/quant_kernels_avxvnni.cpp" "$engine/quant_kernels_avx512vnni.cpp" \
  "$engine/k_quants.cpp" "$engine/legacy_quants.cpp" "$engine/iq4_quants.cpp" \
  "$src/tests/cross/neon_kernels_check.cpp" \
  -o "$out/neon_kernels_check"
qemu-aarch64 -L /usr/aarch64-linux-gnu "$out/neon_kernels_check"
