// RUN: galvatron-opt %s | FileCheck %s
// Round trip through the custom and the generic form.
// RUN: galvatron-opt %s | galvatron-opt | FileCheck %s
// RUN: galvatron-opt %s --mlir-print-op-generic | galvatron-opt | FileCheck %s

// CHECK-LABEL: grt.executable world_size 2 alignment 64 attributes {model = "demo", model_directory = "/models"}
grt.executable world_size 2 alignment 64 attributes {model = "demo", model_directory = "/models"} {
  // CHECK: grt.group @pair ranks [0, 1]
  grt.group @pair ranks [0, 1]
  // CHECK: grt.program rank 0 arena 512 {
  grt.program rank 0 arena 512 {
    // CHECK: %[[X:.*]] = grt.input "x" offset 0 : memref<2x4xf32>
    %x = grt.input "x" offset 0 : memref<2x4xf32>
    // CHECK: %[[W:.*]] = grt.parameter "fc.weight" offset 64 {external = #galvatron.external<location = "model.onnx", offset = 128, length = 64, key = "fc.weight">, full_shape = array<i64: 4, 8>, init = #galvatron.init<normal(0.000000e+00, 2.000000e-02)>, slice_start = array<i64: 0, 4>} : memref<4x4xf32>
    %w = grt.parameter "fc.weight" offset 64 {init = #galvatron.init<normal(0.0, 0.02)>, external = #galvatron.external<location = "model.onnx", offset = 128, length = 64, key = "fc.weight">, full_shape = array<i64: 4, 8>, slice_start = array<i64: 0, 4>} : memref<4x4xf32>
    // CHECK: %[[C:.*]] = grt.constant offset 128 dense<[1.000000e+00, 2.000000e+00, 3.000000e+00, 4.000000e+00]> : tensor<4xf32> : memref<4xf32>
    %c = grt.constant offset 128 dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32> : memref<4xf32>
    // CHECK: %[[Y:.*]] = grt.buffer offset 192 : memref<2x4xf32>
    %y = grt.buffer offset 192 : memref<2x4xf32>
    // CHECK: %[[V:.*]] = grt.view %[[Y]] at 0 : memref<2x4xf32> to memref<8xf32>
    %v = grt.view %y at 0 : memref<2x4xf32> to memref<8xf32>
    %s = grt.buffer offset 256 : memref<8xf32>
    %g = grt.buffer offset 320 : memref<16xf32>
    %r = grt.buffer offset 384 : memref<4xf32>
    %b = grt.buffer offset 448 : memref<8xf32>
    // CHECK: grt.kernel "linear" ins(%[[X]], %[[W]], %[[C]] : memref<2x4xf32>, memref<4x4xf32>, memref<4xf32>) outs(%[[Y]] : memref<2x4xf32>) {transpose_weight = true} layer "fc"
    grt.kernel "linear" ins(%x, %w, %c : memref<2x4xf32>, memref<4x4xf32>, memref<4xf32>) outs(%y : memref<2x4xf32>) {transpose_weight = true} layer "fc"
    // CHECK: grt.all_reduce sum ins(%[[V]] : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @pair layer "fc"
    grt.all_reduce sum ins(%v : memref<8xf32>) outs(%s : memref<8xf32>) group @pair layer "fc"
    // CHECK: grt.all_gather ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<16xf32>) group @pair
    grt.all_gather ins(%s : memref<8xf32>) outs(%g : memref<16xf32>) group @pair
    // CHECK: grt.reduce_scatter max ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<4xf32>) group @pair
    grt.reduce_scatter max ins(%s : memref<8xf32>) outs(%r : memref<4xf32>) group @pair
    // CHECK: grt.all_to_all ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @pair
    grt.all_to_all ins(%s : memref<8xf32>) outs(%b : memref<8xf32>) group @pair
    // CHECK: grt.broadcast root 1 ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @pair
    grt.broadcast root 1 ins(%b : memref<8xf32>) outs(%b : memref<8xf32>) group @pair
    // CHECK: grt.send %{{.*}} to 1 tag 7 layer "fc" : memref<16xf32>
    grt.send %g to 1 tag 7 layer "fc" : memref<16xf32>
    // CHECK: grt.output "reduced" %{{.*}} : memref<4xf32>
    grt.output "reduced" %r : memref<4xf32>
  }
  // CHECK: grt.program rank 1 arena 384 {
  grt.program rank 1 arena 384 {
    %p = grt.input "part" offset 0 : memref<8xf32>
    %s = grt.buffer offset 64 : memref<8xf32>
    %g = grt.buffer offset 128 : memref<16xf32>
    %r = grt.buffer offset 192 : memref<4xf32>
    %b = grt.buffer offset 256 : memref<8xf32>
    %in = grt.buffer offset 320 : memref<16xf32>
    grt.all_reduce sum ins(%p : memref<8xf32>) outs(%s : memref<8xf32>) group @pair layer "fc"
    grt.all_gather ins(%s : memref<8xf32>) outs(%g : memref<16xf32>) group @pair
    grt.reduce_scatter max ins(%s : memref<8xf32>) outs(%r : memref<4xf32>) group @pair
    grt.all_to_all ins(%s : memref<8xf32>) outs(%b : memref<8xf32>) group @pair
    grt.broadcast root 1 ins(%b : memref<8xf32>) outs(%b : memref<8xf32>) group @pair
    // CHECK: grt.recv %{{.*}} from 0 tag 7 : memref<16xf32>
    grt.recv %in from 0 tag 7 : memref<16xf32>
    grt.output "received" %in : memref<16xf32>
    grt.output "gathered" %g : memref<16xf32>
  }
}
