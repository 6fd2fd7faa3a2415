#!/usr/bin/env bash
# Checks that the engine library's decode attention still prefetches the
# next KV block: GCC 12 deleted those prefetches without a word when the
# function holding them became provably free of effects (a lambda that only
# prefetched, once KvBlockPool::LayerData was inline), and sixteen batched
# streams then decoded about 15% slower. Nothing else would notice.
# Usage: attention_prefetches.sh LIBRARY (libedgellm_engine.a)
set -euo pipefail
library=${1:?usage: attention_prefetches.sh LIBRARY}
command -v objdump > /dev/null || { echo "attention_prefetches.sh: objdump is missing (binutils)" >&2; exit 2; }
# Every function of AttendOneKvHead, the lambdas inside it included, carries
# its mangled name. A prefetch is prefetcht0 on x86-64, prfm on aarch64.
count=$(objdump -d --no-show-raw-insn "$library" |
  awk '/^[0-9a-f]+ <.*>:$/ {in_attention = ($2 ~ /15AttendOneKvHead/)}
       in_attention && /prefetcht0|prfm/ {n++}
       END {print n + 0}')
if [ "$count" -eq 0 ]; then
  echo "no prefetch in AttendOneKvHead (daemon/engine/attention.cpp) of $library:" \
    "the compiler dropped the prefetches" >&2
  exit 1
fi
echo "AttendOneKvHead prefetches ($count prefetches in $library)"
