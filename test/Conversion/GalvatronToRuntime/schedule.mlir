// A training step lowers as a loop: the forward and the backward of one
// micro-batch as slotted blocks, the optimizer step as a block of its own,
// and the schedule's phases as the program's. The instructions do not
// depend on the number of micro-batches; micro-batches in flight keep
// their activations in slots (two for 1F1B on the first of two stages,
// four for GPipe's four micro-batches, one on the last stage).
// RUN: galvatron-translate --model=gpt-tiny --batch=1 --seq-len=8 > %t.mlir
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 pp=2 precision=fp32 global-batch=4 chunks=4 schedule=1f1b" --galvatron-pipeline="stage=0" --galvatron-build-train-step --galvatron-lower-to-runtime=overlap=false | FileCheck %s --check-prefix=FIRST
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 pp=2 precision=fp32 global-batch=4 chunks=4 schedule=1f1b" --galvatron-pipeline="stage=1" --galvatron-build-train-step --galvatron-lower-to-runtime=overlap=false | FileCheck %s --check-prefix=LAST
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 pp=2 precision=fp32 global-batch=4 chunks=4 schedule=gpipe" --galvatron-pipeline="stage=0" --galvatron-build-train-step --galvatron-lower-to-runtime=overlap=false | FileCheck %s --check-prefix=GPIPE
// The instruction count does not grow with the micro-batches.
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=2 pp=2 precision=fp32 global-batch=4 chunks=4 schedule=1f1b" --galvatron-pipeline="stage=0" --galvatron-build-train-step --galvatron-lower-to-runtime=overlap=false | grep -c "grt\.\(kernel\|send\|recv\|all_reduce\)" > %t.four
// RUN: galvatron-translate --model=gpt-tiny --batch=1 --seq-len=8 | galvatron-opt --galvatron-apply-strategy="devices=2 pp=2 precision=fp32 global-batch=64 chunks=64 schedule=1f1b" --galvatron-pipeline="stage=0" --galvatron-build-train-step --galvatron-lower-to-runtime=overlap=false | grep -c "grt\.\(kernel\|send\|recv\|all_reduce\)" > %t.sixtyfour
// RUN: diff %t.four %t.sixtyfour

// The first stage has no loss (vocabulary 0 until the stages are linked);
// its token ids are written per micro-batch into the micro-batch's slot.
// FIRST-LABEL: grt.executable world_size 2 alignment 64 stages 2 attributes {model = "gpt-tiny", training = #galvatron.training<loss = next_token, model_flops = {{[0-9.]+E\+[0-9]+}}, vocab_size = 0>}
// FIRST: grt.program stage 0
// FIRST: grt.input "input_ids" offset [[SLOT:[0-9]+]] per_micro_batch "forward" slotted : memref<1x8xi64>
// FIRST: grt.buffer offset {{[0-9]+}} slotted : memref<1x8x64xf32>
// FIRST: grt.block "forward" slotted {
// FIRST: grt.send %{{.*}} to stage 1 tag 0 layer "transformer.h.0" : memref<1x8x64xf32>
// FIRST: grt.block "backward" slotted {
// FIRST: grt.recv %{{.*}} from stage 1 tag 0 layer "transformer.h.0" : memref<1x8x64xf32>
// FIRST: grt.block "optimizer" {
// The tied embedding's gradient is summed with the last stage's: the
// pipeline group of one rank per stage.
// FIRST: grt.all_reduce sum {{.*}} group @g_2x1
// FIRST: grt.schedule micro_batches 4 slots 2 at [[SLOT]] size {{[0-9]+}} [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3], 1 x [optimizer 0]]
// FIRST: grt.output "loss"
// FIRST: grt.output "grad_norm"
// FIRST: grt.output "lr"

// LAST: training = #galvatron.training<loss = next_token, model_flops = {{[0-9.]+E\+[0-9]+}}, vocab_size = 256>
// LAST: grt.program stage 1
// LAST: grt.input "labels" {{.*}} per_micro_batch "forward"
// LAST: grt.schedule micro_batches 4 slots 1 at {{[0-9]+}} size {{[0-9]+}} [4 x [forward 0, backward 0], 1 x [optimizer 0]]

// GPIPE: grt.schedule micro_batches 4 slots 4 at {{[0-9]+}} size {{[0-9]+}} [4 x [forward 0], 4 x [backward 0], 1 x [optimizer 0]]
