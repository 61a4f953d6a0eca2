// The Lightning GalvatronStrategy knobs.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-apply-strategy="devices=8 pp=2 tp=2 fsdp=1 ckpt=1 chunks=4 schedule=1f1b dp-type=zero2 global-batch=16" | galvatron-opt | FileCheck %s --check-prefix=KNOBS
// KNOBS: galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 4, global_batch = 16, schedule = pipedream_flush, precision = bf16>
// KNOBS: "transformer.embeddings" {{.*}}strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2, dp_type = zero3>
// KNOBS: "transformer.h.0" {{.*}}strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2, dp_type = zero3, ckpt = true>
// KNOBS: "transformer.h.1" {{.*}}strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 2, dp_type = zero3, ckpt = true>
// KNOBS: "lm_head" {{.*}}strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 2, dp_type = zero3>

// Vocabulary layers, sequence parallelism, a stage division, GPipe, fp16.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-apply-strategy="devices=8 pp=2 tp=4 vtp=2 sp=1 dp-type=zero1 pp-division=2,0 schedule=gpipe precision=fp16 global-batch=16 chunks=2 tp-consecutive=0" | FileCheck %s --check-prefix=SPLIT
// GPipe is the plan's default schedule, so it is not printed.
// SPLIT: #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 2, global_batch = 16, precision = fp16>
// SPLIT: "transformer.embeddings" {{.*}}<stage = 0, tp = 2, dp = 2, tp_consecutive = false, dp_type = zero1>
// SPLIT: "transformer.h.0" {{.*}}<stage = 0, tp = 4, dp = 1, sp = true>
// SPLIT: "transformer.h.1" {{.*}}<stage = 0, tp = 4, dp = 1, sp = true>
// SPLIT: "lm_head" {{.*}}<stage = 1, tp = 2, dp = 2, tp_consecutive = false, dp_type = zero1>

// A Galvatron strategy file.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-apply-strategy="devices=8 json=%S/Inputs/strategy-gpt-tiny.json" | FileCheck %s --check-prefix=JSON
// JSON: #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 4, global_batch = 16, schedule = pipedream_flush, precision = bf16>
// JSON: "transformer.embeddings" {{.*}}<stage = 0, tp = 2, dp = 2, dp_type = zero3>
// JSON: "transformer.h.0" {{.*}}<stage = 0, tp = 2, dp = 2, dp_type = zero2, ulysses = true>
// JSON: "transformer.h.1" {{.*}}<stage = 1, tp = 1, dp = 4, dp_type = zero3, ckpt = true>
// JSON: "lm_head" {{.*}}<stage = 1, tp = 2, dp = 2, dp_type = zero3>

// The report of a manual plan: model states follow from the plan alone.
// gpt-1.5b (1,557,611,200 parameters) with ddp on 8 devices: 5.80 GiB of
// f32 master weights, 5.80 of f32 gradients, 11.61 of Adam m and v per
// device (the training step stores these in bf16 plans too).
// RUN: galvatron-translate --model=gpt-1.5b | galvatron-opt --galvatron-apply-strategy="devices=8 global-batch=8 ckpt=1 report=text" -o /dev/null | FileCheck %s --check-prefix=REPORT
// REPORT: stage layers params grads optimizer activations buffers total
// REPORT-NEXT: 0 50 5.80 5.80 11.61

// Errors.
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="tp=3" 2>&1 | FileCheck %s --check-prefix=TP
// TP: error: --galvatron-apply-strategy: the plan does not suit the model: 'transformer.embeddings': tp 3 does not divide the stage's 8 devices
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="tp=8 global-batch=8" 2>&1 | FileCheck %s --check-prefix=HEADS
// HEADS: error: --galvatron-apply-strategy: the plan does not suit the model: 'transformer.h.0': cannot run with tp = 8: 4 heads do not divide among 8 ranks
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="pp=2 json=%S/Inputs/strategy-gpt-tiny.json" 2>&1 | FileCheck %s --check-prefix=CONFLICT
// CONFLICT: error: --galvatron-apply-strategy: json={{.*}}strategy-gpt-tiny.json gives the whole plan; drop pp
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="json=%S/Inputs/strategy-bad-length.json" 2>&1 | FileCheck %s --check-prefix=LENGTH
// LENGTH: error: --galvatron-apply-strategy: {{.*}}strategy-bad-length.json: 'tp_sizes_enc' has 3 entries but the model has 2 transformer blocks
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="pp=2 pp-division=1,2" 2>&1 | FileCheck %s --check-prefix=DIVISION
// DIVISION: error: --galvatron-apply-strategy: pp-division: the stage division covers 3 transformer blocks but the model has 2
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-apply-strategy="dp-type=zero4" 2>&1 | FileCheck %s --check-prefix=DPTYPE
// DPTYPE: error: --galvatron-apply-strategy: unknown dp-type 'zero4' (expected ddp, zero1, zero2 or zero3)
// RUN: galvatron-translate --model=gpt-1.5b | not galvatron-opt --galvatron-apply-strategy="devices=1 memory=16GiB" 2>&1 | FileCheck %s --check-prefix=MEMORY
// MEMORY: error: --galvatron-apply-strategy: the plan needs {{[0-9.]+}} GiB per device (stage 0) but only 14.20 GiB of the 16.00 GiB budget are usable
// RUN: galvatron-translate --model=gpt-1.5b | galvatron-opt --galvatron-apply-strategy="devices=1 memory=16GiB check-memory=false" | FileCheck %s --check-prefix=UNCHECKED
// UNCHECKED: galvatron.plan = #galvatron.plan<devices = 1, devices_per_node = 1, pp = 1
