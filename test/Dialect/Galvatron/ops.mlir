// RUN: galvatron-opt %s | FileCheck %s
// Round trip through the custom and the generic form.
// RUN: galvatron-opt %s | galvatron-opt | FileCheck %s
// RUN: galvatron-opt %s --mlir-print-op-generic | galvatron-opt | FileCheck %s

// CHECK: galvatron.parameter @w : tensor<16x32xf32> {init = #galvatron.init<normal(0.000000e+00, 2.000000e-02)>}
galvatron.parameter @w : tensor<16x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
// CHECK: galvatron.parameter @b : tensor<32xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @b : tensor<32xf32> {init = #galvatron.init<zeros>}
// CHECK: galvatron.parameter @dp : tensor<16x32xf32> {galvatron.data_parallel = {dim = 0 : i64, groups = [array<i64: 0, 1>], zero = 2 : i64}, init = #galvatron.init<zeros>}
galvatron.parameter @dp : tensor<16x32xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 2, dim = 0}}
// CHECK: galvatron.parameter @g : tensor<16xf32> {init = #galvatron.init<ones>}
galvatron.parameter @g : tensor<16xf32> {init = #galvatron.init<ones>}
// CHECK: galvatron.parameter @c : tensor<16xbf16> {init = #galvatron.init<constant(5.000000e-01)>}
galvatron.parameter @c : tensor<16xbf16> {init = #galvatron.init<constant(0.5)>}
// CHECK: galvatron.parameter @u : tensor<8x16xf16> {init = #galvatron.init<uniform(-1.000000e-01, 1.000000e-01)>}
galvatron.parameter @u : tensor<8x16xf16> {init = #galvatron.init<uniform(-0.1, 0.1)>}
// CHECK: galvatron.parameter @ext : tensor<4x4xf32> {external = #galvatron.external<location = "weights.bin", offset = 64, length = 64>}
galvatron.parameter @ext : tensor<4x4xf32> {external = #galvatron.external<location = "weights.bin", offset = 64, length = 64>}
// CHECK: galvatron.parameter @keyed : tensor<4xf32> {external = #galvatron.external<location = "model.onnx", key = "fc.bias">}
galvatron.parameter @keyed : tensor<4xf32> {external = #galvatron.external<location = "model.onnx", key = "fc.bias">}

// CHECK-LABEL: func.func @layers
func.func @layers(%x: tensor<2x8x16xf32>, %ids: tensor<2x8xi64>) -> (tensor<2x8x32xf32>, tensor<2x8x16xf32>) {
  // CHECK: galvatron.layer decoder "block.0" (%{{.*}} = %{{.*}} : tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
  // CHECK: galvatron.param @w : tensor<16x32xf32>
  // CHECK: galvatron.linear %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  // CHECK: galvatron.yield %{{.*}} : tensor<2x8x32xf32>
  %0 = galvatron.layer decoder "block.0" (%a = %x : tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
    %w = galvatron.param @w : tensor<16x32xf32>
    %b = galvatron.param @b : tensor<32xf32>
    %y = galvatron.linear %a, %w, %b : (tensor<2x8x16xf32>, tensor<16x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
    galvatron.yield %y : tensor<2x8x32xf32>
  }
  // CHECK: galvatron.layer embedding "embed" (%{{.*}} = %{{.*}} : tensor<2x8x16xf32>, %{{.*}} = %{{.*}} : tensor<2x8xi64>) -> (tensor<2x8x16xf32>, tensor<2x8xi64>) {
  %1:2 = galvatron.layer embedding "embed" (%a = %x : tensor<2x8x16xf32>, %i = %ids : tensor<2x8xi64>) -> (tensor<2x8x16xf32>, tensor<2x8xi64>) {
    galvatron.yield %a, %i : tensor<2x8x16xf32>, tensor<2x8xi64>
  }
  // CHECK: galvatron.layer head "head"
  %2 = galvatron.layer head "head" (%a = %1#0 : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
    galvatron.yield %a : tensor<2x8x16xf32>
  }
  // CHECK: galvatron.layer encoder "enc"
  %3 = galvatron.layer encoder "enc" (%a = %2 : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
    galvatron.yield %a : tensor<2x8x16xf32>
  }
  // CHECK: galvatron.layer other "glue"
  %4 = galvatron.layer other "glue" (%a = %3 : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
    galvatron.yield %a : tensor<2x8x16xf32>
  }
  return %0, %4 : tensor<2x8x32xf32>, tensor<2x8x16xf32>
}

// CHECK-LABEL: func.func @elementwise
func.func @elementwise(%x: tensor<2x3xf32>, %r: tensor<3xf32>, %c: tensor<2x1xi1>) {
  // CHECK: galvatron.neg %{{.*}} : tensor<2x3xf32>
  %0 = galvatron.neg %x : tensor<2x3xf32>
  // CHECK: galvatron.abs
  %1 = galvatron.abs %x : tensor<2x3xf32>
  // CHECK: galvatron.exp
  %2 = galvatron.exp %x : tensor<2x3xf32>
  // CHECK: galvatron.log
  %3 = galvatron.log %x : tensor<2x3xf32>
  // CHECK: galvatron.sqrt
  %4 = galvatron.sqrt %x : tensor<2x3xf32>
  // CHECK: galvatron.rsqrt
  %5 = galvatron.rsqrt %x : tensor<2x3xf32>
  // CHECK: galvatron.reciprocal
  %6 = galvatron.reciprocal %x : tensor<2x3xf32>
  // CHECK: galvatron.tanh
  %7 = galvatron.tanh %x : tensor<2x3xf32>
  // CHECK: galvatron.erf
  %8 = galvatron.erf %x : tensor<2x3xf32>
  // CHECK: galvatron.sigmoid
  %9 = galvatron.sigmoid %x : tensor<2x3xf32>
  // CHECK: galvatron.relu
  %10 = galvatron.relu %x : tensor<2x3xf32>
  // CHECK: galvatron.silu
  %11 = galvatron.silu %x : tensor<2x3xf32>
  // CHECK: galvatron.gelu %{{.*}} : tensor<2x3xf32>
  %12 = galvatron.gelu %x : tensor<2x3xf32>
  // CHECK: galvatron.gelu %{{.*}} approximate = tanh : tensor<2x3xf32>
  %13 = galvatron.gelu %x approximate = tanh : tensor<2x3xf32>
  // CHECK: galvatron.add %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %14 = galvatron.add %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.sub
  %15 = galvatron.sub %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.mul
  %16 = galvatron.mul %r, %x : (tensor<3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.div
  %17 = galvatron.div %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.pow
  %18 = galvatron.pow %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.max
  %19 = galvatron.max %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.min
  %20 = galvatron.min %x, %r : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.select %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  %21 = galvatron.select %c, %x, %r : (tensor<2x1xi1>, tensor<2x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
  // CHECK: galvatron.constant dense<1.250000e-01> : tensor<f32>
  %22 = galvatron.constant dense<0.125> : tensor<f32>
  // CHECK: galvatron.cast %{{.*}} : tensor<2x3xf32> to tensor<2x3xbf16>
  %23 = galvatron.cast %x : tensor<2x3xf32> to tensor<2x3xbf16>
  return
}

// CHECK-LABEL: func.func @linalg
func.func @linalg(%a: tensor<4x2x8x16xf32>, %b: tensor<16x32xf32>, %bt: tensor<2x32x16xf32>, %table: tensor<100x16xf32>, %ids: tensor<4x7xi32>) {
  // CHECK: galvatron.matmul %{{.*}}, %{{.*}} : (tensor<4x2x8x16xf32>, tensor<16x32xf32>) -> tensor<4x2x8x32xf32>
  %0 = galvatron.matmul %a, %b : (tensor<4x2x8x16xf32>, tensor<16x32xf32>) -> tensor<4x2x8x32xf32>
  // CHECK: galvatron.matmul %{{.*}}, %{{.*}} {transpose_rhs = true} : (tensor<4x2x8x16xf32>, tensor<2x32x16xf32>) -> tensor<4x2x8x32xf32>
  %1 = galvatron.matmul %a, %bt {transpose_rhs = true} : (tensor<4x2x8x16xf32>, tensor<2x32x16xf32>) -> tensor<4x2x8x32xf32>
  // CHECK: galvatron.matmul %{{.*}}, %{{.*}} {transpose_lhs = true} : (tensor<4x2x8x16xf32>, tensor<4x2x8x16xf32>) -> tensor<4x2x16x16xf32>
  %2 = galvatron.matmul %a, %a {transpose_lhs = true} : (tensor<4x2x8x16xf32>, tensor<4x2x8x16xf32>) -> tensor<4x2x16x16xf32>
  // CHECK: galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<4x2x8x16xf32>, tensor<100x16xf32>) -> tensor<4x2x8x100xf32>
  %3 = galvatron.linear %a, %table {transpose_weight = true} : (tensor<4x2x8x16xf32>, tensor<100x16xf32>) -> tensor<4x2x8x100xf32>
  // CHECK: galvatron.embedding %{{.*}}, %{{.*}} : (tensor<100x16xf32>, tensor<4x7xi32>) -> tensor<4x7x16xf32>
  %4 = galvatron.embedding %table, %ids : (tensor<100x16xf32>, tensor<4x7xi32>) -> tensor<4x7x16xf32>
  return
}

// CHECK-LABEL: func.func @norms
func.func @norms(%x: tensor<2x8x16xf32>, %w: tensor<16xf32>) {
  // CHECK: galvatron.layer_norm %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.9999999999999998E-13 : f64} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %0 = galvatron.layer_norm %x, %w, %w {epsilon = 1.0e-12 : f64} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: galvatron.layer_norm %{{.*}}, %{{.*}} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %1 = galvatron.layer_norm %x, %w : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: galvatron.rms_norm %{{.*}}, %{{.*}} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  %2 = galvatron.rms_norm %x, %w : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
  // CHECK: galvatron.softmax %{{.*}} {axis = -1 : i64} : tensor<2x8x16xf32>
  %3 = galvatron.softmax %x {axis = -1 : i64} : tensor<2x8x16xf32>
  return
}

// CHECK-LABEL: func.func @shapes
func.func @shapes(%x: tensor<2x8x16xf32>, %y: tensor<2x4x16xf32>, %s: tensor<1x16xf32>) {
  // CHECK: galvatron.reshape %{{.*}} : tensor<2x8x16xf32> -> tensor<2x8x4x4xf32>
  %0 = galvatron.reshape %x : tensor<2x8x16xf32> -> tensor<2x8x4x4xf32>
  // CHECK: galvatron.transpose %{{.*}}, [0, 2, 1, 3] : tensor<2x8x4x4xf32> -> tensor<2x4x8x4xf32>
  %1 = galvatron.transpose %0, [0, 2, 1, 3] : tensor<2x8x4x4xf32> -> tensor<2x4x8x4xf32>
  // CHECK: galvatron.slice %{{.*}} [0, 1, 0] to [2, 8, 16] step [1, 2, 4] : tensor<2x8x16xf32> -> tensor<2x4x4xf32>
  %2 = galvatron.slice %x [0, 1, 0] to [2, 8, 16] step [1, 2, 4] : tensor<2x8x16xf32> -> tensor<2x4x4xf32>
  // CHECK: galvatron.concat %{{.*}}, %{{.*}} {axis = 1 : i64} : (tensor<2x8x16xf32>, tensor<2x4x16xf32>) -> tensor<2x12x16xf32>
  %3 = galvatron.concat %x, %y {axis = 1 : i64} : (tensor<2x8x16xf32>, tensor<2x4x16xf32>) -> tensor<2x12x16xf32>
  // CHECK: galvatron.split %{{.*}} {axis = -1 : i64, sizes = array<i64: 4, 12>} : tensor<2x8x16xf32> -> tensor<2x8x4xf32>, tensor<2x8x12xf32>
  %4:2 = galvatron.split %x {axis = -1 : i64, sizes = array<i64: 4, 12>} : tensor<2x8x16xf32> -> tensor<2x8x4xf32>, tensor<2x8x12xf32>
  // CHECK: galvatron.broadcast %{{.*}} : tensor<1x16xf32> -> tensor<2x8x16xf32>
  %5 = galvatron.broadcast %s : tensor<1x16xf32> -> tensor<2x8x16xf32>
  // CHECK: galvatron.reduce_sum %{{.*}}, [1] : tensor<2x8x16xf32> -> tensor<2x16xf32>
  %6 = galvatron.reduce_sum %x, [1] : tensor<2x8x16xf32> -> tensor<2x16xf32>
  // CHECK: galvatron.reduce_mean %{{.*}}, [-1] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
  %7 = galvatron.reduce_mean %x, [-1] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
  // CHECK: galvatron.reduce_max %{{.*}}, [0, 2] : tensor<2x8x16xf32> -> tensor<8xf32>
  %8 = galvatron.reduce_max %x, [0, 2] : tensor<2x8x16xf32> -> tensor<8xf32>
  return
}

// CHECK-LABEL: func.func @transformer
func.func @transformer(%q: tensor<2x8x16x32xf32>, %kv: tensor<2x2x16x32xf32>, %k2: tensor<2x8x24x32xf32>, %mask: tensor<2x1x1x24xf32>, %logits: tensor<2x16x100xf32>, %labels: tensor<2x16xi64>, %img: tensor<2x3x32x32xf32>) {
  // CHECK: galvatron.rotary %{{.*}} {seq_axis = 2 : i64} : tensor<2x8x16x32xf32>
  %0 = galvatron.rotary %q {seq_axis = 2 : i64} : tensor<2x8x16x32xf32>
  // CHECK: galvatron.rotary %{{.*}} {interleaved = true, rotary_dim = 16 : i64, seq_axis = 2 : i64, theta = 5.000000e+05 : f64} : tensor<2x8x16x32xf32>
  %1 = galvatron.rotary %q {seq_axis = 2 : i64, theta = 500000.0 : f64, rotary_dim = 16 : i64, interleaved = true} : tensor<2x8x16x32xf32>
  // CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true} : (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> tensor<2x8x16x32xf32>
  %2 = galvatron.attention %q, %kv, %kv {causal = true} : (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> tensor<2x8x16x32xf32>
  // CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale = 1.000000e+00 : f64} : (tensor<2x8x16x32xf32>, tensor<2x8x24x32xf32>, tensor<2x8x24x32xf32>, tensor<2x1x1x24xf32>) -> tensor<2x8x16x32xf32>
  %3 = galvatron.attention %q, %k2, %k2, %mask {scale = 1.0 : f64} : (tensor<2x8x16x32xf32>, tensor<2x8x24x32xf32>, tensor<2x8x24x32xf32>, tensor<2x1x1x24xf32>) -> tensor<2x8x16x32xf32>
  // CHECK: galvatron.cross_entropy %{{.*}}, %{{.*}} : (tensor<2x16x100xf32>, tensor<2x16xi64>) -> tensor<f32>
  %4 = galvatron.cross_entropy %logits, %labels : (tensor<2x16x100xf32>, tensor<2x16xi64>) -> tensor<f32>
  // CHECK: galvatron.cross_entropy %{{.*}}, %{{.*}} {ignore_index = 0 : i64, reduction = 1 : i32} : (tensor<2x16x100xf32>, tensor<2x16xi64>) -> tensor<f32>
  %5 = galvatron.cross_entropy %logits, %labels {ignore_index = 0 : i64, reduction = 1 : i32} : (tensor<2x16x100xf32>, tensor<2x16xi64>) -> tensor<f32>
  // CHECK: galvatron.relative_position_bucket {bidirectional = true, max_distance = 128 : i64, num_buckets = 32 : i64} : tensor<16x16xi64>
  %6 = galvatron.relative_position_bucket {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true} : tensor<16x16xi64>
  // CHECK: galvatron.extract_patches %{{.*}} {patch_size = 8 : i64} : tensor<2x3x32x32xf32> -> tensor<2x16x192xf32>
  %7 = galvatron.extract_patches %img {patch_size = 8 : i64} : tensor<2x3x32x32xf32> -> tensor<2x16x192xf32>
  // CHECK: galvatron.tril_mask : tensor<1x1x16x16xi1>
  %8 = galvatron.tril_mask {diagonal = 0} : tensor<1x1x16x16xi1>
  // CHECK: galvatron.tril_mask {diagonal = -1 : i64} : tensor<16x24xi1>
  %9 = galvatron.tril_mask {diagonal = -1} : tensor<16x24xi1>
  return
}

// Training: state, gradients, optimizer and schedule.

// CHECK: galvatron.state gradient @w.grad of @w : tensor<16x32xf32> {init = #galvatron.init<zeros>}
galvatron.state gradient @"w.grad" of @w : tensor<16x32xf32> {init = #galvatron.init<zeros>}
// CHECK: galvatron.state optimizer @w.exp_avg of @w : tensor<16x32xf32> {init = #galvatron.init<zeros>}
galvatron.state optimizer @"w.exp_avg" of @w : tensor<16x32xf32> {init = #galvatron.init<zeros>}
// CHECK: galvatron.state optimizer @w.exp_avg_sq of @w : tensor<8x32xf32> {galvatron.shard = {full_shape = array<i64: 16, 32>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}, init = #galvatron.init<zeros>}
galvatron.state optimizer @"w.exp_avg_sq" of @w : tensor<8x32xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 16, 32>, splits = [{dim = 0, groups = [array<i64: 0, 1>]}]}}
// CHECK: galvatron.state control @train.step : tensor<i64> {init = #galvatron.init<zeros>}
galvatron.state control @"train.step" : tensor<i64> {init = #galvatron.init<zeros>}

// CHECK-LABEL: func.func @state
func.func @state(%g: tensor<16x32xf32>) {
  // CHECK: %[[W:.*]] = galvatron.param @w : tensor<16x32xf32>
  // CHECK: %[[A:.*]] = galvatron.read_state @w.grad : tensor<16x32xf32>
  // CHECK: galvatron.assign @w.grad, %{{.*}} : tensor<16x32xf32>
  // CHECK: galvatron.assign @w, %[[A]] : tensor<16x32xf32>
  %w = galvatron.param @w : tensor<16x32xf32>
  %acc = galvatron.read_state @"w.grad" : tensor<16x32xf32>
  %sum = galvatron.add %acc, %g : (tensor<16x32xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
  galvatron.assign @"w.grad", %sum : tensor<16x32xf32>
  galvatron.assign @w, %acc : tensor<16x32xf32>
  return
}

// CHECK-LABEL: func.func @backward_layer
func.func @backward_layer(%g: tensor<2x8x32xf32>, %x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  // CHECK: galvatron.layer decoder backward "block.0" (%{{.*}} = %{{.*}} : tensor<2x8x32xf32>, %{{.*}} = %{{.*}} : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = galvatron.layer decoder backward "block.0" (%dy = %g : tensor<2x8x32xf32>, %a = %x : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
    %w = galvatron.param @w : tensor<16x32xf32>
    %dx = galvatron.linear %dy, %w {transpose_weight = true} : (tensor<2x8x32xf32>, tensor<16x32xf32>) -> tensor<2x8x16xf32>
    galvatron.yield %dx : tensor<2x8x16xf32>
  }
  return %0 : tensor<2x8x16xf32>
}

// CHECK-LABEL: func.func @compare_pad
func.func @compare_pad(%x: tensor<2x3xf32>, %z: tensor<f32>) {
  // CHECK: galvatron.compare gt, %{{.*}}, %{{.*}} : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xi1>
  %0 = galvatron.compare gt, %x, %z : (tensor<2x3xf32>, tensor<f32>) -> tensor<2x3xi1>
  // CHECK: galvatron.compare ne
  %1 = galvatron.compare ne, %x, %x : (tensor<2x3xf32>, tensor<2x3xf32>) -> tensor<2x3xi1>
  // CHECK: galvatron.pad %{{.*}} low [0, 1] high [0, 2] interior [0, 1] : tensor<2x3xf32> -> tensor<2x8xf32>
  %2 = galvatron.pad %x low [0, 1] high [0, 2] interior [0, 1] : tensor<2x3xf32> -> tensor<2x8xf32>
  // CHECK: galvatron.pad %{{.*}} low [1, 0] high [0, 0] interior [0, 0] {value = -1.000000e+00 : f64} : tensor<2x3xf32> -> tensor<3x3xf32>
  %3 = galvatron.pad %x low [1, 0] high [0, 0] interior [0, 0] {value = -1.0 : f64} : tensor<2x3xf32> -> tensor<3x3xf32>
  return
}

// CHECK-LABEL: func.func @gradients
func.func @gradients(%x: tensor<2x8x16xf32>, %w: tensor<16xf32>, %q: tensor<2x8x16x32xf32>, %kv: tensor<2x2x16x32xf32>, %bias: tensor<1x8x16x16xf32>, %ids: tensor<2x8xi64>, %logits: tensor<2x8x100xf32>, %loss: tensor<f32>) {
  // CHECK: galvatron.activation_grad gelu_tanh, %{{.*}}, %{{.*}} : tensor<2x8x16xf32>
  %0 = galvatron.activation_grad gelu_tanh, %x, %x : tensor<2x8x16xf32>
  // CHECK: galvatron.activation_grad relu
  %1 = galvatron.activation_grad relu, %x, %x : tensor<2x8x16xf32>
  // CHECK: galvatron.layer_norm_grad %{{.*}}, %{{.*}}, %{{.*}} {epsilon = 9.9999999999999998E-13 : f64} : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  %2:3 = galvatron.layer_norm_grad %x, %x, %w {epsilon = 1.0e-12 : f64} : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>)
  // CHECK: galvatron.rms_norm_grad %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>)
  %3:2 = galvatron.rms_norm_grad %x, %x, %w : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>)
  // Grouped-query attention: 8 query heads share 2 key/value heads.
  // CHECK: galvatron.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {causal = true} : (tensor<2x8x16x32xf32>, tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>)
  %4:3 = galvatron.attention_grad %q, %q, %kv, %kv {causal = true} : (tensor<2x8x16x32xf32>, tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>) -> (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>)
  // A trainable bias gets its gradient.
  // CHECK: galvatron.attention_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} {scale = 1.000000e+00 : f64} : (tensor<2x8x16x32xf32>, tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>, tensor<1x8x16x16xf32>) -> (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>, tensor<1x8x16x16xf32>)
  %5:4 = galvatron.attention_grad %q, %q, %kv, %kv, %bias {scale = 1.0 : f64} : (tensor<2x8x16x32xf32>, tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>, tensor<1x8x16x16xf32>) -> (tensor<2x8x16x32xf32>, tensor<2x2x16x32xf32>, tensor<2x2x16x32xf32>, tensor<1x8x16x16xf32>)
  // CHECK: galvatron.embedding_grad %{{.*}}, %{{.*}} : (tensor<2x8x16xf32>, tensor<2x8xi64>) -> tensor<100x16xf32>
  %6 = galvatron.embedding_grad %x, %ids : (tensor<2x8x16xf32>, tensor<2x8xi64>) -> tensor<100x16xf32>
  // CHECK: galvatron.cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}} : (tensor<f32>, tensor<2x8x100xf32>, tensor<2x8xi64>) -> tensor<2x8x100xf32>
  %7 = galvatron.cross_entropy_grad %loss, %logits, %ids : (tensor<f32>, tensor<2x8x100xf32>, tensor<2x8xi64>) -> tensor<2x8x100xf32>
  return
}

// CHECK-LABEL: func.func @optimizer
func.func @optimizer(%p: tensor<16x32xf32>, %g: tensor<16x32xf32>, %step: tensor<i64>, %scale: tensor<f32>, %ok: tensor<i1>) {
  // CHECK: %[[LR:.*]] = galvatron.lr_schedule %{{.*}} {decay_steps = 100 : i64, lr = 1.000000e-03 : f64, min_lr = 1.000000e-04 : f64, warmup_steps = 10 : i64} : tensor<i64> -> tensor<f32>
  %lr = galvatron.lr_schedule %step {lr = 1.0e-3 : f64, min_lr = 1.0e-4 : f64, warmup_steps = 10 : i64, decay_steps = 100 : i64} : tensor<i64> -> tensor<f32>
  // CHECK: galvatron.adamw_update %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %[[LR]], %{{.*}}, %{{.*}} {beta2 = 5.000000e-01 : f64} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>)
  %0:3 = galvatron.adamw_update %p, %g, %p, %p, %lr, %step, %scale {beta2 = 0.5 : f64} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>)
  // A skippable step (fp16 loss scaling) takes the enable flag.
  // CHECK: galvatron.adamw_update {{.*}} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<i64>, tensor<f32>, tensor<i1>)
  %1:3 = galvatron.adamw_update %p, %g, %p, %p, %lr, %step, %scale, %ok : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<i64>, tensor<f32>, tensor<i1>) -> (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>)
  // CHECK: galvatron.sgd_update %{{.*}}, %{{.*}}, %{{.*}}, %[[LR]], %{{.*}} {nesterov = true} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>)
  %2:2 = galvatron.sgd_update %p, %g, %p, %lr, %scale {nesterov = true} : (tensor<16x32xf32>, tensor<16x32xf32>, tensor<16x32xf32>, tensor<f32>, tensor<f32>) -> (tensor<16x32xf32>, tensor<16x32xf32>)
  return
}

func.func @fwd(%ids: tensor<2x8xi64>) -> tensor<2x8x16xf32> {
  %0 = galvatron.constant dense<0.0> : tensor<2x8x16xf32>
  return %0 : tensor<2x8x16xf32>
}
func.func @bwd(%saved: tensor<2x8x16xf32>) {
  return
}
func.func @opt() -> tensor<f32> {
  %0 = galvatron.constant dense<0.0> : tensor<f32>
  return %0 : tensor<f32>
}
// CHECK: galvatron.schedule @train_step loss next_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [2 x [forward 0, backward 0], 1 x [optimizer]]
galvatron.schedule @train_step loss next_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [2 x [forward 0, backward 0], 1 x [optimizer]]
// CHECK: galvatron.schedule @gpipe_order loss masked_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [2 x [forward 0], 2 x [backward 0], 1 x [optimizer]]
galvatron.schedule @gpipe_order loss masked_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [2 x [forward 0], 2 x [backward 0], 1 x [optimizer]]
// One-forward-one-backward on the first of two stages: a warm-up forward, a
// steady state, a cool-down backward.
// CHECK: galvatron.schedule @one_f_one_b loss next_token micro_batches 4 forward @fwd backward @bwd optimizer @opt [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3], 1 x [optimizer]]
galvatron.schedule @one_f_one_b loss next_token micro_batches 4 forward @fwd backward @bwd optimizer @opt [1 x [forward 0], 3 x [forward 1, backward 0], 1 x [backward 3], 1 x [optimizer]]

// CHECK-LABEL: func.func @pipeline_messages
func.func @pipeline_messages(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  // CHECK: galvatron.send %{{.*}} to stage 1 tag 3 : tensor<2x8x16xf32>
  galvatron.send %x to stage 1 tag 3 : tensor<2x8x16xf32>
  // CHECK: galvatron.recv from stage 0 tag 4 differentiable : tensor<2x8x16xf32>
  %0 = galvatron.recv from stage 0 tag 4 differentiable : tensor<2x8x16xf32>
  // CHECK: galvatron.recv from stage 2 tag 0 : tensor<2x8xi64>
  %1 = galvatron.recv from stage 2 tag 0 : tensor<2x8xi64>
  return %0 : tensor<2x8x16xf32>
}

// Collectives name every device group of the SPMD program.
// CHECK-LABEL: func.func @collectives
func.func @collectives(%x: tensor<4x8xf32>, %ids: tensor<4x8xi64>) -> (tensor<4x8xf32>, tensor<2x8xi64>) {
  // CHECK: galvatron.all_reduce sum %{{.*}} groups {{\[}}[0, 1], [2, 3]] : tensor<4x8xf32>
  %0 = galvatron.all_reduce sum %x groups [[0, 1], [2, 3]] : tensor<4x8xf32>
  // CHECK: galvatron.all_reduce max
  %1 = galvatron.all_reduce max %0 groups [[0, 1, 2, 3]] : tensor<4x8xf32>
  // CHECK: galvatron.replicate %{{.*}} groups {{\[}}[0, 2], [1, 3]] : tensor<4x8xf32>
  %2 = galvatron.replicate %1 groups [[0, 2], [1, 3]] : tensor<4x8xf32>
  // CHECK: galvatron.reduce_scatter avg %{{.*}} dim 1 groups {{\[}}[0, 1]] : tensor<4x8xf32> -> tensor<4x4xf32>
  %3 = galvatron.reduce_scatter avg %2 dim 1 groups [[0, 1]] : tensor<4x8xf32> -> tensor<4x4xf32>
  // CHECK: galvatron.all_gather %{{.*}} dim 1 groups {{\[}}[0, 1]] reduce_grad : tensor<4x4xf32> -> tensor<4x8xf32>
  %4 = galvatron.all_gather %3 dim 1 groups [[0, 1]] reduce_grad : tensor<4x4xf32> -> tensor<4x8xf32>
  // CHECK: galvatron.shard %{{.*}} dim 0 groups {{\[}}[1, 0]] : tensor<4x8xi64> -> tensor<2x8xi64>
  %5 = galvatron.shard %ids dim 0 groups [[1, 0]] : tensor<4x8xi64> -> tensor<2x8xi64>
  return %4, %5 : tensor<4x8xf32>, tensor<2x8xi64>
}

// Ulysses' switch between a sequence split (dim 2) and a head split (dim 1).
// CHECK-LABEL: func.func @all_to_all
func.func @all_to_all(%x: tensor<2x4x8x16xf32>) -> tensor<2x2x16x16xf32> {
  // CHECK: galvatron.all_to_all %{{.*}} split 1 concat 2 groups {{\[}}[0, 1], [2, 3]] : tensor<2x4x8x16xf32> -> tensor<2x2x16x16xf32>
  %0 = galvatron.all_to_all %x split 1 concat 2 groups [[0, 1], [2, 3]] : tensor<2x4x8x16xf32> -> tensor<2x2x16x16xf32>
  return %0 : tensor<2x2x16x16xf32>
}

// A padded vocabulary: the blocks' 8 rows hold a vocabulary of 7.
// CHECK-LABEL: func.func @padded_vocabulary
func.func @padded_vocabulary(%table: tensor<4x4xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  // CHECK: galvatron.embedding %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] {vocab_size = 7 : i64}
  %0 = galvatron.embedding %table, %ids vocab_groups [[0, 1]] {vocab_size = 7} : (tensor<4x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// A parameter's part of the whole: tensor parallelism splits dimension 1,
// ZeRO-3 splits the part again.
// CHECK: galvatron.parameter @sharded : tensor<4x2xf32> {galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>]}, {dim = 1 : i64, groups = [array<i64: 0, 1>]}]}
galvatron.parameter @sharded : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1, groups = [array<i64: 0, 1>]}, {dim = 1, groups = [array<i64: 0, 1>]}]}}

// Vocabulary parallelism: a lookup in the rank's block of rows, its
// gradient, and the parallel cross-entropy on logits split by columns.
// CHECK-LABEL: func.func @vocab_parallel
func.func @vocab_parallel(%table: tensor<8x4xf32>, %ids: tensor<2x3xi64>, %logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %g: tensor<f32>) -> (tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<f32>, tensor<2x3x8xf32>) {
  // CHECK: galvatron.embedding %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  %0 = galvatron.embedding %table, %ids vocab_groups [[0, 1]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  // CHECK: galvatron.embedding_grad %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<8x4xf32>
  %1 = galvatron.embedding_grad %0, %ids vocab_groups [[0, 1]] : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<8x4xf32>
  // CHECK: galvatron.vocab_cross_entropy_stats %{{.*}}, %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
  %2 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
  // CHECK: galvatron.vocab_cross_entropy %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] {reduction = 1 : i32} : (tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<f32>
  %3 = galvatron.vocab_cross_entropy %2, %logits, %max, %ids vocab_groups [[0, 1]] {reduction = 1 : i32} : (tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<f32>
  // CHECK: galvatron.vocab_cross_entropy_grad %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] {ignore_index = 0 : i64} : (tensor<f32>, tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
  %4 = galvatron.vocab_cross_entropy_grad %g, %2, %logits, %max, %ids vocab_groups [[0, 1]] {ignore_index = 0 : i64} : (tensor<f32>, tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
  return %0, %1, %3, %4 : tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<f32>, tensor<2x3x8xf32>
}

// Attention dropout: the attributes round-trip; 0 (the default) prints
// nothing.
// CHECK-LABEL: func.func @attention_dropout
func.func @attention_dropout(%q: tensor<2x2x8x16xf32>) -> (tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) {
  // CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true, dropout = 1.000000e-01 : f64, shard = {full_shape = array<i64: 2, 4, 8, 8>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>]}]}, stream = 4 : i64} :
  %0 = galvatron.attention %q, %q, %q {causal = true, dropout = 0.1 : f64, stream = 4 : i64, shard = {full_shape = array<i64: 2, 4, 8, 8>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>]}]}} : (tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> tensor<2x2x8x16xf32>
  // CHECK: galvatron.attention %{{.*}}, %{{.*}}, %{{.*}} {causal = true} :
  %1 = galvatron.attention %q, %q, %q {causal = true, dropout = 0.0 : f64} : (tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> tensor<2x2x8x16xf32>
  return %0, %1 : tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>
}

// CHECK-LABEL: func.func @dropout
func.func @dropout(%x: tensor<2x8x4xf32>, %part: tensor<1x8x4xf32>) -> (tensor<2x8x4xf32>, tensor<1x8x4xf32>) {
  // CHECK: %{{.*}}, %{{.*}} = galvatron.dropout %{{.*}} {probability = 1.000000e-01 : f64, stream = 3 : i64} : tensor<2x8x4xf32> -> tensor<2x8x4xi1>
  %y, %keep = galvatron.dropout %x {probability = 0.1 : f64, stream = 3 : i64} : tensor<2x8x4xf32> -> tensor<2x8x4xi1>
  // CHECK: galvatron.dropout %{{.*}} {probability = 5.000000e-01 : f64, shard = {full_shape = array<i64: 2, 8, 4>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}, stream = 0 : i64} : tensor<1x8x4xf32> -> tensor<1x8x4xi1>
  %z, %keep2 = galvatron.dropout %part {probability = 0.5 : f64, stream = 0 : i64, shard = {full_shape = array<i64: 2, 8, 4>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}} : tensor<1x8x4xf32> -> tensor<1x8x4xi1>
  return %y, %z : tensor<2x8x4xf32>, tensor<1x8x4xf32>
}

// A training step's model FLOPs read back exactly, past the int64 range.
// CHECK-LABEL: func.func @training_info
// CHECK-SAME: big = #galvatron.training<loss = masked_token, model_flops = 4.4E+21, vocab_size = 8>
// CHECK-SAME: small = #galvatron.training<loss = next_token, model_flops = 1.2345678901234567E+4, vocab_size = 256>
func.func @training_info() attributes {big = #galvatron.training<loss = masked_token, model_flops = 4.4e21, vocab_size = 8>, small = #galvatron.training<loss = next_token, model_flops = 12345.678901234567, vocab_size = 256>} {
  return
}
