#!/usr/bin/env bash
# Runs the ONNX importer's fuzz target on a fixed number of inputs:
#   run-fuzzer.sh FUZZER WORKDIR RUNS [SEED]
# The same seed and run count explore the same inputs on every run of a
# build, wherever it is checked out:
# - no corpus reloading (it is timed);
# - where the kernel allows it, no address randomization (coverage of
#   pointer-keyed hash maps follows the addresses);
# - the fuzzer works in a directory whose path has the same length on every
#   machine: the importer resolves external data by absolute path, and a
#   longer path takes other branches (a small string outgrows its buffer).
# A campaign is the same with many runs and another SEED.
# Seeds: the edge-case models of make_onnx_cases.py and a one-layer GPT-2
# export; onnx.dict holds op types and attribute names. A crash, sanitizer
# report or timeout fails the run; its log and input are left in WORKDIR
# and summed up at the end of the output.
set -euo pipefail
fuzzer=$(realpath "$1") runs=$3 seed=${4:-1}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$2"
mkdir -p "$2"
results=$(realpath "$2")
work=$(mktemp -d /tmp/galvatron-fuzz.XXXXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/seeds" "$work/corpus" "$work/external"
/usr/bin/python3 "$root/test/python/make_onnx_cases.py" "$work/cases" >/dev/null
cp "$work"/cases/*.onnx "$work/seeds/"
# External data the seeds refer to, in the folder the fuzzer resolves in.
cp -P "$work"/cases/*.bin "$work/external/"
cp -r "$work/cases/data" "$work/external/"
/usr/bin/python3 "$root/test/python/export_onnx.py" gpt2 "$work/seeds/gpt2.onnx" \
  --layers 1 --seq 4 >/dev/null 2>&1
cd "$work"
fixed_addresses=(setarch "$(uname -m)" --addr-no-randomize)
if ! "${fixed_addresses[@]}" true 2>/dev/null; then
  echo "run-fuzzer: cannot disable address randomization here;" \
       "the inputs explored may differ between runs" >&2
  fixed_addresses=()
fi
status=0
GALVATRON_FUZZ_DIR="$work/external" "${fixed_addresses[@]}" "$fuzzer" corpus seeds \
  -dict="$root/tools/galvatron-onnx-fuzzer/onnx.dict" \
  -runs="$runs" -seed="$seed" -reload=0 -max_len=131072 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/" 2>&1 | tee "$results/fuzz.log" || status=$?
[[ $status -eq 0 ]] && exit 0
# A failure's report is far up a long log that CI may shorten: repeat it,
# with the input shrunk to something that can be printed and replayed.
shopt -s nullglob
inputs=("$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*)
cp -r "$work/external" "${inputs[@]}" "$results/"
{
  echo "run-fuzzer: FAILED (exit $status) at seed $seed; the report:"
  grep -E -A30 '^==[0-9]+==ERROR|runtime error|galvatron-onnx-fuzzer: |deadly signal' \
    "$results/fuzz.log" | head -80 || true
  for input in "${inputs[@]}"; do
    saved=$results/$(basename "$input")
    GALVATRON_FUZZ_DIR="$work/external" "$fuzzer" "$input" -minimize_crash=1 \
      -max_total_time=60 -exact_artifact_path="$saved.min" >/dev/null 2>&1 || true
    [[ -s $saved.min ]] || cp "$input" "$saved.min"
    echo "run-fuzzer: failing input $saved ($(stat -c %s "$input") bytes," \
         "shrunk to $(stat -c %s "$saved.min")); base64 of the shrunk one:"
    head -c 16384 "$saved.min" | base64 -w 120
    echo "run-fuzzer: replay: GALVATRON_FUZZ_DIR=$results/external $fuzzer $saved.min"
  done
} >&2
exit "$status"
