// RUN: galvatron-opt %S/Inputs/planned-lm.mlir --galvatron-build-train-step | FileCheck %s
// RUN: galvatron-opt %s -verify-diagnostics --galvatron-build-train-step
// The module's plan gives micro-batches and precision, the layer strategies
// give checkpointing; backward layers keep their forward layer's strategy.

// CHECK-LABEL: func.func @forward
// CHECK-SAME: (%{{.*}}: tensor<2x4xi64> {galvatron.name = "input_ids"}, %{{.*}}: tensor<2x4xi64> {galvatron.name = "labels"})
// CHECK: galvatron.layer decoder "block" (%{{.*}} = %{{.*}} : tensor<2x4x8xbf16>) -> tensor<2x4x8xbf16> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1, ckpt = true>}
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.layer decoder backward "block" {{.*}} attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1, ckpt = true>} {
// CHECK-NEXT: galvatron.param @fc.weight
// CHECK-NEXT: galvatron.cast
// CHECK-NEXT: galvatron.linear
// CHECK: galvatron.schedule @train_step loss next_token micro_batches 2 forward @forward backward @backward optimizer @optimizer_step [2 x [forward 0, backward 0], 1 x [optimizer]]
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 2, global_batch = 8>} {
  // expected-error @+1 {{--galvatron-build-train-step: input #0 of @main has batch 2 but the plan's micro-batch is global_batch / micro_batches = 4}}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4xf32> {
    %0 = galvatron.constant dense<0.0> : tensor<2x4xf32>
    return %0 : tensor<2x4xf32>
  }
}
