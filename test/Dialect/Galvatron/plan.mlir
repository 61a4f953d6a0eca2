// RUN: galvatron-opt %s -split-input-file | FileCheck %s
// RUN: galvatron-opt %s -split-input-file --mlir-print-op-generic | galvatron-opt -split-input-file | FileCheck %s

// A two-stage plan on 16 devices (2 nodes of 8): stage 0 runs tp 2 x dp 4
// with ZeRO-3, stage 1 tp 8 with sequence parallelism and checkpointing.

// CHECK: module attributes {galvatron.model = "two-stage", galvatron.plan = #galvatron.plan<devices = 16, devices_per_node = 8, pp = 2, micro_batches = 8, global_batch = 64, schedule = pipedream_flush, precision = bf16>}
module attributes {galvatron.model = "two-stage", galvatron.plan = #galvatron.plan<devices = 16, devices_per_node = 8, pp = 2, micro_batches = 8, global_batch = 64, schedule = pipedream_flush, precision = bf16>} {
  // CHECK-LABEL: func.func @main
  func.func @main(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
    // CHECK: galvatron.layer embedding "embed" {{.*}} attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 4, dp_type = zero3>}
    %0 = galvatron.layer embedding "embed" (%a = %x : tensor<8x16xf32>) -> tensor<8x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 4, dp_type = zero3>} {
      galvatron.yield %a : tensor<8x16xf32>
    }
    // CHECK: galvatron.layer decoder "h.0" {{.*}} attributes {strategy = #galvatron.strategy<stage = 0, tp = 4, dp = 2, tp_consecutive = false, dp_type = zero1>}
    %1 = galvatron.layer decoder "h.0" (%a = %0 : tensor<8x16xf32>) -> tensor<8x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 4, dp = 2, tp_consecutive = false, dp_type = zero1>} {
      galvatron.yield %a : tensor<8x16xf32>
    }
    // CHECK: galvatron.layer decoder "h.1" {{.*}} attributes {strategy = #galvatron.strategy<stage = 1, tp = 8, dp = 1, sp = true, ckpt = true>}
    %2 = galvatron.layer decoder "h.1" (%a = %1 : tensor<8x16xf32>) -> tensor<8x16xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 8, dp = 1, sp = true, ckpt = true>} {
      galvatron.yield %a : tensor<8x16xf32>
    }
    // CHECK: galvatron.layer head "head" {{.*}} attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 8, dp_type = zero2>}
    %3 = galvatron.layer head "head" (%a = %2 : tensor<8x16xf32>) -> tensor<8x16xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 8, dp_type = zero2>} {
      galvatron.yield %a : tensor<8x16xf32>
    }
    return %3 : tensor<8x16xf32>
  }
}

// -----

// Defaults are elided: ddp, consecutive TP, no SP, no checkpointing, GPipe,
// fp32.
// CHECK: galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 4>
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 8, pp = 1, micro_batches = 1, global_batch = 4, schedule = gpipe, precision = fp32>} {
  func.func @main(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
    // CHECK: attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>}
    %0 = galvatron.layer decoder "h.0" (%a = %x : tensor<4x16xf32>) -> tensor<4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4, tp_consecutive = true, dp_type = ddp, sp = false, ckpt = false>} {
      galvatron.yield %a : tensor<4x16xf32>
    }
    return %0 : tensor<4x16xf32>
  }
}
