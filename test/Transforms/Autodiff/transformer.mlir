// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of rotary, attention and cross-entropy.

// RoPE is a rotation; its adjoint rotates back, which is the same rotation
// with the second element of each pair negated before and after: (i, i+r/2)
// pairs within rotary_dim, or (2i, 2i+1) when interleaved.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x4x8x16xf32>)
// CHECK: %[[S2:.*]] = galvatron.constant dense<[1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00, 1.000000e+00, -1.000000e+00]> : tensor<16xf32>
// CHECK: %[[A:.*]] = galvatron.mul %[[G]], %[[S2]]
// CHECK: %[[B:.*]] = galvatron.rotary %[[A]] {interleaved = true, seq_axis = 2 : i64, theta = 5.000000e+05 : f64}
// CHECK: %[[C:.*]] = galvatron.mul %[[B]], %[[S2]]
// CHECK: %[[S1:.*]] = galvatron.constant dense<[1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, -1.000000e+00, -1.000000e+00, -1.000000e+00, -1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00, 1.000000e+00]> : tensor<16xf32>
// CHECK: %[[D:.*]] = galvatron.mul %[[C]], %[[S1]]
// CHECK: %[[E:.*]] = galvatron.rotary %[[D]] {rotary_dim = 8 : i64, seq_axis = 2 : i64}
// CHECK: %[[F:.*]] = galvatron.mul %[[E]], %[[S1]]
// CHECK: galvatron.yield %[[F]]
func.func @main(%q: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %0 = galvatron.layer other "f" (%x = %q : tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
    %r = galvatron.rotary %x {seq_axis = 2 : i64, rotary_dim = 8 : i64} : tensor<2x4x8x16xf32>
    %s = galvatron.rotary %r {seq_axis = 2 : i64, interleaved = true, theta = 500000.0 : f64} : tensor<2x4x8x16xf32>
    galvatron.yield %s : tensor<2x4x8x16xf32>
  }
  return %0 : tensor<2x4x8x16xf32>
}

// -----

// Attention: the fused gradient from the saved query, key, value and mask
// (the output is not needed). Grouped-query key/value gradients keep the
// key/value shape. A trainable bias (T5) gets its mask gradient and
// accumulates it; a mask that is an input gets its gradient too.
// CHECK-LABEL: func.func @main(
// The forward also yields the first attention's output, which the second
// one's gradient reads.
// CHECK: galvatron.yield %{{.*}}, %{{.*}}, %[[Y:.*]] :
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer decoder backward "f" (%[[GZ:.*]] = %{{.*}}, %[[GU:.*]] = %{{.*}}, %[[Q:.*]] = %{{.*}} : tensor<2x4x8x16xf32>, %[[KV:.*]] = %{{.*}} : tensor<2x2x8x16xf32>, %[[YS:.*]] = %{{.*}} : tensor<2x4x8x16xf32>, %[[M:.*]] = %{{.*}} : tensor<2x1x1x8xf32>)
// CHECK: %[[BIAS:.*]] = galvatron.param @bias
// CHECK: %{{.*}}, %{{.*}}, %{{.*}}, %[[DM:.*]] = galvatron.attention_grad %[[GU]], %[[Q]], %[[Q]], %[[Q]], %[[M]] : {{.*}} -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>)
// CHECK: %{{.*}}, %{{.*}}, %{{.*}}, %[[DB:.*]] = galvatron.attention_grad %[[GZ]], %[[YS]], %[[YS]], %[[YS]], %[[BIAS]] {scale = 1.000000e+00 : f64} : {{.*}} -> ({{.*}}, tensor<1x4x8x8xf32>)
// CHECK: %[[OLD:.*]] = galvatron.read_state @bias.grad
// CHECK: %[[NEW:.*]] = galvatron.add %[[OLD]], %[[DB]]
// CHECK: galvatron.assign @bias.grad, %[[NEW]]
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = galvatron.attention_grad %{{.*}}, %[[Q]], %[[KV]], %[[KV]] {causal = true} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>)
// CHECK: %[[DKV:.*]] = galvatron.add %[[DK]], %[[DV]]
// CHECK: galvatron.yield %{{.*}}, %[[DKV]], %[[DM]]
galvatron.parameter @bias : tensor<1x4x8x8xf32> {init = #galvatron.init<zeros>}
func.func @main(%q: tensor<2x4x8x16xf32>, %kv: tensor<2x2x8x16xf32>, %m: tensor<2x1x1x8xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) {
  %0:2 = galvatron.layer decoder "f" (%a = %q : tensor<2x4x8x16xf32>, %b = %kv : tensor<2x2x8x16xf32>, %c = %m : tensor<2x1x1x8xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) {
    %y = galvatron.attention %a, %b, %b {causal = true} : (tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> tensor<2x4x8x16xf32>
    %w = galvatron.param @bias : tensor<1x4x8x8xf32>
    %z = galvatron.attention %y, %y, %y, %w {scale = 1.0 : f64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<1x4x8x8xf32>) -> tensor<2x4x8x16xf32>
    %u = galvatron.attention %a, %a, %a, %c : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32>
    galvatron.yield %z, %u : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
  }
  return %0#0, %0#1 : tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>
}

// -----

// A padding mask computed from integer inputs depends on no parameter: the
// attention gradient does not ask for its gradient.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>)
func.func @main(%q: tensor<2x4x8x16xf32>, %keep: tensor<2x8xi64>) -> tensor<2x4x8x16xf32> {
  %0 = galvatron.layer encoder "f" (%a = %q : tensor<2x4x8x16xf32>, %k = %keep : tensor<2x8xi64>) -> tensor<2x4x8x16xf32> {
    %f = galvatron.cast %k : tensor<2x8xi64> to tensor<2x8xf32>
    %m = galvatron.reshape %f : tensor<2x8xf32> -> tensor<2x1x1x8xf32>
    %u = galvatron.attention %a, %a, %a, %m : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32>
    galvatron.yield %u : tensor<2x4x8x16xf32>
  }
  return %0 : tensor<2x4x8x16xf32>
}

// -----

// Cross-entropy: the scalar loss gradient, the saved logits and labels.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: (%{{.*}}: tensor<f32> {galvatron.name = "result0.grad"}, %{{.*}}: tensor<2x8x32xf32>, %{{.*}}: tensor<2x8xi64>)
// CHECK: galvatron.layer head backward "f" (%[[G:.*]] = %{{.*}} : tensor<f32>, %[[L:.*]] = %{{.*}} : tensor<2x8x32xf32>, %[[Y:.*]] = %{{.*}} : tensor<2x8xi64>)
// CHECK: %[[D:.*]] = galvatron.cross_entropy_grad %[[G]], %[[L]], %[[Y]] {ignore_index = 0 : i64, reduction = 1 : i32} : (tensor<f32>, tensor<2x8x32xf32>, tensor<2x8xi64>) -> tensor<2x8x32xf32>
// CHECK: galvatron.yield %[[D]]
func.func @main(%logits: tensor<2x8x32xf32>, %labels: tensor<2x8xi64>) -> tensor<f32> {
  %0 = galvatron.layer head "f" (%l = %logits : tensor<2x8x32xf32>, %y = %labels : tensor<2x8xi64>) -> tensor<f32> {
    %loss = galvatron.cross_entropy %l, %y {ignore_index = 0 : i64, reduction = 1 : i32} : (tensor<2x8x32xf32>, tensor<2x8xi64>) -> tensor<f32>
    galvatron.yield %loss : tensor<f32>
  }
  return %0 : tensor<f32>
}
