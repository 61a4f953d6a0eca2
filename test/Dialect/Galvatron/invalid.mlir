// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{@w needs an initializer or external data}}
galvatron.parameter @w : tensor<4xf32>

// -----

// expected-error @+1 {{attribute 'type' failed to satisfy constraint}}
galvatron.parameter @w : tensor<4xi32> {init = #galvatron.init<zeros>}

// -----

func.func @f() {
  // expected-error @+1 {{expects parent op 'builtin.module'}}
  galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
  return
}

// -----

// expected-error @+1 {{unknown initializer 'gaussian'}}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<gaussian(0.0, 1.0)>}

// -----

// expected-error @+1 {{normal initializer needs a non-negative standard deviation, got -1}}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<normal(0.0, -1.0)>}

// -----

// expected-error @+1 {{uniform initializer needs low <= high, got [1, -1]}}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<uniform(1.0, -1.0)>}

// -----

// expected-error @+1 {{external data needs a non-empty location}}
galvatron.parameter @w : tensor<4xf32> {external = #galvatron.external<location = "">}

// -----

// expected-error @+1 {{external data offset must be non-negative, got -8}}
galvatron.parameter @w : tensor<4xf32> {external = #galvatron.external<location = "w.bin", offset = -8>}

// -----

// expected-error @+1 {{external data length must be -1 (to the end) or non-negative, got -2}}
galvatron.parameter @w : tensor<4xf32> {external = #galvatron.external<location = "w.bin", length = -2>}

// -----

func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{refers to 'missing', which is not a galvatron.parameter}}
  %0 = galvatron.param @missing : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @f() -> tensor<8xf32> {
  // expected-error @+1 {{type 'tensor<8xf32>' does not match @w's declared type 'tensor<4xf32>'}}
  %0 = galvatron.param @w : tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.layer decoder "outer" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @+1 {{'inner' is nested in another layer; layers must be direct parts of a function}}
    %1 = galvatron.layer decoder "inner" (%b = %a : tensor<4xf32>) -> tensor<4xf32> {
      galvatron.yield %b : tensor<4xf32>
    }
    galvatron.yield %1 : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{'a' has a #galvatron.strategy but the enclosing module has no #galvatron.plan}}
  %0 = galvatron.layer decoder "a" (%a = %x : tensor<4xf32>) -> tensor<4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
    galvatron.yield %a : tensor<4xf32>
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<8xf32> {
  // expected-error @+1 {{yields ('tensor<4xf32>') but the layer returns ('tensor<8xf32>')}}
  %0 = galvatron.layer decoder "a" (%a = %x : tensor<4xf32>) -> tensor<8xf32> {
    galvatron.yield %a : tensor<4xf32>
  }
  return %0 : tensor<8xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{body argument #0 has type 'tensor<8xf32>' but input is 'tensor<4xf32>'}}
  %0 = "galvatron.layer"(%x) ({
  ^bb0(%a: tensor<8xf32>):
    %c = galvatron.constant dense<0.0> : tensor<4xf32>
    galvatron.yield %c : tensor<4xf32>
  }) {layer_name = "a", kind = 2 : i32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{body has 0 arguments for 1 inputs}}
  %0 = "galvatron.layer"(%x) ({
    %c = galvatron.constant dense<0.0> : tensor<4xf32>
    galvatron.yield %c : tensor<4xf32>
  }) {layer_name = "a", kind = 2 : i32} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{unknown layer kind 'block' (expected embedding, encoder, decoder, head or other)}}
  %0 = galvatron.layer block "a" (%a = %x : tensor<4xf32>) -> tensor<4xf32> {
    galvatron.yield %a : tensor<4xf32>
  }
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{holds 65537 elements; constants hold at most 65536 (declare weights with galvatron.parameter)}}
  %0 = galvatron.constant dense<0.0> : tensor<65537xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{shapes [2, 3] and [4] do not broadcast}}
  // expected-error @+1 {{'galvatron.add' op failed to infer returned types}}
  %0 = galvatron.add %a, %b : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xf32>) {
  // expected-error @+2 {{inferred type(s) 'tensor<2x3xf32>' are incompatible with return type(s) of operation 'tensor<3x3xf32>'}}
  // expected-error @+1 {{'galvatron.mul' op failed to infer returned types}}
  %0 = galvatron.mul %a, %b : (tensor<2x3xf32>, tensor<3xf32>) -> tensor<3x3xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<3xbf16>) {
  // expected-error @+1 {{requires the same element type for all operands}}
  %0 = galvatron.sub %a, %b : (tensor<2x3xf32>, tensor<3xbf16>) -> tensor<2x3xf32>
  return
}

// -----

func.func @f(%c: tensor<2xi1>, %a: tensor<2xf32>, %b: tensor<2xbf16>) {
  // expected-error @+2 {{select operands have different element types 'f32' and 'bf16'}}
  // expected-error @+1 {{'galvatron.select' op failed to infer returned types}}
  %0 = galvatron.select %c, %a, %b : (tensor<2xi1>, tensor<2xf32>, tensor<2xbf16>) -> tensor<2xf32>
  return
}

// -----

func.func @f(%c: tensor<3xi1>, %a: tensor<2xf32>) {
  // expected-error @+2 {{shapes [3] and [2] do not broadcast}}
  // expected-error @+1 {{'galvatron.select' op failed to infer returned types}}
  %0 = galvatron.select %c, %a, %a : (tensor<3xi1>, tensor<2xf32>, tensor<2xf32>) -> tensor<2xf32>
  return
}

// -----

func.func @f(%a: tensor<?x3xf32>) {
  // expected-error @+1 {{operand #0 must be statically shaped tensor of 16-bit float or bfloat16 type or 32-bit float values, but got 'tensor<?x3xf32>'}}
  %0 = galvatron.exp %a : tensor<?x3xf32>
  return
}

// -----

func.func @f(%a: tensor<4xf32>, %b: tensor<4x4xf32>) {
  // expected-error @+2 {{matmul operands must have rank >= 2, got 1 and 2}}
  // expected-error @+1 {{'galvatron.matmul' op failed to infer returned types}}
  %0 = galvatron.matmul %a, %b : (tensor<4xf32>, tensor<4x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @f(%a: tensor<2x3xf32>, %b: tensor<4x5xf32>) {
  // expected-error @+2 {{contracting dimensions differ: 3 vs 4}}
  // expected-error @+1 {{'galvatron.matmul' op failed to infer returned types}}
  %0 = galvatron.matmul %a, %b : (tensor<2x3xf32>, tensor<4x5xf32>) -> tensor<2x5xf32>
  return
}

// -----

func.func @f(%a: tensor<2x2x3xf32>, %b: tensor<3x3x5xf32>) {
  // expected-error @+2 {{batch dimensions [2] and [3] do not broadcast}}
  // expected-error @+1 {{'galvatron.matmul' op failed to infer returned types}}
  %0 = galvatron.matmul %a, %b : (tensor<2x2x3xf32>, tensor<3x3x5xf32>) -> tensor<2x2x5xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<4x4xf32>) {
  // expected-error @+2 {{linear input must have rank >= 1}}
  // expected-error @+1 {{'galvatron.linear' op failed to infer returned types}}
  %0 = galvatron.linear %x, %w : (tensor<f32>, tensor<4x4xf32>) -> tensor<4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+2 {{linear weight must have rank 2, got 1}}
  // expected-error @+1 {{'galvatron.linear' op failed to infer returned types}}
  %0 = galvatron.linear %x, %w : (tensor<2x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<8x4xf32>) {
  // expected-error @+2 {{input features 4 do not match the weight's 8}}
  // expected-error @+1 {{'galvatron.linear' op failed to infer returned types}}
  %0 = galvatron.linear %x, %w : (tensor<2x4xf32>, tensor<8x4xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<8x4xf32>, %b: tensor<4xf32>) {
  // expected-error @+2 {{bias must be [8], got [4]}}
  // expected-error @+1 {{'galvatron.linear' op failed to infer returned types}}
  %0 = galvatron.linear %x, %w, %b {transpose_weight = true} : (tensor<2x4xf32>, tensor<8x4xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%t: tensor<4xf32>, %i: tensor<2xi64>) {
  // expected-error @+2 {{embedding table must have rank 2, got 1}}
  // expected-error @+1 {{'galvatron.embedding' op failed to infer returned types}}
  %0 = galvatron.embedding %t, %i : (tensor<4xf32>, tensor<2xi64>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%t: tensor<4x4xf32>, %i: tensor<2xf32>) {
  // expected-error @+1 {{operand #1 must be statically shaped tensor of 32-bit signless integer or 64-bit signless integer values}}
  %0 = galvatron.embedding %t, %i : (tensor<4x4xf32>, tensor<2xf32>) -> tensor<2x4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{weight must be [8] to match the last dimension, got [4]}}
  %0 = galvatron.layer_norm %x, %w : (tensor<2x8xf32>, tensor<4xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>, %b: tensor<2x8xf32>) {
  // expected-error @+1 {{bias must be [8] to match the last dimension, got [2, 8]}}
  %0 = galvatron.layer_norm %x, %w, %b : (tensor<2x8xf32>, tensor<8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %0 = galvatron.layer_norm %x, %w {epsilon = 0.0 : f64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = galvatron.layer_norm %x, %w : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<2xf32>) {
  // expected-error @+1 {{weight must be [8] to match the last dimension, got [2]}}
  %0 = galvatron.rms_norm %x, %w : (tensor<2x8xf32>, tensor<2xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %w: tensor<8xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %0 = galvatron.rms_norm %x, %w {epsilon = -1.0 : f64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0 = galvatron.rms_norm %x, %w : (tensor<f32>, tensor<1xf32>) -> tensor<f32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{axis 2 is out of range for rank 2}}
  %0 = galvatron.softmax %x {axis = 2 : i64} : tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{cannot reshape 16 elements into [3, 5] (15 elements)}}
  %0 = galvatron.reshape %x : tensor<2x8xf32> -> tensor<3x5xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{permutation has 3 entries for rank 2}}
  // expected-error @+1 {{'galvatron.transpose' op failed to infer returned types}}
  %0 = galvatron.transpose %x, [0, 1, 2] : tensor<2x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{invalid permutation [1, 1]}}
  // expected-error @+1 {{'galvatron.transpose' op failed to infer returned types}}
  %0 = galvatron.transpose %x, [1, 1] : tensor<2x8xf32> -> tensor<8x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{slice needs a start, limit and stride for each of the 2 dimensions}}
  // expected-error @+1 {{'galvatron.slice' op failed to infer returned types}}
  %0 = galvatron.slice %x [0] to [2] step [1] : tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{slice stride must be positive in dimension 1}}
  // expected-error @+1 {{'galvatron.slice' op failed to infer returned types}}
  %0 = galvatron.slice %x [0, 0] to [2, 8] step [1, 0] : tensor<2x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{slice [4, 9) is out of bounds for dimension 1 of size 8}}
  // expected-error @+1 {{'galvatron.slice' op failed to infer returned types}}
  %0 = galvatron.slice %x [0, 4] to [2, 9] step [1, 1] : tensor<2x8xf32> -> tensor<2x5xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{concat axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'galvatron.concat' op failed to infer returned types}}
  %0 = galvatron.concat %x, %x {axis = 2 : i64} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %y: tensor<3x8xf32>) {
  // expected-error @+2 {{concat inputs differ in dimension 0 (2 vs 3)}}
  // expected-error @+1 {{'galvatron.concat' op failed to infer returned types}}
  %0 = galvatron.concat %x, %y {axis = 1 : i64} : (tensor<2x8xf32>, tensor<3x8xf32>) -> tensor<2x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>, %y: tensor<8xf32>) {
  // expected-error @+2 {{concat inputs differ in rank}}
  // expected-error @+1 {{'galvatron.concat' op failed to infer returned types}}
  %0 = galvatron.concat %x, %y {axis = 0 : i64} : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<3x8xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{expected 1 or more operands, but found 0}}
  %0 = "galvatron.concat"() {axis = 0 : i64} : () -> tensor<2xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{split sizes add up to 7 but dimension 1 has size 8}}
  // expected-error @+1 {{'galvatron.split' op failed to infer returned types}}
  %0:2 = galvatron.split %x {axis = 1 : i64, sizes = array<i64: 3, 4>} : tensor<2x8xf32> -> tensor<2x3xf32>, tensor<2x4xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{split sizes must be positive}}
  // expected-error @+1 {{'galvatron.split' op failed to infer returned types}}
  %0:2 = galvatron.split %x {axis = 1 : i64, sizes = array<i64: 8, 0>} : tensor<2x8xf32> -> tensor<2x8xf32>, tensor<2x0xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{split axis -3 is out of range for rank 2}}
  // expected-error @+1 {{'galvatron.split' op failed to infer returned types}}
  %0 = galvatron.split %x {axis = -3 : i64, sizes = array<i64: 2>} : tensor<2x8xf32> -> tensor<2x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{cannot broadcast [2, 8] to [4, 8]}}
  %0 = galvatron.broadcast %x : tensor<2x8xf32> -> tensor<4x8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+1 {{cannot broadcast [2, 8] to [8]}}
  %0 = galvatron.broadcast %x : tensor<2x8xf32> -> tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{reduction axis 2 is out of range for rank 2}}
  // expected-error @+1 {{'galvatron.reduce_sum' op failed to infer returned types}}
  %0 = galvatron.reduce_sum %x, [2] : tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

