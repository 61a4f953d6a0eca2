// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 pp=2 chunks=4 disable=tp,sp,ckpt,zero1,zero2,zero3" | FileCheck %s --check-prefix=FIXED
// The search writes a strategy on every layer and a plan on the module,
// which the dialect's verifier accepts on reparse.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8" | galvatron-opt | FileCheck %s --check-prefix=FREE
// RUN: galvatron-translate --model=llama-tiny --batch=1 | galvatron-opt --galvatron-search="cluster=h100-80gb nodes=2 global-batch=32 max-tp=2 max-pp=2" | FileCheck %s --check-prefix=LLAMA
// Reports, text and JSON.
// RUN: galvatron-translate --model=gpt-1.5b --batch=1 | galvatron-opt --galvatron-search="cluster=h100-80gb nodes=2 global-batch=512 report=text" -o /dev/null | FileCheck %s --check-prefix=TEXT
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 report=json report-file=%t.json" -o /dev/null
// RUN: FileCheck %s --check-prefix=JSON < %t.json
// Our cluster format and Galvatron's hardware profiles.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="cluster=%S/Inputs/cluster-four.json global-batch=8 profile=%S/Inputs/allreduce_bandwidth_1nodes_4gpus_per_node.json,%S/Inputs/overlap_coefficient.json,%S/Inputs/cost-profile.json report=text" -o /dev/null | FileCheck %s --check-prefix=FILE
// A fixed micro-batch size fixes the micro-batch count.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=16 micro-batch=4" | FileCheck %s --check-prefix=MICRO
// MICRO: galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = {{[0-9]+}}, micro_batches = 4, global_batch = 16
// A GPipe-only space still finds a plan.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 schedule=gpipe pp=2" | FileCheck %s --check-prefix=GPIPE

// FIXED: galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 2, micro_batches = 4, global_batch = 8, schedule = pipedream_flush, precision = bf16>
// FIXED: galvatron.layer embedding "transformer.embeddings" {{.*}} attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>}
// FIXED: galvatron.layer decoder "transformer.h.0" {{.*}} attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>}
// FIXED: galvatron.layer decoder "transformer.h.1" {{.*}} attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 2>}
// FIXED: galvatron.layer head "lm_head" {{.*}} attributes {strategy = #galvatron.strategy<stage = 1, tp = 1, dp = 2>}

// FREE: galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = {{[0-9]+}}, micro_batches = {{[0-9]+}}, global_batch = 8
// FREE-COUNT-4: attributes {strategy = #galvatron.strategy<stage = {{[0-9]}}, tp = {{[0-9]}}, dp = {{[0-9]}}

// LLAMA: galvatron.plan = #galvatron.plan<devices = 16, devices_per_node = 8, pp = {{[12]}},
// LLAMA-COUNT-4: strategy = #galvatron.strategy<stage = {{[01]}}, tp = {{[12]}}, dp =

// TEXT: plan for gpt-1.5b on 16 devices (h100-80gb, 2 x 8, 80.00 GiB per device)
// TEXT: layers
// TEXT: transformer.h.0 .. transformer.h.47 (48)
// TEXT: stages (memory in GiB per device; time in seconds per iteration)
// TEXT: predicted
// TEXT: iteration time
// TEXT: tokens/s
// TEXT: TFLOP/s (recomputation counted), MFU
// TEXT: search: {{[0-9]+}} strategies priced, {{[0-9]+}} of {{[0-9]+}} configurations explored

// JSON: "devices": 4,
// JSON: "iteration_seconds":
// JSON: "layers": [
// JSON: "name": "transformer.embeddings",
// JSON: "search": {
// JSON: "strategies_priced":
// JSON: "stages": [
// JSON: "tokens_per_second":

// FILE: plan for gpt-tiny on 4 devices (four-gpu-box, 1 x 4, 24.00 GiB per device)

// GPipe is the plan's default schedule, so it is not printed.
// GPIPE: galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 2, micro_batches = {{[0-9]+}}, global_batch = 8, precision = bf16>
