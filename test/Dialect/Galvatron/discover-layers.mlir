// RUN: galvatron-opt %s -split-input-file --galvatron-discover-layers | FileCheck %s
// RUN: galvatron-opt %s -split-input-file --galvatron-discover-layers=use-names=false | FileCheck %s --check-prefix=STRUCT

galvatron.parameter @emb : tensor<10x4xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @w0 : tensor<4x4xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @w1 : tensor<4x4xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @head : tensor<10x4xf32> {init = #galvatron.init<zeros>}

// Scope names give the blocks; the mask prepared before the blocks is an
// embedding-layer output used by both; parameters are read in each layer.
// CHECK-LABEL: func.func @named
// CHECK: %[[EMB:.*]]:2 = galvatron.layer embedding "model.embeddings" (%{{.*}} = %arg0 : tensor<2x3xi64>, %{{.*}} = %arg1 : tensor<2x3xf32>) -> (tensor<2x3x4xf32>, tensor<2x3x1xf32>)
// CHECK:   galvatron.param @emb
// CHECK:   galvatron.embedding
// CHECK:   galvatron.reshape
// CHECK: %[[L0:.*]] = galvatron.layer encoder "model.layers.0" (%[[X0:.*]] = %[[EMB]]#0 : tensor<2x3x4xf32>, %[[M0:.*]] = %[[EMB]]#1 : tensor<2x3x1xf32>) -> tensor<2x3x4xf32>
// CHECK:   %[[W0:.*]] = galvatron.param @w0
// CHECK:   galvatron.linear %[[X0]], %[[W0]]
// CHECK:   galvatron.mul %{{.*}}, %[[M0]]
// CHECK: %[[L1:.*]] = galvatron.layer encoder "model.layers.1" (%{{.*}} = %[[L0]] : tensor<2x3x4xf32>, %{{.*}} = %[[EMB]]#1 : tensor<2x3x1xf32>) -> tensor<2x3x4xf32>
// CHECK:   galvatron.param @w1
// CHECK: %[[H:.*]] = galvatron.layer head "lm_head" (%{{.*}} = %[[L1]] : tensor<2x3x4xf32>) -> tensor<2x3x10xf32>
// CHECK:   galvatron.param @head
// CHECK: return %[[H]]

// Blocks from the repeated structure instead; the names still name the
// layers outside the blocks.
// STRUCT-LABEL: func.func @named
// STRUCT: galvatron.layer embedding "model.embeddings"
// STRUCT: galvatron.layer encoder "block.0"
// STRUCT: galvatron.layer encoder "block.1"
// STRUCT: galvatron.layer head "lm_head"
func.func @named(%ids: tensor<2x3xi64>, %mask: tensor<2x3xf32>) -> tensor<2x3x10xf32> {
  %e = galvatron.param @emb : tensor<10x4xf32> loc("/model/embed/Gather")
  %x = galvatron.embedding %e, %ids : (tensor<10x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32> loc("/model/embed/Gather")
  %m = galvatron.reshape %mask : tensor<2x3xf32> -> tensor<2x3x1xf32> loc("/model/Reshape")
  %w0 = galvatron.param @w0 : tensor<4x4xf32> loc("/model/layers.0/mlp/MatMul")
  %a0 = galvatron.linear %x, %w0 : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32> loc("/model/layers.0/mlp/MatMul")
  %g0 = galvatron.mul %a0, %m : (tensor<2x3x4xf32>, tensor<2x3x1xf32>) -> tensor<2x3x4xf32> loc("/model/layers.0/mlp/Mul")
  %r0 = galvatron.add %x, %g0 : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32> loc("/model/layers.0/Add")
  %w1 = galvatron.param @w1 : tensor<4x4xf32> loc("/model/layers.1/mlp/MatMul")
  %a1 = galvatron.linear %r0, %w1 : (tensor<2x3x4xf32>, tensor<4x4xf32>) -> tensor<2x3x4xf32> loc("/model/layers.1/mlp/MatMul")
  %g1 = galvatron.mul %a1, %m : (tensor<2x3x4xf32>, tensor<2x3x1xf32>) -> tensor<2x3x4xf32> loc("/model/layers.1/mlp/Mul")
  %r1 = galvatron.add %r0, %g1 : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x3x4xf32> loc("/model/layers.1/Add")
  %h = galvatron.param @head : tensor<10x4xf32> loc("/lm_head/MatMul")
  %logits = galvatron.linear %r1, %h {transpose_weight = true} : (tensor<2x3x4xf32>, tensor<10x4xf32>) -> tensor<2x3x10xf32> loc("/lm_head/MatMul")
  return %logits : tensor<2x3x10xf32>
}

// -----

galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<zeros>}

// Names that contradict the data flow (block 0 uses block 1, which uses
// block 0) are not used; the structure gives three blocks.
// CHECK-LABEL: func.func @contradicting_names
// CHECK-NOT: model.layers
// CHECK: galvatron.layer encoder "block.0"
// CHECK: galvatron.layer encoder "block.1"
// CHECK: galvatron.layer encoder "block.2"
// CHECK-NOT: galvatron.layer {{[a-z]+}} "
// CHECK: return
func.func @contradicting_names(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %w = galvatron.param @w : tensor<4x4xf32>
  %a0 = galvatron.linear %x, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc("/model/layers.0/MatMul")
  %r0 = galvatron.add %x, %a0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc("/model/layers.1/Add")
  %a1 = galvatron.linear %r0, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc("/model/layers.0/MatMul_1")
  %r1 = galvatron.add %r0, %a1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc("/model/layers.1/Add_1")
  %a2 = galvatron.linear %r1, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
  %r2 = galvatron.add %r1, %a2 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %r2 : tensor<2x4xf32>
}

// -----

// A post-norm stack (BERT): the embedding ends with the same norm the
// blocks end with, and blocks start at the attention, not at that norm.
// STRUCT-LABEL: func.func @post_norm
// STRUCT: galvatron.layer embedding "embeddings"
// STRUCT-NEXT: galvatron.layer_norm
// STRUCT: galvatron.layer encoder "block.0"
// STRUCT-NEXT: galvatron.relu
// STRUCT-NEXT: galvatron.add
// STRUCT-NEXT: galvatron.layer_norm
// STRUCT: galvatron.layer encoder "block.1"
// STRUCT: galvatron.layer encoder "block.2"
// STRUCT-NOT: galvatron.layer encoder
func.func @post_norm(%x: tensor<2x4xf32>, %g: tensor<4xf32>) -> tensor<2x4xf32> {
  %e = galvatron.layer_norm %x, %g : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %a0 = galvatron.relu %e : tensor<2x4xf32>
  %s0 = galvatron.add %e, %a0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %n0 = galvatron.layer_norm %s0, %g : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %a1 = galvatron.relu %n0 : tensor<2x4xf32>
  %s1 = galvatron.add %n0, %a1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %n1 = galvatron.layer_norm %s1, %g : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  %a2 = galvatron.relu %n1 : tensor<2x4xf32>
  %s2 = galvatron.add %n1, %a2 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  %n2 = galvatron.layer_norm %s2, %g : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return %n2 : tensor<2x4xf32>
}

// -----

// Nothing repeats: the whole function is one layer named after the model.
// CHECK-LABEL: func.func @single
// CHECK: %[[L:.*]] = galvatron.layer other "tiny" (%{{.*}} = %arg0 : tensor<4xf32>) -> tensor<4xf32>
// CHECK-NEXT: galvatron.relu
// CHECK: return %[[L]]
module attributes {galvatron.model = "tiny"} {
  func.func @single(%x: tensor<4xf32>) -> tensor<4xf32> {
    %y = galvatron.relu %x : tensor<4xf32>
    return %y : tensor<4xf32>
  }
}

// -----

// A result computed from constants alone still comes out of a layer.
// CHECK-LABEL: func.func @constant_result
// CHECK: %[[L:.*]] = galvatron.layer other "model" () -> tensor<2xf32>
// CHECK-NEXT: %[[C:.*]] = galvatron.constant
// CHECK-NEXT: galvatron.yield %[[C]]
// CHECK: return %[[L]], %arg0
func.func @constant_result(%x: tensor<3xf32>) -> (tensor<2xf32>, tensor<3xf32>) {
  %c = galvatron.constant dense<1.0> : tensor<2xf32>
  return %c, %x : tensor<2xf32>, tensor<3xf32>
}

// -----

// Functions that have layers already are left alone.
// CHECK-LABEL: func.func @layered
// CHECK: galvatron.layer head "mine"
// CHECK-NOT: galvatron.layer {{[a-z]+}} "
func.func @layered(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.layer head "mine" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    %y = galvatron.relu %a : tensor<4xf32>
    galvatron.yield %y : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}