func.func @f(%x: tensor<2x8xf32>) {
  // expected-error @+2 {{reduction axis -1 is repeated}}
  // expected-error @+1 {{'galvatron.reduce_max' op failed to infer returned types}}
  %0 = galvatron.reduce_max %x, [1, -1] : tensor<2x8xf32> -> tensor<2xf32>
  return
}

// -----

func.func @f(%x: tensor<8xf32>) {
  // expected-error @+1 {{input must have rank >= 2}}
  %0 = galvatron.rotary %x {seq_axis = 0 : i64} : tensor<8xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{sequence axis 3 must name a dimension other than the last}}
  %0 = galvatron.rotary %x {seq_axis = 3 : i64} : tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{rotary dimension 7 must be even, at least 2 and at most the feature size 16}}
  %0 = galvatron.rotary %x {seq_axis = 2 : i64, rotary_dim = 7 : i64} : tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%x: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{theta must be positive}}
  %0 = galvatron.rotary %x {seq_axis = 2 : i64, theta = 0.0 : f64} : tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x8x16xf32>) {
  // expected-error @+2 {{query, key and value must be [batch, heads, seq, head_dim]}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %q, %q : (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xbf16>) {
  // expected-error @+2 {{query, key and value must share an element type}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %k : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xbf16>, tensor<2x4x8x16xbf16>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<3x4x8x16xf32>) {
  // expected-error @+2 {{batch sizes differ}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %k : (tensor<2x4x8x16xf32>, tensor<3x4x8x16xf32>, tensor<3x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x2x8x16xf32>, %v: tensor<2x1x8x16xf32>) {
  // expected-error @+2 {{key has 2 heads but value has 1}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %v : (tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x1x8x16xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x3x8x16xf32>) {
  // expected-error @+2 {{4 query heads are not a multiple of 3 key/value heads}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %k : (tensor<2x4x8x16xf32>, tensor<2x3x8x16xf32>, tensor<2x3x8x16xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x32xf32>) {
  // expected-error @+2 {{query head size 16 differs from key head size 32}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %k : (tensor<2x4x8x16xf32>, tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>) -> tensor<2x4x8x32xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x8x16xf32>, %v: tensor<2x4x9x16xf32>) {
  // expected-error @+2 {{key length 8 differs from value length 9}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %v : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x9x16xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %k: tensor<2x4x12x16xf32>) {
  // expected-error @+2 {{causal attention needs equal query and key lengths, got 8 and 12}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %k, %k {causal = true} : (tensor<2x4x8x16xf32>, tensor<2x4x12x16xf32>, tensor<2x4x12x16xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %m: tensor<2x1x8x9xf32>) {
  // expected-error @+2 {{mask [2, 1, 8, 9] does not broadcast to the scores [2, 4, 8, 8]}}
  // expected-error @+1 {{'galvatron.attention' op failed to infer returned types}}
  %0 = galvatron.attention %q, %q, %q, %m : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x1x8x9xf32>) -> tensor<2x4x8x16xf32>
  return
}

