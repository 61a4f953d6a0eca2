// RUN: galvatron-opt %s -split-input-file --galvatron-partition | FileCheck %s

// Each dropout records where its part lies in the micro-batch's whole
// tensor, so that every rank draws the serial run's mask: under sequence
// parallelism the residual branch's dropout holds half of the sequence,
// the one on the column-parallel activation half of its features.
// CHECK-LABEL: galvatron.layer decoder "mlp"
// CHECK: galvatron.dropout %{{.*}} {probability = 1.000000e-01 : f64, shard = {full_shape = array<i64: 2, 4, 32>, splits = [{dim = 2 : i64, groups = {{\[}}array<i64: 0, 1>]}]}, stream = 1 : i64} : tensor<2x4x16xf32> -> tensor<2x4x16xi1>
// CHECK: galvatron.dropout %{{.*}} {probability = 1.000000e-01 : f64, shard = {full_shape = array<i64: 2, 4, 8>, splits = [{dim = 1 : i64, groups = {{\[}}array<i64: 0, 1>]}]}, stream = 2 : i64} : tensor<2x2x8xf32> -> tensor<2x2x8xi1>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1, sp = true>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %h = galvatron.linear %a, %w1 : (tensor<2x4x8xf32>, tensor<8x32xf32>) -> tensor<2x4x32xf32>
      %g, %gm = galvatron.dropout %h {probability = 0.1 : f64, stream = 1 : i64} : tensor<2x4x32xf32> -> tensor<2x4x32xi1>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<8xf32>
      %y = galvatron.linear %g, %w2, %b2 : (tensor<2x4x32xf32>, tensor<32x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
      %d, %dm = galvatron.dropout %y {probability = 0.1 : f64, stream = 2 : i64} : tensor<2x4x8xf32> -> tensor<2x4x8xi1>
      %r = galvatron.add %a, %d : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %r : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}

// -----

// Data parallelism: each replica holds its rows of the micro-batch.
// CHECK-LABEL: galvatron.layer embedding "embeddings"
// CHECK: galvatron.dropout %{{.*}} {probability = 5.000000e-01 : f64, shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 0 : i64, groups = {{\[}}array<i64: 0, 1>]}]}, stream = 0 : i64} : tensor<2x8xf32> -> tensor<2x8xi1>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 4>} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %d, %m = galvatron.dropout %a {probability = 0.5 : f64, stream = 0 : i64} : tensor<4x8xf32> -> tensor<4x8xi1>
      galvatron.yield %d : tensor<4x8xf32>
    }
    return %0 : tensor<4x8xf32>
  }
}

// -----

// DeepSpeed-Ulysses: the residual branch's dropout runs on the rank's half
// of the sequence (no gather around it) and records that half, so the
// mask is the serial run's at the global element index.
// CHECK-LABEL: galvatron.layer decoder "ulysses"
// CHECK-NOT: galvatron.all_gather
// CHECK: galvatron.dropout %{{.*}} {probability = 1.000000e-01 : f64, shard = {full_shape = array<i64: 2, 4, 8>, splits = [{dim = 1 : i64, groups = {{\[}}array<i64: 0, 1>]}]}, stream = 3 : i64} : tensor<2x2x8xf32> -> tensor<2x2x8xi1>
// CHECK-NOT: galvatron.all_gather
// CHECK: galvatron.add
// CHECK: galvatron.all_gather %{{.*}} dim 1
// CHECK-NEXT: galvatron.yield
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @fc.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer decoder "ulysses" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1, ulysses = true>} {
      %w = galvatron.param @fc.weight : tensor<8x8xf32>
      %y = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
      %d, %m = galvatron.dropout %y {probability = 0.1 : f64, stream = 3 : i64} : tensor<2x4x8xf32> -> tensor<2x4x8xi1>
      %r = galvatron.add %a, %d : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %r : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}
