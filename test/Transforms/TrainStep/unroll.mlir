// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step=micro-batches=2 --galvatron-unroll-schedule | FileCheck %s
// RUN: galvatron-opt %S/Inputs/tiny-lm.mlir --galvatron-build-train-step --galvatron-unroll-schedule | FileCheck %s --check-prefix=ONE
// RUN: galvatron-opt %s -split-input-file -verify-diagnostics --galvatron-unroll-schedule
// The schedule becomes one function: the data of the whole step in, the
// calls in schedule order, the optimizer's metrics out.

// Two micro-batches of 2 sequences: the step takes 4; micro-batch m reads
// rows [2m, 2m + 2). The model FLOPs of the step are 3 x the forward FLOPs
// of both micro-batches: 3 · 2 · (2·8·8·8 + 2·8·8·32) = 30720.
// CHECK-NOT: galvatron.schedule
// CHECK-LABEL: func.func @train_step
// CHECK-SAME: (%[[IDS:.*]]: tensor<4x4xi64> {galvatron.name = "input_ids"}, %[[LABELS:.*]]: tensor<4x4xi64> {galvatron.name = "labels"})
// CHECK-SAME: -> (tensor<f32> {galvatron.name = "loss"}, tensor<f32> {galvatron.name = "grad_norm"}, tensor<f32> {galvatron.name = "lr"})
// CHECK-SAME: attributes {galvatron.training = #galvatron.training<loss = next_token, model_flops = 30720, vocab_size = 32>}
// CHECK: %[[I0:.*]] = galvatron.slice %[[IDS]] [0, 0] to [2, 4] step [1, 1]
// CHECK: %[[L0:.*]] = galvatron.slice %[[LABELS]] [0, 0] to [2, 4] step [1, 1]
// CHECK: %[[E0:.*]] = galvatron.layer embedding "embed" (%{{.*}} = %[[I0]] :
// CHECK: %[[H0:.*]]:2 = galvatron.layer head "head" ({{.*}}, %{{.*}} = %[[L0]] : tensor<2x4xi64>)
// The saved activations of micro-batch 0 go straight to its backward.
// CHECK: galvatron.layer head backward "head" ({{.*}} = %[[H0]]#0 : {{.*}}, %{{.*}} = %[[H0]]#1 : {{.*}}, %{{.*}} = %[[L0]] :
// CHECK: galvatron.layer embedding backward "embed" ({{.*}}, %{{.*}} = %[[I0]] :
// CHECK: %[[I1:.*]] = galvatron.slice %[[IDS]] [2, 0] to [4, 4] step [1, 1]
// CHECK: galvatron.layer embedding "embed" (%{{.*}} = %[[I1]] :
// CHECK: galvatron.layer embedding backward "embed"
// CHECK: %[[M:.*]] = galvatron.read_state @train.loss
// CHECK: galvatron.adamw_update
// CHECK: return %[[M]], %{{.*}}, %{{.*}} : tensor<f32>, tensor<f32>, tensor<f32>
// CHECK-NOT: func.func

// One micro-batch reads its inputs directly.
// ONE-LABEL: func.func @train_step
// ONE-SAME: (%[[IDS:.*]]: tensor<2x4xi64> {galvatron.name = "input_ids"}
// ONE-SAME: model_flops = 15360
// ONE-NOT: galvatron.slice %[[IDS]]
// ONE: galvatron.layer embedding "embed" (%{{.*}} = %[[IDS]] :

// expected-error @+1 {{--galvatron-unroll-schedule: expected one galvatron.schedule, found 0}}
module {
}

// -----

func.func @fwd(%x: tensor<f32>) -> tensor<f32> {
  return %x : tensor<f32>
}
func.func @bwd(%x: tensor<f32>) {
  return
}
func.func @opt() {
  return
}
// expected-error @-9 {{--galvatron-unroll-schedule: argument #0 is a scalar; forward arguments are per-micro-batch data with a batch dimension}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [forward 0, backward 0, optimizer]
