// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-apply-strategy="devices=8 json=%S/Inputs/strategy-gpt-tiny.json" --galvatron-export-strategy="file=%t.json" | FileCheck %s --check-prefix=IR
// RUN: FileCheck %s < %t.json
// The export reads back to the same plan.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-apply-strategy="devices=8 json=%t.json" | FileCheck %s --check-prefix=IR

// IR: "transformer.h.1" {{.*}}<stage = 1, tp = 1, dp = 4, dp_type = zero3, ckpt = true>

// CHECK: "checkpoint": "0,1",
// CHECK: "chunks": 4,
// CHECK: "default_dp_type": "zero2",
// CHECK: "dp_types_enc": "0,1",
// CHECK: "embed_sdp": 1,
// CHECK: "global_bsz": 16,
// CHECK: "pipeline_type": "pipedream_flush",
// CHECK: "pp_deg": 2,
// CHECK: "pp_division": "1,1",
// CHECK: "tp_consecutive_flags": "1,1",
// CHECK: "tp_sizes_enc": "2,1",
// CHECK: "use_sp": "1,0",
// CHECK: "vsp": 0,
// CHECK: "vtp": 2

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-export-strategy 2>&1 | FileCheck %s --check-prefix=NOPLAN
// NOPLAN: error: --galvatron-export-strategy: the module has no #galvatron.plan (run --galvatron-search or --galvatron-apply-strategy first)

// RUN: not galvatron-opt %s -split-input-file --galvatron-export-strategy 2>&1 | FileCheck %s --check-prefix=MIXED
// MIXED: error: --galvatron-export-strategy: Galvatron's strategy format cannot express this plan: 'b1' uses zero2 but another layer ddp (one default_dp_type besides ZeRO-3)
// MIXED: error: --galvatron-export-strategy: Galvatron's strategy format cannot express this plan: 'head' and 'embed' differ (one vtp, vsp and embed_sdp for every layer outside the blocks)
// Galvatron's runtime has no ZeRO-1 (it would reject default_dp_type zero1),
// and its file no per-layer Megatron sequence parallelism.
// MIXED: error: --galvatron-export-strategy: Galvatron's strategy format cannot express this plan: 'embed' uses zero1, which Galvatron's runtime does not have (default_dp_type is ddp, zero2 or zero3)
// MIXED: error: --galvatron-export-strategy: Galvatron's strategy format cannot express this plan: 'b0' uses Megatron sequence parallelism (the file's use_sp and vsp mean Ulysses; Galvatron turns Megatron's on for every TP layer with its runtime flag --sequence-parallel)

module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer embedding "embed" (%a = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    %1 = galvatron.layer decoder "b0" (%a = %0 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    %2 = galvatron.layer decoder "b1" (%a = %1 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4, dp_type = zero2>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    %3 = galvatron.layer head "head" (%a = %2 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    return %3 : tensor<4x8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer embedding "embed" (%a = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    %1 = galvatron.layer decoder "b0" (%a = %0 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    %2 = galvatron.layer head "head" (%a = %1 : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    return %2 : tensor<4x8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer embedding "embed" (%a = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 4, dp_type = zero1>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    return %0 : tensor<4x8xf32>
  }
}

// -----

module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 1, micro_batches = 1, global_batch = 4>} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %0 = galvatron.layer decoder "b0" (%a = %x : tensor<4x8xf32>) -> tensor<4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2, sp = true>} {
      galvatron.yield %a : tensor<4x8xf32>
    }
    return %0 : tensor<4x8xf32>
  }
}
