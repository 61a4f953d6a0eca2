// RUN: galvatron-opt %s --galvatron-lower-to-runtime -split-input-file | FileCheck %s

// A bf16 gradient widened only to be added to its f32 accumulator: `add`
// reads the bf16 value itself and adds in place, so no f32 copy as large as
// the weight is stored. A sum of squares (the global norm's) is one
// `reduce_sum` with `square`, not a squared copy and its sum.
// CHECK-LABEL: grt.executable
// CHECK-DAG: %[[ACC:.*]] = grt.parameter "w.grad" {{.*}}state} : memref<4x8xf32>
// CHECK-DAG: %[[G:.*]] = grt.input "g" {{.*}} : memref<4x8xbf16>
// CHECK-NOT: "cast"
// CHECK: grt.kernel "add" ins(%[[ACC]], %[[G]] : memref<4x8xf32>, memref<4x8xbf16>) outs(%[[ACC]] : memref<4x8xf32>)
// CHECK-NOT: "mul"
// CHECK: grt.kernel "reduce_sum" ins(%[[ACC]] : memref<4x8xf32>) outs(%{{.*}} : memref<f32>) {axes = array<i64: 0, 1>, square = true}
module {
  galvatron.parameter @w : tensor<4x8xf32> {init = #galvatron.init<ones>}
  galvatron.state gradient @w.grad of @w : tensor<4x8xf32> {init = #galvatron.init<zeros>}
  func.func @main(%g: tensor<4x8xbf16> {galvatron.name = "g"}) -> (tensor<f32> {galvatron.name = "norm"}) {
    %acc = galvatron.read_state @w.grad : tensor<4x8xf32>
    %wide = galvatron.cast %g : tensor<4x8xbf16> to tensor<4x8xf32>
    %sum = galvatron.add %wide, %acc : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    galvatron.assign @w.grad, %sum : tensor<4x8xf32>
    %grad = galvatron.read_state @w.grad : tensor<4x8xf32>
    %squares = galvatron.mul %grad, %grad : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %norm = galvatron.reduce_sum %squares, [0, 1] : tensor<4x8xf32> -> tensor<f32>
    return %norm : tensor<f32>
  }
}

// -----

// Two widened addends: their sum is f32 and `add` widens only its second
// operand, so both stay casts.
// CHECK-LABEL: grt.executable
// CHECK: grt.kernel "cast"
// CHECK-NEXT: grt.kernel "cast"
// CHECK-NEXT: grt.kernel "add" ins(%{{.*}}, %{{.*}} : memref<4xf32>, memref<4xf32>) outs(%{{.*}} : memref<4xf32>)
module {
  func.func @main(%a: tensor<4xbf16> {galvatron.name = "a"}, %b: tensor<4xbf16> {galvatron.name = "b"}) -> (tensor<4xf32> {galvatron.name = "y"}) {
    %wa = galvatron.cast %a : tensor<4xbf16> to tensor<4xf32>
    %wb = galvatron.cast %b : tensor<4xbf16> to tensor<4xf32>
    %y = galvatron.add %wa, %wb : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return %y : tensor<4xf32>
  }
}
