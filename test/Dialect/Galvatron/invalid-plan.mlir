// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

// expected-error @+1 {{device count must be positive, got 0}}
module attributes {galvatron.plan = #galvatron.plan<devices = 0, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 1>} {}

// -----

// expected-error @+1 {{devices per node must be positive, got 0}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 0, pp = 1, micro_batches = 1, global_batch = 1>} {}

// -----

// expected-error @+1 {{12 devices do not fill whole nodes of 8}}
module attributes {galvatron.plan = #galvatron.plan<devices = 12, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 1>} {}

// -----

// expected-error @+1 {{pipeline degree must be positive, got 0}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 0, micro_batches = 1, global_batch = 1>} {}

// -----

// expected-error @+1 {{pipeline degree 3 does not divide 8 devices}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 3, micro_batches = 1, global_batch = 1>} {}

// -----

// expected-error @+1 {{micro-batch count must be positive, got 0}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 1, micro_batches = 0, global_batch = 1>} {}

// -----

// expected-error @+1 {{global batch must be positive, got -4}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = -4>} {}

// -----

// expected-error @+1 {{global batch 10 does not split into 4 equal micro-batches}}
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 1, micro_batches = 4, global_batch = 10>} {}

// -----

// expected-error @+1 {{tensor-parallel degree must be positive, got 0}}
#s = #galvatron.strategy<stage = 0, tp = 0, dp = 1>

// -----

// expected-error @+1 {{data-parallel degree must be positive, got -2}}
#s = #galvatron.strategy<stage = 0, tp = 1, dp = -2>

// -----

// expected-error @+1 {{pipeline stage must be non-negative, got -1}}
#s = #galvatron.strategy<stage = -1, tp = 1, dp = 1>

// -----

// expected-error @+1 {{a layer runs Megatron (sp) or Ulysses sequence parallelism, not both}}
#s = #galvatron.strategy<stage = 0, tp = 2, dp = 1, sp = true, ulysses = true>

// -----

// expected-error @+1 {{Ulysses needs a group of tp > 1 ranks}}
#s = #galvatron.strategy<stage = 0, tp = 1, dp = 2, ulysses = true>

// -----

// expected-error @+1 {{vocabulary divisor must be positive, got 0}}
#p = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 0>

// -----

// expected-error @+1 {{'galvatron.plan' must be a #galvatron.plan attribute}}
module attributes {galvatron.plan = 4 : i64} {}

// -----

module {
  // expected-error @+1 {{'galvatron.plan' may only be attached to a module}}
  func.func @f() attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1, micro_batches = 1, global_batch = 1>} {
    return
  }
}

// -----

// expected-error @+1 {{'galvatron.model' must be a string on a module}}
module attributes {galvatron.model = 3 : i64} {}

// -----

// expected-error @+1 {{unknown galvatron attribute 'galvatron.stratgy'}}
module attributes {galvatron.stratgy = 1 : i64} {}

// -----

// expected-error @+1 {{'galvatron.name' must be a string}}
func.func @f(%x: tensor<4xf32> {galvatron.name = 1 : i64}) {
  return
}

// -----

// expected-error @+1 {{unknown galvatron argument or result attribute 'galvatron.nme'}}
func.func @f() -> (tensor<4xf32> {galvatron.nme = "out"}) {
  %0 = galvatron.constant dense<0.0> : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 8>} {
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    // expected-error @+1 {{'h.0' has no #galvatron.strategy but the module has a #galvatron.plan}}
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> {
      galvatron.yield %a : tensor<8xf32>
    }
    return %0 : tensor<8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 16, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 8>} {
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    // expected-error @+1 {{'h.0': pp (2) x tp (2) x dp (2) = 8 does not equal the plan's 16 devices}}
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %0 : tensor<8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 8>} {
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    // expected-error @+1 {{'h.0' is on stage 2 but the plan has pp = 2}}
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 2, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %0 : tensor<8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 8>} {
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    // expected-error @+1 {{'h.1' is on stage 0 after a layer on stage 1: stages must not decrease along the model}}
    %1 = galvatron.layer decoder "h.1" (%a = %0 : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %1 : tensor<8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 1, micro_batches = 2, global_batch = 8>} {
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    // expected-error @+1 {{'h.0': a micro-batch of 4 sequences does not divide among dp = 8 replicas}}
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 8>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %0 : tensor<8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 4, micro_batches = 1, global_batch = 8>} {
  // expected-error @+1 {{pipeline stage 2 of 4 has no layer}}
  func.func @main(%x: tensor<8xf32>) -> tensor<8xf32> {
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      galvatron.yield %a : tensor<8xf32>
    }
    %1 = galvatron.layer decoder "h.1" (%a = %0 : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 1>} {
      galvatron.yield %a : tensor<8xf32>
    }
    %2 = galvatron.layer decoder "h.2" (%a = %1 : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 3, tp = 2, dp = 1>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %2 : tensor<8xf32>
  }
}

// -----

// Backward layers run in reverse: their stages must not increase.
module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 8>} {
  func.func @backward(%x: tensor<8xf32>) -> tensor<8xf32> {
    %0 = galvatron.layer decoder backward "h.0" (%a = %x : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    // expected-error @+1 {{backward layer 'h.1' is on stage 1 after a backward layer on stage 0: backward stages must not increase}}
    %1 = galvatron.layer decoder backward "h.1" (%a = %0 : tensor<8xf32>) -> tensor<8xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<8xf32>
    }
    return %1 : tensor<8xf32>
  }
}
