//===- UlyssesAnalysis.cpp - DeepSpeed-Ulysses sequence parallelism -------===//

#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Dialect/Galvatron/IR/TensorShapes.h"

#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::galvatron;
using mlir::galvatron::tensors::rankOf;
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

UlyssesLayout UlyssesAnalysis::sequenceOperand(Operation *op, unsigned index) {
  UlyssesLayout layout = getLayout(op->getOperand(index));
  if (layout.kind != UlyssesLayout::Heads)
    return layout;
  UlyssesLayout target = UlyssesLayout::sequence(layout.sequenceDim);
  require(op, index, target);
  return target;
}

void UlyssesAnalysis::gatherAll(Operation *op) {
  for (unsigned index = 0; index < op->getNumOperands(); ++index)
    if (getLayout(op->getOperand(index)).isSplit())
      require(op, index, UlyssesLayout::whole());
}

/// The sequence dimension of `op`'s result when position-wise work keeps
/// an operand's split along `dim` (of `input`), or -1 when it acts across
/// the sequence.
static int64_t positionwiseResultDim(Operation *op, Value input, int64_t dim) {
  Value result = op->getResult(0);
  int64_t rank = rankOf(result), inRank = rankOf(input);
  auto keepsPrefix = [&]() {
    return shapeOf(input).take_front(dim + 1) ==
           shapeOf(result).take_front(dim + 1);
  };
  return llvm::TypeSwitch<Operation *, int64_t>(op)
      .Case<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp,
            ErfOp, SigmoidOp, ReluOp, SiluOp, GeluOp, CastOp, DropoutOp>(
          [&](Operation *) { return dim; })
      .Case<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, SelectOp>(
          [&](Operation *) { return dim + rank - inRank; })
      .Case<LayerNormOp, RMSNormOp>([&](Operation *) {
        return dim == inRank - 1 ? -1 : dim;
      })
      .Case([&](SoftmaxOp softmax) {
        int64_t axis = softmax.getAxis();
        if (axis < 0)
          axis += inRank;
        return axis == dim ? -1 : dim;
      })
      .Case([&](LinearOp linear) {
        return input == linear.getInput() && dim < inRank - 1 ? dim : -1;
      })
      .Case([&](EmbeddingOp lookup) {
        return input == lookup.getIndices() ? dim : -1;
      })
      .Case([&](MatmulOp matmul) -> int64_t {
        // Rows against a whole right-hand side.
        int64_t rows = matmul.getTransposeLhs() ? inRank - 1 : inRank - 2;
        bool lhs = input == matmul.getLhs() && matmul.getRhs() != input;
        return lhs && (dim < inRank - 2 || dim == rows) ? dim + rank - inRank
                                                         : -1;
      })
      .Case([&](TransposeOp transpose) {
        return static_cast<int64_t>(llvm::find(transpose.getPerm(), dim) -
                                    transpose.getPerm().begin());
      })
      .Case([&](ReshapeOp) { return keepsPrefix() ? dim : -1; })
      .Case([&](SliceOp slice) {
        bool whole = slice.getStarts()[dim] == 0 && slice.getStrides()[dim] == 1 &&
                     slice.getLimits()[dim] == shapeOf(input)[dim];
        return whole ? dim : -1;
      })
      .Case<SplitOp, ConcatOp>([&](Operation *op) {
        int64_t axis = op->getAttrOfType<IntegerAttr>("axis").getInt();
        return axis == dim ? -1 : dim;
      })
      .Case([&](BroadcastOp) { return dim + rank - inRank; })
      .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>([&](Operation *reduce) {
        auto axes = reduce->getAttrOfType<DenseI64ArrayAttr>("axes").asArrayRef();
        if (llvm::is_contained(axes, dim))
          return int64_t(-1);
        if (reduce->getAttrOfType<BoolAttr>("keep_dims").getValue())
          return dim;
        return dim - llvm::count_if(axes, [&](int64_t a) { return a < dim; });
      })
      .Default([](Operation *) { return int64_t(-1); });
}

