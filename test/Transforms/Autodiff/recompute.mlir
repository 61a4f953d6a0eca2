// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate=checkpoint=blocks | FileCheck %s --check-prefix=BLOCKS
// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate | FileCheck %s --check-prefix=PLAN
// Activation checkpointing: a recomputed layer saves only its inputs and its
// backward layer recomputes what the rules read from them.

// With checkpoint=blocks the decoder layer keeps no activation of its own:
// the forward returns its input, not the tanh, and the backward recomputes
// the tanh from it. The embedding layer still saves nothing but its input.
// BLOCKS-LABEL: func.func @main(
// BLOCKS: %[[H:.*]] = galvatron.layer embedding "a"
// BLOCKS: %[[C:.*]] = galvatron.layer decoder "c" (%{{.*}} = %[[H]] : tensor<2x4xf32>) -> tensor<2x4xf32> {
// BLOCKS: return %[[C]], %arg0, %[[H]]
// BLOCKS-LABEL: func.func @main_backward
// BLOCKS-SAME: (%[[G:.*]]: tensor<2x4xf32> {galvatron.name = "result0.grad"}, %[[X:.*]]: tensor<2x4xf32>, %[[SH:.*]]: tensor<2x4xf32>)
// BLOCKS: galvatron.layer decoder backward "c" (%[[GG:.*]] = %[[G]] : {{.*}}, %[[IN:.*]] = %[[SH]] : {{.*}})
// BLOCKS-NEXT: %[[W:.*]] = galvatron.param @w
// BLOCKS-NEXT: %[[M:.*]] = galvatron.matmul %[[IN]], %[[W]]
// BLOCKS-NEXT: %[[T:.*]] = galvatron.tanh %[[M]]
// BLOCKS: galvatron.mul %[[T]], %[[T]]

// Without the strategy asking for it, the tanh is saved.
// PLAN-LABEL: func.func @main(
// PLAN: galvatron.layer decoder "c" (%{{.*}} = %{{.*}} : tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>)
// PLAN-LABEL: func.func @main_backward
// PLAN: galvatron.layer decoder backward "c"
// PLAN-NOT: galvatron.tanh
// PLAN: galvatron.yield
galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %h = galvatron.layer embedding "a" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = galvatron.param @w : tensor<4x4xf32>
    %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    galvatron.yield %y : tensor<2x4xf32>
  }
  %c = galvatron.layer decoder "c" (%a = %h : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = galvatron.param @w : tensor<4x4xf32>
    %m = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %t = galvatron.tanh %m : tensor<2x4xf32>
    %u = galvatron.mul %t, %t : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    galvatron.yield %u : tensor<2x4xf32>
  }
  return %c : tensor<2x4xf32>
}

// -----

// The default policy follows the layer strategies: only the layer whose
// strategy has ckpt recomputes. The output of "a" is saved once, both as
// its own tanh and as the input "b" recomputes from.
// PLAN-LABEL: func.func @main(
// PLAN: %[[A:.*]] = galvatron.layer decoder "a" (%{{.*}} = %arg0 : tensor<2x4xf32>) -> tensor<2x4xf32>
// PLAN: %[[B:.*]] = galvatron.layer decoder "b" (%{{.*}} = %[[A]] : tensor<2x4xf32>) -> tensor<2x4xf32>
// PLAN: return %[[B]], %arg0, %[[A]] :
// PLAN-LABEL: func.func @main_backward
// PLAN: galvatron.layer decoder backward "b"
// PLAN: galvatron.tanh
// PLAN: galvatron.layer decoder backward "a"
// PLAN-NOT: galvatron.tanh
// PLAN: return
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %a = galvatron.layer decoder "a" (%i = %x : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      %w = galvatron.param @w : tensor<4x4xf32>
      %m = galvatron.matmul %i, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %t = galvatron.tanh %m : tensor<2x4xf32>
      galvatron.yield %t : tensor<2x4xf32>
    }
    %b = galvatron.layer decoder "b" (%i = %a : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1, ckpt = true>} {
      %w = galvatron.param @w : tensor<4x4xf32>
      %m = galvatron.matmul %i, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %t = galvatron.tanh %m : tensor<2x4xf32>
      galvatron.yield %t : tensor<2x4xf32>
    }
    return %b : tensor<2x4xf32>
  }
}
