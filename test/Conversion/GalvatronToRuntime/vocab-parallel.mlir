// RUN: galvatron-opt %s --galvatron-lower-to-runtime="rank=3 world-size=4" -split-input-file -verify-diagnostics | FileCheck %s

// Vocabulary-parallel ops name their groups; lowering rank 3 (second in
// [2, 3]) gives their kernels the rank's block: rows [8, 16) of 16 for the
// lookup and its gradient, columns [4, 8) of 8 for the cross-entropy.
// CHECK-LABEL: grt.program rank 3
// CHECK: grt.kernel "embedding" {{.*}}{vocab_size = 16 : i64, vocab_start = 8 : i64}
// CHECK: grt.kernel "embedding_grad" {{.*}}{vocab_size = 16 : i64, vocab_start = 8 : i64}
// CHECK: grt.kernel "vocab_cross_entropy_stats" {{.*}}{ignore_index = -100 : i64, vocab_size = 8 : i64, vocab_start = 4 : i64}
// CHECK: grt.kernel "vocab_cross_entropy" {{.*}}{ignore_index = -100 : i64, reduction = 0 : i64, vocab_size = 8 : i64, vocab_start = 4 : i64}
// CHECK: grt.kernel "vocab_cross_entropy_grad" {{.*}}{ignore_index = -100 : i64, reduction = 0 : i64, vocab_size = 8 : i64, vocab_start = 4 : i64}
func.func @main(%table: tensor<8x4xf32> {galvatron.name = "table"}, %ids: tensor<2x3xi64> {galvatron.name = "ids"}, %logits: tensor<2x3x4xf32> {galvatron.name = "logits"}, %max: tensor<2x3xf32> {galvatron.name = "max"}, %g: tensor<f32> {galvatron.name = "g"}) -> (tensor<2x3x4xf32> {galvatron.name = "e"}, tensor<8x4xf32> {galvatron.name = "t"}, tensor<f32> {galvatron.name = "loss"}, tensor<2x3x4xf32> {galvatron.name = "dl"}) {
  %0:4 = galvatron.layer head "l" (%a = %table : tensor<8x4xf32>, %i = %ids : tensor<2x3xi64>, %l = %logits : tensor<2x3x4xf32>, %m = %max : tensor<2x3xf32>, %s = %g : tensor<f32>) -> (tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<f32>, tensor<2x3x4xf32>) {
    %e = galvatron.embedding %a, %i vocab_groups [[0, 1], [2, 3]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    %t = galvatron.embedding_grad %e, %i vocab_groups [[0, 1], [2, 3]] : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<8x4xf32>
    %st = galvatron.vocab_cross_entropy_stats %l, %m, %i vocab_groups [[0, 1], [2, 3]] : (tensor<2x3x4xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
    %loss = galvatron.vocab_cross_entropy %st, %l, %m, %i vocab_groups [[0, 1], [2, 3]] : (tensor<2x3x2xf32>, tensor<2x3x4xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<f32>
    %dl = galvatron.vocab_cross_entropy_grad %s, %st, %l, %m, %i vocab_groups [[0, 1], [2, 3]] : (tensor<f32>, tensor<2x3x2xf32>, tensor<2x3x4xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    galvatron.yield %e, %t, %loss, %dl : tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<f32>, tensor<2x3x4xf32>
  }
  return %0#0, %0#1, %0#2, %0#3 : tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<f32>, tensor<2x3x4xf32>
}

// -----

func.func @main(%table: tensor<8x4xf32> {galvatron.name = "table"}, %ids: tensor<2x3xi64> {galvatron.name = "ids"}) -> (tensor<2x3x4xf32> {galvatron.name = "e"}) {
  %0 = galvatron.layer embedding "l" (%a = %table : tensor<8x4xf32>, %i = %ids : tensor<2x3xi64>) -> tensor<2x3x4xf32> {
    // expected-error @+1 {{has no device group holding rank 3}}
    %e = galvatron.embedding %a, %i vocab_groups [[0, 1]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    galvatron.yield %e : tensor<2x3x4xf32>
  }
  return %0 : tensor<2x3x4xf32>
}
