// RUN: galvatron-opt %s --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of the reductions: the result gradient, in the
// keep-dims shape, broadcast back over the reduced axes (divided by the
// count for a mean); a maximum's gradient goes to the maxima, split evenly
// among ties, from the saved input and output.

// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[GS:.*]] = %{{.*}} : tensor<2x16xf32>, %[[GM:.*]] = %{{.*}} : tensor<2x8x1xf32>, %[[GX:.*]] = %{{.*}} : tensor<8xf32>, %[[X:.*]] = %{{.*}} : tensor<2x8x16xf32>, %[[Y:.*]] = %{{.*}} : tensor<8xf32>)
// CHECK: %[[GK:.*]] = galvatron.reshape %[[GX]] : tensor<8xf32> -> tensor<1x8x1xf32>
// CHECK: %[[YK:.*]] = galvatron.reshape %[[Y]] : tensor<8xf32> -> tensor<1x8x1xf32>
// CHECK: %[[IS:.*]] = galvatron.compare eq, %[[X]], %[[YK]] : (tensor<2x8x16xf32>, tensor<1x8x1xf32>) -> tensor<2x8x16xi1>
// CHECK: %[[F:.*]] = galvatron.cast %[[IS]] : tensor<2x8x16xi1> to tensor<2x8x16xf32>
// CHECK: %[[TIES:.*]] = galvatron.reduce_sum %[[F]], [0, 2] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<1x8x1xf32>
// CHECK: %[[SH:.*]] = galvatron.div %[[GK]], %[[TIES]]
// CHECK: %[[Z:.*]] = galvatron.constant dense<0.000000e+00>
// CHECK: %[[D1:.*]] = galvatron.select %[[IS]], %[[SH]], %[[Z]] : (tensor<2x8x16xi1>, tensor<1x8x1xf32>, tensor<f32>) -> tensor<2x8x16xf32>
// CHECK: %[[N:.*]] = galvatron.constant dense<6.250000e-02>
// CHECK: %[[MS:.*]] = galvatron.mul %[[GM]], %[[N]]
// CHECK: %[[D2:.*]] = galvatron.broadcast %[[MS]] : tensor<2x8x1xf32> -> tensor<2x8x16xf32>
// CHECK: %[[A:.*]] = galvatron.add %[[D1]], %[[D2]]
// CHECK: %[[SK:.*]] = galvatron.reshape %[[GS]] : tensor<2x16xf32> -> tensor<2x1x16xf32>
// CHECK: %[[D3:.*]] = galvatron.broadcast %[[SK]] : tensor<2x1x16xf32> -> tensor<2x8x16xf32>
// CHECK: %[[DX:.*]] = galvatron.add %[[A]], %[[D3]]
// CHECK: galvatron.yield %[[DX]]
func.func @main(%a: tensor<2x8x16xf32>) -> (tensor<2x16xf32>, tensor<2x8x1xf32>, tensor<8xf32>) {
  %0:3 = galvatron.layer other "f" (%x = %a : tensor<2x8x16xf32>) -> (tensor<2x16xf32>, tensor<2x8x1xf32>, tensor<8xf32>) {
    %s = galvatron.reduce_sum %x, [1] : tensor<2x8x16xf32> -> tensor<2x16xf32>
    %m = galvatron.reduce_mean %x, [-1] {keep_dims = true} : tensor<2x8x16xf32> -> tensor<2x8x1xf32>
    %x2 = galvatron.reduce_max %x, [0, 2] : tensor<2x8x16xf32> -> tensor<8xf32>
    galvatron.yield %s, %m, %x2 : tensor<2x16xf32>, tensor<2x8x1xf32>, tensor<8xf32>
  }
  return %0#0, %0#1, %0#2 : tensor<2x16xf32>, tensor<2x8x1xf32>, tensor<8xf32>
}
