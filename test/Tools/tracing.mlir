// --debug-only=TYPE,... prints the decisions of those DEBUG_TYPEs on
// stderr, in release builds too (GALVATRON_ENABLE_TRACING,
// docs/architecture.md "Tracing"); nothing is printed without it.
// REQUIRES: tracing

// The raise: what each match raised, and where (one thread, so that the
// functions' traces do not interleave).
// RUN: galvatron-opt %s --galvatron-raise-fused-ops --debug-only=raise-fused-ops --mlir-disable-threading -o /dev/null 2>&1 | FileCheck %s --check-prefix=RAISE
// RAISE: raised gelu at loc({{.*}}tracing.mlir":[[# @LINE + 13]]:8) (the idiom ending in galvatron.mul)
// RAISE-NEXT: raised silu at loc({{.*}}tracing.mlir":[[# @LINE + 18]]:8) (the idiom ending in galvatron.mul)
// RAISE-NOT: raised
// RUN: galvatron-opt %s --galvatron-raise-fused-ops -o /dev/null 2>&1 | count 0

func.func @gelu(%x: tensor<2x8xf32>) -> tensor<2x8xf32> {
  %sqrt2 = galvatron.constant dense<1.41421354> : tensor<f32>
  %one = galvatron.constant dense<1.0> : tensor<f32>
  %half = galvatron.constant dense<0.5> : tensor<f32>
  %0 = galvatron.div %x, %sqrt2 : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %1 = galvatron.erf %0 : tensor<2x8xf32>
  %2 = galvatron.add %1, %one : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %3 = galvatron.mul %x, %2 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %4 = galvatron.mul %3, %half : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  return %4 : tensor<2x8xf32>
}

func.func @silu(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = galvatron.sigmoid %x : tensor<4xf32>
  %1 = galvatron.mul %x, %0 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %1 : tensor<4xf32>
}

// The search, two stages of gpt-tiny's 4 layers on 4 devices: each
// configuration's lower bound, the heuristic incumbent, the exact pass's
// best split, the bound that ends the exploration, the stages recovered.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 pp=2" --debug-only=plan-search,plan-search-split,plan-search-recovery -o /dev/null 2>&1 | FileCheck %s --check-prefix=SEARCH
// SEARCH:      configuration pp 2 m 1 (batch 8): lower bound
// SEARCH-NEXT: configuration pp 2 m 2 (batch 8): lower bound
// SEARCH:      heuristic plan for pp 2 m 1 (batch 8):
// SEARCH-NEXT: keep pp 2 m 1 (batch 8): {{.*}} s, heuristic plan, #1
// SEARCH-NEXT: exact pass pp 2 m 1 (batch 8) at 16 bins: best split 0 [[CUT:[0-9]]] 4 in
// SEARCH-NEXT: keep pp 2 m 1 (batch 8): {{.*}} s, split, #1
// SEARCH:      coarse passes stop at pp 2 m 2 (batch 8): its bound {{.*}} reaches the best time
// SEARCH:      plan pp 2 m 1 (batch 8): stage 0 = layers [0, [[CUT]]) reconstructed
// SEARCH-NEXT: plan pp 2 m 1 (batch 8): stage 1 = layers [[[CUT]], 4) reconstructed
// SEARCH-NOT:  states kept

// The dynamic program, summarized per layer; the bounds' stage windows.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 pp=2" --debug-only=plan-search-dp,plan-search-bounds -o /dev/null 2>&1 | FileCheck %s --check-prefix=DP
// DP:      stage 0 window: starts by layer 0
// DP:      new forward pass from layer 0 (stage 0, 1 micro-batches in flight)
// DP-NEXT:   layer 0: {{[0-9]+}} of {{[0-9]+}} states kept ({{[0-9]+}} dominated)
// DP:      new backward pass from layer 4 (stage 1, 1 micro-batches in flight)
// DP-NEXT:   layer 3: {{[0-9]+}} of {{[0-9]+}} states kept
// DP-NOT:  configuration pp

// --debug traces every type.
// RUN: galvatron-translate --model=gpt-tiny --batch=2 | galvatron-opt --galvatron-search="devices=4 global-batch=8 pp=2" --debug -o /dev/null 2>&1 | FileCheck %s --check-prefix=ALL
// ALL-DAG: configuration pp 2 m 1 (batch 8): lower bound
// ALL-DAG: states kept
// ALL-DAG: window

// galvatron-plan registers the option too.
// RUN: galvatron-plan --model=gpt-tiny --gpus-per-node 4 --global-batch 8 --pp 2 --debug-only=plan-search-recovery 2>&1 | FileCheck %s --check-prefix=PLAN
// PLAN: plan pp 2 m {{[0-9]+}} (batch 8): stage 0 = layers

// The partitioner: each layer's mode, each weight's split, each op rebuilt
// with its types and changed attributes (the attention's mask record: the
// rank's heads in the whole probabilities), each collective and why.
// RUN: galvatron-translate --model=gpt-tiny --layers=1 --seq-len=16 --batch=2 --dropout=0.1 | galvatron-opt --galvatron-apply-strategy="devices=2 tp=2 precision=fp32 check-memory=false" --galvatron-partition --debug-only=partition -o /dev/null 2>&1 | FileCheck %s --check-prefix=PART
// PART:      [partition] layer 'transformer.embeddings': tp=2 dp=1
// PART-NEXT: [partition]   tensor parallel, vocabulary lookup
// PART:      [partition]   weight "transformer.wte.weight": split
// PART:      [partition]   galvatron.all_reduce {{.*}} (partial to replicated): partial sums needed whole for galvatron.add
// PART:      [partition]   rebuilt galvatron.attention -> (tensor<2x2x16x16xf32>), shard = {full_shape = array<i64: 2, 4, 16, 16>, splits = [{dim = 1 : i64
// PART-NEXT: [partition]   result #0: split(1)
// PART:      [partition]   bias added after the reduction
