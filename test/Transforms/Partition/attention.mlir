// RUN: galvatron-opt %s --galvatron-partition -split-input-file | FileCheck %s

// Grouped-query attention on tp=2 with strided TP groups ([0, 2] and
// [1, 3]): q keeps 2 of 4 heads, k and v 1 of 2, and the output
// projection is row parallel.
// CHECK-LABEL: galvatron.parameter @q.weight : tensor<8x16xf32> {galvatron.data_parallel = {{.*}}, galvatron.shard = {full_shape = array<i64: 16, 16>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 2>, array<i64: 1, 3>]}]}
// CHECK: galvatron.parameter @k.weight : tensor<4x16xf32> {galvatron.data_parallel = {{.*}}, galvatron.shard = {full_shape = array<i64: 8, 16>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 2>, array<i64: 1, 3>]}]}
// CHECK: galvatron.parameter @o.weight : tensor<16x8xf32> {galvatron.data_parallel = {{.*}}, galvatron.shard = {full_shape = array<i64: 16, 16>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 2>, array<i64: 1, 3>]}]}
// CHECK: %[[F:.*]] = galvatron.replicate %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<1x4x16xf32>
// CHECK: galvatron.linear %[[F]], %{{.*}} {transpose_weight = true} : (tensor<1x4x16xf32>, tensor<8x16xf32>) -> tensor<1x4x8xf32>
// CHECK: galvatron.reshape %{{.*}} : tensor<1x4x8xf32> -> tensor<1x4x2x4xf32>
// CHECK: galvatron.linear %[[F]], %{{.*}} {transpose_weight = true} : (tensor<1x4x16xf32>, tensor<4x16xf32>) -> tensor<1x4x4xf32>
// CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true} : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32>
// CHECK: %[[P:.*]] = galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32>
// CHECK: galvatron.all_reduce sum %[[P]] groups {{\[}}[0, 2], [1, 3]] : tensor<1x4x16xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @q.weight : tensor<16x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @k.weight : tensor<8x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @v.weight : tensor<8x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @o.weight : tensor<16x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x16xf32>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer decoder "attn" (%a = %x : tensor<2x4x16xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2, tp_consecutive = false>} {
      %wq = galvatron.param @q.weight : tensor<16x16xf32>
      %q = galvatron.linear %a, %wq {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
      %q4 = galvatron.reshape %q : tensor<2x4x16xf32> -> tensor<2x4x4x4xf32>
      %qt = galvatron.transpose %q4, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %wk = galvatron.param @k.weight : tensor<8x16xf32>
      %k = galvatron.linear %a, %wk {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
      %k4 = galvatron.reshape %k : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %kt = galvatron.transpose %k4, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %wv = galvatron.param @v.weight : tensor<8x16xf32>
      %v = galvatron.linear %a, %wv {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
      %v4 = galvatron.reshape %v : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %vt = galvatron.transpose %v4, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %o = galvatron.attention %qt, %kt, %vt {causal = true} : (tensor<2x4x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
      %ot = galvatron.transpose %o, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %of = galvatron.reshape %ot : tensor<2x4x4x4xf32> -> tensor<2x4x16xf32>
      %wo = galvatron.param @o.weight : tensor<16x16xf32>
      %y = galvatron.linear %of, %wo {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %y : tensor<2x4x16xf32>
    }
    return %0 : tensor<2x4x16xf32>
  }
}

// -----

// A fused QKV weight [8, 24] splits per segment: its part is a box of the
// refined [8, 3, 8], read and reshaped back to [8, 12]; the split sizes
// follow. The shard records the source shape [8, 24], in which checkpoints
// hold the tensor.
// CHECK-LABEL: galvatron.parameter @qkv.weight : tensor<8x3x4xf32> {galvatron.shard = {full_shape = array<i64: 8, 3, 8>, source_shape = array<i64: 8, 24>, splits = [{dim = 2 : i64, groups = [array<i64: 0, 1>]}]}
// CHECK: %[[W:.*]] = galvatron.param @qkv.weight : tensor<8x3x4xf32>
// CHECK-NEXT: %[[WR:.*]] = galvatron.reshape %[[W]] : tensor<8x3x4xf32> -> tensor<8x12xf32>
// CHECK: galvatron.linear %{{.*}}, %[[WR]] : (tensor<2x4x8xf32>, tensor<8x12xf32>) -> tensor<2x4x12xf32>
// CHECK: galvatron.split %{{.*}} {axis = 2 : i64, sizes = array<i64: 4, 4, 4>} : tensor<2x4x12xf32> -> tensor<2x4x4xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>
// CHECK: galvatron.attention {{.*}} -> tensor<2x1x4x4xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @qkv.weight : tensor<8x24xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer decoder "attn" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @qkv.weight : tensor<8x24xf32>
      %h = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x24xf32>) -> tensor<2x4x24xf32>
      %s:3 = galvatron.split %h {axis = 2 : i64, sizes = array<i64: 8, 8, 8>} : tensor<2x4x24xf32> -> tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>
      %q = galvatron.reshape %s#0 : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %qt = galvatron.transpose %q, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %k = galvatron.reshape %s#1 : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %kt = galvatron.transpose %k, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %v = galvatron.reshape %s#2 : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %vt = galvatron.transpose %v, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %o = galvatron.attention %qt, %kt, %vt : (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
      %ot = galvatron.transpose %o, [0, 2, 1, 3] : tensor<2x2x4x4xf32> -> tensor<2x4x2x4xf32>
      %of = galvatron.reshape %ot : tensor<2x4x2x4xf32> -> tensor<2x4x8xf32>
      galvatron.yield %of : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}

