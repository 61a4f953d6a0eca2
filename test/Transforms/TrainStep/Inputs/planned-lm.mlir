// The tiny LM with a plan: two micro-batches of 2, bf16, the block recomputed.
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 2, global_batch = 4, precision = bf16>} {
  galvatron.parameter @wte : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc.weight : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64> {galvatron.name = "input_ids"}) -> (tensor<2x4x32xf32> {galvatron.name = "logits"}) {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      %t = galvatron.param @wte : tensor<32x8xf32>
      %e = galvatron.embedding %t, %i : (tensor<32x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %e : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer decoder "block" (%x = %0 : tensor<2x4x8xf32>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1, ckpt = true>} {
      %w = galvatron.param @fc.weight : tensor<8x8xf32>
      %h = galvatron.linear %x, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
      %g = galvatron.gelu %h approximate = tanh : tensor<2x4x8xf32>
      galvatron.yield %g : tensor<2x4x8xf32>
    }
    %2 = galvatron.layer head "head" (%x = %1 : tensor<2x4x8xf32>) -> tensor<2x4x32xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      %t = galvatron.param @wte : tensor<32x8xf32>
      %l = galvatron.linear %x, %t {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<32x8xf32>) -> tensor<2x4x32xf32>
      galvatron.yield %l : tensor<2x4x32xf32>
    }
    return %2 : tensor<2x4x32xf32>
  }
}
