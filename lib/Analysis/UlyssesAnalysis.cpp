//===- UlyssesAnalysis.cpp - DeepSpeed-Ulysses sequence parallelism -------===//

#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Dialect/Galvatron/IR/TensorShapes.h"

#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::galvatron;
using mlir::galvatron::tensors::shapeOf;

UlyssesAnalysis::UlyssesAnalysis(const TensorParallelAnalysis &tensorParallel)
    : tensorParallel(tensorParallel) {
  LayerOp layer = tensorParallel.getLayer();
  int64_t sequence = tensorParallel.getSequenceLength();
  for (BlockArgument argument : layer.getBodyBlock().getArguments())
    if (tensorParallel.isSequenceShaped(argument))
      layouts[argument] = UlyssesLayout::sequence(1);
  if (sequence <= 1 || layouts.empty()) {
    failure = "no [batch, sequence, ...] input to split along the sequence";
    return;
  }
  divisors.push_back(sequence);
  for (Operation &op : layer.getBodyBlock())
    visit(&op);
  llvm::sort(divisors);
  divisors.erase(std::unique(divisors.begin(), divisors.end()),
                 divisors.end());
}

//===----------------------------------------------------------------------===//
// Queries
//===----------------------------------------------------------------------===//

bool UlyssesAnalysis::supportsDegree(int64_t degree,
                                     std::string *reason) const {
  if (degree == 1)
    return true;
  if (!isSupported()) {
    if (reason)
      *reason = failure;
    return false;
  }
  for (int64_t size : divisors)
    if (size % degree != 0) {
      if (reason)
        *reason = ("Ulysses splits a sequence or head count of " +
                   llvm::Twine(size) + ", which does not divide among " +
                   llvm::Twine(degree) + " ranks")
                      .str();
      return false;
    }
  return true;
}

UlyssesLayout UlyssesAnalysis::getLayout(Value value) const {
  auto it = layouts.find(value);
  return it == layouts.end() ? UlyssesLayout::whole() : it->second;
}

bool UlyssesAnalysis::isSplitWork(Operation *op) const {
  auto split = [&](Value v) { return getLayout(v).isSplit(); };
  return llvm::any_of(op->getResults(), split) ||
         llvm::any_of(op->getOperands(), split);
}

bool UlyssesAnalysis::isUsedOnParts(Value weight) const {
  for (OpOperand &use : weight.getUses()) {
    Operation *user = use.getOwner();
    // A whole value sliced to parts gets its whole gradient back (the
    // slice's gradient is an all-gather): not partial.
    bool sliced = llvm::any_of(conversions, [&](const UlyssesConversion &c) {
      return c.user == user && c.operand == use.getOperandNumber() &&
             c.to.isSplit();
    });
    if (!sliced && llvm::any_of(user->getResults(), [&](Value r) {
          return getLayout(r).isSplit();
        }))
      return true;
    // Whole weight-only work (a reshaped kernel) passes it on.
    if (!llvm::any_of(user->getOperands(), [&](Value v) {
          return tensorParallel.isBatched(v);
        }))
      for (Value result : user->getResults())
        if (isUsedOnParts(result))
          return true;
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Propagation
//===----------------------------------------------------------------------===//

void UlyssesAnalysis::fail(Operation *op, const llvm::Twine &why) {
  if (failure.empty())
    failure = (op->getName().getStringRef() + ": " + why).str();
}

void UlyssesAnalysis::require(Operation *op, unsigned index,
                              UlyssesLayout target) {
  Value value = op->getOperand(index);
  UlyssesLayout from = getLayout(value);
  if (from == target)
    return;
  if (from.kind == UlyssesLayout::Heads &&
      target.kind == UlyssesLayout::Sequence &&
      from.sequenceDim != target.dim)
    return fail(op, "needs a head-split value split along another dimension");
  if (from.kind == UlyssesLayout::Sequence &&
      target.kind == UlyssesLayout::Heads && from.dim != target.sequenceDim)
    return fail(op, "needs heads of a value split along another dimension");
  if (target.isSplit() && from.isSplit() && from.kind == target.kind)
    return fail(op, "needs a value split along another dimension");
  if (target.isSplit()) {
    int64_t size = shapeOf(value)[target.dim];
    divisors.push_back(size);
  }
  bool modelOutput = false;
  if (auto yield = dyn_cast<YieldOp>(op)) {
    Value output = tensorParallel.getLayer().getResult(index);
    modelOutput = !output.use_empty() &&
                  llvm::all_of(output.getUsers(), [](Operation *user) {
                    return isa<func::ReturnOp>(user);
                  });
  }
  conversions.push_back({op, index, from, target, modelOutput});
}

void UlyssesAnalysis::visit(Operation *op) {
  if (!failure.empty())
    return;
  if (isa<YieldOp>(op))
    return gatherAll(op);
  if (auto rule = dyn_cast<TensorParallelOpInterface>(op))
    return rule.propagateUlysses(*this);
  if (op->getNumResults() != 0)
    gatherAll(op);
}

//===----------------------------------------------------------------------===//
// Printing
//===----------------------------------------------------------------------===//

static void printLayout(llvm::raw_ostream &os, UlyssesLayout layout) {
  switch (layout.kind) {
  case UlyssesLayout::Whole:
    os << "whole";
    return;
  case UlyssesLayout::Sequence:
    os << "sequence(" << layout.dim << ")";
    return;
  case UlyssesLayout::Heads:
    os << "heads(" << layout.dim << ")";
    return;
  }
}

void UlyssesAnalysis::print(llvm::raw_ostream &os) const {
  os << "  ulysses: ";
  if (!isSupported()) {
    os << "no (" << failure << ")\n";
    return;
  }
  os << "yes, divisors";
  for (int64_t size : divisors)
    os << " " << size;
  os << "\n";
  for (const UlyssesConversion &conversion : conversions) {
    os << "    ";
    printLayout(os, conversion.from);
    os << " -> ";
    printLayout(os, conversion.to);
    os << " for " << conversion.user->getName().getStringRef();
    if (conversion.modelOutput)
      os << " [model output]";
    os << "\n";
  }
}
