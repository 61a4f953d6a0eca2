// RUN: galvatron-opt %s --galvatron-lower-to-runtime="world-size=4 overlap=false" -split-input-file -verify-diagnostics | FileCheck %s

// Vocabulary-parallel ops name their groups; their kernels get the rank's
// block as a rank term: member i of a pair ({2, 1}) holds rows
// [8i, 8i + 8) of 16 for the lookup and its gradient, columns [4i, 4i + 4)
// of 8 for the cross-entropy.
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 1
// CHECK: grt.group @g_2x1 sizes [2] strides [1]
// CHECK: grt.program stage 0
// CHECK: grt.kernel "embedding" {{.*}}{vocab_size = 16 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 8 * @g_2x1>]
// CHECK: grt.kernel "embedding_grad" {{.*}}{vocab_size = 16 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 8 * @g_2x1>]
// CHECK: grt.kernel "vocab_cross_entropy_stats" {{.*}}{ignore_index = -100 : i64, vocab_size = 8 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 4 * @g_2x1>]
// CHECK: grt.kernel "vocab_cross_entropy" {{.*}}{ignore_index = -100 : i64, reduction = 0 : i64, vocab_size = 8 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 4 * @g_2x1>]
// CHECK: grt.kernel "vocab_cross_entropy_grad" {{.*}}{ignore_index = -100 : i64, reduction = 0 : i64, vocab_size = 8 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 4 * @g_2x1>]
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
    // expected-error @+1 {{has no device group for some of the ranks [0, 4) of its stage}}
    %e = galvatron.embedding %a, %i vocab_groups [[0, 1]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    galvatron.yield %e : tensor<2x3x4xf32>
  }
  return %0 : tensor<2x3x4xf32>
}
