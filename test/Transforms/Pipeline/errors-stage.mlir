// RUN: galvatron-opt %s -verify-diagnostics --galvatron-pipeline="stage=2"

// expected-error @+1 {{--galvatron-pipeline: stage=2 is outside the plan's 2 stages}}
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 8, pp = 2, micro_batches = 1, global_batch = 2>} {
  func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 1>} {
      galvatron.yield %a : tensor<2x4xf32>
    }
    %1 = galvatron.layer decoder "h.1" (%a = %0 : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 1>} {
      galvatron.yield %a : tensor<2x4xf32>
    }
    return %1 : tensor<2x4xf32>
  }
}
