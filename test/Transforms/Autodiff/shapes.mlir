// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of the shape ops: they need no forward value, so the
// backward layer takes only the result gradients.

// reshape and transpose invert; a strided slice pads back (start before,
// stride − 1 between, the rest after); concat slices its gradient; split
// concatenates its result gradients, with zeros for an unused piece;
// broadcast sums back. Gradients of an input used several times add up.
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: (%[[GT:.*]]: tensor<2x4x4x8xf32> {galvatron.name = "result0.grad"}, %[[GS:.*]]: tensor<2x4x4xf32> {galvatron.name = "result1.grad"}, %[[GB:.*]]: tensor<2x3x8x16xf32> {galvatron.name = "result2.grad"})
// CHECK: galvatron.layer other backward "f" (%[[T:.*]] = %[[GT]] : {{.*}}, %[[S:.*]] = %[[GS]] : {{.*}}, %[[B:.*]] = %[[GB]] : {{.*}}) -> (tensor<2x8x16xf32>, tensor<2x4x16xf32>)
// CHECK: %[[SUM:.*]] = galvatron.reduce_sum %[[B]], [1] : tensor<2x3x8x16xf32> -> tensor<2x8x16xf32>
// CHECK: %[[R1:.*]] = galvatron.reshape %[[SUM]] : tensor<2x8x16xf32> -> tensor<2x1x8x16xf32>
// CHECK: %[[P1:.*]] = galvatron.reshape %[[R1]] : tensor<2x1x8x16xf32> -> tensor<2x8x16xf32>
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00> : tensor<f32>
// CHECK: %[[P0:.*]] = galvatron.broadcast %[[Z]] : tensor<f32> -> tensor<2x4x16xf32>
// CHECK: %[[CAT:.*]] = galvatron.concat %[[P0]], %[[P1]] {axis = 1 : i64} : (tensor<2x4x16xf32>, tensor<2x8x16xf32>) -> tensor<2x12x16xf32>
// CHECK: %[[DX1:.*]] = galvatron.slice %[[CAT]] [0, 0, 0] to [2, 8, 16] step [1, 1, 1]
// CHECK: %[[DY:.*]] = galvatron.slice %[[CAT]] [0, 8, 0] to [2, 12, 16] step [1, 1, 1]
// CHECK: %[[DX2:.*]] = galvatron.pad %[[S]] low [0, 1, 0] high [0, 0, 3] interior [0, 1, 3] : tensor<2x4x4xf32> -> tensor<2x8x16xf32>
// CHECK: %[[A1:.*]] = galvatron.add %[[DX1]], %[[DX2]]
// CHECK: %[[TR:.*]] = galvatron.transpose %[[T]], [0, 3, 1, 2] : tensor<2x4x4x8xf32> -> tensor<2x8x4x4xf32>
// CHECK: %[[DX3:.*]] = galvatron.reshape %[[TR]] : tensor<2x8x4x4xf32> -> tensor<2x8x16xf32>
// CHECK: %[[DX:.*]] = galvatron.add %[[A1]], %[[DX3]]
// CHECK: galvatron.yield %[[DX]], %[[DY]]
func.func @main(%a: tensor<2x8x16xf32>, %c: tensor<2x4x16xf32>) -> (tensor<2x4x4x8xf32>, tensor<2x4x4xf32>, tensor<2x3x8x16xf32>) {
  %0:3 = galvatron.layer other "f" (%x = %a : tensor<2x8x16xf32>, %y = %c : tensor<2x4x16xf32>) -> (tensor<2x4x4x8xf32>, tensor<2x4x4xf32>, tensor<2x3x8x16xf32>) {
    %r = galvatron.reshape %x : tensor<2x8x16xf32> -> tensor<2x8x4x4xf32>
    %t = galvatron.transpose %r, [0, 2, 3, 1] : tensor<2x8x4x4xf32> -> tensor<2x4x4x8xf32>
    %s = galvatron.slice %x [0, 1, 0] to [2, 8, 16] step [1, 2, 4] : tensor<2x8x16xf32> -> tensor<2x4x4xf32>
    %cat = galvatron.concat %x, %y {axis = 1 : i64} : (tensor<2x8x16xf32>, tensor<2x4x16xf32>) -> tensor<2x12x16xf32>
    %p:2 = galvatron.split %cat {axis = 1 : i64, sizes = array<i64: 4, 8>} : tensor<2x12x16xf32> -> tensor<2x4x16xf32>, tensor<2x8x16xf32>
    %bc = galvatron.reshape %p#1 : tensor<2x8x16xf32> -> tensor<2x1x8x16xf32>
    %b = galvatron.broadcast %bc : tensor<2x1x8x16xf32> -> tensor<2x3x8x16xf32>
    galvatron.yield %t, %s, %b : tensor<2x4x4x8xf32>, tensor<2x4x4xf32>, tensor<2x3x8x16xf32>
  }
  return %0#0, %0#1, %0#2 : tensor<2x4x4x8xf32>, tensor<2x4x4xf32>, tensor<2x3x8x16xf32>
}

// -----

// A pad's adjoint is the strided slice it inverts.
// CHECK-LABEL: func.func @main_backward
// CHECK: %[[R:.*]] = galvatron.slice %{{.*}} [0, 1] to [2, 6] step [1, 2] : tensor<2x8xf32> -> tensor<2x3xf32>
// CHECK: galvatron.yield %[[R]]
func.func @main(%a: tensor<2x3xf32>) -> tensor<2x8xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<2x3xf32>) -> tensor<2x8xf32> {
    %p = galvatron.pad %x low [0, 1] high [0, 2] interior [0, 1] : tensor<2x3xf32> -> tensor<2x8xf32>
    galvatron.yield %p : tensor<2x8xf32>
  }
  return %0 : tensor<2x8xf32>
}

// -----

// ViT's patches are a permutation of the pixels; the adjoint undoes it.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer embedding backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x4x48xf32>)
// CHECK: %[[R:.*]] = galvatron.reshape %[[G]] : tensor<2x4x48xf32> -> tensor<2x2x2x3x4x4xf32>
// CHECK: %[[T:.*]] = galvatron.transpose %[[R]], [0, 3, 1, 4, 2, 5] : tensor<2x2x2x3x4x4xf32> -> tensor<2x3x2x4x2x4xf32>
// CHECK: %[[I:.*]] = galvatron.reshape %[[T]] : tensor<2x3x2x4x2x4xf32> -> tensor<2x3x8x8xf32>
// CHECK: galvatron.yield %[[I]]
func.func @main(%a: tensor<2x3x8x8xf32>) -> tensor<2x4x48xf32> {
  %0 = galvatron.layer embedding "f" (%x = %a : tensor<2x3x8x8xf32>) -> tensor<2x4x48xf32> {
    %p = galvatron.extract_patches %x {patch_size = 4 : i64} : tensor<2x3x8x8xf32> -> tensor<2x4x48xf32>
    galvatron.yield %p : tensor<2x4x48xf32>
  }
  return %0 : tensor<2x4x48xf32>
}