void UlyssesAnalysis::visitPositionwise(Operation *op, int64_t resultDim) {
  Value result = op->getResult(0);
  int64_t rank = rankOf(result);
  // Every operand at the result's split, or broadcast along it; weights and
  // other whole operands stay whole unless they vary along the sequence.
  for (unsigned index = 0; index < op->getNumOperands(); ++index) {
    Value operand = op->getOperand(index);
    UlyssesLayout layout = sequenceOperand(op, index);
    int64_t rankDiff = isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp,
                           SelectOp, ConcatOp>(op)
                           ? rank - rankOf(operand)
                           : 0;
    int64_t dim = resultDim - rankDiff;
    if (layout.isSplit()) {
      if (rankDiff == 0 && !isa<TransposeOp, ReshapeOp, BroadcastOp,
                                ReduceSumOp, ReduceMeanOp, ReduceMaxOp>(op) &&
          layout.dim != dim)
        require(op, index, UlyssesLayout::whole());
      continue;
    }
    bool elementwise = isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp,
                           SelectOp, ConcatOp>(op);
    if (elementwise && dim >= 0 && shapeOf(operand)[dim] > 1)
      require(op, index, UlyssesLayout::sequence(dim));
  }
  if (!failure.empty())
    return;
  for (Value r : op->getResults())
    layouts[r] = UlyssesLayout::sequence(resultDim);
}

void UlyssesAnalysis::visitAttention(AttentionOp op) {
  // Query, key and value [batch, heads, sequence, head_dim] with whole
  // sequences of 1/u of the heads.
  for (unsigned index = 0; index < 3; ++index) {
    Value operand = op->getOperand(index);
    if (rankOf(operand) != 4)
      return fail(op, "needs [batch, heads, sequence, head_dim] operands");
    UlyssesLayout layout = getLayout(operand);
    if (layout.isSplit() && layout.sequenceDim != 2)
      return fail(op, "has an operand split along a dimension other than "
                      "its sequence");
    divisors.push_back(shapeOf(operand)[1]);
    require(op, index, UlyssesLayout::heads(1, 2));
  }
  if (Value mask = op.getMask()) {
    unsigned index = op->getNumOperands() - 1;
    // A per-head mask takes the rank's heads; whole sequences either way.
    int64_t headDim = 1 - (4 - rankOf(mask));
    bool perHead = headDim >= 0 && shapeOf(mask)[headDim] > 1;
    UlyssesLayout layout = getLayout(mask);
    if (perHead && layout.isSplit())
      return fail(op, "has a per-head mask split along the sequence");
    require(op, index,
            perHead ? UlyssesLayout::heads(headDim, -1) : UlyssesLayout::whole());
  }
  layouts[op.getResult()] = UlyssesLayout::heads(1, 2);
}

void UlyssesAnalysis::visitRotary(RotaryOp op) {
  // Positions along the sequence: the whole sequence, split by heads (the
  // dimension that is neither batch, sequence nor features).
  UlyssesLayout layout = getLayout(op.getInput());
  int64_t axis = op.getSeqAxis();
  if (!layout.isSplit())
    return;
  if (rankOf(op.getInput()) != 4 || layout.sequenceDim != axis)
    return fail(op, "rotates along a dimension other than the split sequence");
  int64_t heads = axis == 1 ? 2 : 1;
  if (layout.kind == UlyssesLayout::Sequence) {
    divisors.push_back(shapeOf(op.getInput())[heads]);
    require(op, 0, UlyssesLayout::heads(heads, axis));
  }
  layouts[op.getResult()] = UlyssesLayout::heads(heads, axis);
}

void UlyssesAnalysis::visit(Operation *op) {
  if (!failure.empty())
    return;
  if (isa<YieldOp>(op))
    return gatherAll(op);
  if (auto attention = dyn_cast<AttentionOp>(op))
    return visitAttention(attention);
  if (auto rotary = dyn_cast<RotaryOp>(op))
    return visitRotary(rotary);
  if (op->getNumResults() == 0 ||
      !llvm::any_of(op->getOperands(),
                    [&](Value v) { return getLayout(v).isSplit(); }))
    return;
  // Unary work and transposes keep heads as well as sequence parts.
  Value input;
  for (Value operand : op->getOperands())
    if (getLayout(operand).isSplit()) {
      input = operand;
      break;
    }
  UlyssesLayout layout = getLayout(input);
  if (layout.kind == UlyssesLayout::Heads) {
    if (auto transpose = dyn_cast<TransposeOp>(op)) {
      auto position = [&](int64_t d) {
        return int64_t(llvm::find(transpose.getPerm(), d) -
                       transpose.getPerm().begin());
      };
      layouts[transpose.getResult()] = UlyssesLayout::heads(
          position(layout.dim), position(layout.sequenceDim));
      return;
    }
    if (isa<NegOp, ExpOp, TanhOp, SigmoidOp, CastOp>(op) &&
        op->getNumOperands() == 1) {
      layouts[op->getResult(0)] = layout;
      return;
    }
    layout = UlyssesLayout::sequence(layout.sequenceDim);
  }
  int64_t resultDim = positionwiseResultDim(op, input, layout.dim);
  if (resultDim < 0 || op->getNumResults() == 0)
    return gatherAll(op);
  visitPositionwise(op, resultDim);
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