// -----

// Attention dropout on tp=2 x dp=2: the op records where the rank's part
// of the [2, 4, 4, 4] probabilities lies (rows by the DP groups, heads by
// the strided TP groups), so that it draws the serial run's mask.
// CHECK-LABEL: galvatron.layer decoder "dropped"
// CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true, dropout = 1.000000e-01 : f64, shard = {full_shape = array<i64: 2, 4, 4, 4>, splits = [{dim = 0 : i64, groups = {{\[}}array<i64: 0, 1>, array<i64: 2, 3>]}, {dim = 1 : i64, groups = {{\[}}array<i64: 0, 2>, array<i64: 1, 3>]}]}, stream = 2 : i64} : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @q.weight : tensor<16x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @k.weight : tensor<8x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @v.weight : tensor<8x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @o.weight : tensor<16x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x16xf32>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer decoder "dropped" (%a = %x : tensor<2x4x16xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2, tp_consecutive = false>} {
      %wq = galvatron.param @q.weight : tensor<16x16xf32>
      %q = galvatron.linear %a, %wq {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
      %q4 = galvatron.reshape %q : tensor<2x4x16xf32> -> tensor<2x4x4x4xf32>
      %qt = galvatron.transpose %q4, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %wk = galvatron.param @k.weight : tensor<8x16xf32>
      %k = galvatron.linear %a, %wk {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
      %k4 = galvatron.reshape %k : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %kt = galvatron.transpose %k4, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %wv = galvatron.param @v.weight : tensor<8x16xf32>
      %v = galvatron.linear %a, %wv {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<8x16xf32>) -> tensor<2x4x8xf32>
      %v4 = galvatron.reshape %v : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %vt = galvatron.transpose %v4, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %o = galvatron.attention %qt, %kt, %vt {causal = true, dropout = 0.1 : f64, stream = 2 : i64} : (tensor<2x4x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
      %ot = galvatron.transpose %o, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %of = galvatron.reshape %ot : tensor<2x4x4x4xf32> -> tensor<2x4x16xf32>
      %wo = galvatron.param @o.weight : tensor<16x16xf32>
      %y = galvatron.linear %of, %wo {transpose_weight = true} : (tensor<2x4x16xf32>, tensor<16x16xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %y : tensor<2x4x16xf32>
    }
    return %0 : tensor<2x4x16xf32>
  }
}

