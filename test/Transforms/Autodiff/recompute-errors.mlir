// RUN: galvatron-opt %s -verify-diagnostics --galvatron-differentiate=checkpoint=all

// Recomputing in the backward pass would re-read state that may have
// changed since the forward pass.
galvatron.state control @scale : tensor<f32> {init = #galvatron.init<ones>}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<ones>}
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.layer other "f" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    %w = galvatron.param @w : tensor<4xf32>
    // expected-error @+1 {{reads state @scale, which may change before the backward pass; layer 'f' cannot be recomputed}}
    %s = galvatron.read_state @scale : tensor<f32>
    %y = galvatron.mul %w, %s : (tensor<4xf32>, tensor<f32>) -> tensor<4xf32>
    %z = galvatron.mul %y, %a : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    galvatron.yield %z : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}
