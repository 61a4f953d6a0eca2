//===- ShardingRule.h - What a tensor-parallel rule works with --*- C++ -*-===//
//
// The contexts the sharding analyses hand to `TensorParallelOpInterface`:
// each op's rule reads its operands' layouts and states its results'
// layouts, the communication its operands need and the weights it splits,
// through these verbs; the analysis keeps the books. TPRuleContext serves
// Megatron tensor parallelism (galvatron/Analysis/TensorParallelAnalysis.h),
// UlyssesRuleContext DeepSpeed-Ulysses sequence parallelism
// (galvatron/Analysis/UlyssesAnalysis.h).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_SHARDINGRULE_H
#define GALVATRON_DIALECT_GALVATRON_IR_SHARDINGRULE_H

#include "mlir/IR/Operation.h"
#include "mlir/IR/Value.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/STLFunctionalExtras.h"
#include "llvm/ADT/Twine.h"

namespace mlir::galvatron {

/// How the TP ranks hold a value.
struct TPSharding {
  enum Kind : uint8_t { Replicated, Sharded, Partial };
  Kind kind = Replicated;
  /// The split dimension when sharded.
  int64_t dim = -1;

  static TPSharding replicated() { return {Replicated, -1}; }
  static TPSharding sharded(int64_t dim) { return {Sharded, dim}; }
  static TPSharding partial() { return {Partial, -1}; }
  bool operator==(const TPSharding &other) const {
    return kind == other.kind && dim == other.dim;
  }
  bool operator!=(const TPSharding &other) const { return !(*this == other); }
};

enum class LinearParallelism { Replicated, Column, Row };

class TPRuleContext {
public:
  virtual ~TPRuleContext() = default;

  virtual TPSharding getSharding(Value value) const = 0;
  /// Brings `value` to `target` (all-reduce, all-gather or a free slice).
  virtual void require(Value value, TPSharding target) = 0;
  /// `value` is held as `sharding`; `splitSize` > 0 says the op's work
  /// divides along a dimension of that size.
  virtual void setResult(Value value, TPSharding sharding,
                         int64_t splitSize = 0) = 0;
  /// A size (a head count) that must divide among the TP ranks.
  virtual void requireDivisible(int64_t size) = 0;
  /// The op cannot run tensor-parallel (the layer is tp = 1 only).
  virtual void fail(Operation *op, const llvm::Twine &why) = 0;

  /// Splits a weight operand along `dim` (a parameter records the split,
  /// per segment when `segments` is not empty; any other value is sliced).
  virtual void shardWeight(Value weight, int64_t dim,
                           llvm::ArrayRef<int64_t> segments = {}) = 0;
  /// Splits the column-parallel linear producing `value` per segment of its
  /// outputs (a fused QKV projection split into q, k and v); false when no
  /// such linear reading parameters produces it.
  virtual bool splitProducerSegments(Value value,
                                     llvm::ArrayRef<int64_t> segments) = 0;
  virtual LinearParallelism getLinearParallelism(Operation *linear) const = 0;
  virtual void setLinearParallelism(Operation *linear,
                                    LinearParallelism parallelism) = 0;
  /// Megatron's f: a replicated value feeding column-parallel work.
  virtual void recordReplicatedInput(Value value) = 0;
  /// Vocabulary-parallel cross-entropy of `logits` sharded along their
  /// last dimension.
  virtual void recordVocabParallelLoss(Operation *loss, Value logits) = 0;
  /// Whether `lookup` reads the layer's vocabulary (its largest table, a
  /// parameter): split by rows, its result a partial sum. Records the split.
  virtual bool shardVocabulary(Operation *lookup, Value table) = 0;

  /// Sequence parallelism: whether `value` is a replicated [batch,
  /// sequence, ...] activation (split along the sequence under SP), and
  /// whether it carries the batch.
  virtual bool isSequenceParallelValue(Value value) const = 0;
  virtual bool isBatched(Value value) const = 0;

