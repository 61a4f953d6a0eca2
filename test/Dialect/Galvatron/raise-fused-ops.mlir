// RUN: galvatron-opt %s -split-input-file --galvatron-raise-fused-ops --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @gelu_erf
// CHECK-SAME: (%[[X:.*]]: tensor<2x8xf32>)
// CHECK-NEXT: %[[Y:.*]] = galvatron.gelu %[[X]] : tensor<2x8xf32>
// CHECK-NEXT: return %[[Y]]
func.func @gelu_erf(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  // torch: x / √2 → erf → + 1 → x · (...) → · 0.5
  %sqrt2 = galvatron.constant dense<1.41421354> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<f32>
  %half = galvatron.constant dense<0.5> : tensor<f32>
  %0 = galvatron.div %x, %sqrt2 : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %1 = galvatron.erf %0 : tensor<2x8xf32>
  %2 = galvatron.add %1, %one : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %3 = galvatron.mul %x, %2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %4 = galvatron.mul %3, %half : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  return %4 : tensor<2x8xf32>
}

// -----

// CHECK-LABEL: func.func @gelu_tanh_hugging_face
// CHECK: galvatron.gelu %{{.*}} approximate = tanh : tensor<4xf32>
// CHECK-NOT: galvatron.tanh
func.func @gelu_tanh_hugging_face(%x: tensor<4xf32>) -> tensor<4xf32> {
  // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
  %half = galvatron.constant dense<0.5> : tensor<f32>
  %three = galvatron.constant dense<3.0> : tensor<f32>
  %kappa = galvatron.constant dense<0.044715> : tensor<f32>
  %beta = galvatron.constant dense<0.797884583> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<f32>
  %0 = galvatron.mul %x, %half : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = galvatron.pow %x, %three : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %2 = galvatron.mul %1, %kappa : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = galvatron.add %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = galvatron.mul %3, %beta : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %5 = galvatron.tanh %4 : tensor<4xf32>
  %6 = galvatron.add %5, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %7 = galvatron.mul %0, %6 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %7 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @gelu_tanh_torch
// CHECK: galvatron.gelu %{{.*}} approximate = tanh : tensor<4xf32>
// CHECK-NOT: galvatron.tanh
func.func @gelu_tanh_torch(%x: tensor<4xf32>) -> tensor<4xf32> {
  // torch's own tanh GELU: x·x·x, constants on the left, 0.5 applied last.
  %half = galvatron.constant dense<0.5> : tensor<f32>
  %kappa = galvatron.constant dense<0.044715> : tensor<f32>
  %beta = galvatron.constant dense<0.797884583> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<f32>
  %0 = galvatron.mul %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %1 = galvatron.mul %x, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = galvatron.mul %kappa, %1 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %3 = galvatron.add %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = galvatron.mul %beta, %3 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %5 = galvatron.tanh %4 : tensor<4xf32>
  %6 = galvatron.add %one, %5 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  %7 = galvatron.mul %x, %6 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %8 = galvatron.mul %half, %7 : (tensor<f32>, tensor<4xf32>) -> tensor<4xf32>
  return %8 : tensor<4xf32>
}

// -----

// A wrong coefficient is not GELU.
// CHECK-LABEL: func.func @not_gelu
// CHECK: galvatron.erf
// CHECK-NOT: galvatron.gelu
func.func @not_gelu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %sqrt2 = galvatron.constant dense<1.41421354> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<f32>
  %third = galvatron.constant dense<0.3> : tensor<f32>
  %0 = galvatron.div %x, %sqrt2 : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %1 = galvatron.erf %0 : tensor<4xf32>
  %2 = galvatron.add %1, %one : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  %3 = galvatron.mul %x, %2 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %4 = galvatron.mul %3, %third : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
  return %4 : tensor<4xf32>
}

// -----

