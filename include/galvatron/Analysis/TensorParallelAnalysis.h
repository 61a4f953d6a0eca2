//===- TensorParallelAnalysis.h - Megatron-style TP of a layer --*- C++ -*-===//
//
// Decides how Megatron-style tensor parallelism shards one galvatron.layer:
// which linears are column- or row-parallel, which values are split (along
// heads, the FFN width or the vocabulary), where the f / g collectives go,
// which tables are vocabulary-parallel, and which ops sequence parallelism
// splits along the sequence. The decisions do not depend on the TP degree;
// the degrees a layer supports follow from the divisibility constraints the
// analysis records. The cost model and the partitioning pass both consume
// it.
//
// Propagation runs forward over the layer body with three states per value:
//   replicated  every TP rank holds the whole tensor,
//   sharded(d)  each rank holds a contiguous 1/tp block of dimension d
//               (uneven sizes are padded, except where a reshape splits
//               heads),
//   partial     each rank holds a partial sum (row-parallel outputs,
//               vocabulary-parallel lookups).
// A linear whose input is replicated becomes column-parallel (weight split
// along its outputs; Megatron's f on the input), a linear whose input is
// sharded along features becomes row-parallel (weight split along its
// inputs, partial result); a partial value is all-reduced before any use
// that needs it whole (Megatron's g). Anything the rules cannot follow is
// gathered to replicated, and an op the analysis does not know on a sharded
// value makes the layer unshardable (tp = 1 only) with a reason.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_TENSORPARALLELANALYSIS_H
#define GALVATRON_ANALYSIS_TENSORPARALLELANALYSIS_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"

#include <string>
#include <vector>

namespace mlir::galvatron {

/// A place where tensor parallelism communicates.
struct TPCommPoint {
  enum Kind : uint8_t {
    /// Partial sums made whole (Megatron's g): all-reduce forward, identity
    /// backward. With sequence parallelism: reduce-scatter forward,
    /// all-gather backward.
    ReducePartial,
    /// A replicated value feeding column-parallel work (Megatron's f):
    /// identity forward, all-reduce of its gradient backward. With sequence
    /// parallelism: all-gather forward; reduce-scatter backward plus an
    /// all-gather that rebuilds the input for the weight gradient.
    ReplicatedInput,
    /// A sharded value gathered whole: all-gather forward, a local slice of
    /// the gradient backward.
    GatherShards,
    /// A replicated value sliced to shards: free forward, all-gather of the
    /// gradient shards backward (when it has a gradient).
    ScatterReplicated,
    /// Vocabulary-parallel cross-entropy on sharded logits: all-reduces of
    /// the row maximum, the exponential sum and the target logit (fp32).
    VocabParallelLoss,
  };
  Kind kind;
  /// The communicated tensor (its type is the whole, unsharded tensor).
  Value value;
};

llvm::StringRef stringifyTPCommKind(TPCommPoint::Kind kind);

/// How a parameter read in the layer is split among TP ranks.
struct TPParameterSharding {
  ParamOp op;
  /// Split dimension, or -1 when every rank holds all of it.
  int64_t dim = -1;
  /// Consecutive segments of `dim` split separately (a fused QKV weight is
  /// split per q, k and v so each rank holds its heads of all three);
  /// empty means one segment.
  SmallVector<int64_t> segments;
  /// The split dimension is the vocabulary (a lookup table's rows, an LM
  /// head's outputs): padded to a multiple of the TP degree (see
  /// padVocabulary) instead of having to divide among the ranks.
  bool vocabulary = false;
};

/// The size a vocabulary of `size` entries takes when split among `tp`
/// ranks, padded as Megatron-LM pads it: to a multiple of `divisor` x `tp`
/// (unchanged when it is one already, and at tp = 1, where nothing is
/// split). The padded rows are not part of the model: they are zero, and
/// the lookup and the loss leave them out.
inline int64_t padVocabulary(int64_t size, int64_t tp, int64_t divisor) {
  if (tp <= 1)
    return size;
  int64_t multiple = divisor * tp;
  return (size + multiple - 1) / multiple * multiple;
}

class TensorParallelAnalysis : public TPRuleContext {
public:
  /// Analyzes `layer`. `inputBatched[i]` tells whether block argument i
  /// carries the batch (it comes from the model's inputs), and
  /// `inputNeedsGradient[i]` whether it depends on parameters.
  TensorParallelAnalysis(LayerOp layer, ArrayRef<bool> inputBatched,
                         ArrayRef<bool> inputNeedsGradient);

  /// Analyzes every layer of `function`, deriving the per-input flags from
  /// the function's data flow (function arguments are batched data without
  /// gradients).
  static std::vector<TensorParallelAnalysis> analyzeFunction(
      func::FuncOp function);

  LayerOp getLayer() const { return layer; }

  /// Whether the layer can run with TP at all; `getFailure` says why not.
  bool isShardable() const { return failure.empty(); }
  llvm::StringRef getFailure() const { return failure; }

  /// Whether the layer supports TP degree `tp` (1 always works); when not,
  /// `reason` receives the cause.
  bool supportsDegree(int64_t tp, std::string *reason = nullptr) const;