// -----

func.func @f(%l: tensor<2x8x100xf32>, %t: tensor<2x7xi64>) {
  // expected-error @+2 {{labels [2, 7] must match the logits' leading shape [2, 8]}}
  // expected-error @+1 {{'galvatron.cross_entropy' op failed to infer returned types}}
  %0 = galvatron.cross_entropy %l, %t : (tensor<2x8x100xf32>, tensor<2x7xi64>) -> tensor<f32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{result must be [query_len, key_len]}}
  %0 = galvatron.relative_position_bucket {num_buckets = 32 : i64, max_distance = 128 : i64, bidirectional = true} : tensor<8xi64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{needs at least 4 buckets, got 2}}
  %0 = galvatron.relative_position_bucket {num_buckets = 2 : i64, max_distance = 128 : i64, bidirectional = true} : tensor<8x8xi64>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{max_distance must be positive}}
  %0 = galvatron.relative_position_bucket {num_buckets = 32 : i64, max_distance = 0 : i64, bidirectional = false} : tensor<8x8xi64>
  return
}

// -----

func.func @f(%x: tensor<2x3x32xf32>) {
  // expected-error @+2 {{images must be [batch, channels, height, width]}}
  // expected-error @+1 {{'galvatron.extract_patches' op failed to infer returned types}}
  %0 = galvatron.extract_patches %x {patch_size = 8 : i64} : tensor<2x3x32xf32> -> tensor<2x4x96xf32>
  return
}

