// RUN: galvatron-opt %s -split-input-file -verify-diagnostics --galvatron-differentiate
// RUN: not galvatron-opt %s -split-input-file --galvatron-differentiate=checkpoint=sometimes 2>&1 | FileCheck %s --check-prefix=POLICY
// POLICY: error: --galvatron-differentiate: unknown checkpoint policy 'sometimes' (expected plan, none, blocks or all)

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{is outside any galvatron.layer of @main; autodiff differentiates functions made of layers}}
  %0 = galvatron.neg %x : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<ones>}
func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = galvatron.param @w : tensor<4xf32>
    // expected-error @+1 {{has no reverse-mode rule (VJPOpInterface) but layer 'f' needs its gradient}}
    %g:3 = galvatron.layer_norm_grad %a, %a, %w : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>)
    galvatron.yield %g#0 : tensor<2x4xf32>
  }
  return %0 : tensor<2x4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'f' is already a backward layer; autodiff differentiates forward functions}}
  %0 = galvatron.layer other backward "f" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    galvatron.yield %a : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

// expected-error @+1 {{takes the name @w.grad that training state needs}}
galvatron.parameter @w.grad : tensor<4xf32> {init = #galvatron.init<ones>}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<ones>}
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    %w = galvatron.param @w : tensor<4xf32>
    %y = galvatron.mul %a, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.yield %y : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

// expected-error @+1 {{--galvatron-differentiate: no function @main with a body to differentiate}}
module {
  func.func private @main(%x: tensor<4xf32>) -> tensor<4xf32>
}

// -----

module {
  // expected-error @+1 {{--galvatron-differentiate: @main_backward already exists}}
  func.func @main_backward() {
    return
  }
  func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// The statistics of the vocabulary-parallel cross-entropy carry no gradient
// of their own: only galvatron.vocab_cross_entropy differentiates them.
galvatron.parameter @w : tensor<2x3x8xf32> {init = #galvatron.init<ones>}
func.func @main(%max: tensor<2x3xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x2xf32> {
  %0 = galvatron.layer head "h" (%m = %max : tensor<2x3xf32>, %i = %ids : tensor<2x3xi64>) -> tensor<2x3x2xf32> {
    %w = galvatron.param @w : tensor<2x3x8xf32>
    // expected-error @+1 {{has no gradient rule of its own; galvatron.vocab_cross_entropy differentiates the logits through it}}
    %s = galvatron.vocab_cross_entropy_stats %w, %m, %i vocab_groups [[0]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
    galvatron.yield %s : tensor<2x3x2xf32>
  }
  return %0 : tensor<2x3x2xf32>
}
