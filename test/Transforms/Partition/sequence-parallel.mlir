// RUN: galvatron-opt %s --galvatron-partition | FileCheck %s
// RUN: galvatron-opt %s --galvatron-partition --galvatron-build-train-step="optimizer=none" | FileCheck %s --check-prefix=TRAIN

// Megatron sequence parallelism on tp=2: the norm and the residual work on
// the rank's half of the sequence; f is an all-gather along the sequence
// whose gradient is reduce-scattered, g a reduce-scatter (the bias added
// after); the result is gathered whole. Whole weights applied to sequence
// parts (the norm's, the row-parallel bias) are replicated over the TP
// group, so their partial gradients are summed.
// CHECK-LABEL: galvatron.layer decoder "mlp"
// CHECK-NEXT: %[[PART:.*]] = galvatron.shard %{{.*}} dim 1 groups {{\[}}[0, 1]] : tensor<2x4x8xf32> -> tensor<2x2x8xf32>
// CHECK: %[[LW:.*]] = galvatron.param @ln.weight
// CHECK-NEXT: %[[LWR:.*]] = galvatron.replicate %[[LW]] groups {{\[}}[0, 1]] : tensor<8xf32>
// CHECK: %[[N:.*]] = galvatron.layer_norm %[[PART]], %[[LWR]], {{.*}} -> tensor<2x2x8xf32>
// CHECK-NEXT: %[[F:.*]] = galvatron.all_gather %[[N]] dim 1 groups {{\[}}[0, 1]] reduce_grad : tensor<2x2x8xf32> -> tensor<2x4x8xf32>
// CHECK: galvatron.linear %[[F]], {{.*}} -> tensor<2x4x16xf32>
// CHECK: %[[P:.*]] = galvatron.linear {{.*}} : (tensor<2x4x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %[[G:.*]] = galvatron.reduce_scatter sum %[[P]] dim 1 groups {{\[}}[0, 1]] : tensor<2x4x8xf32> -> tensor<2x2x8xf32>
// CHECK-NEXT: %[[Y:.*]] = galvatron.add %[[G]], %[[B2:.*]] : (tensor<2x2x8xf32>, tensor<8xf32>) -> tensor<2x2x8xf32>
// CHECK-NEXT: %[[R:.*]] = galvatron.add %[[PART]], %[[Y]] : (tensor<2x2x8xf32>, tensor<2x2x8xf32>) -> tensor<2x2x8xf32>
// CHECK-NEXT: %[[WHOLE:.*]] = galvatron.all_gather %[[R]] dim 1 groups {{\[}}[0, 1]] : tensor<2x2x8xf32> -> tensor<2x4x8xf32>
// CHECK-NEXT: galvatron.yield %[[WHOLE]]
// As in Megatron, the backward keeps the norm's sequence part, not its
// gathered whole (tp times less activation memory), and gathers it again
// for the weight gradient of the column-parallel linear.
// TRAIN-LABEL: func.func @forward
// TRAIN: %[[N:.*]] = galvatron.layer_norm {{.*}} -> tensor<2x2x8xf32>
// TRAIN-NEXT: galvatron.all_gather %[[N]] dim 1 groups {{\[}}[0, 1]] reduce_grad : tensor<2x2x8xf32> -> tensor<2x4x8xf32>
// TRAIN: galvatron.yield %{{.*}}, %[[N]], {{.*}} : tensor<2x2x8xf32>, tensor<2x2x8xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x2x8xf32>, tensor<2x2xi64>, tensor<f32>{{$}}
// TRAIN-LABEL: func.func @backward
// TRAIN-SAME: (%{{.*}}: tensor<2x2x8xf32>, %[[SAVED:.*]]: tensor<2x2x8xf32>, %{{.*}}: tensor<2x4x16xf32>,
// TRAIN: galvatron.layer decoder backward "mlp" ({{.*}}, %[[PART:.*]] = %[[SAVED]] : tensor<2x2x8xf32>,
// TRAIN: %[[WHOLE:.*]] = galvatron.all_gather %[[PART]] dim 1 groups {{\[}}[0, 1]] reduce_grad : tensor<2x2x8xf32> -> tensor<2x4x8xf32>
// TRAIN: galvatron.matmul %{{.*}}, %{{.*}} {transpose_lhs = true} : (tensor<8x16xf32>, tensor<8x8xf32>) -> tensor<16x8xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @ln.weight : tensor<8xf32> {init = #galvatron.init<ones>}
  galvatron.parameter @ln.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1, sp = true>} {
      %lw = galvatron.param @ln.weight : tensor<8xf32>
      %lb = galvatron.param @ln.bias : tensor<8xf32>
      %n = galvatron.layer_norm %a, %lw, %lb : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %h = galvatron.linear %n, %w1 : (tensor<2x4x8xf32>, tensor<8x32xf32>) -> tensor<2x4x32xf32>
      %g = galvatron.gelu %h : tensor<2x4x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<8xf32>
      %y = galvatron.linear %g, %w2, %b2 : (tensor<2x4x32xf32>, tensor<32x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
      %r = galvatron.add %a, %y : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %r : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}
