// RUN: galvatron-opt %s --galvatron-lower-to-runtime -split-input-file -verify-diagnostics | FileCheck %s

// Layers flatten into one instruction stream that keeps their names; a
// parameter read in two layers is one buffer; parameters lie at the bottom
// of the arena; tanh overwrites the linear result it reads for the last
// time; the reshape is a view; the second linear reuses the bytes of the
// input, dead after the first.
module attributes {galvatron.model = "tiny"} {
  galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @b : tensor<4xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<2x4xf32> {galvatron.name = "x"}) -> (tensor<8xf32> {galvatron.name = "y"}) {
    %0 = galvatron.layer decoder "l0" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
      %w = galvatron.param @w : tensor<4x4xf32>
      %b = galvatron.param @b : tensor<4xf32>
      %h = galvatron.linear %a, %w, %b : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
      %t = galvatron.tanh %h : tensor<2x4xf32>
      galvatron.yield %t : tensor<2x4xf32>
    }
    %1 = galvatron.layer head "l1" (%a = %0 : tensor<2x4xf32>) -> tensor<8xf32> {
      %w = galvatron.param @w : tensor<4x4xf32>
      %h = galvatron.linear %a, %w {transpose_weight = true} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
      %r = galvatron.reshape %h : tensor<2x4xf32> -> tensor<8xf32>
      galvatron.yield %r : tensor<8xf32>
    }
    return %1 : tensor<8xf32>
  }
}

// CHECK-NOT: galvatron.parameter
// CHECK-NOT: func.func
// CHECK-LABEL: grt.executable world_size 1 alignment 64 stages 1 attributes {model = "tiny"} {
// CHECK-NEXT: grt.program stage 0 arena 256 {
// CHECK-NEXT: %[[X:.*]] = grt.input "x" offset 128 : memref<2x4xf32>
// CHECK-NEXT: %[[W:.*]] = grt.parameter "w" offset 0 {init = #galvatron.init<normal(0.000000e+00, 2.000000e-02)>} : memref<4x4xf32>
// CHECK-NEXT: %[[B:.*]] = grt.parameter "b" offset 64 {init = #galvatron.init<zeros>} : memref<4xf32>
// CHECK-NEXT: %[[H0:.*]] = grt.buffer offset 192 : memref<2x4xf32>
// CHECK-NEXT: %[[T:.*]] = grt.buffer offset 192 : memref<2x4xf32>
// CHECK-NEXT: %[[H1:.*]] = grt.buffer offset 128 : memref<2x4xf32>
// CHECK-NEXT: %[[R:.*]] = grt.view %[[H1]] at 0 : memref<2x4xf32> to memref<8xf32>
// CHECK-NEXT: grt.kernel "linear" ins(%[[X]], %[[W]], %[[B]] : memref<2x4xf32>, memref<4x4xf32>, memref<4xf32>) outs(%[[H0]] : memref<2x4xf32>) {} layer "l0"
// CHECK-NEXT: grt.kernel "tanh" ins(%[[H0]] : memref<2x4xf32>) outs(%[[T]] : memref<2x4xf32>) {} layer "l0"
// CHECK-NEXT: grt.kernel "linear" ins(%[[T]], %[[W]] : memref<2x4xf32>, memref<4x4xf32>) outs(%[[H1]] : memref<2x4xf32>) {transpose_weight = true} layer "l1"
// CHECK-NEXT: grt.output "y" %[[R]] : memref<8xf32>

// -----

