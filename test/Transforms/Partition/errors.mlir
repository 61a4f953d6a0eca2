// RUN: galvatron-opt %s --galvatron-partition -split-input-file -verify-diagnostics

// expected-error @+1 {{--galvatron-partition needs a #galvatron.plan (run --galvatron-search or --galvatron-apply-strategy first)}}
module {
  func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{--galvatron-partition: no function 'main'}}
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 1, global_batch = 4>} {
}

// -----

// Three heads do not split among two ranks.
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @q.weight : tensor<12x12xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x12xf32>) -> tensor<2x3x4x4xf32> {
    // expected-error @+1 {{cannot run with tp=2: }}
    %0 = galvatron.layer decoder "attn" (%a = %x : tensor<2x4x12xf32>) -> tensor<2x3x4x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @q.weight : tensor<12x12xf32>
      %q = galvatron.linear %a, %w : (tensor<2x4x12xf32>, tensor<12x12xf32>) -> tensor<2x4x12xf32>
      %q4 = galvatron.reshape %q : tensor<2x4x12xf32> -> tensor<2x4x3x4xf32>
      %qt = galvatron.transpose %q4, [0, 2, 1, 3] : tensor<2x4x3x4xf32> -> tensor<2x3x4x4xf32>
      %o = galvatron.attention %qt, %qt, %qt : (tensor<2x3x4x4xf32>, tensor<2x3x4x4xf32>, tensor<2x3x4x4xf32>) -> tensor<2x3x4x4xf32>
      galvatron.yield %o : tensor<2x3x4x4xf32>
    }
    return %0 : tensor<2x3x4x4xf32>
  }
}

// -----

// A fused weight whose segments differ (q with more heads than k and v).
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @qkv.weight : tensor<8x32xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer decoder "attn" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      // expected-error @+1 {{is a fused weight with unequal segments; tensor parallelism splits only equal ones}}
      %w = galvatron.param @qkv.weight : tensor<8x32xf32>
      %h = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x32xf32>) -> tensor<2x4x32xf32>
      %s:3 = galvatron.split %h {axis = 2 : i64, sizes = array<i64: 16, 8, 8>} : tensor<2x4x32xf32> -> tensor<2x4x16xf32>, tensor<2x4x8xf32>, tensor<2x4x8xf32>
      %q = galvatron.reshape %s#0 : tensor<2x4x16xf32> -> tensor<2x4x4x4xf32>
      %qt = galvatron.transpose %q, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %k = galvatron.reshape %s#1 : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %kt = galvatron.transpose %k, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %v = galvatron.reshape %s#2 : tensor<2x4x8xf32> -> tensor<2x4x2x4xf32>
      %vt = galvatron.transpose %v, [0, 2, 1, 3] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
      %o = galvatron.attention %qt, %kt, %vt : (tensor<2x4x4x4xf32>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x4x4x4xf32>
      %ot = galvatron.transpose %o, [0, 2, 1, 3] : tensor<2x4x4x4xf32> -> tensor<2x4x4x4xf32>
      %of = galvatron.reshape %ot : tensor<2x4x4x4xf32> -> tensor<2x4x16xf32>
      galvatron.yield %of : tensor<2x4x16xf32>
    }
    return %0 : tensor<2x4x16xf32>
  }
}

// -----

// A weight split by tensor parallelism must feed linear layers and lookups only.
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @w : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8x8xf32>) {
    %0:2 = galvatron.layer decoder "l" (%a = %x : tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<8x8xf32>) attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @w : tensor<8x8xf32>
      %y = galvatron.linear %a, %w : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
      // expected-error @+1 {{reads a tensor-parallel weight; only linear layers and lookups may}}
      %n = galvatron.neg %w : tensor<8x8xf32>
      galvatron.yield %y, %n : tensor<2x8xf32>, tensor<8x8xf32>
    }
    return %0#0, %0#1 : tensor<2x8xf32>, tensor<8x8xf32>
  }
}
