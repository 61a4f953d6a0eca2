// RUN: galvatron-opt %s --galvatron-partition -mlir-print-debuginfo -mlir-print-local-scope | FileCheck %s

// The partitioner rebuilds every op with its partitioned types: each keeps
// its location, its inherent attributes (transpose_weight) and its
// discardable ones (test.note), the layer included; the row-parallel fc2 is
// rebuilt without its bias, which is added after the all-reduce at fc2's
// location.
// CHECK: galvatron.layer decoder "mlp" (%[[A:[a-z0-9]*]] loc({{.*}}rebuild.mlir":25:41) = %{{.*}} : tensor<2x3x8xf32>) -> tensor<2x3x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>, test.note = "layer"} {
// CHECK-NEXT: %[[F:.*]] = galvatron.replicate %[[A]] groups {{\[}}[0, 1]] : tensor<2x3x8xf32> loc({{.*}}rebuild.mlir":25:41)
// CHECK-NEXT: %[[W1:.*]] = galvatron.param @fc1.weight : tensor<16x8xf32> loc("fc1.weight")
// CHECK-NEXT: %[[H:.*]] = galvatron.linear %[[F]], %[[W1]] {test.note = "column", transpose_weight = true} : (tensor<2x3x8xf32>, tensor<16x8xf32>) -> tensor<2x3x16xf32> loc("fc1")
// CHECK-NEXT: %[[G:.*]] = galvatron.gelu %[[H]] : tensor<2x3x16xf32> loc("act")
// CHECK-NEXT: %[[W2:.*]] = galvatron.param @fc2.weight : tensor<8x16xf32> loc("fc2.weight")
// CHECK-NEXT: %[[B2:.*]] = galvatron.param @fc2.bias : tensor<8xf32> loc("fc2.bias")
// CHECK-NEXT: %[[P:.*]] = galvatron.linear %[[G]], %[[W2]] {test.note = "row", transpose_weight = true} : (tensor<2x3x16xf32>, tensor<8x16xf32>) -> tensor<2x3x8xf32> loc("fc2")
// CHECK-NEXT: %[[S:.*]] = galvatron.all_reduce sum %[[P]] groups {{\[}}[0, 1]] : tensor<2x3x8xf32> loc("fc2")
// CHECK-NEXT: %[[Y:.*]] = galvatron.add %[[S]], %[[B2]] : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32> loc("fc2")
// CHECK-NEXT: galvatron.yield %[[Y]] : tensor<2x3x8xf32> loc("out")
// CHECK-NEXT: } loc("mlp")
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @fc1.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<2x3x8xf32>) -> tensor<2x3x8xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<2x3x8xf32>) -> tensor<2x3x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>, test.note = "layer"} {
      %w1 = galvatron.param @fc1.weight : tensor<32x8xf32> loc("fc1.weight")
      %h = galvatron.linear %a, %w1 {test.note = "column", transpose_weight = true} : (tensor<2x3x8xf32>, tensor<32x8xf32>) -> tensor<2x3x32xf32> loc("fc1")
      %g = galvatron.gelu %h : tensor<2x3x32xf32> loc("act")
      %w2 = galvatron.param @fc2.weight : tensor<8x32xf32> loc("fc2.weight")
      %b2 = galvatron.param @fc2.bias : tensor<8xf32> loc("fc2.bias")
      %y = galvatron.linear %g, %w2, %b2 {test.note = "row", transpose_weight = true} : (tensor<2x3x32xf32>, tensor<8x32xf32>, tensor<8xf32>) -> tensor<2x3x8xf32> loc("fc2")
      galvatron.yield %y : tensor<2x3x8xf32> loc("out")
    } loc("mlp")
    return %0 : tensor<2x3x8xf32>
  }
}
