// RUN: galvatron-opt %s -split-input-file --galvatron-differentiate | FileCheck %s
// Reverse-mode rules of matmul, linear and embedding.

// dA = dC·Bᵀ; dB = Aᵀ·dC summed over the batch dimensions B was broadcast
// along. Each gradient reads the other operand.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<4x2x8x32xf32>, %[[B:.*]] = %{{.*}} : tensor<16x32xf32>, %[[A:.*]] = %{{.*}} : tensor<4x2x8x16xf32>)
// CHECK: %[[DA:.*]] = galvatron.matmul %[[G]], %[[B]] {transpose_rhs = true} : (tensor<4x2x8x32xf32>, tensor<16x32xf32>) -> tensor<4x2x8x16xf32>
// CHECK: %[[P:.*]] = galvatron.matmul %[[A]], %[[G]] {transpose_lhs = true} : (tensor<4x2x8x16xf32>, tensor<4x2x8x32xf32>) -> tensor<4x2x16x32xf32>
// CHECK: %[[DB:.*]] = galvatron.reduce_sum %[[P]], [0, 1] : tensor<4x2x16x32xf32> -> tensor<16x32xf32>
// CHECK: galvatron.yield %[[DA]], %[[DB]]
func.func @main(%a: tensor<4x2x8x16xf32>, %b: tensor<16x32xf32>) -> tensor<4x2x8x32xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<4x2x8x16xf32>, %y = %b : tensor<16x32xf32>) -> tensor<4x2x8x32xf32> {
    %r = galvatron.matmul %x, %y : (tensor<4x2x8x16xf32>, tensor<16x32xf32>) -> tensor<4x2x8x32xf32>
    galvatron.yield %r : tensor<4x2x8x32xf32>
  }
  return %0 : tensor<4x2x8x32xf32>
}

// -----

// Both operands stored transposed: dA = Bᵀ·dCᵀ and dB = dCᵀ·Aᵀ.
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x8x32xf32>, %[[B:.*]] = %{{.*}} : tensor<2x32x16xf32>, %[[A:.*]] = %{{.*}} : tensor<2x16x8xf32>)
// CHECK: %[[DA:.*]] = galvatron.matmul %[[B]], %[[G]] {transpose_lhs = true, transpose_rhs = true} : (tensor<2x32x16xf32>, tensor<2x8x32xf32>) -> tensor<2x16x8xf32>
// CHECK: %[[DB:.*]] = galvatron.matmul %[[G]], %[[A]] {transpose_lhs = true, transpose_rhs = true} : (tensor<2x8x32xf32>, tensor<2x16x8xf32>) -> tensor<2x32x16xf32>
// CHECK: galvatron.yield %[[DA]], %[[DB]]
func.func @main(%a: tensor<2x16x8xf32>, %b: tensor<2x32x16xf32>) -> tensor<2x8x32xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<2x16x8xf32>, %y = %b : tensor<2x32x16xf32>) -> tensor<2x8x32xf32> {
    %r = galvatron.matmul %x, %y {transpose_lhs = true, transpose_rhs = true} : (tensor<2x16x8xf32>, tensor<2x32x16xf32>) -> tensor<2x8x32xf32>
    galvatron.yield %r : tensor<2x8x32xf32>
  }
  return %0 : tensor<2x8x32xf32>
}

// -----

