// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="optimizer=sgd max-grad-norm=1.0" | FileCheck %s

// Differentiating the partitioned forward gives the gradient communication
// from the collectives' rules alone: every weight read's replicate becomes
// an all-reduce of its gradient over the DP group (the input, data, needs
// no gradient, so f costs nothing here). Gradients, their accumulators and
// the optimizer work on the TP parts; the clipping norm sums the squares of
// the parts over the TP group.
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<8xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<16x8xf32>
// CHECK: galvatron.read_state @fc2.weight.grad : tensor<16x8xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<16xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<8x16xf32>
// CHECK: galvatron.read_state @fc1.weight.grad : tensor<8x16xf32>
// CHECK-LABEL: func.func @optimizer_step
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1], [2, 3]] : tensor<f32>
// CHECK-NOT: galvatron.all_reduce
// CHECK: galvatron.sqrt
// CHECK: galvatron.sgd_update {{.*}} : (tensor<8x16xf32>, tensor<8x16xf32>, tensor<8x16xf32>, tensor<f32>, tensor<f32>)
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
