// RUN: galvatron-translate --model=gpt-1.5b | galvatron-opt --galvatron-apply-strategy="devices=16 pp=2 tp=2 ckpt=1 chunks=8 global-batch=64" --galvatron-plan-report="cluster=h100-80gb" -o /dev/null | FileCheck %s
// RUN: galvatron-translate --model=gpt-1.5b | galvatron-opt --galvatron-apply-strategy="devices=16 pp=2 tp=2 ckpt=1 chunks=8 global-batch=64" --galvatron-plan-report="cluster=h100-80gb format=json" -o /dev/null | FileCheck %s --check-prefix=JSON

// CHECK: plan for gpt-1.5b on 16 devices (h100-80gb, 2 x 8, 80.00 GiB per device)
// CHECK-NEXT: pp 2, 8 micro-batches of 8 sequences (global batch 64), schedule 1f1b, bf16
// CHECK: transformer.embeddings embedding 0 2 4 ddp yes - no
// CHECK-NEXT: transformer.h.0 .. transformer.h.23 (24) decoder 0 2 4 ddp yes - yes
// CHECK-NEXT: transformer.h.24 .. transformer.h.47 (24) decoder 1 2 4 ddp yes - yes
// CHECK-NEXT: lm_head head 1 2 4 ddp yes - no
// GPT-2's vocabulary is padded as Megatron pads it, and split.
// CHECK-NEXT: 'transformer.embeddings' splits a vocabulary of 50257 padded to 50432 (a multiple of 128 x tp 2)
// CHECK-NEXT: 'lm_head' splits a vocabulary of 50257 padded to 50432 (a multiple of 128 x tp 2)
// CHECK: stages (memory in GiB per device; time in seconds per iteration)
// CHECK: 0 25 1.53 1.53 3.06
// CHECK: 1 25 1.52 1.52 3.05
// CHECK: iteration time

// JSON: "devices": 16,
// JSON: "fits": true,
// JSON: "layers": [
// JSON: "ckpt": false,
// JSON: "dp": 4,
// JSON: "dp_type": "ddp",
// JSON: "vocabulary": {
// JSON-NEXT: "padded": 50432,
// JSON-NEXT: "size": 50257
// JSON: "stages": [
// JSON: "memory_bytes": {
// JSON: "seconds": {
// JSON: "bubble":

// RUN: galvatron-translate --model=gpt-tiny | not galvatron-opt --galvatron-plan-report 2>&1 | FileCheck %s --check-prefix=NOPLAN
// NOPLAN: error: --galvatron-plan-report: the module has no #galvatron.plan
// RUN: galvatron-translate --model=gpt-tiny | galvatron-opt --galvatron-apply-strategy="devices=8 global-batch=8" | not galvatron-opt --galvatron-plan-report="nodes=2" 2>&1 | FileCheck %s --check-prefix=SIZE
// SIZE: error: --galvatron-plan-report: the plan is for 8 devices but the cluster has 16
// RUN: galvatron-translate --model=gpt-tiny | galvatron-opt --galvatron-apply-strategy="devices=8 global-batch=8" | not galvatron-opt --galvatron-plan-report="format=yaml" 2>&1 | FileCheck %s --check-prefix=FORMAT
// FORMAT: error: --galvatron-plan-report: unknown report format 'yaml' (expected text or json)
