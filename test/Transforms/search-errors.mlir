// No plan fits: the error names the least memory any plan needs.
// RUN: galvatron-translate --model=gpt-1.5b | not galvatron-opt --galvatron-search="devices=8 memory=4GiB global-batch=8" -o /dev/null 2>&1 | FileCheck %s --check-prefix=NOFIT
// NOFIT: error: --galvatron-search: no plan fits in 4.00 GiB per device: the plan needing the least memory (pp = 1, 8 micro-batches of 1, 'transformer.h.24' tp 8, dp 1 ddp, checkpointed) needs 4.21 GiB per device, 0.21 GiB more (3.00 GiB of model states, activations and buffers plus the runtime reserve)

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="cluster=tpu-v5" 2>&1 | FileCheck %s --check-prefix=CLUSTER
// CLUSTER: error: --galvatron-search: unknown cluster 'tpu-v5' (presets: a100-80gb, h100-80gb, a100-40gb-pcie; or give the path of a cluster JSON file)

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="cluster=%S/Inputs/bad-cluster.json" 2>&1 | FileCheck %s --check-prefix=MALFORMED
// MALFORMED: error: --galvatron-search: {{.*}}bad-cluster.json: malformed JSON:

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="cluster=%S/Inputs/missing.json" 2>&1 | FileCheck %s --check-prefix=MISSING
// MISSING: error: --galvatron-search: cannot read '{{.*}}missing.json':

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="profile=%S/Inputs/bad-profile.json" 2>&1 | FileCheck %s --check-prefix=PROFILE
// PROFILE: error: --galvatron-search: {{.*}}bad-profile.json: unrecognized key 'broadcast_size_4'

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="disable=dp" 2>&1 | FileCheck %s --check-prefix=DISABLE
// DISABLE: error: --galvatron-search: cannot disable 'dp' (expected tp, pp, sp, ulysses, ckpt, ddp, zero1, zero2, zero3 or tp-nonconsecutive)

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="schedule=interleaved" 2>&1 | FileCheck %s --check-prefix=SCHEDULE
// SCHEDULE: error: --galvatron-search: unknown schedule 'interleaved' (expected any, gpipe or 1f1b)

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="pp=3" 2>&1 | FileCheck %s --check-prefix=PP
// PP: error: --galvatron-search: pp = 3 does not divide the 8 devices

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="global-batch=16 micro-batch=3" 2>&1 | FileCheck %s --check-prefix=MICRO
// MICRO: error: --galvatron-search: micro-batch = 3 does not divide the global batch of 16
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="global-batch=16 micro-batch=4 chunks=2" 2>&1 | FileCheck %s --check-prefix=CHUNKS
// CHUNKS: error: --galvatron-search: micro-batch = 4 makes 4 micro-batches, not chunks = 2

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="max-tp=3" 2>&1 | FileCheck %s --check-prefix=MAXTP
// MAXTP: error: --galvatron-search: max-tp must be a power of two, got 3

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="memory=eighty" 2>&1 | FileCheck %s --check-prefix=MEMORY
// MEMORY: error: --galvatron-search: invalid memory size 'eighty' (expected e.g. 80, 80GiB, 80GB, 81920MiB)

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="memory=1GiB" 2>&1 | FileCheck %s --check-prefix=RESERVE
// RESERVE: error: --galvatron-search: a budget of 1.00 GiB per device leaves nothing after the runtime's 1.00 GiB and fragmentation

// The global batch must split among the devices.
// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="global-batch=3 disable=tp" 2>&1 | FileCheck %s --check-prefix=BATCH
// BATCH: error: --galvatron-search: no configuration in the search space: no pipeline degree, micro-batch count and tensor-parallel degree fit 8 devices and a global batch of 3

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-search="devices=12" 2>&1 | FileCheck %s --check-prefix=DEVICES
// DEVICES: error: --galvatron-search: devices = 12 do not fill whole nodes of 8 (a100-80gb)

// RUN: not galvatron-opt %s --galvatron-search 2>&1 | FileCheck %s --check-prefix=NOLAYERS
// NOLAYERS: error: --galvatron-search: the module has no function with galvatron.layer ops
func.func @empty() {
  return
}
