//===- GalvatronCollectives.td - Collectives on device groups -*- tablegen -*-===//
//
// The collectives the partitioner inserts into an SPMD program. Every op
// names all its device groups XLA-style (`groups [[0, 1], [2, 3]]`: each
// list is one group of world ranks, in group order); every rank running the
// program belongs to exactly one of them, and the runtime lowering picks
// that rank's group. Each op's gradient rule keeps the gradients of the
// partitioned program equal to the serial program's (see "Partitioning" in
// docs/architecture.md): a value replicated over a group carries the whole
// gradient on every member, a value split over a group carries the
// gradient of its own part.
//
// Included from GalvatronOps.td.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONCOLLECTIVES_TD
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONCOLLECTIVES_TD

class Galvatron_CollectiveOp<string mnemonic, list<Trait> traits = []>
    : Galvatron_Op<mnemonic, !listconcat([Pure,
        DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>], traits)> {
  let hasVerifier = 1;
  code extraCollectiveDeclaration = [{
    /// The members of each group.
    ::llvm::SmallVector<::llvm::ArrayRef<int64_t>> getGroupList() {
      ::llvm::SmallVector<::llvm::ArrayRef<int64_t>> list;
      for (::mlir::Attribute group : getGroups())
        list.push_back(::llvm::cast<::mlir::DenseI64ArrayAttr>(group)
                           .asArrayRef());
      return list;
    }
    /// The number of members of each group.
    int64_t getGroupSize() {
      return ::llvm::cast<::mlir::DenseI64ArrayAttr>(getGroups()[0]).size();
    }
  }];
  let extraClassDeclaration = extraCollectiveDeclaration;
}

def Galvatron_AllReduceOp : Galvatron_CollectiveOp<"all_reduce",
    [SameOperandsAndResultType]> {
  let summary = "Combines the members' tensors; every member gets the result";
  let description = [{
    Megatron's g: the members hold partial sums (or values to average or
    take the maximum of) and every member continues with the whole, in
    replicated computation. Hence the gradient rule: every member already
    holds the whole gradient of the result, which is the gradient of its
    own operand for `sum` (1/n of it for `avg`); `max` serves statistics
    that need no gradient (the parallel cross-entropy's row maximum) and has
    none.

    ```mlir
    %1 = galvatron.all_reduce sum %0 groups [[0, 1], [2, 3]] : tensor<2x8x64xf32>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_CollectiveReduction:$reduce,
      Galvatron_DeviceGroupsAttr:$groups);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $reduce $input `groups` custom<DeviceGroups>($groups) attr-dict `:`
    type($result)
  }];
}

def Galvatron_ReplicateOp : Galvatron_CollectiveOp<"replicate",
    [SameOperandsAndResultType]> {
  let summary = "Identity forward; gradient summed over the group";
  let description = [{
    Marks a value replicated over each group that its members then use in
    different ways (Megatron's f before column-parallel work; a weight read
    by data-parallel replicas on different rows). The forward is the
    identity; the gradient is the all-reduce (sum) of the members'
    gradients, which is how data-parallel gradient sync falls out of
    autodiff.

    ```mlir
    %1 = galvatron.replicate %0 groups [[0, 2], [1, 3]] : tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_DeviceGroupsAttr:$groups);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $input `groups` custom<DeviceGroups>($groups) attr-dict `:` type($result)
  }];
}

def Galvatron_AllGatherOp : Galvatron_CollectiveOp<"all_gather"> {
  let summary = "Concatenates the members' parts along `dim` in group order";
  let description = [{
    Member i's operand becomes part i of dimension `dim` of every member's
    result. The gradient is the member's part of the result gradient
    (a local slice) when the result feeds replicated computation, or, with
    `reduce_grad`, the reduce-scatter (sum) of the members' gradients when
    each member uses the whole differently (a ZeRO-3 weight gathered for
    data-parallel replicas, a sequence-parallel activation gathered for
    column-parallel work).

    ```mlir
    %1 = galvatron.all_gather %0 dim 0 groups [[0, 1]] reduce_grad
        : tensor<32x64xf32> -> tensor<64x64xf32>
    ```
  }];
  let arguments = (ins Galvatron_Tensor:$input,
      ConfinedAttr<I64Attr, [IntNonNegative]>:$dim,
      Galvatron_DeviceGroupsAttr:$groups, UnitAttr:$reduce_grad);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    $input `dim` $dim `groups` custom<DeviceGroups>($groups)
    (`reduce_grad` $reduce_grad^)? attr-dict `:` type($input) `->`
    type($result)
  }];
}

