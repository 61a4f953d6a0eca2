// RUN: galvatron-opt %s --galvatron-lower-to-runtime="world-size=4 overlap=false" -split-input-file -verify-diagnostics | FileCheck %s

// One program for the 4 ranks: each collective runs on the group family
// its explicit groups form (named after its mesh axes: {2, 1} pairs ranks
// [0, 1] and [2, 3], {2, 2} ranks [0, 2] and [1, 3]). Dimension-1
// collectives go through a transpose; shard is a slice starting at the
// rank's position in its group; replicate is free; a sharded parameter's
// slice starts at 4 x its position in its pair plus 2 x its position in
// [0, 2] or [1, 3] along dimension 1 (rank 2: [0, 2]; rank 1: [0, 4]).
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 1
// CHECK-DAG: grt.group @g_2x1 sizes [2] strides [1]
// CHECK-DAG: grt.group @g_2x2 sizes [2] strides [2]
// CHECK: grt.program stage 0
// CHECK: %[[X:.*]] = grt.input "x"
// CHECK: grt.parameter "w" {{.*}}{full_shape = array<i64: 4, 8>, {{.*}}slice_start = array<i64: 0, 0>, slice_terms = [#grt.term<"slice_start"[1], 4 * @g_2x1>, #grt.term<"slice_start"[1], 2 * @g_2x2>]} : memref<4x2xf32>
// CHECK: grt.all_reduce sum ins(%[[X]] : memref<4x8xf32>) outs(%{{.*}} : memref<4x8xf32>) group @g_2x1 layer "l0"
// CHECK: grt.kernel "slice" {{.*}}{limits = array<i64: 2, 8>, starts = array<i64: 0, 0>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 2 * @g_2x2>, #grt.term<"limits"[0], 2 * @g_2x2>]
// CHECK: grt.kernel "transpose" ins(%{{.*}} : memref<4x2x4xf32>) outs(%{{.*}} : memref<2x4x4xf32>) {perm = array<i64: 1, 0, 2>}
// CHECK: grt.reduce_scatter avg ins(%{{.*}} : memref<2x4x4xf32>) outs(%{{.*}} : memref<1x4x4xf32>) group @g_2x1
// CHECK: grt.all_gather ins(%{{.*}} : memref<1x4x4xf32>) outs(%{{.*}} : memref<2x4x4xf32>) group @g_2x1
// CHECK: grt.kernel "transpose" ins(%{{.*}} : memref<2x4x4xf32>) outs(%{{.*}} : memref<4x2x4xf32>) {perm = array<i64: 1, 0, 2>}
// CHECK: grt.all_gather ins(%{{.*}} : memref<1x2x8xf32>) outs(%{{.*}} : memref<2x2x8xf32>) group @g_2x2
// CHECK: grt.kernel "add"
// CHECK: grt.kernel "slice" {{.*}}{limits = array<i64: 2, 8>, starts = array<i64: 0, 0>, strides = array<i64: 1, 1>} terms [#grt.term<"starts"[0], 2 * @g_2x1>, #grt.term<"limits"[0], 2 * @g_2x1>]
// CHECK-NOT: grt.program
galvatron.parameter @w : tensor<4x2xf32> {init = #galvatron.init<normal(0.0, 0.02)>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1 : i64, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}, {dim = 1 : i64, groups = [array<i64: 0, 2>, array<i64: 1, 3>]}]}}
func.func @main(%x: tensor<4x8xf32> {galvatron.name = "x"}) -> (tensor<2x8xf32> {galvatron.name = "y"}, tensor<4x4xf32> {galvatron.name = "z"}, tensor<4x2xf32> {galvatron.name = "w"}) {
  %0:3 = galvatron.layer decoder "l0" (%a = %x : tensor<4x8xf32>) -> (tensor<2x8xf32>, tensor<4x4xf32>, tensor<4x2xf32>) {
    %r = galvatron.replicate %a groups [[0, 1], [2, 3]] : tensor<4x8xf32>
    %s = galvatron.all_reduce sum %r groups [[0, 1], [2, 3]] : tensor<4x8xf32>
    %p = galvatron.shard %s dim 0 groups [[0, 2], [1, 3]] : tensor<4x8xf32> -> tensor<2x8xf32>
    %q = galvatron.reduce_scatter avg %s dim 1 groups [[0, 1], [2, 3]] : tensor<4x8xf32> -> tensor<4x4xf32>
    %w = galvatron.param @w : tensor<4x2xf32>
    %g = galvatron.all_gather %q dim 1 groups [[0, 1], [2, 3]] : tensor<4x4xf32> -> tensor<4x8xf32>
    %h = galvatron.all_gather %p dim 0 groups [[0, 2], [1, 3]] reduce_grad : tensor<2x8xf32> -> tensor<4x8xf32>
    %i = galvatron.add %g, %h : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %j = galvatron.shard %i dim 0 groups [[0, 1], [2, 3]] : tensor<4x8xf32> -> tensor<2x8xf32>
    galvatron.yield %j, %q, %w : tensor<2x8xf32>, tensor<4x4xf32>, tensor<4x2xf32>
  }
  return %0#0, %0#1, %0#2 : tensor<2x8xf32>, tensor<4x4xf32>, tensor<4x2xf32>
}

// -----

// ZeRO-1/2 state is bound to the rank's slice of the whole like a sharded
// weight (4 rows times its position in [0, 2] or [1, 3]), so checkpoints
// and the parity harnesses see its place.
// CHECK-LABEL: grt.executable
// CHECK: grt.parameter "w.exp_avg" {{.*}}{full_shape = array<i64: 8, 2>, {{.*}}slice_start = array<i64: 0, 0>, slice_terms = [#grt.term<"slice_start"[0], 4 * @g_2x2>], state} : memref<4x2xf32>
galvatron.parameter @w : tensor<8x2xf32> {init = #galvatron.init<zeros>, galvatron.data_parallel = {groups = [array<i64: 0, 2>, array<i64: 1, 3>], zero = 1, dim = 0}}
galvatron.state optimizer @w.exp_avg of @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 8, 2>, splits = [{dim = 0, groups = [array<i64: 0, 2>, array<i64: 1, 3>]}]}}
func.func @main() -> tensor<4x2xf32> {
  %0 = galvatron.read_state @w.exp_avg : tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

// An all-reduce works in place: one assigned to a variable (a data-parallel
// gradient accumulator) reduces straight into it, and so what it reduces
// (the accumulator plus a gradient) is computed there too; one whose operand
// dies there reuses the operand's bytes (the mul's result).
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 1
// CHECK: %[[ACC:.*]] = grt.parameter "acc" {{.*}}state} : memref<8xf32>
// CHECK: %[[SQUARES:.*]] = grt.buffer offset [[OFFSET:[0-9]+]] : memref<8xf32>
// CHECK: %[[REDUCED:.*]] = grt.buffer offset [[OFFSET]] : memref<8xf32>
// CHECK: grt.kernel "add" ins(%[[ACC]], %{{.*}} : {{.*}}) outs(%[[ACC]] : memref<8xf32>)
// CHECK-NEXT: grt.all_reduce sum ins(%[[ACC]] : memref<8xf32>) outs(%[[ACC]] : memref<8xf32>) group @g_2x1
// CHECK-NEXT: grt.kernel "mul" ins(%[[ACC]], %[[ACC]] : {{.*}}) outs(%[[SQUARES]] : memref<8xf32>)
// CHECK-NEXT: grt.all_reduce sum ins(%[[SQUARES]] : memref<8xf32>) outs(%[[REDUCED]] : memref<8xf32>) group @g_2x1
// CHECK-NOT: "copy"
galvatron.state gradient @acc : tensor<8xf32> {init = #galvatron.init<zeros>}
func.func @main(%g: tensor<8xf32> {galvatron.name = "g"}) -> (tensor<8xf32> {galvatron.name = "y"}) {
  %acc = galvatron.read_state @acc : tensor<8xf32>
  %sum = galvatron.add %acc, %g : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %synced = galvatron.all_reduce sum %sum groups [[0, 1], [2, 3]] : tensor<8xf32>
  galvatron.assign @acc, %synced : tensor<8xf32>
  %squares = galvatron.mul %synced, %synced : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
  %y = galvatron.all_reduce sum %squares groups [[0, 1], [2, 3]] : tensor<8xf32>
  return %y : tensor<8xf32>
}

// -----

// An all-gather assigned to its variable (ZeRO-1/2's updated slices of a
// weight) lands in the variable's bytes: directly along dimension 0, through
// the transpose into them along another.
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 1
// CHECK: %[[A:.*]] = grt.parameter "a" {{.*}} : memref<4x2xf32>
// CHECK: %[[B:.*]] = grt.parameter "b" {{.*}} : memref<2x4xf32>
// CHECK: %[[A_VIEW:.*]] = grt.view %[[A]] at 0 : memref<4x2xf32> to memref<2x2x2xf32>
// CHECK: %[[B_VIEW:.*]] = grt.view %[[B]] at 0 : memref<2x4xf32> to memref<2x2x2xf32>
// CHECK: grt.all_gather ins(%{{.*}} : memref<1x2x2xf32>) outs(%[[A_VIEW]] : memref<2x2x2xf32>) group @g_2x1
// CHECK: grt.kernel "transpose" ins(%{{.*}} : memref<2x2x2xf32>) outs(%[[B_VIEW]] : memref<2x2x2xf32>)
// CHECK-NOT: "copy"
galvatron.parameter @a : tensor<4x2xf32> {init = #galvatron.init<zeros>}
galvatron.parameter @b : tensor<2x4xf32> {init = #galvatron.init<zeros>}
func.func @main(%x: tensor<2x2xf32> {galvatron.name = "x"}) -> (tensor<f32> {galvatron.name = "y"}) {
  %a = galvatron.all_gather %x dim 0 groups [[0, 1], [2, 3]] : tensor<2x2xf32> -> tensor<4x2xf32>
  galvatron.assign @a, %a : tensor<4x2xf32>
  %b = galvatron.all_gather %x dim 1 groups [[0, 1], [2, 3]] : tensor<2x2xf32> -> tensor<2x4xf32>
  galvatron.assign @b, %b : tensor<2x4xf32>
  %y = galvatron.constant dense<0.0> : tensor<f32>
  return %y : tensor<f32>
}

// -----

galvatron.parameter @w : tensor<8x2xf32> {init = #galvatron.init<zeros>}
// expected-error @+1 {{'galvatron.state' op has no device group for some of the ranks [0, 4) of its stage}}
galvatron.state optimizer @w.exp_avg of @w : tensor<4x2xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 8, 2>, splits = [{dim = 0, groups = [array<i64: 0, 3>]}]}}
func.func @main() -> tensor<4x2xf32> {
  %0 = galvatron.read_state @w.exp_avg : tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

// expected-error @+1 {{'galvatron.parameter' op has no device group for some of the ranks [0, 4) of its stage}}
galvatron.parameter @w : tensor<4x4xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 4, 8>, splits = [{dim = 1, groups = [array<i64: 0, 3>]}]}}
func.func @main() -> tensor<4x4xf32> {
  %0 = galvatron.param @w : tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has no device group for some of the ranks [0, 4) of its stage}}
  %0 = galvatron.all_reduce sum %x groups [[0, 3]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{names rank 4 outside a world of 4}}
  %0 = galvatron.all_reduce sum %x groups [[0, 1], [2, 4]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}


// -----

// Groups must form one family over mesh axes.
func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has groups that are not a mesh pattern (group 0 lists 0 after 1)}}
  %0 = galvatron.all_reduce sum %x groups [[1, 0], [3, 2]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has group [3, ...] that does not follow the mesh axes of group 0}}
  %0 = galvatron.all_reduce sum %x groups [[0, 2], [3, 1]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @main(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @+1 {{has group [1, ...] that does not follow the mesh axes of group 0}}
  %0 = galvatron.all_reduce sum %x groups [[0, 3], [1, 2]] : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// An all-to-all (Ulysses): the split dimension's member index is brought
// to the front by a transpose, the parts are exchanged along dimension 0,
// and a second transpose moves the member index next to the concatenated
// dimension. A padded parameter keeps its source shape: the second member's
// slice of a 6-row vocabulary padded to 8 starts at row 4 (rows 6 and 7 are
// padding), and the lookup's vocabulary is the source's.
// CHECK-LABEL: grt.executable world_size 4 alignment 64 stages 1
// CHECK: grt.parameter "table" {{.*}}{full_shape = array<i64: 6, 4>, {{.*}}slice_start = array<i64: 0, 0>, slice_terms = [#grt.term<"slice_start"[0], 4 * @g_2x1>]} : memref<4x4xf32>
// CHECK: grt.kernel "embedding" {{.*}}{vocab_size = 6 : i64, vocab_start = 0 : i64} terms [#grt.term<"vocab_start"[0], 4 * @g_2x1>]
// CHECK: grt.kernel "transpose" ins(%{{.*}} : memref<2x2x2x2x4xf32>) outs(%{{.*}} : memref<2x2x2x2x4xf32>) {perm = array<i64: 1, 0, 2, 3, 4>}
// CHECK-NEXT: grt.all_to_all ins(%{{.*}} : memref<2x2x2x2x4xf32>) outs(%{{.*}} : memref<2x2x2x2x4xf32>) group @g_2x1
// CHECK-NEXT: grt.kernel "transpose" ins(%{{.*}} : memref<2x2x2x2x4xf32>) outs(%{{.*}} : memref<2x2x2x2x4xf32>) {perm = array<i64: 1, 2, 0, 3, 4>}
galvatron.parameter @table : tensor<4x4xf32> {init = #galvatron.init<zeros>, galvatron.shard = {full_shape = array<i64: 8, 4>, splits = [{dim = 0, groups = [array<i64: 0, 1>, array<i64: 2, 3>]}], unpadded_shape = array<i64: 6, 4>}}
func.func @main(%x: tensor<2x4x2x4xf32>, %ids: tensor<2xi64>) -> (tensor<2x2x4x4xf32>, tensor<2x4xf32>) {
  %0:2 = galvatron.layer decoder "l0" (%a = %x : tensor<2x4x2x4xf32>, %i = %ids : tensor<2xi64>) -> (tensor<2x2x4x4xf32>, tensor<2x4xf32>) {
    %t = galvatron.param @table : tensor<4x4xf32>
    %e = galvatron.embedding %t, %i vocab_groups [[0, 1], [2, 3]] {vocab_size = 6} : (tensor<4x4xf32>, tensor<2xi64>) -> tensor<2x4xf32>
    %y = galvatron.all_to_all %a split 1 concat 2 groups [[0, 1], [2, 3]] : tensor<2x4x2x4xf32> -> tensor<2x2x4x4xf32>
    galvatron.yield %y, %e : tensor<2x2x4x4xf32>, tensor<2x4xf32>
  }
  return %0#0, %0#1 : tensor<2x2x4x4xf32>, tensor<2x4xf32>
}
