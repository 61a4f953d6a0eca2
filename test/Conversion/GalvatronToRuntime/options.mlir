// RUN: galvatron-opt %s --galvatron-lower-to-runtime="alignment=256 model-dir=/data" | FileCheck %s
// RUN: galvatron-opt %s --galvatron-lower-to-runtime="entry=second" | FileCheck %s --check-prefix=ENTRY
// RUN: not galvatron-opt %s --galvatron-lower-to-runtime="alignment=48" 2>&1 | FileCheck %s --check-prefix=ALIGN
// RUN: not galvatron-opt %s --galvatron-lower-to-runtime="world-size=-1" 2>&1 | FileCheck %s --check-prefix=WORLD
// RUN: galvatron-opt %s --galvatron-lower-to-runtime="world-size=4" | FileCheck %s --check-prefix=FOUR

// CHECK: grt.executable world_size 1 alignment 256 stages 1 attributes {model_directory = "/data"}
// CHECK: grt.program stage 0 arena 512
// CHECK-NEXT: grt.input "input0" offset 0 : memref<4xf32>
// CHECK-NEXT: grt.buffer offset 256 : memref<4xf32>
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = galvatron.neg %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// ENTRY: func.func @main
// ENTRY: grt.kernel "exp"
func.func @second(%x: tensor<4xf32>) -> tensor<4xf32> {
  %y = galvatron.exp %x : tensor<4xf32>
  return %y : tensor<4xf32>
}

// ALIGN: error: alignment must be a power of two up to 4096, got 48

// WORLD: error: a world of -1 ranks does not split into 1 pipeline stages

// A program without collectives serves any number of ranks of its stage.
// FOUR: grt.executable world_size 4 alignment 64 stages 1
