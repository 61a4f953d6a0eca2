// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="max-grad-norm=1.0" -split-input-file | FileCheck %s

// Data parallelism (dp=2, 2 micro-batches, AdamW) in the training step.
// fc2.bias (3 elements) has no dimension divisible by dp, so under ZeRO it
// falls back to DDP. Every weight's gradient is synced over the DP group
// once per step, in the optimizer step: never in a micro-batch's backward.

// ZeRO-1: weights and gradient accumulators whole; the optimizer step
// reduce-scatters each accumulated gradient (one collective per weight,
// after the last micro-batch), clips with squares summed over the DP group
// (each element counted once), updates the rank's slice with 1/dp AdamW
// moments and all-gathers the updated slices into the weight.
// CHECK: galvatron.parameter @fc1.weight : tensor<8x32xf32> {galvatron.data_parallel = {dim = 0 : i64, groups = [array<i64: 0, 1>], zero = 1 : i64}
// CHECK: galvatron.parameter @fc2.bias : tensor<3xf32> {galvatron.data_parallel = {dim = 0 : i64, groups = [array<i64: 0, 1>], zero = 0 : i64}
// CHECK: galvatron.state gradient @fc1.weight.grad of @fc1.weight : tensor<8x32xf32> {init
// CHECK: galvatron.state optimizer @fc2.bias.exp_avg of @fc2.bias : tensor<3xf32> {init
// CHECK: galvatron.state optimizer @fc1.weight.exp_avg of @fc1.weight : tensor<4x32xf32> {galvatron.shard = {full_shape = array<i64: 8, 32>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}
// CHECK: galvatron.state optimizer @fc1.weight.exp_avg_sq of @fc1.weight : tensor<4x32xf32> {galvatron.shard = {full_shape = array<i64: 8, 32>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.layer decoder backward
// CHECK-NOT: galvatron.reduce_scatter
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: galvatron.assign @fc1.weight.grad
// CHECK-LABEL: func.func @optimizer_step
// CHECK: %[[B2:.*]] = galvatron.read_state @fc2.bias.grad : tensor<3xf32>
// CHECK: %[[GB2:.*]] = galvatron.all_reduce sum %[[B2]] groups {{\[}}[0, 1]] : tensor<3xf32>
// CHECK: galvatron.reduce_scatter sum %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<32x8xf32> -> tensor<16x8xf32>
// CHECK: galvatron.reduce_scatter sum %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<32xf32> -> tensor<16xf32>
// CHECK: %[[W1:.*]] = galvatron.read_state @fc1.weight.grad : tensor<8x32xf32>
// CHECK: %[[GW1:.*]] = galvatron.reduce_scatter sum %[[W1]] dim 0 groups {{\[}}[0, 1]] : tensor<8x32xf32> -> tensor<4x32xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<f32>
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: galvatron.sqrt
// CHECK: galvatron.adamw_update %{{.*}}, %[[GB2]], {{.*}} : (tensor<3xf32>,
// CHECK-NOT: galvatron.all_gather
// CHECK: galvatron.assign @fc2.bias,
// CHECK: %[[P:.*]] = galvatron.param @fc1.weight : tensor<8x32xf32>
// CHECK: %[[S:.*]] = galvatron.shard %[[P]] dim 0 groups {{\[}}[0, 1]] : tensor<8x32xf32> -> tensor<4x32xf32>
// CHECK: %[[M:.*]] = galvatron.read_state @fc1.weight.exp_avg : tensor<4x32xf32>
// CHECK: %[[V:.*]] = galvatron.read_state @fc1.weight.exp_avg_sq : tensor<4x32xf32>
// CHECK: %[[NEW:.*]], %[[NM:.*]], %[[NV:.*]] = galvatron.adamw_update %[[S]], %[[GW1]], %[[M]], %[[V]], {{.*}} -> (tensor<4x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>)
// CHECK: %[[WHOLE:.*]] = galvatron.all_gather %[[NEW]] dim 0 groups {{\[}}[0, 1]] : tensor<4x32xf32> -> tensor<8x32xf32>
// CHECK: galvatron.assign @fc1.weight, %[[WHOLE]] : tensor<8x32xf32>
// CHECK: galvatron.assign @fc1.weight.exp_avg, %[[NM]] : tensor<4x32xf32>
// CHECK: galvatron.assign @fc1.weight.grad, %{{.*}} : tensor<8x32xf32>

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 2, global_batch = 8>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x3xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x3xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2, dp_type = zero1>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<3xf32>
      %y = galvatron.linear %g, %w2 : (tensor<4x3x32xf32>, tensor<32x8xf32>) -> tensor<4x3x8xf32>
      %s = galvatron.slice %y [0, 0, 0] to [4, 3, 3] step [1, 1, 1] : tensor<4x3x8xf32> -> tensor<4x3x3xf32>
      %r = galvatron.add %s, %b2 : (tensor<4x3x3xf32>, tensor<3xf32>) -> tensor<4x3x3xf32>
      galvatron.yield %r : tensor<4x3x3xf32>
    }
    return %0 : tensor<4x3x3xf32>
  }
}

// -----

