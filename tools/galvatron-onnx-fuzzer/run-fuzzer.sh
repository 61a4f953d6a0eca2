#!/usr/bin/env bash
# Runs the ONNX importer's fuzz target for a bounded time:
#   run-fuzzer.sh FUZZER WORKDIR SECONDS
# Seeds: the edge-case models of make_onnx_cases.py and a one-layer GPT-2
# export; onnx.dict holds op types and attribute names. A crash, sanitizer
# report or timeout fails the run and leaves the input in WORKDIR.
set -euo pipefail
fuzzer=$1 work=$2 seconds=$3
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
GALVATRON_FUZZ_DIR="$work/external" "$fuzzer" corpus seeds \
  -dict="$root/tools/galvatron-onnx-fuzzer/onnx.dict" \
  -max_total_time="$seconds" -max_len=131072 -timeout=20 -rss_limit_mb=4096 \
  -print_final_stats=1 -artifact_prefix="$work/"
