// RUN: galvatron-opt %s --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of layer_norm, rms_norm and softmax. The norms use
// their fused gradients on the saved input; softmax works from its saved
// output: y·(dy − Σ dy·y). A weight read once and used by two norms gets one
// summed gradient.

// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x8x16xf32>, %[[X:.*]] = %{{.*}} : tensor<2x8x16xf32>, %[[Y:.*]] = %{{.*}} : tensor<2x8x16xf32>, %[[S:.*]] = %{{.*}} : tensor<2x8x16xf32>)
// CHECK: %[[W:.*]] = galvatron.param @g : tensor<16xf32>
// CHECK: %[[GS:.*]] = galvatron.mul %[[G]], %[[S]]
// CHECK: %[[DOT:.*]] = galvatron.reduce_sum %[[GS]], [-1] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
// CHECK: %[[C:.*]] = galvatron.sub %[[G]], %[[DOT]]
// CHECK: %[[DZ:.*]] = galvatron.mul %[[S]], %[[C]]
// CHECK: %[[DY:.*]], %[[DW1:.*]] = galvatron.rms_norm_grad %[[DZ]], %[[Y]], %[[W]] : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<16xf32>) -> (tensor<2x8x16xf32>, tensor<16xf32>)
// CHECK: %[[DX:.*]], %[[DW2:.*]], %[[DB:.*]] = galvatron.layer_norm_grad %[[DY]], %[[X]], %[[W]] {epsilon = 9.9999999999999998E-13 : f64}
// CHECK: %[[DW:.*]] = galvatron.add %[[DW1]], %[[DW2]]
// CHECK: galvatron.assign @b.grad
// CHECK: %[[OLD:.*]] = galvatron.read_state @g.grad
// CHECK: %[[NEW:.*]] = galvatron.add %[[OLD]], %[[DW]]
// CHECK: galvatron.assign @g.grad, %[[NEW]]
// CHECK: galvatron.yield %[[DX]]
galvatron.parameter @g : tensor<16xf32> {init = #galvatron.init<ones>}
galvatron.parameter @b : tensor<16xf32> {init = #galvatron.init<zeros>}
func.func @main(%a: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
    %g = galvatron.param @g : tensor<16xf32>
    %b = galvatron.param @b : tensor<16xf32>
    %y = galvatron.layer_norm %x, %g, %b {epsilon = 1.0e-12 : f64} : (tensor<2x8x16xf32>, tensor<16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %z = galvatron.rms_norm %y, %g : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %s = galvatron.softmax %z {axis = -1 : i64} : tensor<2x8x16xf32>
    galvatron.yield %s : tensor<2x8x16xf32>
  }
  return %0 : tensor<2x8x16xf32>
}
