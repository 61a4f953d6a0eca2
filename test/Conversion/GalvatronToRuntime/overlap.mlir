// Asynchronous communication (format 2.1). ZeRO-3: each layer's weights
// are gathered while the layer before computes (forward and backward) and
// each gradient reduce-scatter is waited for up to a layer later; under DDP the
// optimizer's in-place all-reduces of the gradient accumulators move into
// buckets started in the last micro-batch's backward; synchronous with
// overlap=false.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 --seq-len=8 > %t.mlir
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 precision=fp32 global-batch=4 chunks=2 dp-type=zero3" --galvatron-partition --galvatron-build-train-step --galvatron-lower-to-runtime | FileCheck %s --check-prefix=ZERO3
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 precision=fp32 global-batch=4 chunks=2" --galvatron-partition --galvatron-build-train-step --galvatron-lower-to-runtime="bucket-mb=0.1" | FileCheck %s --check-prefix=DDP
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 precision=fp32 global-batch=4 chunks=2" --galvatron-partition --galvatron-build-train-step --galvatron-lower-to-runtime="overlap=false" | FileCheck %s --check-prefix=SYNC
// RUN: not galvatron-opt %t.mlir --galvatron-lower-to-runtime="bucket-mb=0" 2>&1 | FileCheck %s --check-prefix=BUCKET

// ZERO3: grt.block "forward" slotted {
// The second block's weights are gathered before the first block's first
// kernel...
// ZERO3: grt.all_gather {{.*}} layer "transformer.h.1" async [[H1:[0-9]+]]
// ZERO3-NOT: grt.wait [[H1]]
// ZERO3: grt.kernel "layer_norm" {{.*}} layer "transformer.h.0"
// ... and waited for once the first block is done.
// ZERO3: grt.wait [[H1]]
// ZERO3: grt.kernel {{.*}} layer "transformer.h.1"
// ZERO3: grt.block "backward" slotted {
// A gradient's reduce-scatter runs while the backward goes on; its
// accumulation into the shard sinks with its wait.
// ZERO3: grt.reduce_scatter sum {{.*}} layer "transformer.h.1" async [[RS:[0-9]+]]
// ZERO3-NOT: grt.wait [[RS]]
// ZERO3: grt.kernel "activation_grad"
// ZERO3: grt.wait [[RS]]
// ZERO3-NEXT: grt.kernel "add" {{.*}} layer "transformer.h.1"

// DDP: grt.block "backward" slotted {
// DDP: grt.all_reduce sum {{.*}} group @g_2x1 async [[FIRST:[0-9]+]] last_micro_batch
// DDP-NEXT: grt.all_reduce sum {{.*}} group @g_2x1 async [[FIRST]] last_micro_batch
// DDP: grt.kernel
// DDP: grt.all_reduce sum {{.*}} group @g_2x1 async [[SECOND:[0-9]+]] last_micro_batch
// DDP: grt.block "optimizer" {
// DDP-NEXT: grt.wait [[FIRST]]
// DDP: grt.wait [[SECOND]]

// SYNC-NOT: async
// SYNC-NOT: grt.wait
// SYNC: grt.block "optimizer" {
// SYNC: grt.all_reduce sum {{.*}} group @g_2x1

// BUCKET: bucket-mb must lie in (0, 1048576], got 0