// CHECK-LABEL: func.func @silu
// CHECK-SAME: (%[[X:.*]]: tensor<4xf32>, %[[UP:.*]]: tensor<4xf32>)
// CHECK-NEXT: %[[S:.*]] = galvatron.silu %[[X]] : tensor<4xf32>
// CHECK-NEXT: galvatron.mul %[[S]], %[[UP]]
func.func @silu(%x: tensor<4xf32>, %up: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.sigmoid %x : tensor<4xf32>
  %1 = galvatron.mul %x, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  %2 = galvatron.mul %1, %up : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

galvatron.parameter @w : tensor<16xf32> {init = #galvatron.init<ones>}
galvatron.parameter @b : tensor<16xf32> {init = #galvatron.init<zeros>}

// CHECK-LABEL: func.func @layer_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK-DAG: %[[W:.*]] = galvatron.param @w
// CHECK-DAG: %[[B:.*]] = galvatron.param @b
// CHECK: %[[Y:.*]] = galvatron.layer_norm %[[X]], %[[W]], %[[B]] {epsilon = 9.9999997473787516E-6 : f64} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK-NEXT: return %[[Y]]
func.func @layer_norm(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %two = galvatron.constant dense<2.0> : tensor<f32>
  %eps = galvatron.constant dense<1.0e-5> : tensor<f32>
  %w = galvatron.param @w : tensor<16xf32>
  %b = galvatron.param @b : tensor<16xf32>
  %mean = galvatron.reduce_mean %x, [2] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
  %c = galvatron.sub %x, %mean : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %sq = galvatron.pow %c, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %var = galvatron.reduce_mean %sq, [2] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
  %ve = galvatron.add %var, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %std = galvatron.sqrt %ve : tensor<2x8x1xf32>
  %n = galvatron.div %c, %std : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %s = galvatron.mul %n, %w : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %y = galvatron.add %s, %b : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}

// -----

// Without an affine part the weight is ones.
// CHECK-LABEL: func.func @layer_norm_plain
// CHECK: %[[ONES:.*]] = galvatron.constant dense<1.000000e+00> : tensor<16xf32>
// CHECK: galvatron.layer_norm %{{.*}}, %[[ONES]] {epsilon = 9.9999999747524271E-7 : f64}
func.func @layer_norm_plain(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %eps = galvatron.constant dense<1.0e-6> : tensor<f32>
  %mean = galvatron.reduce_mean %x, [1] {keep_dims = true} : tensor<4x16xf32> -> tensor<4x1xf32>
  %c = galvatron.sub %x, %mean : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %sq = galvatron.mul %c, %c : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %var = galvatron.reduce_mean %sq, [1] {keep_dims = true} : tensor<4x16xf32> -> tensor<4x1xf32>
  %ve = galvatron.add %var, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %inv = galvatron.rsqrt %ve : tensor<4x1xf32>
  %n = galvatron.mul %c, %inv : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  return %n : tensor<4x16xf32>
}

// -----

galvatron.parameter @g : tensor<16xf32> {init = #galvatron.init<ones>}

// LLaMA's RMSNorm: x · (1 / sqrt(mean(x²) + ε)) · w.
// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK: %[[G:.*]] = galvatron.param @g
// CHECK: %[[Y:.*]] = galvatron.rms_norm %[[X]], %[[G]] {epsilon = 9.9999999747524271E-7 : f64}
// CHECK-NEXT: return %[[Y]]
func.func @rms_norm(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %two = galvatron.constant dense<2.0> : tensor<f32>
  %eps = galvatron.constant dense<1.0e-6> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<1xf32>
  %g = galvatron.param @g : tensor<16xf32>
  %sq = galvatron.pow %x, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %var = galvatron.reduce_mean %sq, [-1] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
  %ve = galvatron.add %var, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %std = galvatron.sqrt %ve : tensor<2x8x1xf32>
  %inv = galvatron.div %one, %std : (tensor<1xf32>, tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %n = galvatron.mul %x, %inv : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %y = galvatron.mul %g, %n : (tensor<16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %y : tensor<2x8x16xf32>
}

// -----

// A norm over a dimension other than the last stays decomposed.
// CHECK-LABEL: func.func @not_last_axis
// CHECK-NOT: galvatron.rms_norm
func.func @not_last_axis(%x: tensor<16x8xf32>) -> tensor<16x8xf32> {
  %two = galvatron.constant dense<2.0> : tensor<f32>
  %eps = galvatron.constant dense<1.0e-6> : tensor<f32>
  %sq = galvatron.pow %x, %two : (tensor<16x8xf32>, tensor<f32>) -> tensor<16x8xf32>
  %var = galvatron.reduce_mean %sq, [0] {keep_dims = true} : tensor<16x8xf32> -> tensor<1x8xf32>
  %ve = galvatron.add %var, %eps : (tensor<1x8xf32>, tensor<f32>) -> tensor<1x8xf32>
  %std = galvatron.sqrt %ve : tensor<1x8xf32>
  %n = galvatron.div %x, %std : (tensor<16x8xf32>, tensor<1x8xf32>) -> tensor<16x8xf32>
  return %n : tensor<16x8xf32>
}

// -----

galvatron.parameter @w : tensor<32x96xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @b : tensor<96xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @head : tensor<100x32xf32> {init = #galvatron.init<zeros>}

// Hugging Face's Conv1D (addmm between reshapes) and a tied head reading the
// embedding table transposed.
// CHECK-LABEL: func.func @linear
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x32xf32>, %[[ACT:.*]]: tensor<2x8x32xf32>)
// CHECK-DAG: %[[W:.*]] = galvatron.param @w
// CHECK-DAG: %[[B:.*]] = galvatron.param @b
// CHECK: %[[Y:.*]] = galvatron.linear %[[X]], %[[W]], %[[B]] : (tensor<2x8x32xf32>, tensor<32x96xf32>, tensor<96xf32>) -> tensor<2x8x96xf32>
// CHECK: %[[H:.*]] = galvatron.param @head
// CHECK: %[[L:.*]] = galvatron.linear %[[X]], %[[H]] {transpose_weight = true} : (tensor<2x8x32xf32>, tensor<100x32xf32>) -> tensor<2x8x100xf32>
// CHECK: %[[A:.*]] = galvatron.matmul %[[X]], %[[ACT]]
// CHECK: return %[[Y]], %[[L]], %[[A]]
func.func @linear(%x: tensor<2x8x32xf32>, %act: tensor<2x8x32xf32>) -> (tensor<2x8x96xf32>, tensor<2x8x100xf32>, tensor<2x8x8xf32>) {
  %w = galvatron.param @w : tensor<32x96xf32>
  %b = galvatron.param @b : tensor<96xf32>
  %flat = galvatron.reshape %x : tensor<2x8x32xf32> -> tensor<16x32xf32>
  %m = galvatron.matmul %flat, %w : (tensor<16x32xf32>, tensor<32x96xf32>) -> tensor<16x96xf32>
  %mb = galvatron.add %m, %b : (tensor<16x96xf32>, tensor<96xf32>) -> tensor<16x96xf32>
  %y = galvatron.reshape %mb : tensor<16x96xf32> -> tensor<2x8x96xf32>
  %h = galvatron.param @head : tensor<100x32xf32>
  %ht = galvatron.transpose %h, [1, 0] : tensor<100x32xf32> -> tensor<32x100xf32>
  %l = galvatron.matmul %x, %ht : (tensor<2x8x32xf32>, tensor<32x100xf32>) -> tensor<2x8x100xf32>
  // Activations times activations stay a matmul.
  %a = galvatron.matmul %x, %act {transpose_rhs = true} : (tensor<2x8x32xf32>, tensor<2x8x32xf32>) -> tensor<2x8x8xf32>
  return %y, %l, %a : tensor<2x8x96xf32>, tensor<2x8x100xf32>, tensor<2x8x8xf32>
}

// -----

// GPT-2: scores scaled by a division, a causal mask by select, an additive
// padding mask, softmax, then V.
// CHECK-LABEL: func.func @attention_gpt2
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[V:.*]]: tensor<2x4x8x16xf32>, %[[PAD:.*]]: tensor<2x1x1x8xf32>)
// CHECK-NEXT: %[[O:.*]] = galvatron.attention %[[Q]], %[[K]], %[[V]], %[[PAD]] {causal = true} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32>
// CHECK-NEXT: return %[[O]]
func.func @attention_gpt2(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %pad: tensor<2x1x1x8xf32>) -> tensor<2x4x8x16xf32> {
  %kt = galvatron.transpose %k, [0, 1, 3, 2] : tensor<2x4x8x16xf32> -> tensor<2x4x16x8xf32>
  %s = galvatron.matmul %q, %kt : (tensor<2x4x8x16xf32>, tensor<2x4x16x8xf32>) -> tensor<2x4x8x8xf32>
  %scale = galvatron.constant dense<4.0> : tensor<f32>
  %d = galvatron.div %s, %scale : (tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %causal = galvatron.tril_mask : tensor<1x1x8x8xi1>
  %min = galvatron.constant dense<-3.40282347E+38> : tensor<f32>
  %masked = galvatron.select %causal, %d, %min : (tensor<1x1x8x8xi1>, tensor<2x4x8x8xf32>, tensor<f32>) -> tensor<2x4x8x8xf32>
  %padded = galvatron.add %masked, %pad : (tensor<2x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %p = galvatron.softmax %padded {axis = 3 : i64} : tensor<2x4x8x8xf32>
  %o = galvatron.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// LLaMA: grouped-query K/V expanded by repeat_kv, an additive causal mask
// (a Trilu folded at import), default scale by multiplication.
// CHECK-LABEL: func.func @attention_gqa
// CHECK-SAME: (%[[Q:.*]]: tensor<1x4x8x16xf32>, %[[K:.*]]: tensor<1x2x8x16xf32>, %[[V:.*]]: tensor<1x2x8x16xf32>)
// CHECK-NEXT: %[[O:.*]] = galvatron.attention %[[Q]], %[[K]], %[[V]] {causal = true} : (tensor<1x4x8x16xf32>, tensor<1x2x8x16xf32>, tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32>
// CHECK-NEXT: return %[[O]]
func.func @attention_gqa(%q: tensor<1x4x8x16xf32>, %k: tensor<1x2x8x16xf32>, %v: tensor<1x2x8x16xf32>) -> tensor<1x4x8x16xf32> {
  %k5 = galvatron.reshape %k : tensor<1x2x8x16xf32> -> tensor<1x2x1x8x16xf32>
  %kb = galvatron.broadcast %k5 : tensor<1x2x1x8x16xf32> -> tensor<1x2x2x8x16xf32>
  %kr = galvatron.reshape %kb : tensor<1x2x2x8x16xf32> -> tensor<1x4x8x16xf32>
  %v5 = galvatron.reshape %v : tensor<1x2x8x16xf32> -> tensor<1x2x1x8x16xf32>
  %vb = galvatron.broadcast %v5 : tensor<1x2x1x8x16xf32> -> tensor<1x2x2x8x16xf32>
  %vr = galvatron.reshape %vb : tensor<1x2x2x8x16xf32> -> tensor<1x4x8x16xf32>
  %kt = galvatron.transpose %kr, [0, 1, 3, 2] : tensor<1x4x8x16xf32> -> tensor<1x4x16x8xf32>
  %s = galvatron.matmul %q, %kt : (tensor<1x4x8x16xf32>, tensor<1x4x16x8xf32>) -> tensor<1x4x8x8xf32>
  %quarter = galvatron.constant dense<0.25> : tensor<f32>
  %d = galvatron.mul %s, %quarter : (tensor<1x4x8x8xf32>, tensor<f32>) -> tensor<1x4x8x8xf32>
  %tril = galvatron.tril_mask : tensor<8x8xi1>
  %zero = galvatron.constant dense<0.0> : tensor<f32>
  %min = galvatron.constant dense<-3.40282347E+38> : tensor<f32>
  %m = galvatron.select %tril, %zero, %min : (tensor<8x8xi1>, tensor<f32>, tensor<f32>) -> tensor<8x8xf32>
  %mb = galvatron.broadcast %m : tensor<8x8xf32> -> tensor<1x1x8x8xf32>
  %masked = galvatron.add %d, %mb : (tensor<1x4x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x4x8x8xf32>
  %p = galvatron.softmax %masked {axis = -1 : i64} : tensor<1x4x8x8xf32>
  %o = galvatron.matmul %p, %vr : (tensor<1x4x8x8xf32>, tensor<1x4x8x16xf32>) -> tensor<1x4x8x16xf32>
  return %o : tensor<1x4x8x16xf32>
}

// -----

// T5: no scaling, a position bias plus a zero mask; K given transposed by
// the matmul itself.
// CHECK-LABEL: func.func @attention_unscaled
// CHECK-SAME: (%[[Q:.*]]: tensor<2x4x8x16xf32>, %[[K:.*]]: tensor<2x4x8x16xf32>, %[[V:.*]]: tensor<2x4x8x16xf32>, %[[BIAS:.*]]: tensor<1x4x8x8xf32>)
// CHECK-NEXT: %[[O:.*]] = galvatron.attention %[[Q]], %[[K]], %[[V]], %[[BIAS]] {scale = 1.000000e+00 : f64}
// CHECK-NEXT: return %[[O]]
func.func @attention_unscaled(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>, %bias: tensor<1x4x8x8xf32>) -> tensor<2x4x8x16xf32> {
  %s = galvatron.matmul %q, %k {transpose_rhs = true} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32>
  %zero = galvatron.constant dense<-0.0> : tensor<2x1x1x8xf32>
  %mask = galvatron.add %bias, %zero : (tensor<1x4x8x8xf32>, tensor<2x1x1x8xf32>) -> tensor<2x4x8x8xf32>
  %b = galvatron.add %s, %mask : (tensor<2x4x8x8xf32>, tensor<2x4x8x8xf32>) -> tensor<2x4x8x8xf32>
  %p = galvatron.softmax %b {axis = 3 : i64} : tensor<2x4x8x8xf32>
  %o = galvatron.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o : tensor<2x4x8x16xf32>
}

// -----

// The scores are used twice: no fusion.
// CHECK-LABEL: func.func @attention_scores_escape
// CHECK-NOT: galvatron.attention
// CHECK: galvatron.softmax
func.func @attention_scores_escape(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>) {
  %s = galvatron.matmul %q, %k {transpose_rhs = true} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x8xf32>
  %p = galvatron.softmax %s {axis = 3 : i64} : tensor<2x4x8x8xf32>
  %o = galvatron.matmul %p, %v : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %o, %s : tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>
}

// -----

// Rotary embedding with the tables the ONNX importer builds: rotary() of
// the basis [1, 1, 0, 0] gives [cos | sin]; each table repeats one half.
// CHECK-LABEL: func.func @rotary
// CHECK-SAME: (%[[X:.*]]: tensor<2x3x4x4xf32>)
// CHECK-NEXT: %[[Y:.*]] = galvatron.rotary %[[X]] {seq_axis = 2 : i64, theta = 5.000000e+05 : f64} : tensor<2x3x4x4xf32>
// CHECK-NEXT: return %[[Y]]
func.func @rotary(%x: tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32> {
  %basis = galvatron.constant dense<[[1.0, 1.0, 0.0, 0.0]]> : tensor<1x4xf32>
  %positions = galvatron.broadcast %basis : tensor<1x4xf32> -> tensor<4x4xf32>
  %tables = galvatron.rotary %positions {seq_axis = 0 : i64, theta = 500000.0 : f64} : tensor<4x4xf32>
  %cos_half = galvatron.slice %tables [0, 0] to [4, 2] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %cos2 = galvatron.concat %cos_half, %cos_half {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x4xf32>
  %cos = galvatron.reshape %cos2 : tensor<4x4xf32> -> tensor<1x1x4x4xf32>
  %sin_half = galvatron.slice %tables [0, 2] to [4, 4] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %sin2 = galvatron.concat %sin_half, %sin_half {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x4xf32>
  %sin = galvatron.reshape %sin2 : tensor<4x4xf32> -> tensor<1x1x4x4xf32>
  %x1 = galvatron.slice %x [0, 0, 0, 0] to [2, 3, 4, 2] step [1, 1, 1, 1] : tensor<2x3x4x4xf32> -> tensor<2x3x4x2xf32>
  %x2 = galvatron.slice %x [0, 0, 0, 2] to [2, 3, 4, 4] step [1, 1, 1, 1] : tensor<2x3x4x4xf32> -> tensor<2x3x4x2xf32>
  %neg = galvatron.neg %x2 : tensor<2x3x4x2xf32>
  %rot = galvatron.concat %neg, %x1 {axis = 3 : i64} : (tensor<2x3x4x2xf32>, tensor<2x3x4x2xf32>) -> tensor<2x3x4x4xf32>
  %a = galvatron.mul %x, %cos : (tensor<2x3x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<2x3x4x4xf32>
  %b = galvatron.mul %rot, %sin : (tensor<2x3x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<2x3x4x4xf32>
  %y = galvatron.add %a, %b : (tensor<2x3x4x4xf32>, tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
  return %y : tensor<2x3x4x4xf32>
}

// -----

// The sine table must go with the rotated half: swapped tables stay as they are.
// CHECK-LABEL: func.func @not_rotary
// CHECK-NOT: galvatron.rotary %arg0
func.func @not_rotary(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %basis = galvatron.constant dense<[[1.0, 1.0, 0.0, 0.0]]> : tensor<1x4xf32>
  %positions = galvatron.broadcast %basis : tensor<1x4xf32> -> tensor<4x4xf32>
  %tables = galvatron.rotary %positions {seq_axis = 0 : i64} : tensor<4x4xf32>
  %cos_half = galvatron.slice %tables [0, 0] to [4, 2] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %cos = galvatron.concat %cos_half, %cos_half {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x4xf32>
  %sin_half = galvatron.slice %tables [0, 2] to [4, 4] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %sin = galvatron.concat %sin_half, %sin_half {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x4xf32>
  %x1 = galvatron.slice %x [0, 0] to [4, 2] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %x2 = galvatron.slice %x [0, 2] to [4, 4] step [1, 1] : tensor<4x4xf32> -> tensor<4x2xf32>
  %neg = galvatron.neg %x2 : tensor<4x2xf32>
  %rot = galvatron.concat %neg, %x1 {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x2xf32>) -> tensor<4x4xf32>
  %a = galvatron.mul %x, %sin : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %b = galvatron.mul %rot, %cos : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  %y = galvatron.add %a, %b : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
  return %y : tensor<4x4xf32>
}

// -----

// Coefficients rounded to float16 still make a GELU.
// CHECK-LABEL: func.func @gelu_tanh_f16
// CHECK: galvatron.gelu %{{.*}} approximate = tanh : tensor<4xf16>
// CHECK-NOT: galvatron.tanh
func.func @gelu_tanh_f16(%x: tensor<4xf16>) -> tensor<4xf16> {
  // 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))
  %half = galvatron.constant dense<0.5> : tensor<f16>
  %three = galvatron.constant dense<3.0> : tensor<f16>
  %kappa = galvatron.constant dense<0.04471> : tensor<f16>
  %beta = galvatron.constant dense<0.7979> : tensor<f16>
  %one = galvatron.constant dense<1.0> : tensor<f16>
  %0 = galvatron.mul %x, %half : (tensor<4xf16>, tensor<f16>) -> tensor<4xf16>
  %1 = galvatron.pow %x, %three : (tensor<4xf16>, tensor<f16>) -> tensor<4xf16>
  %2 = galvatron.mul %1, %kappa : (tensor<4xf16>, tensor<f16>) -> tensor<4xf16>
  %3 = galvatron.add %x, %2 : (tensor<4xf16>, tensor<4xf16>) -> tensor<4xf16>
  %4 = galvatron.mul %3, %beta : (tensor<4xf16>, tensor<f16>) -> tensor<4xf16>
  %5 = galvatron.tanh %4 : tensor<4xf16>
  %6 = galvatron.add %5, %one : (tensor<4xf16>, tensor<f16>) -> tensor<4xf16>
  %7 = galvatron.mul %0, %6 : (tensor<4xf16>, tensor<4xf16>) -> tensor<4xf16>
  return %7 : tensor<4xf16>
}
