// Analyses and passes report an error at the op, layer or value it
// concerns, with the file, line and column of textual IR (an imported
// model: the ONNX node's name, see test/Target/ONNX/locations.test).
// RUN: not galvatron-opt %s -split-input-file --galvatron-search -o /dev/null 2>&1 | FileCheck %s --check-prefix=SEARCH
// RUN: not galvatron-opt %s -split-input-file --galvatron-apply-strategy="devices=2 tp=3" -o /dev/null 2>&1 | FileCheck %s --check-prefix=PLAN
// RUN: not galvatron-opt %s -split-input-file --galvatron-build-train-step -o /dev/null 2>&1 | FileCheck %s --check-prefix=TRAIN
// RUN: not galvatron-opt %s -split-input-file --galvatron-differentiate -o /dev/null 2>&1 | FileCheck %s --check-prefix=DIFF

// An op outside every layer.
// SEARCH: error-locations.mlir:[[# @LINE + 6]]:8: error: --galvatron-search: @main: 'galvatron.add' sits outside every layer; the cost model needs every op inside a galvatron.layer
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  %1 = galvatron.add %0, %0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %1 : tensor<2x4xf32>
}

// -----

// A plan that does not suit a layer: at the layer. A loss that depends on
// no parameter: at the function.
// TRAIN: error-locations.mlir:[[# @LINE + 2]]:1: error: --galvatron-build-train-step: the loss of @main does not depend on any parameter
// PLAN: error-locations.mlir:[[# @LINE + 2]]:8: error: --galvatron-apply-strategy: the plan does not suit the model: 'embeddings': tp 3 does not divide the stage's 2 devices
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}

// -----

// An input whose batch is not the plan's micro-batch: at the input.
// TRAIN: error-locations.mlir:[[# @LINE + 2]]:17: error: --galvatron-build-train-step: input #0 of @main has batch 2 but the plan's micro-batch is global_batch / micro_batches = 4
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 1, global_batch = 4>} {
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}
}

// -----

// Logits no layer computes: at the value returned as the logits.
// TRAIN: error-locations.mlir:[[# @LINE + 1]]:17: error: --galvatron-build-train-step: the logits must be a float tensor computed by a layer
func.func @main(%x: tensor<2x4xf32>) -> (tensor<2x4xf32> {galvatron.name = "logits"}, tensor<2x4xf32>) {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  return %x, %0 : tensor<2x4xf32>, tensor<2x4xf32>
}

// -----

// A function in the way of the one a pass creates: at that function.
// DIFF: error-locations.mlir:[[# @LINE + 1]]:1: error: --galvatron-differentiate: @main_backward already exists
func.func @main_backward() {
  return
}
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer embedding "embeddings" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %r = galvatron.neg %a : tensor<2x4xf32>
    galvatron.yield %r : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}
