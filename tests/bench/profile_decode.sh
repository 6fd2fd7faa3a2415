#!/usr/bin/env bash
# Profiles decode steps of MODEL with perf and prints where their time goes:
# the matrix and attention kernels, row-wise work, the thread pool's hand-offs
# and waiting, sampling, and the rest (tests/bench/decode_profile.py).
# Usage: tests/bench/profile_decode.sh MODEL [THREADS=2] [build-dir]
#   PROFILE_PROMPT (tokens before decoding, default 128), PROFILE_DECODE
#   (tokens decoded per repetition, default 128), PROFILE_REPS (default 20),
#   PROFILE_MODE (what the engine bench times, default --only-decode; "--only-batch 16"
#   profiles steps of sixteen sequences decoding together)
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
model=${1:?usage: profile_decode.sh MODEL [THREADS] [build-dir]}
threads=${2:-2}
build=${3:-$root/build/release}
command -v perf > /dev/null || { echo "profile_decode.sh: perf is missing (deploy/install-deps.sh installs linux-perf)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkfifo "$work/control" "$work/ack"
# 999 Hz: often enough for a figure, seldom enough not to slow the run down.
# Events start disabled (-D -1); the bench enables them around each measured
# decode loop, so no sample of loading, prompts or cache set-up is counted.
perf record -F 999 -D -1 --control "fifo:$work/control,$work/ack" -o "$work/perf.data" -- \
  "$build/tests/bench/edgellm-bench-engine" --model "$model" --perf-control "$work/control" --perf-ack "$work/ack" \
  --threads "$threads" ${PROFILE_MODE:---only-decode} --prompt-tokens "${PROFILE_PROMPT:-128}" \
  --decode-tokens "${PROFILE_DECODE:-128}" --reps "${PROFILE_REPS:-20}" 2> "$work/perf.log"
perf script -i "$work/perf.data" -F pid,tid,ip,sym,dso 2> /dev/null |
  awk '{ids = $1; $1 = ""; $2 = ""; print ids, "-", $0}' | /usr/bin/env python3 "$root/tests/bench/decode_profile.py"
