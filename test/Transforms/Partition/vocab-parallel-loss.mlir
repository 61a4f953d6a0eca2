// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="optimizer=sgd" -split-input-file | FileCheck %s

// The training step's loss on vocabulary-parallel logits (tp=2 x dp=2,
// tied embedding and head): Megatron's parallel cross-entropy on each
// rank's 8 of the 16 columns and its replica's 2 of the 4 rows, never the
// whole logits. The row maximum is all-reduced over the TP group (max, no
// gradient), then the exponential sums and target logits (sum); the rows'
// loss sum is divided by the whole batch's count of labels that count and
// summed over the DP group. The backward starts from the local
// softmax - onehot, and both readers of the tied weight produce gradients
// of the same 8 rows; the lookup's gradient keeps only the ids of the
// rank's block.
// CHECK-LABEL: func.func @forward
// CHECK: %[[L:.*]] = galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<2x3x8xf32>, tensor<8x8xf32>) -> tensor<2x3x8xf32>
// CHECK-NEXT: %[[ROWS:.*]] = galvatron.shard %[[LABELS:.*]] dim 0 groups {{\[}}[0, 2], [1, 3]] : tensor<4x3xi64> -> tensor<2x3xi64>
// CHECK-NEXT: %[[M:.*]] = galvatron.reduce_max %[[L]], [2] : tensor<2x3x8xf32> -> tensor<2x3xf32>
// CHECK-NEXT: %[[MAX:.*]] = galvatron.all_reduce max %[[M]] groups {{\[}}[0, 1], [2, 3]] : tensor<2x3xf32>
// CHECK-NEXT: %[[S:.*]] = galvatron.vocab_cross_entropy_stats %[[L]], %[[MAX]], %[[ROWS]] vocab_groups {{\[}}[0, 1], [2, 3]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
// CHECK-NEXT: %[[SUM:.*]] = galvatron.all_reduce sum %[[S]] groups {{\[}}[0, 1], [2, 3]] : tensor<2x3x2xf32>
// CHECK-NEXT: %[[PART:.*]] = galvatron.vocab_cross_entropy %[[SUM]], %[[L]], %[[MAX]], %[[ROWS]] vocab_groups {{\[}}[0, 1], [2, 3]] {reduction = 1 : i32} : (tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<f32>
// CHECK: %[[NE:.*]] = galvatron.compare ne, %[[LABELS]], %{{.*}} : (tensor<4x3xi64>, tensor<i64>) -> tensor<4x3xi1>
// CHECK-NEXT: %[[ONES:.*]] = galvatron.cast %[[NE]] : tensor<4x3xi1> to tensor<4x3xf32>
// CHECK-NEXT: %[[COUNT:.*]] = galvatron.reduce_sum %[[ONES]], [0, 1] : tensor<4x3xf32> -> tensor<f32>
// CHECK-NEXT: %[[MEAN:.*]] = galvatron.div %[[PART]], %[[COUNT]]
// CHECK-NEXT: galvatron.all_reduce sum %[[MEAN]] groups {{\[}}[0, 2], [1, 3]] : tensor<f32>
// CHECK-NOT: galvatron.all_gather
// CHECK-LABEL: func.func @backward
// CHECK: %[[G:.*]] = galvatron.vocab_cross_entropy_grad %{{.*}} vocab_groups {{\[}}[0, 1], [2, 3]] {reduction = 1 : i32} : (tensor<f32>, tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
// CHECK: galvatron.read_state @wte.grad : tensor<8x8xf32>
// CHECK: galvatron.embedding_grad %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1], [2, 3]] : (tensor<2x3x8xf32>, tensor<2x3xi64>) -> tensor<8x8xf32>
// CHECK-NOT: galvatron.all_reduce
// CHECK-LABEL: func.func @optimizer_step
// CHECK: galvatron.read_state @wte.grad : tensor<8x8xf32>
// CHECK-NEXT: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<8x8xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4, vocab_divisor = 1>} {
  galvatron.parameter @wte : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<4x3xi64>) -> tensor<4x3x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<4x3xi64>) -> tensor<4x3x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<4x3xi64>) -> tensor<4x3x8xf32>
      galvatron.yield %t : tensor<4x3x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<4x3x8xf32>) -> tensor<4x3x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<4x3x8xf32>, tensor<16x8xf32>) -> tensor<4x3x16xf32>
      galvatron.yield %l : tensor<4x3x16xf32>
    }
    return %1 : tensor<4x3x16xf32>
  }
}

// -----

// Data parallelism alone: each replica takes the loss of its own rows of
// the logits (never gathered), divided by the whole batch's count of
// labels, and the replicas' shares are summed.
// CHECK-LABEL: func.func @forward
// CHECK: %[[ROWS:.*]] = galvatron.shard %{{.*}} dim 0 groups {{\[}}[0, 1]] : tensor<4x3xi64> -> tensor<2x3xi64>
// CHECK: %[[SUM:.*]] = galvatron.cross_entropy %{{.*}}, %[[ROWS]] {reduction = 1 : i32} : (tensor<2x3x16xf32>, tensor<2x3xi64>) -> tensor<f32>
// CHECK: %[[COUNT:.*]] = galvatron.reduce_sum %{{.*}}, [0, 1] : tensor<4x3xf32> -> tensor<f32>
// CHECK-NEXT: %[[MEAN:.*]] = galvatron.div %[[SUM]], %[[COUNT]]
// CHECK-NEXT: galvatron.all_reduce sum %[[MEAN]] groups {{\[}}[0, 1]] : tensor<f32>
// CHECK-NOT: galvatron.all_gather
// CHECK-LABEL: func.func @backward
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 4, vocab_divisor = 1>} {
  galvatron.parameter @w : tensor<8x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x16xf32> {
    %0 = galvatron.layer head "head" (%h = %x : tensor<4x3x8xf32>) -> tensor<4x3x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %w = galvatron.param @w : tensor<8x16xf32>
      %l = galvatron.linear %h, %w : (tensor<4x3x8xf32>, tensor<8x16xf32>) -> tensor<4x3x16xf32>
      galvatron.yield %l : tensor<4x3x16xf32>
    }
    return %0 : tensor<4x3x16xf32>
  }
}
