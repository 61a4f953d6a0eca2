// RUN: galvatron-opt %s -split-input-file -verify-diagnostics --galvatron-pipeline

// expected-error @+1 {{--galvatron-pipeline: the module has no #galvatron.plan to split by}}
module {
  func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    return %x : tensor<2x4xf32>
  }
}

// -----

// expected-error @+1 {{--galvatron-pipeline: no function @main with a body}}
module attributes {galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 2>} {
}
