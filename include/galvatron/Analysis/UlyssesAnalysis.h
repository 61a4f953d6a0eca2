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
// Each value has a layout (UlyssesLayout, ShardingRule.h): whole, split
// along the sequence, or split along the heads. An op that needs an operand
// in another layout than it has gets a conversion: sequence <-> heads is an
// all-to-all, sequence or heads -> whole an all-gather, whole -> sequence or
// heads a local slice. What each op needs is its own rule
// (`TensorParallelOpInterface::propagateUlysses`, in
// lib/Dialect/Galvatron/IR/GalvatronSharding.cpp); the analysis walks the
// layer, calls it and keeps the books. An op without a rule has its split
// operands gathered whole.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_ULYSSESANALYSIS_H
#define GALVATRON_ANALYSIS_ULYSSESANALYSIS_H

#include "galvatron/Analysis/TensorParallelAnalysis.h"

namespace mlir::galvatron {

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

class UlyssesAnalysis : public UlyssesRuleContext {
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

  UlyssesLayout getLayout(Value value) const override;
  ArrayRef<UlyssesConversion> getConversions() const { return conversions; }
  /// Whether an op works on parts (1/u of the work on each rank).
  bool isSplitWork(Operation *op) const;
  /// Whether the read of a weight feeds work on parts: its gradient is
  /// partial on each rank and summed over the group.
  bool isUsedOnParts(Value weight) const;

  void print(llvm::raw_ostream &os) const;

  /// UlyssesRuleContext: what the ops' rules state. `require` records the
  /// conversion.
  void require(Operation *op, unsigned index, UlyssesLayout target) override;
  void setResult(Value value, UlyssesLayout layout) override {
    layouts[value] = layout;
  }
  void requireDivisible(int64_t size) override { divisors.push_back(size); }
  void fail(Operation *op, const llvm::Twine &why) override;
  bool hasFailed() const override { return !failure.empty(); }

private:
  void visit(Operation *op);

  const TensorParallelAnalysis &tensorParallel;
  std::string failure;
  llvm::DenseMap<Value, UlyssesLayout> layouts;
  SmallVector<UlyssesConversion> conversions;
  SmallVector<int64_t> divisors;
};

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_ULYSSESANALYSIS_H
