// RUN: galvatron-translate --model=gpt-tiny | galvatron-opt --galvatron-print-tensor-parallel -o /dev/null | FileCheck %s --check-prefix=GPT
// RUN: galvatron-translate --model=llama-tiny | galvatron-opt --galvatron-print-tensor-parallel -o /dev/null | FileCheck %s --check-prefix=LLAMA
// RUN: galvatron-translate --model=t5-tiny | galvatron-opt --galvatron-print-tensor-parallel -o /dev/null | FileCheck %s --check-prefix=T5
// RUN: galvatron-opt %s --allow-unregistered-dialect --galvatron-print-tensor-parallel -o /dev/null | FileCheck %s --check-prefix=ODD

// Vocabulary-parallel embedding: one all-reduce of the partial lookups.
// GPT: layer "transformer.embeddings" (embedding): shardable; sequence parallel: yes
// GPT-NEXT: param @transformer.wte.weight: split dim 0
// GPT-NEXT: param @transformer.wpe.weight: replicated
// GPT-NEXT: comm reduce-partial on galvatron.embedding 1x64x64xf32 [sequence]
// A Megatron block: column, row, column, row; the fused QKV weight split per
// q, k and v; f before the column-parallel linears, g after the row ones.
// GPT: layer "transformer.h.0" (decoder): shardable, heads 4; sequence parallel: yes
// GPT-NEXT: linear @transformer.h.0.attn.c_attn.weight 64x192xf32: column
// GPT-NEXT: linear @transformer.h.0.attn.c_proj.weight 64x64xf32: row
// GPT-NEXT: linear @transformer.h.0.mlp.c_fc.weight 64x256xf32: column
// GPT-NEXT: linear @transformer.h.0.mlp.c_proj.weight 256x64xf32: row
// GPT: param @transformer.h.0.attn.c_attn.weight: split dim 1 in segments 64 64 64
// GPT: param @transformer.h.0.attn.c_proj.bias: replicated
// GPT: comm replicated-input on galvatron.layer_norm 1x64x64xf32 [sequence]
// GPT-NEXT: comm reduce-partial on galvatron.linear 1x64x64xf32 [sequence]
// GPT-NEXT: comm replicated-input on galvatron.layer_norm 1x64x64xf32 [sequence]
// GPT-NEXT: comm reduce-partial on galvatron.linear 1x64x64xf32 [sequence]
// The tied LM head: column-parallel over the vocabulary, logits stay split.
// GPT: layer "lm_head" (head): shardable; sequence parallel: yes
// GPT-NEXT: linear @transformer.wte.weight 256x64xf32: column
// GPT: result 0: vocabulary-parallel output

// Grouped-query attention: 4 query and 2 key/value heads must divide.
// LLAMA: layer "model.layers.0" (decoder): shardable, heads 2 4; sequence parallel: yes
// LLAMA: linear @model.layers.0.mlp.down_proj.weight 64x176xf32: row

// The relative position bias is split by heads; its gradient is gathered.
// T5: layer "encoder.block.0" (encoder): shardable, heads 4; sequence parallel: yes
// T5: comm scatter-replicated on argument 1 1x4x32x32xf32
// Cross-attention keys and values come from the encoder output (f).
// T5: layer "decoder.block.0" (decoder)
// T5: comm replicated-input on argument 1 1x32x64xf32 [sequence]

// An op the analysis has no rule for on a sharded value: tp = 1 only.
// ODD: layer "odd" (decoder): tp = 1 only: test.mystery: no tensor-parallel rule for this op on a sharded or partial-sum operand
galvatron.parameter @w : tensor<8x16xf32> {init = #galvatron.init<zeros>}
func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
  %0 = galvatron.layer decoder "odd" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
    %w = galvatron.param @w : tensor<8x16xf32>
    %y = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
    %z = "test.mystery"(%y) : (tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    galvatron.yield %z : tensor<2x4x16xf32>
  }
  return %0 : tensor<2x4x16xf32>
}
