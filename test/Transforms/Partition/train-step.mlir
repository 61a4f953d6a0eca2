// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="optimizer=sgd max-grad-norm=1.0" | FileCheck %s
// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="optimizer=none" | FileCheck %s --check-prefix=NONE

// Differentiating the partitioned forward gives the gradient communication
// from the collectives' rules: every weight read's replicate over the DP
// group would all-reduce its gradient in every micro-batch's backward. The
// training step instead accumulates each rank's own gradient and
// all-reduces the sum once per step, in the optimizer step (the input,
// data, needs no gradient, so f costs nothing and the backward has no
// collective). Gradients, their accumulators and the optimizer work on the
// TP parts; the clipping norm sums the squares of the parts over the TP
// group.
// CHECK-LABEL: func.func @backward
// CHECK-NOT: galvatron.all_reduce
// CHECK: galvatron.read_state @fc2.bias.grad : tensor<8xf32>
// CHECK: galvatron.read_state @fc2.weight.grad : tensor<16x8xf32>
// CHECK: galvatron.read_state @fc1.bias.grad : tensor<16xf32>
// CHECK: galvatron.read_state @fc1.weight.grad : tensor<8x16xf32>
// CHECK-LABEL: func.func @optimizer_step
// CHECK: %[[B2:.*]] = galvatron.read_state @fc2.bias.grad
// CHECK: galvatron.all_reduce sum %[[B2]] groups {{\[}}[0, 2], [1, 3]] : tensor<8xf32>
// CHECK: %[[W2:.*]] = galvatron.read_state @fc2.weight.grad
// CHECK: galvatron.all_reduce sum %[[W2]] groups {{\[}}[0, 2], [1, 3]] : tensor<16x8xf32>
// CHECK: %[[B1:.*]] = galvatron.read_state @fc1.bias.grad
// CHECK: galvatron.all_reduce sum %[[B1]] groups {{\[}}[0, 2], [1, 3]] : tensor<16xf32>
// CHECK: %[[W1:.*]] = galvatron.read_state @fc1.weight.grad
// CHECK: %[[G1:.*]] = galvatron.all_reduce sum %[[W1]] groups {{\[}}[0, 2], [1, 3]] : tensor<8x16xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1], [2, 3]] : tensor<f32>
// CHECK-NOT: galvatron.all_reduce
// CHECK: galvatron.sqrt
// CHECK: galvatron.sgd_update %{{.*}}, %[[G1]], {{.*}} : (tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<f32>, tensor<f32>)

// Without an optimizer the accumulators keep the synced gradient for
// inspection across steps: the backward all-reduces every micro-batch's.
// NONE-LABEL: func.func @backward
// NONE: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<8xf32>
// NONE: galvatron.read_state @fc2.bias.grad : tensor<8xf32>
// NONE-LABEL: func.func @optimizer_step
// NONE: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1], [2, 3]] : tensor<f32>
// NONE-NOT: galvatron.all_reduce
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x8xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<8xf32>
      %y = galvatron.linear %g, %w2, %b2 : (tensor<4x3x32xf32>, tensor<32x8xf32>, tensor<8xf32>) -> tensor<4x3x8xf32>
      %r = galvatron.add %a, %y : (tensor<4x3x8xf32>, tensor<4x3x8xf32>) -> tensor<4x3x8xf32>
      galvatron.yield %r : tensor<4x3x8xf32>
    }
    return %0 : tensor<4x3x8xf32>
  }
}
