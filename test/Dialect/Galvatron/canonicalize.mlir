// RUN: galvatron-opt %s -split-input-file --canonicalize | FileCheck %s

// CHECK-LABEL: func.func @reshape_of_reshape
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK-NEXT: %[[R:.*]] = galvatron.reshape %[[X]] : tensor<2x8x16xf32> -> tensor<16x16xf32>
// CHECK-NEXT: return %[[R]]
func.func @reshape_of_reshape(%x: tensor<2x8x16xf32>) -> tensor<16x16xf32> {
  %0 = galvatron.reshape %x : tensor<2x8x16xf32> -> tensor<2x8x4x4xf32>
  %1 = galvatron.reshape %0 : tensor<2x8x4x4xf32> -> tensor<16x16xf32>
  return %1 : tensor<16x16xf32>
}

// -----

// CHECK-LABEL: func.func @reshape_round_trip
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK-NEXT: return %[[X]]
func.func @reshape_round_trip(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = galvatron.reshape %x : tensor<2x8x16xf32> -> tensor<16x16xf32>
  %1 = galvatron.reshape %0 : tensor<16x16xf32> -> tensor<2x8x16xf32>
  return %1 : tensor<2x8x16xf32>
}

// -----

// CHECK-LABEL: func.func @identity_reshape
// CHECK-NEXT: return %arg0
func.func @identity_reshape(%x: tensor<4x4xf32>) -> tensor<4x4xf32> {
  %0 = galvatron.reshape %x : tensor<4x4xf32> -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

// The heads split / merge of attention cancels out.
// CHECK-LABEL: func.func @transpose_of_transpose
// CHECK-NEXT: return %arg0
func.func @transpose_of_transpose(%x: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %0 = galvatron.transpose %x, [0, 2, 1, 3] : tensor<2x4x8x16xf32> -> tensor<2x8x4x16xf32>
  %1 = galvatron.transpose %0, [0, 2, 1, 3] : tensor<2x8x4x16xf32> -> tensor<2x4x8x16xf32>
  return %1 : tensor<2x4x8x16xf32>
}

// -----

// CHECK-LABEL: func.func @transposes_compose
// CHECK-NEXT: %[[T:.*]] = galvatron.transpose %arg0, [2, 0, 1] : tensor<2x3x4xf32> -> tensor<4x2x3xf32>
// CHECK-NEXT: return %[[T]]
func.func @transposes_compose(%x: tensor<2x3x4xf32>) -> tensor<4x2x3xf32> {
  %0 = galvatron.transpose %x, [1, 0, 2] : tensor<2x3x4xf32> -> tensor<3x2x4xf32>
  %1 = galvatron.transpose %0, [2, 1, 0] : tensor<3x2x4xf32> -> tensor<4x2x3xf32>
  return %1 : tensor<4x2x3xf32>
}

// -----

// CHECK-LABEL: func.func @identity_transpose
// CHECK-NEXT: return %arg0
func.func @identity_transpose(%x: tensor<2x3xf32>) -> tensor<2x3xf32> {
  %0 = galvatron.transpose %x, [0, 1] : tensor<2x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// CHECK-LABEL: func.func @identity_slice_broadcast_cast_concat
// CHECK-NEXT: return %arg0, %arg0, %arg0, %arg0
func.func @identity_slice_broadcast_cast_concat(%x: tensor<2x3xf32>) -> (tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>) {
  %0 = galvatron.slice %x [0, 0] to [2, 3] step [1, 1] : tensor<2x3xf32> -> tensor<2x3xf32>
  %1 = galvatron.broadcast %x : tensor<2x3xf32> -> tensor<2x3xf32>
  %2 = galvatron.cast %x : tensor<2x3xf32> to tensor<2x3xf32>
  %3 = galvatron.concat %x {axis = 0 : i64} : (tensor<2x3xf32>) -> tensor<2x3xf32>
  return %0, %1, %2, %3 : tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>, tensor<2x3xf32>
}

// -----

// Non-trivial ones stay.
// CHECK-LABEL: func.func @kept
// CHECK: galvatron.slice
// CHECK: galvatron.broadcast
// CHECK: galvatron.cast
// CHECK: galvatron.transpose
func.func @kept(%x: tensor<2x3xf32>) -> (tensor<1x3xf32>, tensor<4x2x3xf32>, tensor<2x3xbf16>, tensor<3x2xf32>) {
  %0 = galvatron.slice %x [0, 0] to [1, 3] step [1, 1] : tensor<2x3xf32> -> tensor<1x3xf32>
  %1 = galvatron.broadcast %x : tensor<2x3xf32> -> tensor<4x2x3xf32>
  %2 = galvatron.cast %x : tensor<2x3xf32> to tensor<2x3xbf16>
  %3 = galvatron.transpose %x, [1, 0] : tensor<2x3xf32> -> tensor<3x2xf32>
  return %0, %1, %2, %3 : tensor<1x3xf32>, tensor<4x2x3xf32>, tensor<2x3xbf16>, tensor<3x2xf32>
}

// -----

// Constants fold through reshapes and splat broadcasts; unused ops go.
// CHECK-LABEL: func.func @constants
// CHECK-DAG: %[[A:.*]] = galvatron.constant dense<{{\[}}[1.000000e+00, 2.000000e+00], [3.000000e+00, 4.000000e+00]]> : tensor<2x2xf32>
// CHECK-DAG: %[[B:.*]] = galvatron.constant dense<5.000000e-01> : tensor<3x4xf32>
// CHECK: return %[[A]], %[[B]]
func.func @constants() -> (tensor<2x2xf32>, tensor<3x4xf32>) {
  %c = galvatron.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %s = galvatron.constant dense<0.5> : tensor<f32>
  %unused = galvatron.exp %c : tensor<4xf32>
  %0 = galvatron.reshape %c : tensor<4xf32> -> tensor<2x2xf32>
  %1 = galvatron.broadcast %s : tensor<f32> -> tensor<3x4xf32>
  return %0, %1 : tensor<2x2xf32>, tensor<3x4xf32>
}

// -----

// Canonicalization works inside (isolated) layers too.
// CHECK-LABEL: func.func @in_layer
// CHECK: galvatron.layer decoder "h.0"
// CHECK-NEXT: galvatron.yield %{{.*}} : tensor<2x4x8x16xf32>
func.func @in_layer(%x: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
    %1 = galvatron.transpose %a, [0, 2, 1, 3] : tensor<2x4x8x16xf32> -> tensor<2x8x4x16xf32>
    %2 = galvatron.transpose %1, [0, 2, 1, 3] : tensor<2x8x4x16xf32> -> tensor<2x4x8x16xf32>
    galvatron.yield %2 : tensor<2x4x8x16xf32>
  }
  return %0 : tensor<2x4x8x16xf32>
}