  /// Rules many ops share.
  /// Ops keeping a sharding on any dimension except `blocked` (the ones
  /// they act along); `passPartial` for ops linear in their input.
  void propagateDimensionPreserving(Operation *op,
                                    llvm::ArrayRef<int64_t> blocked,
                                    bool passPartial = false);
  /// Broadcasting elementwise ops; sums of partial sums stay partial.
  void propagateElementwise(Operation *op, bool additive);
  /// Whether every operand of an elementwise op reaches a sequence split for
  /// free (partial sums, sequence-parallel, unbatched, or of extent 1 along
  /// the sequence).
  bool hasPositionwiseOperands(Operation *op) const;
};

/// How the u ranks of a Ulysses group hold a value:
///   whole      every rank holds all of it (replicated work),
///   sequence   each rank holds a contiguous 1/u block of dimension `dim`,
///              the sequence,
///   heads      each rank holds a 1/u block of the heads dimension `dim`,
///              the whole sequence (at `sequenceDim`).
struct UlyssesLayout {
  enum Kind : uint8_t { Whole, Sequence, Heads };
  Kind kind = Whole;
  /// The split dimension (the sequence's, or the heads').
  int64_t dim = -1;
  /// Where the sequence lies (for heads: whole there).
  int64_t sequenceDim = -1;

  static UlyssesLayout whole() { return {}; }
  static UlyssesLayout sequence(int64_t dim) { return {Sequence, dim, dim}; }
  static UlyssesLayout heads(int64_t dim, int64_t sequenceDim) {
    return {Heads, dim, sequenceDim};
  }
  bool isSplit() const { return kind != Whole; }
  bool operator==(const UlyssesLayout &other) const {
    return kind == other.kind && dim == other.dim &&
           sequenceDim == other.sequenceDim;
  }
  bool operator!=(const UlyssesLayout &other) const {
    return !(*this == other);
  }
};

/// How position-wise work lines its operands' splits up with its result's.
enum class UlyssesOperands {
  /// Every split operand at the result's split dimension (unary ops, norms,
  /// linears, slices...); one split elsewhere is gathered.
  Aligned,
  /// NumPy-broadcast operands aligned from the right (elementwise binary
  /// ops, select, concat); a whole operand that varies along the split is
  /// sliced to its part.
  Broadcast,
  /// The op moves dimensions (transpose, reshape, broadcast, reductions):
  /// the operand's split lies elsewhere than the result's.
  Moved
};

class UlyssesRuleContext {
public:
  virtual ~UlyssesRuleContext() = default;

  virtual UlyssesLayout getLayout(Value value) const = 0;
  /// `op` consumes operand `index` as `target`: an all-to-all between
  /// sequence and heads, an all-gather to whole, a free slice from whole.
  virtual void require(Operation *op, unsigned index,
                       UlyssesLayout target) = 0;
  virtual void setResult(Value value, UlyssesLayout layout) = 0;
  /// A size (a head count) that must divide among the group's ranks.
  virtual void requireDivisible(int64_t size) = 0;
  /// The layer cannot run Ulysses; the first failure names the op.
  virtual void fail(Operation *op, const llvm::Twine &why) = 0;
  virtual bool hasFailed() const = 0;

  /// Rules many ops share.
  /// The op acts across the sequence: its split operands are gathered
  /// whole, its results are whole.
  void gatherAll(Operation *op);
  /// The sequence layout of `op`'s operand `index`, converting heads back;
  /// whole when the operand is whole.
  UlyssesLayout sequenceOperand(Operation *op, unsigned index);
  /// Position-wise work on the sequence parts: `resultDim(input, dim)` is
  /// the sequence dimension of the result when the op keeps the split of
  /// `input` (its first split operand) along `dim`, or -1 when it acts
  /// along that dimension (then it gathers all). `keepsHeads`: a unary op
  /// that keeps a split of the heads as it is.
  void propagatePositionwise(
      Operation *op, UlyssesOperands operands,
      llvm::function_ref<int64_t(Value input, int64_t dim)> resultDim,
      bool keepsHeads = false);
};

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_IR_SHARDINGRULE_H
