//===- UlyssesAnalysis.h - DeepSpeed-Ulysses sequence parallelism -*- C++ -*-===//
//
// Decides how DeepSpeed-Ulysses sequence parallelism runs one galvatron.layer
// on a group of u ranks: every [batch, sequence, ...] activation holds 1/u of
// the sequence, position-wise work (norms, linears with whole weights, the
// MLP) runs on those parts, and around the ops that act along the sequence
// (attention, and rotary embeddings before it) an all-to-all trades the
// sequence split for a split of the heads, so that they see whole sequences
// of 1/u of the heads; another all-to-all trades it back. Weights stay whole
// on every rank; a weight applied to parts has a partial gradient on each,
// summed over the group. Like TensorParallelAnalysis, the decisions do not
// depend on u; the degrees a layer supports follow from its head counts and
// sequence length. The cost model and the partitioning pass consume it.
//
// Each value has a layout:
//   whole      every rank holds all of it (replicated work),
//   sequence   each rank holds a contiguous 1/u block of dimension `dim`, the
//              sequence,
//   heads      each rank holds a 1/u block of the heads dimension `dim`, the
//              whole sequence (at `sequenceDim`).
// An op that needs an operand in another layout than it has gets a
// conversion: sequence <-> heads is an all-to-all, sequence or heads ->
// whole an all-gather, whole -> sequence or heads a local slice.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_ULYSSESANALYSIS_H
#define GALVATRON_ANALYSIS_ULYSSESANALYSIS_H

#include "galvatron/Analysis/TensorParallelAnalysis.h"

namespace mlir::galvatron {

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

/// An operand an op consumes in another layout than its value has.
struct UlyssesConversion {
  Operation *user;
  unsigned operand;
  UlyssesLayout from, to;
  /// A model output the layer yields split: the loss consumes its parts,
  /// so only a forward-only program gathers it.
  bool modelOutput = false;

  Value getValue() const { return user->getOperand(operand); }
};

class UlyssesAnalysis {
public:
  explicit UlyssesAnalysis(const TensorParallelAnalysis &tensorParallel);

  /// Whether Ulysses applies at all; `getFailure` names the op that stops
  /// it.
  bool isSupported() const { return failure.empty(); }
  llvm::StringRef getFailure() const { return failure; }
  /// Whether a group of `degree` ranks can run the layer.
  bool supportsDegree(int64_t degree, std::string *reason = nullptr) const;
  /// Sizes the degree must divide: head counts and the sequence length.
  ArrayRef<int64_t> getDivisors() const { return divisors; }

  UlyssesLayout getLayout(Value value) const;
  ArrayRef<UlyssesConversion> getConversions() const { return conversions; }
  /// Whether an op works on parts (1/u of the work on each rank).
  bool isSplitWork(Operation *op) const;
  /// Whether the read of a weight feeds work on parts: its gradient is
  /// partial on each rank and summed over the group.
  bool isUsedOnParts(Value weight) const;

  void print(llvm::raw_ostream &os) const;

private:
  void visit(Operation *op);
  /// The layout `op`'s operand `index` must have; records the conversion.
  void require(Operation *op, unsigned index, UlyssesLayout target);
  void fail(Operation *op, const llvm::Twine &why);
  /// The sequence layout of an operand (converting heads back); whole when
  /// the operand is whole.
  UlyssesLayout sequenceOperand(Operation *op, unsigned index);
  void visitPositionwise(Operation *op, int64_t resultDim);
  void visitAttention(AttentionOp op);
  void visitRotary(RotaryOp op);
  /// Brings every split operand whole; the results are whole.
  void gatherAll(Operation *op);

  const TensorParallelAnalysis &tensorParallel;
  std::string failure;
  llvm::DenseMap<Value, UlyssesLayout> layouts;
  SmallVector<UlyssesConversion> conversions;
  SmallVector<int64_t> divisors;
};

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_ULYSSESANALYSIS_H
