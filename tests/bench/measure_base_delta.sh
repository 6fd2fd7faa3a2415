#!/usr/bin/env bash
# How many bytes a base-model release would ship as a delta against the file
# the device already holds, for the choice between zstd's patch mode and a
# tensor-wise delta. The new file is what a round's adapter merged into the
# base and re-quantized looks like: a model of SHAPE and TYPE (random
# weights at the real shape), a LoRA adapter trained on it for a few steps
# (all targets, rank 8), `edgellm merge` into the base's types.
#   tests/bench/measure_base_delta.sh BUILD_DIR [SHAPE] [TYPE] [STEPS]
# Prints one line: the whole file, the whole file through zstd -19, zstd
# --patch-from the old file (and the seconds it takes each way), and the
# byte-wise XOR and difference of the two files through zstd -19 (tensor-wise
# deltas where the layout is the same: only the bytes a merge changed are not
# zero). Needs files of the same size for the last two ("n/a" otherwise).
set -euo pipefail
build=${1:?usage: measure_base_delta.sh BUILD_DIR [SHAPE] [TYPE] [STEPS]}
shape=${2:-smol-135m}
type=${3:-Q8_0}
steps=${4:-4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a - b }'; }
size() { stat -c %s "$1"; }

"$build/tools/edgellm" make-model --shape "$shape" --type "$type" --out "$work/old.gguf" > /dev/null
for _ in $(seq 32); do
  echo '{"prompt": "Once upon a time", "completion": " there was a purple dragon named Zog."}'
done > "$work/facts.jsonl"
"$build/tools/edgellm" train --model "$work/old.gguf" --data "$work/facts.jsonl" --out "$work/adapter" \
  --steps "$steps" --rank 8 --targets all --max-length 32 --lr 0.01 > /dev/null 2>&1
"$build/tools/edgellm" merge --model "$work/old.gguf" --adapter "$work/adapter" --out "$work/new.gguf" > /dev/null

whole=$(size "$work/new.gguf")
zstd -q -19 -T2 "$work/new.gguf" -o "$work/new.zst"
whole_zstd=$(size "$work/new.zst")

# The window must cover the reference: --long to the next power of two above it.
window=$(awk -v n="$(size "$work/old.gguf")" 'BEGIN { w = 10; while (2 ^ w < n) w++; print w }')
start=$(now)
zstd -q -19 -T2 --long="$window" --patch-from="$work/old.gguf" "$work/new.gguf" -o "$work/new.patch"
patch_s=$(seconds "$(now)" "$start")
start=$(now)
zstd -q -d --long="$window" --memory=2048MB --patch-from="$work/old.gguf" "$work/new.patch" -o "$work/rebuilt.gguf"
apply_s=$(seconds "$(now)" "$start")
cmp -s "$work/new.gguf" "$work/rebuilt.gguf" || { echo "the patch does not rebuild the file" >&2; exit 1; }
patch=$(size "$work/new.patch")

xor="n/a"
sub="n/a"
if [ "$(size "$work/old.gguf")" = "$whole" ]; then
  # Byte-wise XOR and byte-wise difference (new - old, mod 256: a quantized
  # weight one step up or down is 0x01 or 0xff), eight bytes at a time per
  # big-integer operation; the difference is the usual SWAR subtraction.
  /usr/bin/python3 - "$work/old.gguf" "$work/new.gguf" "$work/xor.bin" "$work/sub.bin" <<'PY'
import sys
with open(sys.argv[1], "rb") as a, open(sys.argv[2], "rb") as b, \
     open(sys.argv[3], "wb") as xor_out, open(sys.argv[4], "wb") as sub_out:
    while True:
        x, y = a.read(1 << 24), b.read(1 << 24)
        if not y:
            break
        n = len(y)
        old, new = int.from_bytes(x, "little"), int.from_bytes(y, "little")
        high, low, ones = int.from_bytes(b"\x80" * n, "little"), int.from_bytes(b"\x7f" * n, "little"), (1 << (8 * n)) - 1
        xor_out.write((old ^ new).to_bytes(n, "little"))
        diff = ((new | high) - (old & low)) ^ ((new ^ old ^ ones) & high)
        sub_out.write(diff.to_bytes(n, "little"))
PY
  zstd -q -19 -T2 "$work/xor.bin" -o "$work/xor.zst"
  zstd -q -19 -T2 "$work/sub.bin" -o "$work/sub.zst"
  xor=$(size "$work/xor.zst")
  sub=$(size "$work/sub.zst")
fi
echo "delta shape=$shape type=$type steps=$steps whole_bytes=$whole whole_zstd_bytes=$whole_zstd" \
     "patch_from_bytes=$patch patch_from_make_s=$patch_s patch_from_apply_s=$apply_s xor_zstd_bytes=$xor" \
     "difference_zstd_bytes=$sub"
