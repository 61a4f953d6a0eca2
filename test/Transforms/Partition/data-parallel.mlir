// RUN: galvatron-opt %s --galvatron-partition -split-input-file | FileCheck %s

// Layers with different strategies on 4 devices: "a" splits the batch
// among dp=2 replicas of tp=2 (consecutive), "b" (tp=4) needs every row, so
// its input is gathered over a's data-parallel groups; "c" (dp=4, ZeRO-3)
// takes one row per rank and stores 1/4 of its weight, all-gathered before
// use with its gradient reduce-scattered.
// CHECK-LABEL: galvatron.parameter @c.weight : tensor<2x8xf32> {galvatron.shard = {full_shape = array<i64: 8, 8>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1, 2, 3>]}]}
// CHECK: galvatron.layer decoder "a"
// CHECK: galvatron.shard %{{.*}} dim 0 groups {{\[}}[0, 2], [1, 3]] : tensor<4x8xf32> -> tensor<2x8xf32>
// CHECK: galvatron.layer decoder "b" (%[[B:.*]] = %{{.*}} : tensor<2x8xf32>) -> tensor<4x8xf32>
// CHECK-NEXT: galvatron.all_gather %[[B]] dim 0 groups {{\[}}[0, 2], [1, 3]] : tensor<2x8xf32> -> tensor<4x8xf32>
// CHECK-NOT: galvatron.shard
// CHECK: galvatron.layer decoder "c" (%[[C:.*]] = %{{.*}} : tensor<4x8xf32>)
// CHECK-NEXT: %[[ROW:.*]] = galvatron.shard %[[C]] dim 0 groups {{\[}}[0, 1, 2, 3]] : tensor<4x8xf32> -> tensor<1x8xf32>
// CHECK-NEXT: %[[W:.*]] = galvatron.param @c.weight : tensor<2x8xf32>
// CHECK-NEXT: %[[WHOLE:.*]] = galvatron.all_gather %[[W]] dim 0 groups {{\[}}[0, 1, 2, 3]] reduce_grad : tensor<2x8xf32> -> tensor<8x8xf32>
// CHECK-NEXT: galvatron.linear %[[ROW]], %[[WHOLE]] : (tensor<1x8xf32>, tensor<8x8xf32>) -> tensor<1x8xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  galvatron.parameter @a.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @b.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @c.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer decoder "a" (%in = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      %w = galvatron.param @a.weight : tensor<8x8xf32>
      %y = galvatron.linear %in, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      %t = galvatron.tanh %y : tensor<4x8xf32>
      galvatron.yield %t : tensor<4x8xf32>
    }
    %1 = galvatron.layer decoder "b" (%in = %0 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 4, dp = 1>} {
      %w = galvatron.param @b.weight : tensor<8x8xf32>
      %y = galvatron.linear %in, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      %t = galvatron.tanh %y : tensor<4x8xf32>
      galvatron.yield %t : tensor<4x8xf32>
    }
    %2 = galvatron.layer decoder "c" (%in = %1 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4, dp_type = zero3>} {
      %w = galvatron.param @c.weight : tensor<8x8xf32>
      %y = galvatron.linear %in, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      galvatron.yield %y : tensor<4x8xf32>
    }
    return %2 : tensor<4x8xf32>
  }
}

// -----

// Two pipeline stages of 2 devices: stage 1's groups are ranks 2 and 3,
// and a batch split the same way in both stages stays split across the
// boundary (local rank l of one stage feeds local rank l of the next).
// CHECK-LABEL: galvatron.layer decoder "s0"
// CHECK: galvatron.shard %{{.*}} dim 0 groups {{\[}}[0, 1]]
// CHECK: galvatron.replicate %{{.*}} groups {{\[}}[0, 1]]
// CHECK: galvatron.layer decoder "s1"
// CHECK-NOT: galvatron.shard
// CHECK: galvatron.replicate %{{.*}} groups {{\[}}[2, 3]]
// CHECK: galvatron.all_gather %{{.*}} dim 0 groups {{\[}}[2, 3]] : tensor<2x8xf32> -> tensor<4x8xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 2, micro_batches = 1, global_batch = 4>} {
  galvatron.parameter @a.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @b.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer decoder "s0" (%in = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %w = galvatron.param @a.weight : tensor<8x8xf32>
      %y = galvatron.linear %in, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      galvatron.yield %y : tensor<4x8xf32>
    }
    %1 = galvatron.layer decoder "s1" (%in = %0 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 2>} {
      %w = galvatron.param @b.weight : tensor<8x8xf32>
      %y = galvatron.linear %in, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
      galvatron.yield %y : tensor<4x8xf32>
    }
    return %1 : tensor<4x8xf32>
  }
}