// linear with a torch-layout weight [out, in] and a bias: the input gradient
// is a linear layer with the weight the other way round (re-read, not
// saved), the weight gradient one GEMM over the flattened rows, the bias
// gradient a sum over the rows. Parameter gradients accumulate into state.
// CHECK: galvatron.state gradient @bias.grad of @bias : tensor<32xf32> {init = #galvatron.init<zeros>}
// CHECK: galvatron.state gradient @w.grad of @w : tensor<32x16xf32> {init = #galvatron.init<zeros>}
// The forward returns its result and then the saved input.
// CHECK-LABEL: func.func @main(
// CHECK-SAME: -> (tensor<2x8x32xf32>, tensor<2x8x16xf32>)
// CHECK: return %{{.*}}, %arg0
// CHECK-LABEL: func.func @main_backward
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x8x32xf32>, %[[X:.*]] = %{{.*}} : tensor<2x8x16xf32>)
// CHECK: %[[W:.*]] = galvatron.param @w : tensor<32x16xf32>
// CHECK: %[[DX:.*]] = galvatron.linear %[[G]], %[[W]] : (tensor<2x8x32xf32>, tensor<32x16xf32>) -> tensor<2x8x16xf32>
// CHECK: %[[X2:.*]] = galvatron.reshape %[[X]] : tensor<2x8x16xf32> -> tensor<16x16xf32>
// CHECK: %[[G2:.*]] = galvatron.reshape %[[G]] : tensor<2x8x32xf32> -> tensor<16x32xf32>
// CHECK: %[[DW:.*]] = galvatron.matmul %[[G2]], %[[X2]] {transpose_lhs = true} : (tensor<16x32xf32>, tensor<16x16xf32>) -> tensor<32x16xf32>
// CHECK: %[[DB:.*]] = galvatron.reduce_sum %[[G]], [0, 1] : tensor<2x8x32xf32> -> tensor<32xf32>
// CHECK: %[[OB:.*]] = galvatron.read_state @bias.grad : tensor<32xf32>
// CHECK: %[[NB:.*]] = galvatron.add %[[OB]], %[[DB]]
// CHECK: galvatron.assign @bias.grad, %[[NB]]
// CHECK: %[[OW:.*]] = galvatron.read_state @w.grad : tensor<32x16xf32>
// CHECK: %[[NW:.*]] = galvatron.add %[[OW]], %[[DW]]
// CHECK: galvatron.assign @w.grad, %[[NW]]
// CHECK: galvatron.yield %[[DX]]
galvatron.parameter @w : tensor<32x16xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
galvatron.parameter @bias : tensor<32xf32> {init = #galvatron.init<zeros>}
func.func @main(%a: tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
    %w = galvatron.param @w : tensor<32x16xf32>
    %b = galvatron.param @bias : tensor<32xf32>
    %r = galvatron.linear %x, %w, %b {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<32x16xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
    galvatron.yield %r : tensor<2x8x32xf32>
  }
  return %0 : tensor<2x8x32xf32>
}

// -----

// Hugging Face Conv1D layout [in, out]: the input gradient uses the
// transposed weight, the weight gradient is Xᵀ·dY.
// CHECK-LABEL: func.func @main_backward
// CHECK: %[[W:.*]] = galvatron.param @w : tensor<16x32xf32>
// CHECK: galvatron.linear %{{.*}}, %[[W]] {transpose_weight = true} : (tensor<2x8x32xf32>, tensor<16x32xf32>) -> tensor<2x8x16xf32>
// CHECK: galvatron.matmul %{{.*}}, %{{.*}} {transpose_lhs = true} : (tensor<16x16xf32>, tensor<16x32xf32>) -> tensor<16x32xf32>
galvatron.parameter @w : tensor<16x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%a: tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
  %0 = galvatron.layer other "f" (%x = %a : tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
    %w = galvatron.param @w : tensor<16x32xf32>
    %r = galvatron.linear %x, %w : (tensor<2x8x16xf32>, tensor<16x32xf32>) -> tensor<2x8x32xf32>
    galvatron.yield %r : tensor<2x8x32xf32>
  }
  return %0 : tensor<2x8x32xf32>
}

// -----

// A table read twice (tied embedding and output projection): each read's
// gradient accumulates into the same state. The lookup's gradient is a
// scatter-add over the saved indices; integer inputs get no gradient.
// CHECK-COUNT-1: galvatron.state gradient @table.grad of @table
// CHECK-LABEL: func.func @main_backward
// CHECK-SAME: %{{.*}}: tensor<2x8x32xf32>) {
// CHECK: galvatron.layer other backward "f" (%[[G:.*]] = %{{.*}} : tensor<2x8x16xf32>, %[[I:.*]] = %{{.*}} : tensor<2x8xi64>, %[[E:.*]] = %{{.*}} : tensor<2x8x32xf32>) {
// CHECK: %[[T:.*]] = galvatron.param @table : tensor<16x32xf32>
// CHECK: %[[DE:.*]] = galvatron.linear %[[G]], %[[T]] : (tensor<2x8x16xf32>, tensor<16x32xf32>) -> tensor<2x8x32xf32>
// CHECK: %[[DT1:.*]] = galvatron.matmul
// CHECK: galvatron.read_state @table.grad
// CHECK: galvatron.assign @table.grad
// CHECK: %[[DT2:.*]] = galvatron.embedding_grad %[[DE]], %[[I]] : (tensor<2x8x32xf32>, tensor<2x8xi64>) -> tensor<16x32xf32>
// CHECK: %[[OLD:.*]] = galvatron.read_state @table.grad
// CHECK: %[[SUM:.*]] = galvatron.add %[[OLD]], %[[DT2]]
// CHECK: galvatron.assign @table.grad, %[[SUM]]
// CHECK: galvatron.yield
// CHECK-NEXT: }
// CHECK-NEXT: return
galvatron.parameter @table : tensor<16x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%ids: tensor<2x8xi64>) -> tensor<2x8x16xf32> {
  %0 = galvatron.layer other "f" (%i = %ids : tensor<2x8xi64>) -> tensor<2x8x16xf32> {
    %t = galvatron.param @table : tensor<16x32xf32>
    %e = galvatron.embedding %t, %i : (tensor<16x32xf32>, tensor<2x8xi64>) -> tensor<2x8x32xf32>
    %t2 = galvatron.param @table : tensor<16x32xf32>
    %r = galvatron.linear %e, %t2 {transpose_weight = true} : (tensor<2x8x32xf32>, tensor<16x32xf32>) -> tensor<2x8x16xf32>
    galvatron.yield %r : tensor<2x8x16xf32>
  }
  return %0 : tensor<2x8x16xf32>
}