// exp's result is an output, so the add may not overwrite it; the mul
// overwrites the sum, which it reads for the last time. Constants and
// parameters live throughout; outputs may be inputs or parameters and are
// named "output<i>" without a galvatron.name.
galvatron.parameter @p : tensor<4xf32> {init = #galvatron.init<ones>}
// CHECK-LABEL: grt.program stage 0 arena 320 {
func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) {
  // CHECK-NEXT: %[[X:.*]] = grt.input "input0" offset 128 : memref<4xf32>
  // CHECK-NEXT: %[[P:.*]] = grt.parameter "p" offset 64
  // CHECK-NEXT: %[[C:.*]] = grt.constant offset 0 dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32> : memref<4xf32>
  // CHECK-NEXT: %[[E:.*]] = grt.buffer offset 192 : memref<4xf32>
  // CHECK-NEXT: %[[S:.*]] = grt.buffer offset 256 : memref<4xf32>
  // CHECK-NEXT: %[[M:.*]] = grt.buffer offset 256 : memref<4xf32>
  %c = galvatron.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %p = galvatron.param @p : tensor<4xf32>
  // CHECK-NEXT: grt.kernel "exp" ins(%[[X]] : memref<4xf32>) outs(%[[E]] : memref<4xf32>) {}
  %e = galvatron.exp %x : tensor<4xf32>
  // CHECK-NEXT: grt.kernel "add" ins(%[[E]], %[[C]] : memref<4xf32>, memref<4xf32>) outs(%[[S]] : memref<4xf32>) {}
  %s = galvatron.add %e, %c : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: grt.kernel "mul" ins(%[[S]], %[[E]] : memref<4xf32>, memref<4xf32>) outs(%[[M]] : memref<4xf32>) {}
  %m = galvatron.mul %s, %e : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  // CHECK-NEXT: grt.output "output0" %[[M]] : memref<4xf32>
  // CHECK-NEXT: grt.output "output1" %[[E]] : memref<4xf32>
  // CHECK-NEXT: grt.output "output2" %[[X]] : memref<4xf32>
  // CHECK-NEXT: grt.output "output3" %[[P]] : memref<4xf32>
  return %m, %e, %x, %p : tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>
}

// -----

// Kernel configurations carry every attribute explicitly, defaults included.
// CHECK-LABEL: grt.executable
func.func @main(%q: tensor<1x2x4x8xf32>, %k: tensor<1x1x4x8xf32>, %ids: tensor<4x4xi64>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<4x4xf32>, tensor<f32>, tensor<2x4x4xi1>) {
  // CHECK: grt.kernel "rotary" {{.*}} {rotary_dim = 8 : i64, seq_axis = 2 : i64, theta = 1.000000e+04 : f64}
  %r = galvatron.rotary %q {seq_axis = 2 : i64} : tensor<1x2x4x8xf32>
  // CHECK: grt.kernel "attention" {{.*}} {causal = true, scale = 0.3535533905932737{{[0-9]}} : f64}
  %a = galvatron.attention %r, %k, %k {causal = true} : (tensor<1x2x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x2x4x8xf32>
  // CHECK: grt.kernel "split" {{.*}} {axis = 1 : i64}
  %s:2 = galvatron.split %ids {axis = 1 : i64, sizes = array<i64: 1, 3>} : tensor<4x4xi64> -> tensor<4x1xi64>, tensor<4x3xi64>
  // CHECK: grt.kernel "cast"
  %f = galvatron.cast %ids : tensor<4x4xi64> to tensor<4x4xf32>
  // CHECK: grt.kernel "tril_mask" ins() outs(%{{.*}} : memref<2x4x4xi1>) {diagonal = -1 : i64}
  %mask = galvatron.tril_mask {diagonal = -1} : tensor<2x4x4xi1>
  // CHECK: grt.kernel "cross_entropy" {{.*}} {ignore_index = -100 : i64, reduction = 0 : i64}
  %labels = galvatron.reshape %s#0 : tensor<4x1xi64> -> tensor<4xi64>
  %l = galvatron.cross_entropy %f, %labels : (tensor<4x4xf32>, tensor<4xi64>) -> tensor<f32>
  return %r, %a, %f, %l, %mask : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<4x4xf32>, tensor<f32>, tensor<2x4x4xi1>
}

// -----

// expected-error @+1 {{no function or galvatron.schedule 'main' to lower}}
module {
  func.func @other() {
    return
  }
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'arith.constant' op has no runtime kernel}}
  %c = arith.constant dense<1.0> : tensor<4xf32>
  return %c : tensor<4xf32>
}

// -----

// expected-error @+1 {{'func.func' op argument #0 has type 'tensor<4xf64>', which the runtime cannot hold (static tensors of f32, f16, bf16, i64, i32 or i1)}}
func.func @main(%x: tensor<4xf64>) -> tensor<4xf64> {
  return %x : tensor<4xf64>
}
