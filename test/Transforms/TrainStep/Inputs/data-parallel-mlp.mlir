module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 2, global_batch = 8>} {
  galvatron.parameter @fc1.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc1.bias : tensor<32xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @fc2.weight : tensor<32x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @fc2.bias : tensor<3xf32> {init = #galvatron.init<zeros>}
  func.func @main(%x: tensor<4x3x8xf32>) -> tensor<4x3x3xf32> {
    %0 = galvatron.layer decoder "mlp" (%a = %x : tensor<4x3x8xf32>) -> tensor<4x3x3xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %w1 = galvatron.param @fc1.weight : tensor<8x32xf32>
      %b1 = galvatron.param @fc1.bias : tensor<32xf32>
      %h = galvatron.linear %a, %w1, %b1 : (tensor<4x3x8xf32>, tensor<8x32xf32>, tensor<32xf32>) -> tensor<4x3x32xf32>
      %g = galvatron.gelu %h : tensor<4x3x32xf32>
      %w2 = galvatron.param @fc2.weight : tensor<32x8xf32>
      %b2 = galvatron.param @fc2.bias : tensor<3xf32>
      %y = galvatron.linear %g, %w2 : (tensor<4x3x32xf32>, tensor<32x8xf32>) -> tensor<4x3x8xf32>
      %s = galvatron.slice %y [0, 0, 0] to [4, 3, 3] step [1, 1, 1] : tensor<4x3x8xf32> -> tensor<4x3x3xf32>
      %r = galvatron.add %s, %b2 : (tensor<4x3x3xf32>, tensor<3xf32>) -> tensor<4x3x3xf32>
      galvatron.yield %r : tensor<4x3x3xf32>
    }
    return %0 : tensor<4x3x3xf32>
  }
}
