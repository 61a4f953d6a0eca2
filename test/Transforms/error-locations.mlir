// Analyses report an error at the op or layer it concerns, with the file,
// line and column of textual IR (an imported model: the ONNX node's name).
// RUN: not galvatron-opt %s --galvatron-search 2>&1 | FileCheck %s
// CHECK: error-locations.mlir:[[# @LINE + 6]]:8: error: --galvatron-search: @main: 'galvatron.add' sits outside every layer; the cost model needs every op inside a galvatron.layer
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  %1 = galvatron.add %0, %0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}
