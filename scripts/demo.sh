#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the main job on the built-in
# default: generate the gpt-1.5b preset, print its statistics, and search
# its fastest plan on two nodes of 8 H100s.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=$(bash "$root/scripts/build.sh")
model=${1:-gpt-1.5b}

"$build/bin/galvatron-translate" --model="$model" -o "$build/$model.mlir"
echo "== $model: $(wc -c < "$build/$model.mlir") bytes of IR in $build/$model.mlir"
"$build/bin/galvatron-opt" --galvatron-model-stats "$build/$model.mlir" -o /dev/null
echo "== the fastest plan on 2 nodes of 8 H100-80GB, global batch 512"
"$build/bin/galvatron-opt" \
  --galvatron-search="cluster=h100-80gb nodes=2 global-batch=512 report=text" \
  "$build/$model.mlir" -o "$build/$model.plan.mlir"
