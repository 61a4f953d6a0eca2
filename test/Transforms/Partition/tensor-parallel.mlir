// RUN: galvatron-opt %s --galvatron-partition -split-input-file | FileCheck %s

// Megatron MLP on tp=2 x dp=2, consecutive TP ranks ([0, 1] and [2, 3];
// data-parallel groups [0, 2] and [1, 3]): the batch is sliced to each
// replica's rows, fc1 reads its input through f (replicate over the TP
// group) and holds its columns, fc2 holds its rows and its partial sums
// are all-reduced (g) before the bias is added once; every weight read is
// replicated over the DP group (its gradient is summed there).
// CHECK-LABEL: galvatron.parameter @fc1.weight : tensor<8x16xf32>
// CHECK-SAME: galvatron.shard = {full_shape = array<i64: 8, 32>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}]}
// CHECK: galvatron.parameter @fc1.bias : tensor<16xf32> {galvatron.data_parallel = {dim = 0 : i64, groups = [array<i64: 0, 2>, array<i64: 1, 3>], zero = 0 : i64}, galvatron.shard = {full_shape = array<i64: 32>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}]}
// CHECK: galvatron.parameter @fc2.weight : tensor<16x8xf32> {galvatron.data_parallel = {{.*}}, galvatron.shard = {full_shape = array<i64: 32, 8>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}]}
// CHECK: galvatron.parameter @fc2.bias : tensor<8xf32> {galvatron.data_parallel = {{.*}}, init
// CHECK: func.func @main(%[[X:.*]]: tensor<4x3x8xf32>) -> tensor<4x3x8xf32>
// CHECK: galvatron.layer decoder "mlp" (%[[A:.*]] = %[[X]] : tensor<4x3x8xf32>) -> tensor<4x3x8xf32>
// CHECK-NEXT: %[[ROWS:.*]] = galvatron.shard %[[A]] dim 0 groups {{\[}}[0, 2], [1, 3]] : tensor<4x3x8xf32> -> tensor<2x3x8xf32>
// CHECK-NEXT: %[[F:.*]] = galvatron.replicate %[[ROWS]] groups {{\[}}[0, 1], [2, 3]] : tensor<2x3x8xf32>
// CHECK-NEXT: %[[W1:.*]] = galvatron.param @fc1.weight : tensor<8x16xf32>
// CHECK-NEXT: %[[W1R:.*]] = galvatron.replicate %[[W1]] groups {{\[}}[0, 2], [1, 3]] : tensor<8x16xf32>
// CHECK-NEXT: galvatron.param @fc1.bias : tensor<16xf32>
// CHECK-NEXT: %[[B1R:.*]] = galvatron.replicate
// CHECK-NEXT: %[[H:.*]] = galvatron.linear %[[F]], %[[W1R]], %[[B1R]] : (tensor<2x3x8xf32>, tensor<8x16xf32>, tensor<16xf32>) -> tensor<2x3x16xf32>
// CHECK-NEXT: %[[G:.*]] = galvatron.gelu %[[H]] : tensor<2x3x16xf32>
// CHECK-NEXT: %[[W2:.*]] = galvatron.param @fc2.weight : tensor<16x8xf32>
// CHECK-NEXT: %[[W2R:.*]] = galvatron.replicate %[[W2]]
// CHECK-NEXT: galvatron.param @fc2.bias : tensor<8xf32>
// CHECK-NEXT: %[[B2R:.*]] = galvatron.replicate
// CHECK-NEXT: %[[P:.*]] = galvatron.linear %[[G]], %[[W2R]] : (tensor<2x3x16xf32>, tensor<16x8xf32>) -> tensor<2x3x8xf32>
// CHECK-NEXT: %[[S:.*]] = galvatron.all_reduce sum %[[P]] groups {{\[}}[0, 1], [2, 3]] : tensor<2x3x8xf32>
// CHECK-NEXT: %[[Y:.*]] = galvatron.add %[[S]], %[[B2R]]
// CHECK-NEXT: %[[R:.*]] = galvatron.add %[[ROWS]], %[[Y]]
// The function's result is whole on every rank.
// CHECK-NEXT: %[[WHOLE:.*]] = galvatron.all_gather %[[R]] dim 0 groups {{\[}}[0, 2], [1, 3]] : tensor<2x3x8xf32> -> tensor<4x3x8xf32>
// CHECK-NEXT: galvatron.yield %[[WHOLE]] : tensor<4x3x8xf32>
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
