// RUN: galvatron-opt %s -split-input-file -verify-diagnostics

func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{custom op 'galvatron.gelux' is unknown}}
  %0 = galvatron.gelux %x : tensor<4xf32>
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{expected string or keyword containing one of the following enum values for attribute 'approximate' [none, tanh]}}
  %0 = galvatron.gelu %x approximate = fast : tensor<4xf32>
  return
}

// -----

func.func @f(%x: tensor<4xf32>) {
  // expected-error @+1 {{expected '('}}
  %0 = galvatron.layer decoder "a" -> tensor<4xf32> {
    galvatron.yield %x : tensor<4xf32>
  }
  return
}

// -----

// expected-error @+1 {{unbalanced '<' character in pretty dialect name}}
galvatron.parameter @w : tensor<4xf32> {init = #galvatron.init<normal(0.0, 0.02)}

// -----

// expected-error @+1 {{struct is missing required parameter: dp}}
#s = #galvatron.strategy<stage = 0, tp = 1>

// -----

// expected-error @+2 {{expected one of [ddp, zero1, zero2, zero3] for data-parallel flavour of a layer, got: zero4}}
// expected-error @+1 {{failed to parse Galvatron_StrategyAttr parameter 'dp_type'}}
#s = #galvatron.strategy<stage = 0, tp = 1, dp = 1, dp_type = zero4>

// -----

func.func @fwd() { return }
// expected-error @+1 {{unknown schedule step 'update' (expected forward, backward or optimizer)}}
galvatron.schedule @s loss next_token micro_batches 1 forward @fwd backward @fwd optimizer @fwd [1 x [forward 0, update]]