// -----

func.func @f(%x: tensor<2x3x30x32xf32>) {
  // expected-error @+2 {{patch size 8 does not tile a 30x32 image}}
  // expected-error @+1 {{'galvatron.extract_patches' op failed to infer returned types}}
  %0 = galvatron.extract_patches %x {patch_size = 8 : i64} : tensor<2x3x30x32xf32> -> tensor<2x12x192xf32>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{result must have rank >= 2 ([..., rows, cols]), got rank 1}}
  %0 = galvatron.tril_mask : tensor<8xi1>
  return
}

// -----

func.func @f() {
  // expected-error @+1 {{must be statically shaped tensor of 1-bit signless integer values}}
  %0 = galvatron.tril_mask : tensor<8x8xf32>
  return
}

// -----

// expected-error @+1 {{@w.grad belongs to 'nothing', which is not a galvatron.parameter}}
galvatron.state gradient @w.grad of @nothing : tensor<4xf32> {init = #galvatron.init<zeros>}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
// expected-error @+1 {{@w.grad has shape [8] but its parameter @w has shape [4]}}
galvatron.state gradient @w.grad of @w : tensor<8xf32> {init = #galvatron.init<zeros>}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
// expected-error @+1 {{@w.grad is a slice of [8] but its parameter @w stands for [4]}}
galvatron.state gradient @w.grad of @w : tensor<4xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 8>, splits = [{dim = 0, groups = [array<i64: 0, 1>]}]}}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @f() -> tensor<4xf32> {
  // expected-error @+1 {{refers to 'w', which is not a galvatron.state}}
  %0 = galvatron.read_state @w : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

galvatron.state control @s : tensor<i64> {init = #galvatron.init<zeros>}
func.func @f() -> tensor<i32> {
  // expected-error @+1 {{type 'tensor<i32>' does not match @s's declared type 'tensor<i64>'}}
  %0 = galvatron.read_state @s : tensor<i32>
  return %0 : tensor<i32>
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{refers to 'missing', which is neither a galvatron.parameter nor a galvatron.state}}
  galvatron.assign @missing, %x : tensor<4xf32>
  return
}

// -----

galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<zeros>}
func.func @f(%x: tensor<4xbf16>) {
  // expected-error @+1 {{assigns 'tensor<4xbf16>' to @w of type 'tensor<4xf32>'}}
  galvatron.assign @w, %x : tensor<4xbf16>
  return
}

// -----

func.func @f(%x: tensor<2x3xf32>, %y: tensor<4xf32>) {
  // expected-error @+2 {{shapes [2, 3] and [4] do not broadcast}}
  // expected-error @+1 {{'galvatron.compare' op failed to infer returned types}}
  %0 = galvatron.compare lt, %x, %y : (tensor<2x3xf32>, tensor<4xf32>) -> tensor<2x3xi1>
  return
}

// -----

func.func @f(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{pad needs low, high and interior padding for each of the 2 dimensions}}
  // expected-error @+1 {{'galvatron.pad' op failed to infer returned types}}
  %0 = galvatron.pad %x low [0] high [0, 0] interior [0, 0] : tensor<2x3xf32> -> tensor<2x3xf32>
  return
}

// -----

func.func @f(%x: tensor<2x3xf32>) {
  // expected-error @+2 {{padding must be non-negative in dimension 1}}
  // expected-error @+1 {{'galvatron.pad' op failed to infer returned types}}
  %0 = galvatron.pad %x low [0, -1] high [0, 0] interior [0, 0] : tensor<2x3xf32> -> tensor<2x2xf32>
  return
}

// -----

func.func @f(%x: tensor<f32>, %w: tensor<1xf32>) {
  // expected-error @+1 {{input must have rank >= 1}}
  %0:3 = galvatron.layer_norm_grad %x, %x, %w : (tensor<f32>, tensor<f32>, tensor<1xf32>) -> (tensor<f32>, tensor<1xf32>, tensor<1xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{epsilon must be positive}}
  %0:3 = galvatron.layer_norm_grad %x, %x, %w {epsilon = 0.0 : f64} : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<3xf32>) {
  // expected-error @+1 {{weight must be [4] to match the last dimension, got [3]}}
  %0:3 = galvatron.layer_norm_grad %x, %x, %w : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<3xf32>) -> (tensor<2x4xf32>, tensor<3xf32>, tensor<3xf32>)
  return
}

// -----