// ZeRO-2: each micro-batch's backward reduce-scatters its gradient into a
// 1/dp accumulator (the DDP fallback, fc2.bias, still syncs once, in the
// optimizer step); the optimizer step needs no further gradient sync.
// CHECK: galvatron.state gradient @fc2.bias.grad of @fc2.bias : tensor<3xf32> {init
// CHECK: galvatron.state gradient @fc1.weight.grad of @fc1.weight : tensor<4x32xf32> {galvatron.shard = {full_shape = array<i64: 8, 32>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}
// CHECK: galvatron.state optimizer @fc1.weight.exp_avg of @fc1.weight : tensor<4x32xf32> {galvatron.shard
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.layer decoder backward
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: galvatron.reduce_scatter sum
// CHECK: galvatron.reduce_scatter sum
// CHECK: %[[RS:.*]] = galvatron.reduce_scatter sum %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<8x32xf32> -> tensor<4x32xf32>
// CHECK: %[[ACC:.*]] = galvatron.read_state @fc1.weight.grad : tensor<4x32xf32>
// CHECK: %[[SUM:.*]] = galvatron.add %[[ACC]], %[[RS]]
// CHECK: galvatron.assign @fc1.weight.grad, %[[SUM]] : tensor<4x32xf32>
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK-LABEL: func.func @optimizer_step
// CHECK-NOT: galvatron.reduce_scatter
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<3xf32>
// CHECK: %[[G:.*]] = galvatron.read_state @fc1.weight.grad : tensor<4x32xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<f32>
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK-NOT: galvatron.reduce_scatter
// CHECK: galvatron.adamw_update %{{.*}}, %[[G]], {{.*}} -> (tensor<4x32xf32>, tensor<4x32xf32>, tensor<4x32xf32>)
// CHECK: galvatron.all_gather %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<4x32xf32> -> tensor<8x32xf32>

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 2, global_batch = 8>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x3xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x3xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2, dp_type = zero2>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<3xf32>
      %y = galvatron.linear %g, %w2 : (tensor<4x3x32xf32>, tensor<32x8xf32>) -> tensor<4x3x8xf32>
      %s = galvatron.slice %y [0, 0, 0] to [4, 3, 3] step [1, 1, 1] : tensor<4x3x8xf32> -> tensor<4x3x3xf32>
      %r = galvatron.add %s, %b2 : (tensor<4x3x3xf32>, tensor<3xf32>) -> tensor<4x3x3xf32>
      galvatron.yield %r : tensor<4x3x3xf32>
    }
    return %0 : tensor<4x3x3xf32>
  }
}

// -----

// DDP: one all-reduce per weight and step, in the optimizer step;
// everything stays whole.
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.layer decoder backward
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: galvatron.assign @fc1.weight.grad
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK-LABEL: func.func @optimizer_step
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<3xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<32x8xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<32xf32>
// CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1]] : tensor<8x32xf32>
// CHECK-NOT: galvatron.all_reduce sum %{{[0-9]+}} groups {{.*}} : tensor<{{[0-9x]+}}xf32>
// CHECK-NOT: galvatron.reduce_scatter
// CHECK-NOT: galvatron.all_gather
// CHECK: return

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 2, global_batch = 8>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x3xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x3xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<3xf32>
      %y = galvatron.linear %g, %w2 : (tensor<4x3x32xf32>, tensor<32x8xf32>) -> tensor<4x3x8xf32>
      %s = galvatron.slice %y [0, 0, 0] to [4, 3, 3] step [1, 1, 1] : tensor<4x3x8xf32> -> tensor<4x3x3xf32>
      %r = galvatron.add %s, %b2 : (tensor<4x3x3xf32>, tensor<3xf32>) -> tensor<4x3x3xf32>
      galvatron.yield %r : tensor<4x3x3xf32>
    }
    return %0 : tensor<4x3x3xf32>
  }
}

// -----

// Mixed precision: the bf16 gradient is cast to the f32 master weight's
// type before accumulating, and synced once in f32 (ZeRO-1 here).
// CHECK-LABEL: func.func @backward
// CHECK: galvatron.layer decoder backward
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK: %[[LOCAL:.*]] = galvatron.cast %{{.*}} : tensor<8x32xbf16> to tensor<8x32xf32>
// CHECK: %[[ACC:.*]] = galvatron.read_state @fc1.weight.grad : tensor<8x32xf32>
// CHECK: galvatron.add %[[ACC]], %[[LOCAL]]
// CHECK-NOT: galvatron.all_reduce {{.*}}tensor<{{[0-9]}}
// CHECK-LABEL: func.func @optimizer_step
// CHECK: galvatron.reduce_scatter sum %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<8x32xf32> -> tensor<4x32xf32>

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 2, global_batch = 8, precision = bf16>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x3xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x3xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2, dp_type = zero1>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<3xf32>
      %y = galvatron.linear %g, %w2 : (tensor<4x3x32xf32>, tensor<32x8xf32>) -> tensor<4x3x8xf32>
      %s = galvatron.slice %y [0, 0, 0] to [4, 3, 3] step [1, 1, 1] : tensor<4x3x8xf32> -> tensor<4x3x3xf32>
      %r = galvatron.add %s, %b2 : (tensor<4x3x3xf32>, tensor<3xf32>) -> tensor<4x3x3xf32>
      galvatron.yield %r : tensor<4x3x3xf32>
    }
    return %0 : tensor<4x3x3xf32>
  }
}
