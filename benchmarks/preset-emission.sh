#!/usr/bin/env bash
# Prints how long galvatron-translate takes to emit each large preset and the
# size of the IR: emission time and size grow with depth, not parameters.
# Usage: benchmarks/preset-emission.sh [build-dir]
set -euo pipefail
build=${1:-$(cd "$(dirname "$0")/.." && pwd)/build}
printf "%-12s %8s %12s %10s\n" model layers "IR bytes" "seconds"
for model in gpt2-small gpt-1.5b gpt-6.7b llama2-70b gpt3-175b; do
  out=$(mktemp)
  best=0
  for _ in 1 2 3; do
    start=$(date +%s%N)
    "$build/bin/galvatron-translate" --model="$model" -o "$out"
    elapsed=$(( $(date +%s%N) - start ))
    if [ "$best" = 0 ] || [ "$elapsed" -lt "$best" ]; then best=$elapsed; fi
  done
  layers=$("$build/bin/galvatron-translate" --list-models | awk -v m="$model" '$1 == m {print $3}')
  printf "%-12s %8s %12s %10s\n" "$model" "$layers" "$(wc -c < "$out")" \
    "$(awk -v ns="$best" 'BEGIN { printf "%.3f", ns / 1e9 }')"
  rm -f "$out"
done
