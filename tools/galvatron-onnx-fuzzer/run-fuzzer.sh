#!/usr/bin/env bash
# Runs the ONNX importer's fuzz target on a fixed number of inputs:
#   run-fuzzer.sh FUZZER WORKDIR RUNS [SEED]
# The same seed and run count explore the same inputs on every run of a
# build: no corpus reloading (it is timed) and, where the kernel allows it,
# no address randomization (coverage of pointer-keyed hash maps follows the
# addresses). A campaign is the same with many runs and another SEED.
# Seeds: the edge-case models of make_onnx_cases.py and a one-layer GPT-2
# export; onnx.dict holds op types and attribute names. A crash, sanitizer
# report or timeout fails the run and leaves the input in WORKDIR.
set -euo pipefail
fuzzer=$1 work=$2 runs=$3 seed=${4:-1}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
rm -rf "$work"
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
GALVATRON_FUZZ_DIR="$work/external" "${fixed_addresses[@]}" "$fuzzer" corpus seeds \
  -dict="$root/tools/galvatron-onnx-fuzzer/onnx.dict" \
  -runs="$runs" -seed="$seed" -reload=0 -max_len=131072 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/"
