// Searches in Galvatron's terms: a batch search over Galvatron's min_bsz /
// max_bsz / bsz_scale, plans Galvatron's runtime can run (exported to its
// strategy JSON and read back unchanged), and its model profiles as
// overrides of the IR-derived costs.

// RUN: galvatron-translate --model=gpt-tiny | galvatron-opt --galvatron-search="devices=4 min-batch=4 max-batch=64 batch-step=4 report=text" -o /dev/null | FileCheck %s --check-prefix=BATCH
// BATCH: micro-batches of {{[0-9]+}} sequences (global batch {{[0-9]+}})
// BATCH: batch search: the configurations covered {{[0-9]+}} global batches; {{[0-9]+}} gives the most sequences per second

// RUN: galvatron-translate --model=gpt-tiny --batch=8 | galvatron-opt --galvatron-search="devices=4 target=galvatron" --galvatron-export-strategy="file=%t.json" -o /dev/null
// RUN: galvatron-translate --model=gpt-tiny --batch=8 | galvatron-opt --galvatron-apply-strategy="devices=4 json=%t.json" --galvatron-export-strategy="file=%t.again.json" -o /dev/null
// RUN: diff %t.json %t.again.json
// RUN: galvatron-translate --model=gpt-tiny --batch=8 | galvatron-opt --galvatron-search="devices=4 target=megatron report=text" -o /dev/null | FileCheck %s --check-prefix=MEGATRON
// MEGATRON: search: {{[0-9]+}} strategies priced
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=4 target=deepspeed" 2>&1 | FileCheck %s --check-prefix=TARGET
// TARGET: error: --galvatron-search: unknown target 'deepspeed' (expected any, galvatron or megatron)
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=4 max-batch=64 global-batch=8" 2>&1 | FileCheck %s --check-prefix=BOTH
// BOTH: error: --galvatron-search: a batch search (max-batch) chooses the global batch; drop global-batch and micro-batch
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=4 max-batch=64 schedule=gpipe" 2>&1 | FileCheck %s --check-prefix=GPIPE
// GPIPE: error: --galvatron-search: a batch search needs the 1F1B schedule

// Galvatron's raw computation measurements (the keys it writes before
// processing) are read; entries at other sequence lengths and raw-only
// memory measurements are named.
// RUN: galvatron-translate --model=gpt-tiny | galvatron-opt --galvatron-search="devices=4 profile=%S/Inputs/galvatron-computation-raw.json profile=%S/Inputs/galvatron-memory.json report=text" -o /dev/null | FileCheck %s --check-prefix=PROFILED
// PROFILED: iteration time
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=4 profile=%S/Inputs/galvatron-computation-wrong-seq.json" 2>&1 | FileCheck %s --check-prefix=SEQ
// SEQ: error: --galvatron-search: {{.*}}galvatron-computation-wrong-seq.json: no entry for the model's sequence length 64 (the profile has 2048)
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=4 profile=%S/Inputs/galvatron-memory-raw.json" 2>&1 | FileCheck %s --check-prefix=RAW
// RAW: error: --galvatron-search: {{.*}}galvatron-memory-raw.json: holds only raw measurements; Galvatron's profiler turns them into layertype_* and other_memory_* entries