func.func @f(%g: tensor<4x4xf32>, %x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{the gradient must be 'tensor<2x4xf32>', got 'tensor<4x4xf32>'}}
  %0:3 = galvatron.layer_norm_grad %g, %x, %w : (tensor<4x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{the input gradient must be 'tensor<2x4xf32>', got 'tensor<4x2xf32>'}}
  %0:2 = galvatron.rms_norm_grad %x, %x, %w : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> (tensor<4x2xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%x: tensor<2x4xf32>, %w: tensor<4xf32>) {
  // expected-error @+1 {{a parameter gradient must be 'tensor<4xf32>', got 'tensor<2x4xf32>'}}
  %0:2 = galvatron.rms_norm_grad %x, %x, %w : (tensor<2x4xf32>, tensor<2x4xf32>, tensor<4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x3x8x16xf32>, %kv: tensor<2x2x8x16xf32>) {
  // expected-error @+1 {{3 query heads are not a multiple of 2 key/value heads}}
  %0:3 = galvatron.attention_grad %q, %q, %kv, %kv : (tensor<2x3x8x16xf32>, tensor<2x3x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> (tensor<2x3x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>)
  return
}

// -----

func.func @f(%g: tensor<2x4x8x8xf32>, %q: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{the output gradient must be 'tensor<2x4x8x16xf32>', got 'tensor<2x4x8x8xf32>'}}
  %0:3 = galvatron.attention_grad %g, %q, %q, %q : (tensor<2x4x8x8xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %kv: tensor<2x2x8x16xf32>) {
  // expected-error @+1 {{the query gradient must be 'tensor<2x4x8x16xf32>', got 'tensor<2x2x8x16xf32>'}}
  %0:3 = galvatron.attention_grad %q, %q, %kv, %kv : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> (tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %kv: tensor<2x2x8x16xf32>) {
  // expected-error @+1 {{the key gradient must be 'tensor<2x2x8x16xf32>', got 'tensor<2x4x8x16xf32>'}}
  %0:3 = galvatron.attention_grad %q, %q, %kv, %kv : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %kv: tensor<2x2x8x16xf32>) {
  // expected-error @+1 {{the value gradient must be 'tensor<2x2x8x16xf32>', got 'tensor<2x4x8x16xf32>'}}
  %0:3 = galvatron.attention_grad %q, %q, %kv, %kv : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x2x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x2x8x16xf32>, tensor<2x4x8x16xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>) {
  // expected-error @+1 {{has a mask gradient but no mask}}
  %0:4 = galvatron.attention_grad %q, %q, %q, %q : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<1x4x8x8xf32>)
  return
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>, %m: tensor<1x4x8x8xf32>) {
  // expected-error @+1 {{the mask gradient must be 'tensor<1x4x8x8xf32>', got 'tensor<2x4x8x8xf32>'}}
  %0:4 = galvatron.attention_grad %q, %q, %q, %q, %m : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<1x4x8x8xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x8xf32>)
  return
}

// -----

func.func @f(%g: tensor<2x8x16xf32>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{the table gradient must have rank 2, got 1}}
  %0 = galvatron.embedding_grad %g, %ids : (tensor<2x8x16xf32>, tensor<2x8xi64>) -> tensor<16xf32>
  return
}

// -----

func.func @f(%g: tensor<2x8x16xf32>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{the table gradient's element type 'bf16' differs from the gradient's 'f32'}}
  %0 = galvatron.embedding_grad %g, %ids : (tensor<2x8x16xf32>, tensor<2x8xi64>) -> tensor<100x16xbf16>
  return
}

// -----

func.func @f(%g: tensor<2x8x16xf32>, %ids: tensor<2x4xi64>) {
  // expected-error @+1 {{gradient [2, 8, 16] must be the indices' shape [2, 4] followed by [16]}}
  %0 = galvatron.embedding_grad %g, %ids : (tensor<2x8x16xf32>, tensor<2x4xi64>) -> tensor<100x16xf32>
  return
}

// -----

func.func @f(%l: tensor<f32>, %x: tensor<2x8x100xf32>, %ids: tensor<2x4xi64>) {
  // expected-error @+1 {{labels [2, 4] must match the logits' leading shape [2, 8]}}
  %0 = galvatron.cross_entropy_grad %l, %x, %ids : (tensor<f32>, tensor<2x8x100xf32>, tensor<2x4xi64>) -> tensor<2x8x100xf32>
  return
}

// -----

func.func @f(%l: tensor<f32>, %x: tensor<2x8x100xf32>, %ids: tensor<2x8xi64>) {
  // expected-error @+1 {{the logits gradient must be 'tensor<2x8x100xf32>', got 'tensor<2x8x100xbf16>'}}
  %0 = galvatron.cross_entropy_grad %l, %x, %ids : (tensor<f32>, tensor<2x8x100xf32>, tensor<2x8xi64>) -> tensor<2x8x100xbf16>
  return
}

// -----

func.func @f(%t: tensor<i64>) {
  // expected-error @+1 {{learning rates must be non-negative}}
  %0 = galvatron.lr_schedule %t {lr = -1.0 : f64} : tensor<i64> -> tensor<f32>
  return
}

// -----

