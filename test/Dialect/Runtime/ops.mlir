// RUN: galvatron-opt %s -split-input-file | FileCheck %s
// Round trip through the custom and the generic form.
// RUN: galvatron-opt %s -split-input-file | galvatron-opt -split-input-file | FileCheck %s
// RUN: galvatron-opt %s -split-input-file --mlir-print-op-generic | galvatron-opt -split-input-file | FileCheck %s

// Two stages of two ranks: group families over mesh axes, a rank term on a
// sharded parameter and on a kernel attribute, messages to a peer stage.
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 2 attributes {model = "demo", model_directory = "/models"}
grt.executable world_size 4 alignment 64 stages 2 attributes {model = "demo", model_directory = "/models"} {
  // CHECK: grt.group @g_2x1 sizes [2] strides [1]
  grt.group @g_2x1 sizes [2] strides [1]
  // CHECK: grt.group @g_2x2_2x1 sizes [2, 2] strides [2, 1]
  grt.group @g_2x2_2x1 sizes [2, 2] strides [2, 1]
  // CHECK: grt.program stage 0 arena 512 {
  grt.program stage 0 arena 512 {
    // CHECK: %[[X:.*]] = grt.input "x" offset 0 : memref<2x4xf32>
    %x = grt.input "x" offset 0 : memref<2x4xf32>
    // CHECK: %[[W:.*]] = grt.parameter "fc.weight" offset 64 {external = #galvatron.external<location = "model.onnx", offset = 128, length = 64, key = "fc.weight">, full_shape = array<i64: 4, 8>, init = #galvatron.init<normal(0.000000e+00, 2.000000e-02)>, slice_start = array<i64: 0, 0>, slice_terms = [#grt.term<"slice_start"[1], 4 * @g_2x1>]} : memref<4x4xf32>
    %w = grt.parameter "fc.weight" offset 64 {init = #galvatron.init<normal(0.0, 0.02)>, external = #galvatron.external<location = "model.onnx", offset = 128, length = 64, key = "fc.weight">, full_shape = array<i64: 4, 8>, slice_start = array<i64: 0, 0>, slice_terms = [#grt.term<"slice_start"[1], 4 * @g_2x1>]} : memref<4x4xf32>
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
    %row = grt.buffer offset 256 : memref<1x4xf32>
    // CHECK: grt.kernel "linear" ins(%[[X]], %[[W]], %[[C]] : memref<2x4xf32>, memref<4x4xf32>, memref<4xf32>) outs(%[[Y]] : memref<2x4xf32>) {transpose_weight = true} layer "fc"
    grt.kernel "linear" ins(%x, %w, %c : memref<2x4xf32>, memref<4x4xf32>, memref<4xf32>) outs(%y : memref<2x4xf32>) {transpose_weight = true} layer "fc"
    // CHECK: grt.all_reduce sum ins(%[[V]] : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @g_2x1 layer "fc"
    grt.all_reduce sum ins(%v : memref<8xf32>) outs(%s : memref<8xf32>) group @g_2x1 layer "fc"
    // CHECK: grt.all_gather ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<16xf32>) group @g_2x1
    grt.all_gather ins(%s : memref<8xf32>) outs(%g : memref<16xf32>) group @g_2x1
    // CHECK: grt.reduce_scatter max ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<4xf32>) group @g_2x1
    grt.reduce_scatter max ins(%s : memref<8xf32>) outs(%r : memref<4xf32>) group @g_2x1
    // CHECK: grt.all_to_all ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @g_2x1
    grt.all_to_all ins(%s : memref<8xf32>) outs(%b : memref<8xf32>) group @g_2x1
    // CHECK: grt.broadcast root 1 ins(%{{.*}} : memref<8xf32>) outs(%{{.*}} : memref<8xf32>) group @g_2x1
    grt.broadcast root 1 ins(%b : memref<8xf32>) outs(%b : memref<8xf32>) group @g_2x1
    // CHECK: grt.kernel "slice" ins(%[[Y]] : memref<2x4xf32>) outs(%{{.*}} : memref<1x4xf32>) {limits = array<i64: 1, 4>, starts = array<i64: 0, 0>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 1 * @g_2x1>, #grt.term<"limits"[0], 1 * @g_2x1>]
    grt.kernel "slice" ins(%y : memref<2x4xf32>) outs(%row : memref<1x4xf32>) {starts = array<i64: 0, 0>, limits = array<i64: 1, 4>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 1 * @g_2x1>, #grt.term<"limits"[0], 1 * @g_2x1>]
    // CHECK: grt.send %{{.*}} to stage 1 tag 7 layer "fc" : memref<16xf32>
    grt.send %g to stage 1 tag 7 layer "fc" : memref<16xf32>
    // CHECK: grt.output "reduced" %{{.*}} : memref<4xf32>
    grt.output "reduced" %r : memref<4xf32>
    grt.output "row" %row : memref<1x4xf32>
  }
  // CHECK: grt.program stage 1 arena 384 {
  grt.program stage 1 arena 384 {
    %p = grt.input "part" offset 0 : memref<8xf32>
    %s = grt.buffer offset 64 : memref<8xf32>
    %g = grt.buffer offset 128 : memref<16xf32>
    %r = grt.buffer offset 192 : memref<4xf32>
    %b = grt.buffer offset 256 : memref<8xf32>
    %in = grt.buffer offset 320 : memref<16xf32>
    grt.all_reduce sum ins(%p : memref<8xf32>) outs(%s : memref<8xf32>) group @g_2x1 layer "fc"
    grt.all_gather ins(%s : memref<8xf32>) outs(%g : memref<16xf32>) group @g_2x1
    grt.reduce_scatter max ins(%s : memref<8xf32>) outs(%r : memref<4xf32>) group @g_2x1
    grt.all_to_all ins(%s : memref<8xf32>) outs(%b : memref<8xf32>) group @g_2x1
    grt.broadcast root 1 ins(%b : memref<8xf32>) outs(%b : memref<8xf32>) group @g_2x1
    // CHECK: grt.recv %{{.*}} from stage 0 tag 7 : memref<16xf32>
    grt.recv %in from stage 0 tag 7 : memref<16xf32>
    grt.output "received" %in : memref<16xf32>
    grt.output "gathered" %g : memref<16xf32>
  }
}

// -----

// A training step as a loop: per micro-batch the forward (its input given
// per micro-batch) and the backward in the micro-batch's slot, then the
// optimizer once; two slots for 1F1B's two micro-batches in flight.
// CHECK-LABEL: grt.executable world_size 1 alignment 64 stages 1
grt.executable world_size 1 alignment 64 stages 1 {
  grt.program stage 0 arena 384 {
    // CHECK: grt.parameter "acc" offset 0 {init = #galvatron.init<zeros>, state} : memref<2xf32>
    %acc = grt.parameter "acc" offset 0 {init = #galvatron.init<zeros>, state} : memref<2xf32>
    // CHECK: grt.input "in" offset 256 per_micro_batch "forward" : memref<2xf32>
    %in = grt.input "in" offset 256 per_micro_batch "forward" : memref<2xf32>
    // CHECK: grt.buffer offset 64 slotted : memref<2xf32>
    %doubled = grt.buffer offset 64 slotted : memref<2xf32>
    %total = grt.buffer offset 320 : memref<2xf32>
    // CHECK: grt.block "forward" slotted {
    grt.block "forward" slotted {
      grt.kernel "add" ins(%in, %in : memref<2xf32>, memref<2xf32>) outs(%doubled : memref<2xf32>) {}
    }
    grt.block "backward" slotted {
      grt.kernel "add" ins(%acc, %doubled : memref<2xf32>, memref<2xf32>) outs(%acc : memref<2xf32>) {}
    }
    // CHECK: grt.block "optimizer" {
    grt.block "optimizer" {
      grt.kernel "copy" ins(%acc : memref<2xf32>) outs(%total : memref<2xf32>) {}
    }
    // CHECK: grt.schedule micro_batches 3 slots 2 at 64 size 64 [1 x [forward 0], 2 x [forward 1, backward 0], 1 x [backward 2], 1 x [optimizer 0]]
    grt.schedule micro_batches 3 slots 2 at 64 size 64 [1 x [forward 0], 2 x [forward 1, backward 0], 1 x [backward 2], 1 x [optimizer 0]]
    grt.output "total" %total : memref<2xf32>
  }
}
