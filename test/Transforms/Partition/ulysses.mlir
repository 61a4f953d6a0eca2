// RUN: galvatron-translate --model=llama-tiny --batch 2 --seq-len 8 | galvatron-opt --galvatron-apply-strategy="devices=2 tp=2 ulysses=1 precision=fp32 check-memory=false" --galvatron-partition | FileCheck %s

// DeepSpeed-Ulysses on the 2 ranks of a LLaMA block: the input keeps the
// rank's half of the sequence, the whole weights are applied to it (their
// gradients summed over the stage's ranks), an all-to-all trades the
// sequence split of q, k and v for a split of their heads before the
// rotary embedding (which needs every position), attention runs on whole
// sequences of 2 query and 1 key/value head, and another all-to-all trades
// back before the output projection; the block's result is gathered.
// CHECK-LABEL: galvatron.layer decoder "model.layers.0"
// CHECK-NEXT: %[[IN:.*]] = galvatron.shard %{{.*}} dim 1 groups {{\[}}[0, 1]] : tensor<2x8x64xf32> -> tensor<2x4x64xf32>
// CHECK: galvatron.param @model.layers.0.self_attn.q_proj.weight : tensor<64x64xf32>
// CHECK-NEXT: galvatron.replicate %{{.*}} groups {{\[}}[0, 1]] : tensor<64x64xf32>
// CHECK: %[[Q:.*]] = galvatron.all_to_all %{{.*}} split 1 concat 2 groups {{\[}}[0, 1]] : tensor<2x4x4x16xf32> -> tensor<2x2x8x16xf32>
// CHECK: %[[K:.*]] = galvatron.all_to_all %{{.*}} split 1 concat 2 groups {{\[}}[0, 1]] : tensor<2x2x4x16xf32> -> tensor<2x1x8x16xf32>
// CHECK: %[[V:.*]] = galvatron.all_to_all %{{.*}} split 1 concat 2 groups {{\[}}[0, 1]] : tensor<2x2x4x16xf32> -> tensor<2x1x8x16xf32>
// CHECK-DAG: %[[RK:.*]] = galvatron.rotary %[[K]] {seq_axis = 2 : i64} : tensor<2x1x8x16xf32>
// CHECK-DAG: %[[RQ:.*]] = galvatron.rotary %[[Q]] {seq_axis = 2 : i64} : tensor<2x2x8x16xf32>
// CHECK: %[[A:.*]] = galvatron.attention %[[RQ]], %[[RK]], %[[V]] {causal = true} : (tensor<2x2x8x16xf32>, tensor<2x1x8x16xf32>, tensor<2x1x8x16xf32>) -> tensor<2x2x8x16xf32>
// CHECK-NEXT: %[[T:.*]] = galvatron.transpose %[[A]], [0, 2, 1, 3] : tensor<2x2x8x16xf32> -> tensor<2x8x2x16xf32>
// CHECK-NEXT: galvatron.all_to_all %[[T]] split 1 concat 2 groups {{\[}}[0, 1]] : tensor<2x8x2x16xf32> -> tensor<2x4x4x16xf32>
// CHECK: %[[OUT:.*]] = galvatron.all_gather %{{.*}} dim 1 groups {{\[}}[0, 1]] : tensor<2x4x64xf32> -> tensor<2x8x64xf32>
// CHECK-NEXT: galvatron.yield %[[OUT]]
