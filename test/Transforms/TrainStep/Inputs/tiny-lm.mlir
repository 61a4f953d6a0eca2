// A two-layer causal LM with a tied head: the shape of every preset, small
// enough to read the training step it becomes.
galvatron.parameter @wte : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
galvatron.parameter @ln.weight : tensor<8xf32> {init = #galvatron.init<ones>}
galvatron.parameter @ln.bias : tensor<8xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @fc.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @main(%ids: tensor<2x4xi64> {galvatron.name = "input_ids"}) -> (tensor<2x4x32xf32> {galvatron.name = "logits"}) {
  %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> {
    %t = galvatron.param @wte : tensor<32x8xf32>
    %e = galvatron.embedding %t, %i : (tensor<32x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    galvatron.yield %e : tensor<2x4x8xf32>
  }
  %1 = galvatron.layer decoder "block" (%x = %0 : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %w = galvatron.param @fc.weight : tensor<8x8xf32>
    %h = galvatron.linear %x, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %g = galvatron.gelu %h approximate = tanh : tensor<2x4x8xf32>
    %r = galvatron.add %x, %g : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    galvatron.yield %r : tensor<2x4x8xf32>
  }
  %2 = galvatron.layer head "head" (%x = %1 : tensor<2x4x8xf32>) -> tensor<2x4x32xf32> {
    %g = galvatron.param @ln.weight : tensor<8xf32>
    %b = galvatron.param @ln.bias : tensor<8xf32>
    %n = galvatron.layer_norm %x, %g, %b : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %t = galvatron.param @wte : tensor<32x8xf32>
    %l = galvatron.linear %n, %t {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<32x8xf32>) -> tensor<2x4x32xf32>
    galvatron.yield %l : tensor<2x4x32xf32>
  }
  return %2 : tensor<2x4x32xf32>
}
