// RUN: galvatron-opt %s --galvatron-partition -split-input-file | FileCheck %s

// Vocabulary parallelism on tp=2 with GPT-2's tied embedding and LM head:
// wte is split once along its rows for both readers. The lookup names its
// groups (each rank's block of 8 ids; other ids give zero rows) and its
// partial sums are all-reduced before the replicated position embedding
// is added; the head is column-parallel over the vocabulary, and the
// function's logits are gathered whole.
// CHECK-LABEL: galvatron.parameter @wte : tensor<8x8xf32>
// CHECK-SAME: galvatron.shard = {full_shape = array<i64: 16, 8>, splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>]}]}
// CHECK: galvatron.parameter @wpe : tensor<4x8xf32> {init
// CHECK: galvatron.layer embedding "embed"
// CHECK-NEXT: %[[W:.*]] = galvatron.param @wte : tensor<8x8xf32>
// CHECK-NEXT: %[[T:.*]] = galvatron.embedding %[[W]], %{{.*}} vocab_groups {{\[}}[0, 1]] : (tensor<8x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %[[S:.*]] = galvatron.all_reduce sum %[[T]] groups {{\[}}[0, 1]] : tensor<2x4x8xf32>
// CHECK-NEXT: galvatron.param @wpe : tensor<4x8xf32>
// CHECK-NEXT: %[[P:.*]] = galvatron.embedding %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<4xi64>) -> tensor<4x8xf32>
// CHECK-NEXT: galvatron.add %[[S]], %[[P]]
// CHECK: galvatron.layer head "head"
// CHECK-NEXT: %[[F:.*]] = galvatron.replicate %{{.*}} groups {{\[}}[0, 1]] : tensor<2x4x8xf32>
// CHECK-NEXT: %[[H:.*]] = galvatron.param @wte : tensor<8x8xf32>
// CHECK-NEXT: %[[L:.*]] = galvatron.linear %[[F]], %[[H]] {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %[[WHOLE:.*]] = galvatron.all_gather %[[L]] dim 2 groups {{\[}}[0, 1]] : tensor<2x4x8xf32> -> tensor<2x4x16xf32>
// CHECK-NEXT: galvatron.yield %[[WHOLE]]
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @wte : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @wpe : tensor<4x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>, %pos: tensor<4xi64>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>, %p = %pos : tensor<4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      %q = galvatron.param @wpe : tensor<4x8xf32>
      %e = galvatron.embedding %q, %p : (tensor<4x8xf32>, tensor<4xi64>) -> tensor<4x8xf32>
      %s = galvatron.add %t, %e : (tensor<2x4x8xf32>, tensor<4x8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %s : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %l : tensor<2x4x16xf32>
    }
    return %1 : tensor<2x4x16xf32>
  }
}

// -----

// The tied weight on two pipeline stages, tp=2 on each: one split whose
// groups are both stages' TP groups, so ranks 0 and 2 (1 and 3) hold the
// same rows and the stages' gradients add part by part.
// CHECK-LABEL: galvatron.parameter @wte : tensor<8x8xf32>
// CHECK-SAME: splits = [{dim = 0 : i64, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}]
// CHECK: galvatron.embedding %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]]
// CHECK: galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: galvatron.all_gather %{{.*}} dim 2 groups {{\[}}[2, 3]]
module attributes {galvatron.plan = #galvatron.plan<devices = 4, devices_per_node = 4, pp = 2, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @wte : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %l : tensor<2x4x16xf32>
    }
    return %1 : tensor<2x4x16xf32>
  }
}

// -----

// Readers that would split the tied weight differently (the head runs
// data-parallel) keep it whole: both layers run unsplit on every rank.
// CHECK-LABEL: galvatron.parameter @wte : tensor<16x8xf32> {init
// CHECK: galvatron.embedding %{{.*}}, %{{.*}} : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
// CHECK-NOT: galvatron.all_reduce
// CHECK: galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @wte : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 1, dp = 2>} {
      %w = galvatron.param @wte : tensor<16x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %l : tensor<2x4x16xf32>
    }
    return %1 : tensor<2x4x16xf32>
  }
}

// -----

// An untied LLaMA-shaped embedding under sequence parallelism: the lookup
// needs every position's id, so the layer keeps whole sequences (no shard
// along dimension 1) and all-reduces; the head's own weight is split along
// the vocabulary.
// CHECK-LABEL: galvatron.parameter @embed_tokens : tensor<8x8xf32>
// CHECK: galvatron.parameter @lm_head : tensor<8x8xf32>
// CHECK: galvatron.layer embedding "embed"
// CHECK-NOT: galvatron.shard
// CHECK: galvatron.embedding %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] : (tensor<8x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
// CHECK-NEXT: galvatron.all_reduce sum
// CHECK: galvatron.layer head "head"
// CHECK: galvatron.linear {{.*}} -> tensor<2x4x8xf32>
// CHECK-NEXT: galvatron.all_gather %{{.*}} dim 2 groups {{\[}}[0, 1]]
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @embed_tokens : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @lm_head : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1, sp = true>} {
      %w = galvatron.param @embed_tokens : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1, sp = true>} {
      %w = galvatron.param @lm_head : tensor<16x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %l : tensor<2x4x16xf32>
    }
    return %1 : tensor<2x4x16xf32>
  }
}

