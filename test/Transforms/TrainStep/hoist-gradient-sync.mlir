// RUN: galvatron-opt %S/Inputs/data-parallel-mlp.mlir --galvatron-partition --galvatron-build-train-step="optimizer=sgd" --galvatron-unroll-schedule --galvatron-hoist-gradient-sync | FileCheck %s
// RUN: galvatron-opt %s --galvatron-hoist-gradient-sync -split-input-file | FileCheck %s --check-prefix=KEEP

// DDP on dp=2 with 2 micro-batches: each weight's once-per-step all-reduce
// moves from the optimizer step onto its accumulator's last update in the
// second micro-batch's backward (in place: the accumulator is zeroed after
// the update); the first backward has none and the optimizer step updates
// with the synced accumulator.
// CHECK-LABEL: func.func @train_step
// CHECK: galvatron.layer decoder backward
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: galvatron.layer decoder backward
// CHECK: %[[B2:.*]] = galvatron.add
// CHECK: %[[SB2:.*]] = galvatron.all_reduce sum %[[B2]] groups {{\[}}[0, 1]] : tensor<3xf32>
// CHECK: galvatron.assign @fc2.bias.grad, %[[SB2]]
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<32x8xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<32xf32>
// CHECK: %[[W1:.*]] = galvatron.add
// CHECK: %[[SW1:.*]] = galvatron.all_reduce sum %[[W1]] groups {{\[}}[0, 1]] : tensor<8x32xf32>
// CHECK: galvatron.assign @fc1.weight.grad, %[[SW1]]
// CHECK: galvatron.yield
// CHECK: %[[G:.*]] = galvatron.read_state @fc1.weight.grad : tensor<8x32xf32>
// CHECK-NOT: galvatron.all_reduce sum %{{[0-9]+}} groups {{.*}} : tensor<{{[0-9x]+}}xf32>
// CHECK: galvatron.sgd_update %{{.*}}, %[[G]],

// An accumulator the step does not zero after its all-reduce (its start
// value would be summed over the group) keeps the sync in place.
// KEEP-LABEL: func.func @not_zeroed
// KEEP: galvatron.layer
// KEEP-NOT: galvatron.all_reduce
// KEEP: galvatron.yield
// KEEP: %[[R:.*]] = galvatron.read_state @w.grad
// KEEP: galvatron.all_reduce sum %[[R]]
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 0, dim = 0}}
galvatron.state gradient @w.grad of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @not_zeroed(%g: tensor<4xf32>) -> tensor<4xf32> {
  galvatron.layer decoder backward "l" (%a = %g : tensor<4xf32>) {
    %0 = galvatron.read_state @w.grad : tensor<4xf32>
    %1 = galvatron.add %0, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.assign @w.grad, %1 : tensor<4xf32>
    galvatron.yield
  }
  %r = galvatron.read_state @w.grad : tensor<4xf32>
  %s = galvatron.all_reduce sum %r groups [[0, 1]] : tensor<4xf32>
  return %s : tensor<4xf32>
}

// -----

// ZeRO-1's reduce-scatter, whose result is smaller than the accumulator,
// moves onto the last update and leaves the layer as a new result.
// KEEP-LABEL: func.func @zero1
// KEEP: %[[L:.*]] = galvatron.layer decoder backward "l" {{.*}} -> tensor<2xf32>
// KEEP: %[[SUM:.*]] = galvatron.add
// KEEP: galvatron.assign @w.grad, %[[SUM]]
// KEEP: %[[SLICE:.*]] = galvatron.reduce_scatter sum %[[SUM]] dim 0 groups {{\[}}[0, 1]] : tensor<4xf32> -> tensor<2xf32>
// KEEP: galvatron.yield %[[SLICE]]
// KEEP-NOT: galvatron.read_state
// KEEP-NOT: galvatron.reduce_scatter
// KEEP: return %[[L]]
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 1, dim = 0}}
galvatron.state gradient @w.grad of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @zero1(%g: tensor<4xf32>) -> tensor<2xf32> {
  galvatron.layer decoder backward "l" (%a = %g : tensor<4xf32>) {
    %0 = galvatron.read_state @w.grad : tensor<4xf32>
    %1 = galvatron.add %0, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.assign @w.grad, %1 : tensor<4xf32>
    galvatron.yield
  }
  %r = galvatron.read_state @w.grad : tensor<4xf32>
  %s = galvatron.reduce_scatter sum %r dim 0 groups [[0, 1]] : tensor<4xf32> -> tensor<2xf32>
  %z = galvatron.constant dense<0.0> : tensor<4xf32>
  galvatron.assign @w.grad, %z : tensor<4xf32>
  return %s : tensor<2xf32>
}

// -----

// Zeroed after the sync (by a constant here): the sync moves into the layer.
// KEEP-LABEL: func.func @zeroed
// KEEP: %[[SUM:.*]] = galvatron.add
// KEEP: %[[SYNCED:.*]] = galvatron.all_reduce sum %[[SUM]] groups {{\[}}[0, 1]]
// KEEP: galvatron.assign @w.grad, %[[SYNCED]]
// KEEP: galvatron.yield
// KEEP: %[[R:.*]] = galvatron.read_state @w.grad
// KEEP-NOT: galvatron.all_reduce
// KEEP: return %[[R]]
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 0, dim = 0}}
galvatron.state gradient @w.grad of @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @zeroed(%g: tensor<4xf32>) -> tensor<4xf32> {
  galvatron.layer decoder backward "l" (%a = %g : tensor<4xf32>) {
    %0 = galvatron.read_state @w.grad : tensor<4xf32>
    %1 = galvatron.add %0, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.assign @w.grad, %1 : tensor<4xf32>
    galvatron.yield
  }
  %r = galvatron.read_state @w.grad : tensor<4xf32>
  %s = galvatron.all_reduce sum %r groups [[0, 1]] : tensor<4xf32>
  %z = galvatron.constant dense<0.0> : tensor<4xf32>
  galvatron.assign @w.grad, %z : tensor<4xf32>
  return %s : tensor<4xf32>
}