func.func @f(%t: tensor<i64>) {
  // expected-error @+1 {{step counts must be non-negative}}
  %0 = galvatron.lr_schedule %t {lr = 1.0 : f64, warmup_steps = -1 : i64} : tensor<i64> -> tensor<f32>
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %g: tensor<2xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error @+1 {{gradient [2] does not match the parameter [4]}}
  %0:3 = galvatron.adamw_update %p, %g, %p, %p, %lr, %t, %lr : (tensor<4xf32>, tensor<2xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error @+1 {{beta1 must lie in [0, 1), got 1}}
  %0:3 = galvatron.adamw_update %p, %p, %p, %p, %lr, %t, %lr {beta1 = 1.0 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error @+1 {{beta2 must lie in [0, 1), got -0.5}}
  %0:3 = galvatron.adamw_update %p, %p, %p, %p, %lr, %t, %lr {beta2 = -0.5 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error @+1 {{epsilon must lie in [0, inf), got -1}}
  %0:3 = galvatron.adamw_update %p, %p, %p, %p, %lr, %t, %lr {epsilon = -1.0 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>, %t: tensor<i64>) {
  // expected-error @+1 {{weight_decay must lie in [0, inf), got -0.25}}
  %0:3 = galvatron.adamw_update %p, %p, %p, %p, %lr, %t, %lr {weight_decay = -0.25 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<i64>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{momentum must lie in [0, 1), got 1.5}}
  %0:2 = galvatron.sgd_update %p, %p, %p, %lr, %lr {momentum = 1.5 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %g: tensor<4x1xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{gradient [4, 1] does not match the parameter [4]}}
  %0:2 = galvatron.sgd_update %p, %g, %p, %lr, %lr : (tensor<4xf32>, tensor<4x1xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @f(%p: tensor<4xf32>, %lr: tensor<f32>) {
  // expected-error @+1 {{weight_decay must lie in [0, inf), got -1}}
  %0:2 = galvatron.sgd_update %p, %p, %p, %lr, %lr {weight_decay = -1.0 : f64} : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>, tensor<f32>, tensor<f32>) -> (tensor<4xf32>, tensor<4xf32>)
  return
}

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{needs at least one micro-batch, got 0}}
galvatron.schedule @s loss next_token micro_batches 0 forward @fwd backward @bwd optimizer @opt [1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{call 3 comes after the optimizer step, which must be last}}
galvatron.schedule @s loss next_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0, optimizer, forward 1, backward 1]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{call 1 names micro-batch 1 outside [0, 1)}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [2 x [forward 0], 1 x [optimizer]]

// -----

// Phases are checked before they are expanded.
func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{makes more than the 3 calls of 1 micro-batches}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1000000000 x [forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{needs phases of a positive iteration count and at least one call}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [0 x [forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{micro-batch 0 has two forward calls}}
galvatron.schedule @s loss next_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{the backward call of micro-batch 0 comes before its forward call}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1 x [backward 0, forward 0], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{micro-batch 1 has no forward and backward call}}
galvatron.schedule @s loss next_token micro_batches 2 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0, forward 1], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt() { return }
// expected-error @+1 {{needs exactly one optimizer step, has 0}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0]]

// -----

func.func @fwd() { return }
func.func @opt() { return }
// expected-error @+1 {{the backward function 'bwd' does not exist}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @fwd(%x: tensor<4xf32>) -> tensor<4xf32> { return %x : tensor<4xf32> }
func.func @bwd(%x: tensor<8xf32>) { return }
func.func @opt() { return }
// expected-error @+1 {{the backward function takes ('tensor<8xf32>') but the forward function returns ('tensor<4xf32>')}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @fwd() { return }
func.func @bwd() { return }
func.func @opt(%x: tensor<4xf32>) { return }
// expected-error @+1 {{the optimizer function must take no arguments}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @bwd optimizer @opt [1 x [forward 0, backward 0], 1 x [optimizer]]

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{device groups must have one size, got 2 and 1}}
  %0 = galvatron.all_reduce sum %x groups [[0, 1], [2]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{rank 1 appears in more than one place of the device groups}}
  %0 = galvatron.replicate %x groups [[0, 1], [1, 2]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{needs at least one device group}}
  %0 = galvatron.replicate %x groups [] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has an empty device group}}
  %0 = galvatron.replicate %x groups [[]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has negative rank -1}}
  %0 = galvatron.replicate %x groups [[-1, 0]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @f(%x: tensor<4x3xf32>) -> tensor<4x6xf32> {
  // expected-error @+1 {{expects dimension 1 of 'tensor<4x6xf32>' to be 3 x that of the part 'tensor<4x3xf32>'}}
  %0 = galvatron.all_gather %x dim 1 groups [[0, 1, 2]] : tensor<4x3xf32> -> tensor<4x6xf32>
  return %0 : tensor<4x6xf32>
}

// -----

func.func @f(%x: tensor<4x3xf32>) -> tensor<8x3xf32> {
  // expected-error @+1 {{dimension 2 is out of range for 'tensor<8x3xf32>'}}
  %0 = galvatron.all_gather %x dim 2 groups [[0, 1]] : tensor<4x3xf32> -> tensor<8x3xf32>
  return %0 : tensor<8x3xf32>
}

// -----

func.func @f(%x: tensor<4x3xf32>) -> tensor<2x3xi64> {
  // expected-error @+1 {{part 'tensor<2x3xi64>' and whole 'tensor<4x3xf32>' differ in element type or rank}}
  %0 = galvatron.shard %x dim 0 groups [[0, 1]] : tensor<4x3xf32> -> tensor<2x3xi64>
  return %0 : tensor<2x3xi64>
}

// -----

func.func @f(%x: tensor<4x3xf32>) -> tensor<2x3xf32> {
  // expected-error @+1 {{supports sum and avg}}
  %0 = galvatron.reduce_scatter max %x dim 0 groups [[0, 1]] : tensor<4x3xf32> -> tensor<2x3xf32>
  return %0 : tensor<2x3xf32>
}

// -----

// expected-error @+1 {{'galvatron.shard' cannot split dimension 1 of the remaining block among 3 members}}
galvatron.parameter @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1, groups = [array<i64: 0, 1, 2>]}]}}

