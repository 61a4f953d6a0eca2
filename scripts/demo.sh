#!/usr/bin/env bash
# Sets up a fresh machine, builds, and runs the main job on the built-in
# default: generate the gpt-1.5b preset, print its statistics, and search
# its fastest bf16 plan on two nodes of 8 H100s; then train a small GPT on
# the King James Bible (byte-level tokens) on this machine's CPU for 300
# steps, and a searched bf16 plan of it on 4 MPI ranks.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Only the tools the demo runs (the test suite's targets, such as the
# importer's fuzzer built by clang in a nested tree, are scripts/test.sh's).
build=$(bash "$root/scripts/build.sh" galvatron-translate galvatron-opt \
  galvatron-compile galvatron-run)
model=${1:-gpt-1.5b}

"$build/bin/galvatron-translate" --model="$model" -o "$build/$model.mlir"
echo "== $model: $(wc -c < "$build/$model.mlir") bytes of IR in $build/$model.mlir"
"$build/bin/galvatron-opt" --galvatron-model-stats "$build/$model.mlir" -o /dev/null
echo "== the fastest bf16 plan on 2 nodes of 8 H100-80GB, global batch 512"
"$build/bin/galvatron-opt" \
  --galvatron-search="cluster=h100-80gb nodes=2 global-batch=512 precision=bf16 report=text" \
  "$build/$model.mlir" -o "$build/$model.plan.mlir"

# Training: the text comes from Debian's bible-kjv (public domain), one
# token per byte (vocabulary 256, gpt-tiny's).
data="$build/demo-data"
mkdir -p "$data"
if [ ! -s "$data/kjv.bin" ]; then
  bible -f "Gen1:1-Rev22:21" | sed 's/^[0-9A-Za-z]*:[0-9]* //' > "$data/kjv.txt"
  /usr/bin/python3 "$root/utils/tokenize_bytes.py" "$data/kjv.txt" "$data/kjv.bin"
fi
echo "== training gpt-tiny (120K parameters) on the KJV Bible: batch 16 x 64 bytes, AdamW, warm-up + cosine"
"$build/bin/galvatron-compile" --model=gpt-tiny --batch=16 \
  --train="lr=3e-3 min-lr=3e-4 warmup-steps=20 decay-steps=300 weight-decay=0.1" \
  -o "$data/gpt-tiny-train.gxp"
# A model this small is fastest on one thread: its kernels are too small to
# share between cores.
"$build/bin/galvatron-run" "$data/gpt-tiny-train.gxp" --steps 300 \
  --data "$data/kjv.bin" --print-every 10 --checkpoint "$data/checkpoint" \
  --threads 1

# The same model over 4 MPI ranks on this machine, in bf16 as a GPU job
# trains: two pipeline stages, and the search picks the parallelism inside
# each stage (tensor or data parallel, ZeRO, checkpointing), the stage split
# and the schedule for a 4-GPU node; galvatron-compile partitions each
# stage, builds its mixed-precision training step (f32 master weights, bf16
# activations and gradients) and writes the program of every rank into one
# file.
echo "== a searched 2-stage bf16 hybrid plan for gpt-tiny, trained on 4 MPI ranks"
"$build/bin/galvatron-compile" --model=gpt-tiny --batch=4 \
  --search="cluster=a100-80gb devices=4 pp=2 chunks=4 global-batch=16 precision=bf16 report=text" \
  --train="lr=3e-3 min-lr=3e-4 warmup-steps=20 decay-steps=300 weight-decay=0.1" \
  -o "$data/gpt-tiny-4ranks.gxp"
OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
OMPI_MCA_btl_vader_single_copy_mechanism=none \
  mpirun --oversubscribe -np 4 "$build/bin/galvatron-run" "$data/gpt-tiny-4ranks.gxp" \
  --steps 100 --data "$data/kjv.bin" --print-every 10 --threads 1
