#!/usr/bin/env bash
# Two builds' engine benchmark figures, measured in alternation: each round
# runs A, B, B, A, so that a drift of the machine during a round (a busy
# neighbour, the clock) weighs on both builds alike, and prints the round's
# ratio B / A; then the means, the median ratio, its spread and how many
# rounds B won. On a shared machine whose speed moves by 10-20% from minute to
# minute, a change is only as real as its median ratio over rounds whose
# spread leaves no doubt.
#
# Usage: tests/bench/compare_builds.sh BUILD_A BUILD_B MODEL [ROUNDS] [-- BENCH_OPTIONS...]
#   BUILD_A and BUILD_B are build trees with tests/bench/edgellm-bench-engine
#   (a second tree for the base: git worktree add --detach ../base COMMIT;
#   cmake --preset release there; cmake --build build/release --target
#   edgellm_bench_engine). ROUNDS defaults to 6. METRIC (default
#   decode_tok_s) names the figure compared, e.g. METRIC=batch16_decode_tok_s
#   with -- --only-batch 16. The options after -- go to every run (default:
#   --only-decode --prompt-tokens 128 --decode-tokens 128 --reps 3).
set -euo pipefail
usage="usage: $0 BUILD_A BUILD_B MODEL [ROUNDS] [-- BENCH_OPTIONS...]"
a=${1:?$usage} b=${2:?$usage} model=${3:?$usage}
shift 3
rounds=6
if [ $# -gt 0 ] && [ "$1" != -- ]; then
  rounds=$1
  shift
fi
[ $# -gt 0 ] && [ "$1" = -- ] && shift
options=("$@")
[ ${#options[@]} -gt 0 ] || options=(--only-decode --prompt-tokens 128 --decode-tokens 128 --reps 3)
metric=${METRIC:-decode_tok_s}
for build in "$a" "$b"; do
  [ -x "$build/tests/bench/edgellm-bench-engine" ] ||
    { echo "$build/tests/bench/edgellm-bench-engine is missing" >&2; exit 2; }
done

# One run's figure, or the run's output and a failure.
figure() {
  local out value
  out=$("$1/tests/bench/edgellm-bench-engine" --model "$model" "${options[@]}" 2>&1) || { echo "$out" >&2; return 1; }
  value=$(sed -n "s/.* metric=$metric value=\([0-9.e+-]*\) .*/\1/p" <<< "$out" | head -n 1)
  [ -n "$value" ] || { echo "no $metric in:" >&2; echo "$out" >&2; return 1; }
  echo "$value"
}

echo "# $metric: A=$a B=$b, rounds of A B B A, ${options[*]}"
results=()
for ((round = 1; round <= rounds; ++round)); do
  a1=$(figure "$a"); b1=$(figure "$b"); b2=$(figure "$b"); a2=$(figure "$a")
  line=$(awk -v a1="$a1" -v b1="$b1" -v b2="$b2" -v a2="$a2" \
    'BEGIN { printf "%s %s %s %s %.4f", a1, b1, b2, a2, (b1 + b2) / (a1 + a2) }')
  echo "$line"
  results+=("$line")
done
printf '%s\n' "${results[@]}" | sort -g -k5 | awk '
  { a += $1 + $4; b += $2 + $3; ratio[NR] = $5; if ($5 > 1) won++ }
  END {
    median = NR % 2 ? ratio[(NR + 1) / 2] : (ratio[NR / 2] + ratio[NR / 2 + 1]) / 2
    printf "A mean %.1f  B mean %.1f  median B/A %.4f  min %.4f  max %.4f  B ahead in %d of %d rounds\n",
           a / (2 * NR), b / (2 * NR), median, ratio[1], ratio[NR], won, NR
  }'