// -----

// expected-error @+1 {{'galvatron.shard' must be {full_shape = array<i64: ...>, splits = [...]}}}
galvatron.parameter @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = [4, 8]}}

// -----

// expected-error @+1 {{'galvatron.shard' needs splits of the form {dim = d, groups = [array<i64: ...>, ...]}}}
galvatron.parameter @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1}]}}

// -----

// expected-error @+1 {{declared type 'tensor<4x2xf32>' is not one part of the shard's full shape}}
galvatron.parameter @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1, groups = [array<i64: 0, 1>]}]}}

// -----

func.func @f() {
  // expected-error @+1 {{'galvatron.shard' may only be attached to a galvatron.parameter or galvatron.state}}
  return {galvatron.shard = {}}
}

// -----

// expected-error @+1 {{declared type 'tensor<4x8xf32>' is not one part of the shard's full shape}}
galvatron.state optimizer @w.exp_avg : tensor<4x8xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 0, groups = [array<i64: 0, 1>]}]}}

// -----

// expected-error @+1 {{'galvatron.data_parallel' must be {groups = [array<i64: ...>, ...], zero = 0|1|2, dim = d}}}
galvatron.parameter @w : tensor<4x8xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {zero = 1, dim = 0}}

// -----

// expected-error @+1 {{'galvatron.data_parallel' zero stage 3 is not 0 (DDP), 1 or 2}}
galvatron.parameter @w : tensor<4x8xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1>], zero = 3, dim = 0}}

// -----

// expected-error @+1 {{'galvatron.data_parallel' cannot shard dimension 1 of the parameter among 3 members}}
galvatron.parameter @w : tensor<4x8xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 1, 2>], zero = 2, dim = 1}}

// -----

func.func @f() {
  // expected-error @+1 {{'galvatron.data_parallel' may only be attached to a galvatron.parameter}}
  return {galvatron.data_parallel = {}}
}

// -----

func.func @send_negative_peer(%x: tensor<4xf32>) {
  // expected-error @+1 {{'galvatron.send' op peer stage must be non-negative, got -1}}
  galvatron.send %x to stage -1 tag 0 : tensor<4xf32>
  return
}

// -----

func.func @recv_tag_range() -> tensor<4xf32> {
  // expected-error @+1 {{'galvatron.recv' op tag must lie in [0, 32767], got 40000}}
  %0 = galvatron.recv from stage 0 tag 40000 : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @recv_integer_differentiable() -> tensor<4xi64> {
  // expected-error @+1 {{'galvatron.recv' op is differentiable but receives 'tensor<4xi64>', not a float tensor}}
  %0 = galvatron.recv from stage 0 tag 0 differentiable : tensor<4xi64>
  return %0 : tensor<4xi64>
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 2>} {
  func.func @main(%x: tensor<2x4xf32>) {
    galvatron.layer decoder "h.0" (%a = %x : tensor<2x4xf32>) attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      // expected-error @+1 {{'galvatron.send' op peer stage 0 is the stage of its own layer 'h.0'}}
      galvatron.send %a to stage 0 tag 0 : tensor<2x4xf32>
      galvatron.yield
    }
    return
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 2>} {
  func.func @main() {
    %0 = galvatron.layer decoder "h.1" () -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 1>} {
      // expected-error @+1 {{'galvatron.recv' op peer stage 2 is outside the plan's 2 pipeline stages}}
      %r = galvatron.recv from stage 2 tag 0 : tensor<2x4xf32>
      galvatron.yield %r : tensor<2x4xf32>
    }
    return
  }
}

// -----

