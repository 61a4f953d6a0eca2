// The training step of each pipeline stage and its micro-batch schedule, a
// loop of phases: GPT on three stages (embedding + h.0 | h.1 | head), four
// micro-batches.
// RUN: galvatron-translate --model=gpt-tiny --batch=1 --seq-len=8 > %t.mlir
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=3 pp=3 precision=fp32 global-batch=4 chunks=4 schedule=1f1b pp-division=1,1,0" --galvatron-pipeline="stage=0" --galvatron-build-train-step | FileCheck %s --check-prefix=ONE0
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=3 pp=3 precision=fp32 global-batch=4 chunks=4 schedule=1f1b pp-division=1,1,0" --galvatron-pipeline="stage=1" --galvatron-build-train-step | FileCheck %s --check-prefix=ONE1
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=3 pp=3 precision=fp32 global-batch=4 chunks=4 schedule=1f1b pp-division=1,1,0" --galvatron-pipeline="stage=2" --galvatron-build-train-step | FileCheck %s --check-prefix=ONE2
// RUN: galvatron-opt %t.mlir --galvatron-apply-strategy="devices=3 pp=3 precision=fp32 global-batch=4 chunks=4 schedule=gpipe pp-division=1,1,0" --galvatron-pipeline="stage=1" --galvatron-build-train-step | FileCheck %s --check-prefix=GPIPE

// 1F1B: a warm-up of pp - stage - 1 forwards, a steady state of one
// forward and one backward, a cool-down of the remaining backwards.
// Stage 0 has no loss: its forward returns only saved activations, its
// backward starts by receiving the gradient of what it sent.
// ONE0-LABEL: func.func @forward(%{{.*}}: tensor<1x8xi64> {galvatron.name = "input_ids"})
// ONE0: galvatron.send %{{.*}} to stage 1 tag 0 : tensor<1x8x64xf32>
// ONE0-NOT: cross_entropy
// ONE0-LABEL: func.func @backward
// ONE0: galvatron.layer decoder backward "transformer.h.0"
// ONE0: galvatron.recv from stage 1 tag 0 : tensor<1x8x64xf32>
// ONE0: galvatron.schedule @train_step loss next_token micro_batches 4 forward @forward backward @backward optimizer @optimizer_step [2 x [forward 0], 2 x [forward 2, backward 0], 2 x [backward 2], 1 x [optimizer]]

// The middle stage receives its input (differentiable: it depends on the
// weights) and sends the input's gradient back.
// ONE1-LABEL: func.func @forward()
// ONE1: galvatron.recv from stage 0 tag 0 differentiable : tensor<1x8x64xf32>
// ONE1: galvatron.send %{{.*}} to stage 2 tag 1 : tensor<1x8x64xf32>
// ONE1-LABEL: func.func @backward
// ONE1: galvatron.recv from stage 2 tag 1 : tensor<1x8x64xf32>
// ONE1-NOT: galvatron.recv
// ONE1: galvatron.send %{{.*}} to stage 0 tag 0 : tensor<1x8x64xf32>
// ONE1: galvatron.schedule @train_step loss next_token micro_batches 4 forward @forward backward @backward optimizer @optimizer_step [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3], 1 x [optimizer]]

// The last stage has the loss (and the labels) and no warm-up.
// ONE2-LABEL: func.func @forward(%{{.*}}: tensor<1x8xi64> {galvatron.name = "labels"})
// ONE2: galvatron.recv from stage 1 tag 1 differentiable
// ONE2: galvatron.cross_entropy
// ONE2: galvatron.schedule @train_step loss next_token micro_batches 4 forward @forward backward @backward optimizer @optimizer_step [4 x [forward 0, backward 0], 1 x [optimizer]]

// GPipe: every forward, then every backward.
// GPIPE: galvatron.schedule @train_step loss next_token micro_batches 4 forward @forward backward @backward optimizer @optimizer_step [4 x [forward 0], 4 x [backward 0], 1 x [optimizer]]