  /// Sizes that must divide evenly among TP ranks (head counts).
  ArrayRef<int64_t> getDivisibilityConstraints() const { return divisors; }
  /// Sizes of the weight dimensions TP splits, other than the vocabulary's
  /// (which is padded): they must divide among the TP ranks too.
  ArrayRef<int64_t> getWeightSplitSizes() const { return weightSplits; }

  /// Whether `op`'s work is split along the vocabulary (the vocabulary
  /// lookup, an LM head, the vocabulary-parallel loss), and whether
  /// `value` is split along it (an LM head's logits).
  bool isVocabularySplit(Operation *op) const {
    return vocabularyOps.contains(op);
  }
  bool isVocabularyValue(Value value) const {
    return value.getDefiningOp() && isVocabularySplit(value.getDefiningOp()) &&
           getSharding(value).kind == TPSharding::Sharded;
  }

  /// Whether Megatron sequence parallelism applies: every op on a replicated
  /// sequence-shaped value acts position by position.
  bool supportsSequenceParallel() const {
    return isShardable() && sequenceFailure.empty();
  }
  llvm::StringRef getSequenceParallelFailure() const {
    return sequenceFailure;
  }
  /// The sequence length (dimension 1 of the layer's first batched input),
  /// or 0 when there is none.
  int64_t getSequenceLength() const { return sequenceLength; }

  TPSharding getSharding(Value value) const override;
  bool isBatched(Value value) const override {
    return batched.contains(value);
  }
  bool needsGradient(Value value) const { return gradient.contains(value); }
  /// A batched value shaped [batch, sequence, ...].
  bool isSequenceShaped(Value value) const;
  /// A replicated sequence-shaped value: split along the sequence under
  /// sequence parallelism.
  bool isSequenceParallelValue(Value value) const override {
    return isSequenceShaped(value) &&
           getSharding(value).kind == TPSharding::Replicated;
  }

  /// The size of the dimension along which `op`'s work is divided among TP
  /// ranks, or 0 when every rank does all of it.
  int64_t getSplitSize(Operation *op) const { return splitSizes.lookup(op); }

  LinearParallelism getLinearParallelism(Operation *linear) const override;
  ArrayRef<TPCommPoint> getCommPoints() const { return commPoints; }
  ArrayRef<TPParameterSharding> getParameters() const { return parameters; }
  /// Layer results left sharded along their last dimension because they are
  /// model outputs feeding a vocabulary-parallel loss.
  ArrayRef<unsigned> getShardedResults() const { return shardedResults; }

  /// A readable summary (one line per decision) for tests and debugging.
  void print(llvm::raw_ostream &os) const;

private:
  void run();
  void visit(Operation *op);
  void visitYield(YieldOp op);
  void checkSequenceParallel(Operation *op);
  /// Marks the vocabulary's weights and ops, and records the other split
  /// weights' sizes.
  void collectWeightSplits();

  // The verbs of the ops' rules (TPRuleContext).
  void require(Value value, TPSharding target) override;
  void setResult(Value value, TPSharding sharding,
                 int64_t splitSize = 0) override;
  void requireDivisible(int64_t size) override { divisors.push_back(size); }
  void fail(Operation *op, const llvm::Twine &why) override;
  void shardWeight(Value weight, int64_t dim,
                   ArrayRef<int64_t> segments = {}) override;
  bool splitProducerSegments(Value value, ArrayRef<int64_t> segments) override;
  void setLinearParallelism(Operation *linear,
                            LinearParallelism parallelism) override {
    linears[linear] = parallelism;
  }
  void recordReplicatedInput(Value value) override {
    record(TPCommPoint::ReplicatedInput, value);
  }
  void recordVocabParallelLoss(Operation *loss, Value logits) override;
  bool shardVocabulary(Operation *lookup, Value table) override;

  void record(TPCommPoint::Kind kind, Value value);
  TPParameterSharding *parameterOf(Value value);

  LayerOp layer;
  std::string failure, sequenceFailure;
  int64_t sequenceLength = 0;
  llvm::DenseMap<Value, TPSharding> shardings;
  llvm::DenseSet<Value> batched, gradient;
  llvm::DenseMap<Operation *, int64_t> splitSizes;
  llvm::DenseMap<Operation *, LinearParallelism> linears;
  SmallVector<TPCommPoint> commPoints;
  llvm::DenseSet<std::pair<Value, unsigned>> recorded;
  SmallVector<TPParameterSharding> parameters;
  SmallVector<int64_t> divisors, weightSplits;
  SmallVector<unsigned> shardedResults;
  llvm::DenseSet<Operation *> vocabularyOps;
  /// The largest embedding table of the layer: the vocabulary, split by
  /// rows. Smaller tables (positions, token types, relative biases) stay
  /// replicated.
  Operation *vocabularyLookup = nullptr;
};

/// How many of the analyzed layers read each parameter (2 for a tied
/// embedding and LM head).
llvm::DenseMap<StringAttr, unsigned>
countParameterReaders(ArrayRef<TensorParallelAnalysis> analyses);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_TENSORPARALLELANALYSIS_H