// -----

// Two weights both layers read: @a's readers agree, @b's do not (the head
// adds it whole, the embedding layer splits it as a column-parallel bias), so the head runs
// whole and reads @a whole as well.
// CHECK-LABEL: galvatron.parameter @a : tensor<16x8xf32> {init
// CHECK: galvatron.parameter @b : tensor<8xf32> {init
// CHECK: galvatron.layer embedding "embed"
// CHECK-NOT: galvatron.all_reduce
// CHECK: galvatron.linear %{{.*}}, %{{.*}}, %{{.*}} : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
// CHECK: galvatron.layer head "head"
// CHECK-NOT: galvatron.all_gather
// CHECK: galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @a : tensor<16x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  galvatron.parameter @b : tensor<8xf32> {init = #galvatron.init<zeros>}
  galvatron.parameter @c : tensor<8x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @a : tensor<16x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      %c = galvatron.param @c : tensor<8x8xf32>
      %v = galvatron.param @b : tensor<8xf32>
      %u = galvatron.linear %t, %c, %v : (tensor<2x4x8xf32>, tensor<8x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
      galvatron.yield %u : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %v = galvatron.param @b : tensor<8xf32>
      %x = galvatron.add %h, %v : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
      %w = galvatron.param @a : tensor<16x8xf32>
      %l = galvatron.linear %x, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
      galvatron.yield %l : tensor<2x4x16xf32>
    }
    return %1 : tensor<2x4x16xf32>
  }
}

// -----

// A vocabulary that does not divide among the TP ranks (GPT-2's 50257; 15
// here) is padded to a multiple of vocab_divisor x tp (16 here): wte's
// parts pad its shape with a zero row (unpadded_shape records it), the lookup checks ids against
// the source vocabulary, and the gathered logits lose the padding column.
// CHECK-LABEL: galvatron.parameter @wte : tensor<8x8xf32>
// CHECK-SAME: full_shape = array<i64: 16, 8>, splits = {{.*}}, unpadded_shape = array<i64: 15, 8>
// CHECK: galvatron.embedding %{{.*}}, %{{.*}} vocab_groups {{\[}}[0, 1]] {vocab_size = 15 : i64} : (tensor<8x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
// CHECK: %[[L:.*]] = galvatron.linear %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %[[WHOLE:.*]] = galvatron.all_gather %[[L]] dim 2 groups {{\[}}[0, 1]] : tensor<2x4x8xf32> -> tensor<2x4x16xf32>
// CHECK-NEXT: %[[CUT:.*]] = galvatron.slice %[[WHOLE]] [0, 0, 0] to [2, 4, 15] step [1, 1, 1] : tensor<2x4x16xf32> -> tensor<2x4x15xf32>
// CHECK-NEXT: galvatron.yield %[[CUT]]
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2, vocab_divisor = 1>} {
  galvatron.parameter @wte : tensor<15x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x15xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<15x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<15x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    %1 = galvatron.layer head "head" (%h = %0 : tensor<2x4x8xf32>) -> tensor<2x4x15xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<15x8xf32>
      %l = galvatron.linear %h, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<15x8xf32>) -> tensor<2x4x15xf32>
      galvatron.yield %l : tensor<2x4x15xf32>
    }
    return %1 : tensor<2x4x15xf32>
  }
}

// -----

// Megatron's default: a multiple of 128 x tp (15 -> 256 at tp = 2).
// CHECK-LABEL: galvatron.parameter @wte : tensor<128x8xf32>
// CHECK-SAME: full_shape = array<i64: 256, 8>, splits = {{.*}}, unpadded_shape = array<i64: 15, 8>
module attributes {galvatron.plan = #galvatron.plan<devices = 2, devices_per_node = 2, pp = 1, micro_batches = 1, global_batch = 2>} {
  galvatron.parameter @wte : tensor<15x8xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
  func.func @main(%ids: tensor<2x4xi64>) -> tensor<2x4x8xf32> {
    %0 = galvatron.layer embedding "embed" (%i = %ids : tensor<2x4xi64>) -> tensor<2x4x8xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 1>} {
      %w = galvatron.param @wte : tensor<15x8xf32>
      %t = galvatron.embedding %w, %i : (tensor<15x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
      galvatron.yield %t : tensor<2x4x8xf32>
    }
    return %0 : tensor<2x4x8xf32>
  }
}