func.func @f(%table: tensor<8x4xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{rank 0 appears in more than one place of the device groups}}
  %0 = galvatron.embedding %table, %ids vocab_groups [[0, 1], [0, 2]] : (tensor<8x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

func.func @f(%g: tensor<2x3x4xf32>, %ids: tensor<2x3xi64>) -> tensor<8x4xf32> {
  // expected-error @+1 {{needs at least one device group}}
  %0 = galvatron.embedding_grad %g, %ids vocab_groups [] : (tensor<2x3x4xf32>, tensor<2x3xi64>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

func.func @f(%logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x2xf32> {
  // expected-error @+1 {{device groups must have one size, got 2 and 1}}
  %0 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1], [2]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
  return %0 : tensor<2x3x2xf32>
}

// -----

func.func @f(%logits: tensor<f32>, %max: tensor<f32>, %ids: tensor<i64>) -> tensor<2xf32> {
  // expected-error @+1 {{logits must have rank >= 1}}
  %0 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<f32>, tensor<f32>, tensor<i64>) -> tensor<2xf32>
  return %0 : tensor<2xf32>
}

// -----

func.func @f(%logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %ids: tensor<3x2xi64>) -> tensor<2x3x2xf32> {
  // expected-error @+1 {{labels 'tensor<3x2xi64>' must match the logits' leading shape}}
  %0 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<3x2xi64>) -> tensor<2x3x2xf32>
  return %0 : tensor<2x3x2xf32>
}

// -----

func.func @f(%logits: tensor<2x3x8xf32>, %max: tensor<2x3x1xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x2xf32> {
  // expected-error @+1 {{the row maximum must be 'tensor<2x3xf32>', got 'tensor<2x3x1xf32>'}}
  %0 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<2x3x8xf32>, tensor<2x3x1xf32>, tensor<2x3xi64>) -> tensor<2x3x2xf32>
  return %0 : tensor<2x3x2xf32>
}

// -----

func.func @f(%logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x3xf32> {
  // expected-error @+1 {{the statistics must be 'tensor<2x3x2xf32>', got 'tensor<2x3x3xf32>'}}
  %0 = galvatron.vocab_cross_entropy_stats %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x3xf32>
  return %0 : tensor<2x3x3xf32>
}

// -----

func.func @f(%stats: tensor<2x3x2xf16>, %logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %ids: tensor<2x3xi64>) -> tensor<f32> {
  // expected-error @+1 {{the statistics must be 'tensor<2x3x2xf32>', got 'tensor<2x3x2xf16>'}}
  %0 = galvatron.vocab_cross_entropy %stats, %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<2x3x2xf16>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<f32>
  return %0 : tensor<f32>
}

// -----

func.func @f(%g: tensor<f32>, %stats: tensor<2x3x2xf32>, %logits: tensor<2x3x8xf32>, %max: tensor<2x3xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{the logits gradient must be 'tensor<2x3x8xf32>', got 'tensor<2x3x4xf32>'}}
  %0 = galvatron.vocab_cross_entropy_grad %g, %stats, %logits, %max, %ids vocab_groups [[0, 1]] : (tensor<f32>, tensor<2x3x2xf32>, tensor<2x3x8xf32>, tensor<2x3xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

func.func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{probability must lie in [0, 1), got 1}}
  %y, %keep = galvatron.dropout %x {probability = 1.0 : f64, stream = 0 : i64} : tensor<2x4xf32> -> tensor<2x4xi1>
  return %y : tensor<2x4xf32>
}

// -----

func.func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{mask 'tensor<4x2xi1>' must have the input's shape}}
  %y, %keep = galvatron.dropout %x {probability = 0.1 : f64, stream = 0 : i64} : tensor<2x4xf32> -> tensor<4x2xi1>
  return %y : tensor<2x4xf32>
}

// -----

func.func @f(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
  // expected-error @+1 {{shard parts are [1, 4], not [2, 4]}}
  %y, %keep = galvatron.dropout %x {probability = 0.1 : f64, stream = 0 : i64, shard = {full_shape = array<i64: 2, 4>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}} : tensor<2x4xf32> -> tensor<2x4xi1>
  return %y : tensor<2x4xf32>
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  // expected-error @+1 {{dropout must lie in [0, 1), got 1}}
  %0 = galvatron.attention %q, %q, %q {dropout = 1.0 : f64, stream = 1 : i64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}

// -----

func.func @f(%q: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  // expected-error @+1 {{dropout must lie in [0, 1), got -5.000000e-01}}
  %0 = galvatron.attention %q, %q, %q {dropout = -0.5 : f64, stream = 1 : i64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}

// -----

func.func @f(%g: tensor<2x4x8x16xf32>, %q: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  // expected-error @+1 {{dropout must lie in [0, 1), got 1.500000e+00}}
  %dq, %dk, %dv = galvatron.attention_grad %g, %q, %q, %q {causal = true, dropout = 1.5 : f64, stream = 1 : i64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>)
  return %dq : tensor<2x4x8x16xf32>
}

// -----

// The shard places the [B, H, S, T] probabilities, not the output.
func.func @f(%q: tensor<2x2x8x16xf32>, %k: tensor<2x2x6x16xf32>) -> tensor<2x2x8x16xf32> {
  // expected-error @+1 {{shard parts are [2, 2, 8, 16], not [2, 2, 8, 6]}}
  %0 = galvatron.attention %q, %k, %k {dropout = 0.1 : f64, stream = 1 : i64, shard = {full_shape = array<i64: 2, 4, 8, 16>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>]}]}} : (tensor<2x2x8x16xf32>, tensor<2x2x6x16xf32>, tensor<2x2x6x16xf32>) -> tensor<2x2x8x16xf32>
  return %0 : tensor<2x2x8x16xf32>
}

// -----

func.func @f(%x: tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32> {
  // expected-error @+1 {{needs two different dimensions of 'tensor<2x4x8x16xf32>', got split 1 and concat 1}}
  %0 = galvatron.all_to_all %x split 1 concat 1 groups [[0, 1]] : tensor<2x4x8x16xf32> -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}

// -----

func.func @f(%x: tensor<2x3x8x16xf32>) -> tensor<2x1x16x16xf32> {
  // expected-error @+1 {{dimension 1 of 'tensor<2x3x8x16xf32>' does not split among 2 members}}
  %0 = galvatron.all_to_all %x split 1 concat 2 groups [[0, 1]] : tensor<2x3x8x16xf32> -> tensor<2x1x16x16xf32>
  return %0 : tensor<2x1x16x16xf32>
}

// -----

func.func @f(%x: tensor<2x4x8x16xf32>) -> tensor<2x2x8x16xf32> {
  // expected-error @+1 {{result must be 'tensor<2x2x16x16xf32>', got 'tensor<2x2x8x16xf32>'}}
  %0 = galvatron.all_to_all %x split 1 concat 2 groups [[0, 1]] : tensor<2x4x8x16xf32> -> tensor<2x2x8x16xf32>
  return %0 : tensor<2x2x8x16xf32>
}

// -----

func.func @f(%table: tensor<4x4xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{vocab_size 9 exceeds the 8 rows of the blocks together}}
  %0 = galvatron.embedding %table, %ids vocab_groups [[0, 1]] {vocab_size = 9} : (tensor<4x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}

// -----

func.func @f(%table: tensor<4x4xf32>, %ids: tensor<2x3xi64>) -> tensor<2x3x4xf32> {
  // expected-error @+1 {{has a vocab_size but no vocab_groups}}
  %0 = galvatron.embedding %table, %ids {vocab_size = 3} : (tensor<4x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  return %0 : tensor<2x3x4xf32>
}