def Galvatron_ReduceScatterOp : Galvatron_CollectiveOp<"reduce_scatter"> {
  let summary = "Combines the members' tensors; member i keeps part i";
  let description = [{
    Member i's result is part i (along `dim`) of the sum (or average) of
    the members' operands: Megatron sequence parallelism's g, and the
    gradient of an all-gather. Its gradient is the all-gather of the part
    gradients (scaled by 1/n for `avg`).

    ```mlir
    %1 = galvatron.reduce_scatter sum %0 dim 1 groups [[0, 1]]
        : tensor<2x8x64xf32> -> tensor<2x4x64xf32>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$input,
      Galvatron_CollectiveReduction:$reduce,
      ConfinedAttr<I64Attr, [IntNonNegative]>:$dim,
      Galvatron_DeviceGroupsAttr:$groups);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $reduce $input `dim` $dim `groups` custom<DeviceGroups>($groups)
    attr-dict `:` type($input) `->` type($result)
  }];
}

def Galvatron_ShardOp : Galvatron_CollectiveOp<"shard"> {
  let summary = "Member i keeps part i of a replicated tensor (no messages)";
  let description = [{
    Slices a value every member holds whole down to the member's part along
    `dim`: data-parallel replicas taking their rows of the batch, a
    replicated activation entering sharded computation. The forward is
    local; the gradient is the all-gather of the part gradients.

    ```mlir
    %1 = galvatron.shard %0 dim 0 groups [[0, 1]] : tensor<4x8xi64> -> tensor<2x8xi64>
    ```
  }];
  let arguments = (ins Galvatron_Tensor:$input,
      ConfinedAttr<I64Attr, [IntNonNegative]>:$dim,
      Galvatron_DeviceGroupsAttr:$groups);
  let results = (outs Galvatron_Tensor:$result);
  let assemblyFormat = [{
    $input `dim` $dim `groups` custom<DeviceGroups>($groups) attr-dict `:`
    type($input) `->` type($result)
  }];
}

def Galvatron_AllToAllOp : Galvatron_CollectiveOp<"all_to_all"> {
  let summary = "Trades a split along one dimension for one along another";
  let description = [{
    Each member splits its operand along `split_dim` into n parts, sends
    part j to member j, and concatenates what it receives along
    `concat_dim` in group order. When every member holds part i of a tensor
    along `concat_dim` (whole along `split_dim`), the results are its parts
    along `split_dim` (whole along `concat_dim`): DeepSpeed-Ulysses's switch
    between a sequence split and a head split around attention. The gradient
    is the all-to-all back (`split_dim` and `concat_dim` exchanged).

    ```mlir
    %1 = galvatron.all_to_all %0 split 1 concat 2 groups [[0, 1]]
        : tensor<2x4x8x16xf32> -> tensor<2x2x16x16xf32>
    ```
  }];
  let arguments = (ins Galvatron_FloatTensor:$input,
      ConfinedAttr<I64Attr, [IntNonNegative]>:$split_dim,
      ConfinedAttr<I64Attr, [IntNonNegative]>:$concat_dim,
      Galvatron_DeviceGroupsAttr:$groups);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $input `split` $split_dim `concat` $concat_dim `groups`
    custom<DeviceGroups>($groups) attr-dict `:` type($input) `->`
    type($result)
  }];
}

//===----------------------------------------------------------------------===//
// Vocabulary-parallel cross-entropy
//===----------------------------------------------------------------------===//

// Softmax cross-entropy of logits split along the vocabulary over each of
// `vocab_groups` (member i holds columns [i·V, (i+1)·V) of the group's V·n),
// Megatron style, with every collective an op of its own:
//
//   %m = galvatron.reduce_max %logits axes [2]            // local row max
//   %M = galvatron.all_reduce max %m groups G             // no gradient
//   %s = galvatron.vocab_cross_entropy_stats %logits, %M, %labels vocab_groups G
//   %S = galvatron.all_reduce sum %s groups G
//   %loss = galvatron.vocab_cross_entropy %S, %logits, %M, %labels vocab_groups G
//
// The loss depends on the logits through the statistics; its rule gives the
// gradient of the whole chain with respect to the member's logits,
// softmax − onehot on its columns, and none to the statistics, so neither
// the maximum (on which the loss does not depend) nor the sums carry one.
// An optional `vocab_size` (at most V·n) is the vocabulary when the blocks
// pad it: labels lie in [0, vocab_size), the columns past it are left out of
// the softmax and get a zero gradient.

class Galvatron_VocabParallelOp<string mnemonic, list<Trait> traits = []>
    : Galvatron_Op<mnemonic, !listconcat([Galvatron_Kernel, Pure], traits)> {
  let hasVerifier = 1;
}

def Galvatron_VocabCrossEntropyStatsOp
    : Galvatron_VocabParallelOp<"vocab_cross_entropy_stats",
        [DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "A member's exponential sum and target logit of each row";
  let description = [{
    `logits` is the member's [..., V] columns, `max` the [...] maximum of
    each whole row, `labels` the [...] targets in [0, V·n) or
    `ignore_index`. Result [..., 0] is Σ_j exp(logits[..., j] − max), result
    [..., 1] is logits[..., label − i·V] − max when the member holds the
    label's column and 0 otherwise (always 0 for ignored rows); the members'
    results sum to the whole row's. f32, whatever the logits' type.
  }];
  let arguments = (ins Galvatron_FloatTensor:$logits,
      Galvatron_FloatTensor:$max, Galvatron_IndexTensor:$labels,
      Galvatron_DeviceGroupsAttr:$vocab_groups,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      OptionalAttr<Galvatron_VocabSizeAttr>:$vocab_size);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $logits `,` $max `,` $labels `vocab_groups`
    custom<DeviceGroups>($vocab_groups) attr-dict `:`
    functional-type(operands, results)
  }];
}

def Galvatron_VocabCrossEntropyOp
    : Galvatron_VocabParallelOp<"vocab_cross_entropy",
        [DeclareOpInterfaceMethods<Galvatron_VJPOpInterface>]> {
  let summary = "Cross-entropy from the summed statistics of split logits";
  let description = [{
    `stats` is the group's sum of `vocab_cross_entropy_stats`; the result is
    the f32 scalar mean (or sum) over rows whose label is not
    `ignore_index` of log(stats[..., 0]) − stats[..., 1]. `logits` and `max`
    are the member's operands of the statistics, kept for the gradient rule
    (see above).
  }];
  let arguments = (ins Galvatron_FloatTensor:$stats,
      Galvatron_FloatTensor:$logits, Galvatron_FloatTensor:$max,
      Galvatron_IndexTensor:$labels,
      Galvatron_DeviceGroupsAttr:$vocab_groups,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Galvatron_LossReduction,
                        "LossReduction::mean">:$reduction,
      OptionalAttr<Galvatron_VocabSizeAttr>:$vocab_size);
  let results = (outs 0DTensorOf<[F32]>:$result);
  let assemblyFormat = [{
    $stats `,` $logits `,` $max `,` $labels `vocab_groups`
    custom<DeviceGroups>($vocab_groups) attr-dict `:`
    functional-type(operands, results)
  }];
}

def Galvatron_VocabCrossEntropyGradOp
    : Galvatron_VocabParallelOp<"vocab_cross_entropy_grad"> {
  let summary = "Gradient of the vocabulary-parallel cross-entropy";
  let description = [{
    The gradient with respect to the member's `logits` of
    `vocab_cross_entropy` with scalar gradient `grad`: each counted row gets
    grad · (exp(logits − max) / stats[..., 0] − onehot(label − i·V)) / N
    (N the counted rows for `mean`, 1 for `sum`; the one-hot is zero when
    another member holds the label), ignored rows zero.
  }];
  let arguments = (ins 0DTensorOf<[F32]>:$grad,
      Galvatron_FloatTensor:$stats, Galvatron_FloatTensor:$logits,
      Galvatron_FloatTensor:$max, Galvatron_IndexTensor:$labels,
      Galvatron_DeviceGroupsAttr:$vocab_groups,
      DefaultValuedAttr<I64Attr, "-100">:$ignore_index,
      DefaultValuedAttr<Galvatron_LossReduction,
                        "LossReduction::mean">:$reduction,
      OptionalAttr<Galvatron_VocabSizeAttr>:$vocab_size);
  let results = (outs Galvatron_FloatTensor:$result);
  let assemblyFormat = [{
    $grad `,` $stats `,` $logits `,` $max `,` $labels `vocab_groups`
    custom<DeviceGroups>($vocab_groups) attr-dict `:`
    functional-type(operands, results)
  }];
}

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONCOLLECTIVES_TD
