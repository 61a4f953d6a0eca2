//===- GalvatronSharding.cpp - Tensor-parallel rules of the ops -----------===//
//
// Each op's Megatron-style tensor-parallel rule (`propagateTensorParallel`):
// from its operands' shardings, its results' shardings and what its
// operands need, and whether it acts position by position along the
// sequence (`isPositionwise`, for sequence parallelism). The analysis in
// lib/Analysis/TensorParallelAnalysis.cpp walks a layer and keeps the books.
// Beside it, each op's DeepSpeed-Ulysses rule (`propagateUlysses`), which
// lib/Analysis/UlyssesAnalysis.cpp walks the same way.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/IR/TensorShapes.h"

using namespace mlir;
using namespace mlir::galvatron;

using mlir::galvatron::tensors::rankOf;
using mlir::galvatron::tensors::shapeOf;

/// Whether `in` and `out` agree on their [batch, sequence] dimensions.
static bool keepsLeadingDims(Value in, Value out) {
  return rankOf(in) >= 2 && rankOf(out) >= 2 &&
         shapeOf(in).take_front(2) == shapeOf(out).take_front(2);
}

static int64_t normalizedAxis(int64_t axis, Value value) {
  return axis < 0 ? axis + rankOf(value) : axis;
}

//===----------------------------------------------------------------------===//
// Shared rules
//===----------------------------------------------------------------------===//

void TPRuleContext::propagateDimensionPreserving(Operation *op,
                                                 ArrayRef<int64_t> blocked,
                                                 bool passPartial) {
  Value input = op->getOperand(0);
  TPSharding in = getSharding(input);
  if ((in.kind == TPSharding::Partial && !passPartial) ||
      (in.kind == TPSharding::Sharded && llvm::is_contained(blocked, in.dim))) {
    require(input, TPSharding::replicated());
    in = TPSharding::replicated();
  }
  // Secondary operands (norm weights) act along the unsplit dimension.
  for (Value other : op->getOperands().drop_front())
    require(other, TPSharding::replicated());
  for (Value result : op->getResults())
    setResult(result, in,
              in.kind == TPSharding::Sharded ? shapeOf(input)[in.dim] : 0);
}

void TPRuleContext::propagateElementwise(Operation *op, bool additive) {
  Value result = op->getResult(0);
  int64_t rank = rankOf(result);
  bool allPartial = llvm::all_of(op->getOperands(), [&](Value v) {
    return getSharding(v).kind == TPSharding::Partial;
  });
  if (additive && allPartial) {
    setResult(result, TPSharding::partial());
    return;
  }
  std::optional<int64_t> target;
  for (Value operand : op->getOperands()) {
    TPSharding s = getSharding(operand);
    if (s.kind == TPSharding::Partial) {
      require(operand, TPSharding::replicated());
      continue;
    }
    if (s.kind != TPSharding::Sharded)
      continue;
    int64_t resultDim = s.dim + rank - rankOf(operand);
    if (!target)
      target = resultDim;
    else if (*target != resultDim)
      require(operand, TPSharding::replicated());
  }
  if (!target) {
    setResult(result, TPSharding::replicated());
    return;
  }
  for (Value operand : op->getOperands()) {
    int64_t dim = *target - (rank - rankOf(operand));
    bool broadcastAlongTarget = dim < 0 || shapeOf(operand)[dim] == 1;
    if (getSharding(operand) == TPSharding::sharded(dim))
      continue;
    require(operand, broadcastAlongTarget ? TPSharding::replicated()
                                          : TPSharding::sharded(dim));
  }
  setResult(result, TPSharding::sharded(*target), shapeOf(result)[*target]);
}

bool TPRuleContext::hasPositionwiseOperands(Operation *op) const {
  return llvm::all_of(op->getOperands(), [&](Value v) {
    TPSharding::Kind kind = getSharding(v).kind;
    if (kind == TPSharding::Partial)
      return true;
    if (kind != TPSharding::Replicated)
      return false;
    if (isSequenceParallelValue(v) || !isBatched(v))
      return true;
    int64_t seqDim = 1 - (rankOf(op->getResult(0)) - rankOf(v));
    return seqDim < 0 || shapeOf(v)[seqDim] == 1;
  });
}

void UlyssesRuleContext::gatherAll(Operation *op) {
  for (unsigned index = 0; index < op->getNumOperands(); ++index)
    if (getLayout(op->getOperand(index)).isSplit())
      require(op, index, UlyssesLayout::whole());
}

UlyssesLayout UlyssesRuleContext::sequenceOperand(Operation *op,
                                                  unsigned index) {
  UlyssesLayout layout = getLayout(op->getOperand(index));
  if (layout.kind != UlyssesLayout::Heads)
    return layout;
  UlyssesLayout target = UlyssesLayout::sequence(layout.sequenceDim);
  require(op, index, target);
  return target;
}

void UlyssesRuleContext::propagatePositionwise(
    Operation *op, UlyssesOperands operands,
    llvm::function_ref<int64_t(Value input, int64_t dim)> resultDim,
    bool keepsHeads) {
  auto split = llvm::find_if(op->getOperands(),
                             [&](Value v) { return getLayout(v).isSplit(); });
  if (split == op->getOperands().end())
    return;
  Value input = *split;
  UlyssesLayout layout = getLayout(input);
  if (layout.kind == UlyssesLayout::Heads) {
    if (keepsHeads && op->getNumOperands() == 1)
      return setResult(op->getResult(0), layout);
    layout = UlyssesLayout::sequence(layout.sequenceDim);
  }
  int64_t sequenceDim = resultDim(input, layout.dim);
  if (sequenceDim < 0)
    return gatherAll(op);
  int64_t rank = rankOf(op->getResult(0));
  // Every operand at the result's split, or broadcast along it; weights and
  // other whole operands stay whole unless they vary along the sequence.
  for (unsigned index = 0; index < op->getNumOperands(); ++index) {
    Value operand = op->getOperand(index);
    UlyssesLayout held = sequenceOperand(op, index);
    int64_t rankDiff =
        operands == UlyssesOperands::Broadcast ? rank - rankOf(operand) : 0;
    int64_t dim = sequenceDim - rankDiff;
    if (held.isSplit()) {
      if (rankDiff == 0 && operands != UlyssesOperands::Moved &&
          held.dim != dim)
        require(op, index, UlyssesLayout::whole());
      continue;
    }
    if (operands == UlyssesOperands::Broadcast && dim >= 0 &&
        shapeOf(operand)[dim] > 1)
      require(op, index, UlyssesLayout::sequence(dim));
  }
  if (hasFailed())
    return;
  for (Value result : op->getResults())
    setResult(result, UlyssesLayout::sequence(sequenceDim));
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

static int64_t sameDim(Value, int64_t dim) { return dim; }

/// Where a broadcasting op puts dimension `dim` of `input`.
static int64_t broadcastDim(Operation *op, Value input, int64_t dim) {
  return dim + rankOf(op->getResult(0)) - rankOf(input);
}

// KEEPS_HEADS: Ulysses applies the op to a heads split as it is (the ops
// seen between the all-to-alls around attention).
#define GALVATRON_UNARY_RULE(OP, KEEPS_HEADS)                                  \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    context.propagateDimensionPreserving(*this, {});                           \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &) { return true; }              \
  void OP::propagateUlysses(UlyssesRuleContext &context) {                     \
    context.propagatePositionwise(*this, UlyssesOperands::Aligned, sameDim,    \
                                  KEEPS_HEADS);                                \
  }

GALVATRON_UNARY_RULE(NegOp, true)
GALVATRON_UNARY_RULE(AbsOp, false)
GALVATRON_UNARY_RULE(ExpOp, true)
GALVATRON_UNARY_RULE(LogOp, false)
GALVATRON_UNARY_RULE(SqrtOp, false)
GALVATRON_UNARY_RULE(RsqrtOp, false)
GALVATRON_UNARY_RULE(ReciprocalOp, false)
GALVATRON_UNARY_RULE(TanhOp, true)
GALVATRON_UNARY_RULE(ErfOp, false)
GALVATRON_UNARY_RULE(SigmoidOp, true)
GALVATRON_UNARY_RULE(ReluOp, false)
GALVATRON_UNARY_RULE(SiluOp, false)
GALVATRON_UNARY_RULE(GeluOp, false)
GALVATRON_UNARY_RULE(CastOp, true)
#undef GALVATRON_UNARY_RULE

void DropoutOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(*this, {});
}
bool DropoutOp::isPositionwise(const TPRuleContext &) { return true; }
// Under Ulysses each rank drops its sequence part; the partitioner records
// where the part lies, so the mask is the serial run's.
void DropoutOp::propagateUlysses(UlyssesRuleContext &context) {
  context.propagatePositionwise(*this, UlyssesOperands::Aligned, sameDim);
}

#define GALVATRON_ELEMENTWISE_RULE(OP, ADDITIVE)                               \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    context.propagateElementwise(*this, ADDITIVE);                             \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &context) {                      \
    return context.hasPositionwiseOperands(*this);                             \
  }                                                                            \
  void OP::propagateUlysses(UlyssesRuleContext &context) {                     \
    context.propagatePositionwise(*this, UlyssesOperands::Broadcast,           \
                                  [&](Value input, int64_t dim) {              \
                                    return broadcastDim(*this, input, dim);    \
                                  });                                          \
  }

GALVATRON_ELEMENTWISE_RULE(AddOp, true)
GALVATRON_ELEMENTWISE_RULE(SubOp, true)
GALVATRON_ELEMENTWISE_RULE(MulOp, false)
GALVATRON_ELEMENTWISE_RULE(DivOp, false)
GALVATRON_ELEMENTWISE_RULE(PowOp, false)
GALVATRON_ELEMENTWISE_RULE(MaxOp, false)
GALVATRON_ELEMENTWISE_RULE(MinOp, false)
GALVATRON_ELEMENTWISE_RULE(SelectOp, false)
#undef GALVATRON_ELEMENTWISE_RULE

//===----------------------------------------------------------------------===//
// Normalization and position-wise transformer ops
//===----------------------------------------------------------------------===//

void LayerNormOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(*this, {rankOf(getInput()) - 1});
}
bool LayerNormOp::isPositionwise(const TPRuleContext &) {
  return rankOf(getInput()) >= 3;
}

/// Normalizing along the last dimension: the split must lie elsewhere.
static int64_t notLastDim(Value input, int64_t dim) {
  return dim == rankOf(input) - 1 ? -1 : dim;
}

void LayerNormOp::propagateUlysses(UlyssesRuleContext &context) {
  context.propagatePositionwise(*this, UlyssesOperands::Aligned, notLastDim);
}

void RMSNormOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(*this, {rankOf(getInput()) - 1});
}
bool RMSNormOp::isPositionwise(const TPRuleContext &) {
  return rankOf(getInput()) >= 3;
}
void RMSNormOp::propagateUlysses(UlyssesRuleContext &context) {
  context.propagatePositionwise(*this, UlyssesOperands::Aligned, notLastDim);
}

void SoftmaxOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(
      *this, {normalizedAxis(static_cast<int64_t>(getAxis()), getInput())});
}
bool SoftmaxOp::isPositionwise(const TPRuleContext &) {
  return rankOf(getInput()) >= 3 &&
         normalizedAxis(static_cast<int64_t>(getAxis()), getInput()) >= 2;
}
void SoftmaxOp::propagateUlysses(UlyssesRuleContext &context) {
  int64_t axis = normalizedAxis(static_cast<int64_t>(getAxis()), getInput());
  context.propagatePositionwise(
      *this, UlyssesOperands::Aligned,
      [&](Value, int64_t dim) { return dim == axis ? -1 : dim; });
}

void RotaryOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(
      *this,
      {rankOf(getInput()) - 1, static_cast<int64_t>(getSeqAxis())});
}
bool RotaryOp::isPositionwise(const TPRuleContext &) {
  return getSeqAxis() == 1;
}
void RotaryOp::propagateUlysses(UlyssesRuleContext &context) {
  // Positions along the sequence: the whole sequence, split by heads (the
  // dimension that is neither batch, sequence nor features).
  UlyssesLayout layout = context.getLayout(getInput());
  int64_t axis = getSeqAxis();
  if (!layout.isSplit())
    return;
  if (rankOf(getInput()) != 4 || layout.sequenceDim != axis)
    return context.fail(*this, "rotates along a dimension other than the "
                               "split sequence");
  int64_t heads = axis == 1 ? 2 : 1;
  if (layout.kind == UlyssesLayout::Sequence) {
    context.requireDivisible(shapeOf(getInput())[heads]);
    context.require(*this, 0, UlyssesLayout::heads(heads, axis));
  }
  context.setResult(getResult(), UlyssesLayout::heads(heads, axis));
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

void ReshapeOp::propagateTensorParallel(TPRuleContext &context) {
  Value input = getInput();
  TPSharding in = context.getSharding(input);
  if (in.kind != TPSharding::Sharded) {
    context.setResult(getResult(), in);
    return;
  }
  ArrayRef<int64_t> inShape = shapeOf(input), outShape = shapeOf(getResult());
  // Dimension d spans the flat-index block [stride(d), stride(d)·size(d));
  // a block split of d stays a block split of the output dimension whose
  // span ends at the same place.
  auto stride = [](ArrayRef<int64_t> shape, int64_t dim) {
    int64_t product = 1;
    for (int64_t k = dim + 1; k < static_cast<int64_t>(shape.size()); ++k)
      product *= shape[k];
    return product;
  };
  int64_t span = stride(inShape, in.dim) * inShape[in.dim];
  for (int64_t e = 0; e < static_cast<int64_t>(outShape.size()); ++e) {
    if (outShape[e] <= 1 || stride(outShape, e) * outShape[e] != span)
      continue;
    // Splitting a dimension into (heads, head_dim), or merging them back,
    // needs the outer factor to divide evenly.
    if (outShape[e] < inShape[in.dim])
      context.requireDivisible(outShape[e]);
    else if (outShape[e] > inShape[in.dim])
      context.requireDivisible(inShape[in.dim]);
    context.setResult(getResult(), TPSharding::sharded(e));
    return;
  }
  context.require(input, TPSharding::replicated());
  context.setResult(getResult(), TPSharding::replicated());
}
bool ReshapeOp::isPositionwise(const TPRuleContext &) {
  return keepsLeadingDims(getInput(), getResult());
}
void ReshapeOp::propagateUlysses(UlyssesRuleContext &context) {
  // The split dimension and those before it stay as they are.
  context.propagatePositionwise(
      *this, UlyssesOperands::Moved, [&](Value input, int64_t dim) {
        bool keepsPrefix = shapeOf(input).take_front(dim + 1) ==
                           shapeOf(getResult()).take_front(dim + 1);
        return keepsPrefix ? dim : -1;
      });
}

void TransposeOp::propagateTensorParallel(TPRuleContext &context) {
  TPSharding in = context.getSharding(getInput());
  if (in.kind == TPSharding::Sharded) {
    ArrayRef<int64_t> perm = getPerm();
    in = TPSharding::sharded(llvm::find(perm, in.dim) - perm.begin());
  }
  context.setResult(getResult(), in);
}
bool TransposeOp::isPositionwise(const TPRuleContext &) {
  ArrayRef<int64_t> perm = getPerm();
  return perm.size() >= 2 && perm[0] == 0 && perm[1] == 1;
}
void TransposeOp::propagateUlysses(UlyssesRuleContext &context) {
  auto position = [&](int64_t dim) {
    return int64_t(llvm::find(getPerm(), dim) - getPerm().begin());
  };
  UlyssesLayout layout = context.getLayout(getInput());
  if (layout.kind == UlyssesLayout::Heads)
    return context.setResult(
        getResult(), UlyssesLayout::heads(position(layout.dim),
                                          position(layout.sequenceDim)));
  context.propagatePositionwise(
      *this, UlyssesOperands::Moved,
      [&](Value, int64_t dim) { return position(dim); });
}

void SliceOp::propagateTensorParallel(TPRuleContext &context) {
  TPSharding in = context.getSharding(getInput());
  if (in.kind == TPSharding::Sharded) {
    int64_t d = in.dim;
    bool whole = getStarts()[d] == 0 &&
                 getLimits()[d] == shapeOf(getInput())[d] &&
                 getStrides()[d] == 1;
    if (!whole) {
      context.require(getInput(), TPSharding::replicated());
      in = TPSharding::replicated();
    }
  }
  context.setResult(getResult(), in);
}
bool SliceOp::isPositionwise(const TPRuleContext &) {
  return keepsLeadingDims(getInput(), getResult()) && getStrides()[0] == 1 &&
         getStrides()[1] == 1 && getStarts()[0] == 0 && getStarts()[1] == 0;
}
void SliceOp::propagateUlysses(UlyssesRuleContext &context) {
  // Only a slice taking the split dimension whole keeps it.
  context.propagatePositionwise(
      *this, UlyssesOperands::Aligned, [&](Value input, int64_t dim) {
        bool whole = getStarts()[dim] == 0 && getStrides()[dim] == 1 &&
                     getLimits()[dim] == shapeOf(input)[dim];
        return whole ? dim : -1;
      });
}

/// Ops joining or cutting along `axis`: the split must lie elsewhere.
static void propagateUlyssesBesideAxis(Operation *op, int64_t axis,
                                       UlyssesOperands operands,
                                       UlyssesRuleContext &context) {
  context.propagatePositionwise(
      op, operands, [&](Value, int64_t dim) { return dim == axis ? -1 : dim; });
}

void SplitOp::propagateTensorParallel(TPRuleContext &context) {
  TPSharding in = context.getSharding(getInput());
  // A fused projection (GPT-2's c_attn) split into q, k and v: each segment
  // of the producer's weight is split separately.
  if (in.kind == TPSharding::Sharded &&
      in.dim == static_cast<int64_t>(getAxis()) &&
      !context.splitProducerSegments(getInput(), getSizes())) {
    context.require(getInput(), TPSharding::replicated());
    in = TPSharding::replicated();
  }
  for (Value result : getResults())
    context.setResult(result, in);
}
bool SplitOp::isPositionwise(const TPRuleContext &) { return getAxis() >= 2; }
void SplitOp::propagateUlysses(UlyssesRuleContext &context) {
  propagateUlyssesBesideAxis(*this, getAxis(), UlyssesOperands::Aligned,
                             context);
}

void ConcatOp::propagateTensorParallel(TPRuleContext &context) {
  int64_t axis = getAxis();
  std::optional<int64_t> target;
  for (Value input : getInputs()) {
    TPSharding s = context.getSharding(input);
    if (s.kind == TPSharding::Sharded && s.dim != axis && !target)
      target = s.dim;
  }
  TPSharding result =
      target ? TPSharding::sharded(*target) : TPSharding::replicated();
  for (Value input : getInputs())
    context.require(input, result);
  context.setResult(getResult(), result,
                    target ? shapeOf(getResult())[*target] : 0);
}
bool ConcatOp::isPositionwise(const TPRuleContext &) { return getAxis() >= 2; }
void ConcatOp::propagateUlysses(UlyssesRuleContext &context) {
  propagateUlyssesBesideAxis(*this, getAxis(), UlyssesOperands::Broadcast,
                             context);
}

void BroadcastOp::propagateTensorParallel(TPRuleContext &context) {
  TPSharding in = context.getSharding(getInput());
  if (in.kind == TPSharding::Sharded)
    in.dim += rankOf(getResult()) - rankOf(getInput());
  context.setResult(getResult(), in);
}
bool BroadcastOp::isPositionwise(const TPRuleContext &) {
  return keepsLeadingDims(getInput(), getResult());
}
void BroadcastOp::propagateUlysses(UlyssesRuleContext &context) {
  context.propagatePositionwise(*this, UlyssesOperands::Moved,
                                [&](Value input, int64_t dim) {
                                  return broadcastDim(*this, input, dim);
                                });
}

//===----------------------------------------------------------------------===//
// Reductions: over a split dimension, sums become partial sums
//===----------------------------------------------------------------------===//

static void propagateReduction(Operation *reduce, ArrayRef<int64_t> axes,
                               bool keepDims, bool linear,
                               TPRuleContext &context) {
  Value input = reduce->getOperand(0);
  TPSharding in = context.getSharding(input);
  if (in.kind == TPSharding::Partial && !linear) {
    context.require(input, TPSharding::replicated());
    in = TPSharding::replicated();
  }
  if (in.kind == TPSharding::Sharded) {
    if (llvm::is_contained(axes, in.dim)) {
      if (linear) {
        context.setResult(reduce->getResult(0), TPSharding::partial(),
                          shapeOf(input)[in.dim]);
        return;
      }
      context.require(input, TPSharding::replicated());
      in = TPSharding::replicated();
    } else if (!keepDims) {
      in.dim -= llvm::count_if(axes, [&](int64_t a) { return a < in.dim; });
    }
  }
  context.setResult(reduce->getResult(0), in,
                    in.kind == TPSharding::Sharded
                        ? shapeOf(reduce->getResult(0))[in.dim]
                        : 0);
}

/// Reducing along the split dimension acts across the sequence.
static void propagateUlyssesReduction(Operation *reduce, ArrayRef<int64_t> axes,
                                      bool keepDims,
                                      UlyssesRuleContext &context) {
  context.propagatePositionwise(
      reduce, UlyssesOperands::Moved, [&](Value, int64_t dim) -> int64_t {
        if (llvm::is_contained(axes, dim))
          return -1;
        if (keepDims)
          return dim;
        return dim - llvm::count_if(axes, [&](int64_t a) { return a < dim; });
      });
}

#define GALVATRON_REDUCTION_RULE(OP, LINEAR)                                   \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    propagateReduction(*this, getAxes(), getKeepDims(), LINEAR, context);      \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &) {                             \
    return llvm::all_of(getAxes(), [](int64_t a) { return a >= 2; });          \
  }                                                                            \
  void OP::propagateUlysses(UlyssesRuleContext &context) {                     \
    propagateUlyssesReduction(*this, getAxes(), getKeepDims(), context);       \
  }

GALVATRON_REDUCTION_RULE(ReduceSumOp, true)
GALVATRON_REDUCTION_RULE(ReduceMeanOp, true)
GALVATRON_REDUCTION_RULE(ReduceMaxOp, false)
#undef GALVATRON_REDUCTION_RULE

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

void LinearOp::propagateTensorParallel(TPRuleContext &context) {
  Value input = getInput();
  TPSharding in = context.getSharding(input);
  bool transposed = getTransposeWeight();
  if (in.kind == TPSharding::Sharded && in.dim == rankOf(input) - 1) {
    // Row parallel: each rank multiplies its slice of the features; the
    // bias is added once, after the partial sums are reduced.
    context.setLinearParallelism(*this, LinearParallelism::Row);
    context.shardWeight(getWeight(), transposed ? 1 : 0);
    if (getBias())
      context.require(getBias(), TPSharding::replicated());
    context.setResult(getResult(), TPSharding::partial(), getInFeatures());
    return;
  }
  if (in.kind != TPSharding::Replicated)
    context.require(input, TPSharding::replicated());
  // Column parallel: each rank computes its slice of the outputs.
  context.setLinearParallelism(*this, LinearParallelism::Column);
  context.recordReplicatedInput(input);
  context.shardWeight(getWeight(), transposed ? 0 : 1);
  if (getBias())
    context.shardWeight(getBias(), 0);
  context.setResult(getResult(), TPSharding::sharded(rankOf(getResult()) - 1),
                    getOutFeatures());
}
bool LinearOp::isPositionwise(const TPRuleContext &) { return true; }
void LinearOp::propagateUlysses(UlyssesRuleContext &context) {
  // Whole weights applied to the input's positions.
  context.propagatePositionwise(
      *this, UlyssesOperands::Aligned, [&](Value input, int64_t dim) {
        return input == getInput() && dim < rankOf(input) - 1 ? dim : -1;
      });
}

void EmbeddingOp::propagateTensorParallel(TPRuleContext &context) {
  context.require(getIndices(), TPSharding::replicated());
  // Vocabulary parallel: each rank holds a block of rows and contributes
  // the rows of its block; the lookup is a partial sum.
  if (context.shardVocabulary(*this, getTable())) {
    context.setResult(getResult(), TPSharding::partial(),
                      shapeOf(getTable())[0]);
    return;
  }
  context.require(getTable(), TPSharding::replicated());
}
bool EmbeddingOp::isPositionwise(const TPRuleContext &) { return true; }
void EmbeddingOp::propagateUlysses(UlyssesRuleContext &context) {
  // The ids of this rank's positions looked up in the whole table.
  context.propagatePositionwise(*this, UlyssesOperands::Aligned,
                                [&](Value input, int64_t dim) {
                                  return input == getIndices() ? dim : -1;
                                });
}

void MatmulOp::propagateTensorParallel(TPRuleContext &context) {
  Value lhs = getLhs(), rhs = getRhs();
  for (Value operand : {lhs, rhs})
    if (context.getSharding(operand).kind == TPSharding::Partial)
      context.require(operand, TPSharding::replicated());
  int64_t rank = rankOf(getResult());
  int64_t lhsRank = rankOf(lhs), rhsRank = rankOf(rhs);
  // Roles of the operands' last two dimensions.
  int64_t lhsM = getTransposeLhs() ? lhsRank - 1 : lhsRank - 2;
  int64_t lhsK = getTransposeLhs() ? lhsRank - 2 : lhsRank - 1;
  int64_t rhsK = getTransposeRhs() ? rhsRank - 1 : rhsRank - 2;
  int64_t rhsN = getTransposeRhs() ? rhsRank - 2 : rhsRank - 1;
  auto resultBatchDim = [&](Value operand, int64_t dim) -> int64_t {
    int64_t operandRank = rankOf(operand);
    return dim < operandRank - 2 ? dim + rank - operandRank : -1;
  };
  auto operandBatchDim = [&](Value operand, int64_t resultDim) -> int64_t {
    int64_t dim = resultDim - (rank - rankOf(operand));
    if (dim < 0 || shapeOf(operand)[dim] == 1)
      return -1;
    return dim;
  };
  TPSharding l = context.getSharding(lhs), r = context.getSharding(rhs);
  auto finish = [&](TPSharding result, int64_t splitSize) {
    context.setResult(getResult(), result, splitSize);
  };
  // A batch dimension (attention heads) split on either side.
  for (auto [operand, sharding] : {std::pair{lhs, l}, {rhs, r}}) {
    if (sharding.kind != TPSharding::Sharded)
      continue;
    int64_t batchDim = resultBatchDim(operand, sharding.dim);
    if (batchDim < 0)
      continue;
    for (Value side : {lhs, rhs}) {
      int64_t dim = operandBatchDim(side, batchDim);
      context.require(side, dim < 0 ? TPSharding::replicated()
                                    : TPSharding::sharded(dim));
    }
    finish(TPSharding::sharded(batchDim), shapeOf(getResult())[batchDim]);
    return;
  }
  if (l == TPSharding::sharded(lhsM)) {
    context.require(rhs, TPSharding::replicated());
    finish(TPSharding::sharded(rank - 2), shapeOf(getResult())[rank - 2]);
    return;
  }
  if (r == TPSharding::sharded(rhsN)) {
    context.require(lhs, TPSharding::replicated());
    finish(TPSharding::sharded(rank - 1), shapeOf(getResult())[rank - 1]);
    return;
  }
  if (l == TPSharding::sharded(lhsK) || r == TPSharding::sharded(rhsK)) {
    context.require(lhs, TPSharding::sharded(lhsK));
    context.require(rhs, TPSharding::sharded(rhsK));
    finish(TPSharding::partial(), shapeOf(lhs)[lhsK]);
    return;
  }
  context.require(lhs, TPSharding::replicated());
  context.require(rhs, TPSharding::replicated());
  finish(TPSharding::replicated(), 0);
}
void MatmulOp::propagateUlysses(UlyssesRuleContext &context) {
  // Rows (or batch dimensions) of the left-hand side against a whole
  // right-hand side.
  context.propagatePositionwise(
      *this, UlyssesOperands::Aligned,
      [&](Value input, int64_t dim) -> int64_t {
        int64_t inRank = rankOf(input);
        int64_t rows = getTransposeLhs() ? inRank - 1 : inRank - 2;
        bool lhs = input == getLhs() && getRhs() != input;
        return lhs && (dim < inRank - 2 || dim == rows)
                   ? broadcastDim(*this, input, dim)
                   : -1;
      });
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

void AttentionOp::propagateTensorParallel(TPRuleContext &context) {
  Value query = getQuery();
  if (context.getSharding(query).kind == TPSharding::Partial)
    context.require(query, TPSharding::replicated());
  if (context.getSharding(query) != TPSharding::sharded(1)) {
    for (Value operand : getOperands())
      context.require(operand, TPSharding::replicated());
    return;
  }
  // Heads split: every rank attends with its query heads and the key/value
  // heads they share.
  context.require(getKey(), TPSharding::sharded(1));
  context.require(getValue(), TPSharding::sharded(1));
  if (Value mask = getMask()) {
    int64_t headDim = 1 - (4 - rankOf(mask));
    bool perHead = headDim >= 0 && shapeOf(mask)[headDim] > 1;
    context.require(mask, perHead ? TPSharding::sharded(headDim)
                                  : TPSharding::replicated());
  }
  context.requireDivisible(shapeOf(query)[1]);
  context.requireDivisible(shapeOf(getKey())[1]);
  context.setResult(getResult(), TPSharding::sharded(1), shapeOf(query)[1]);
}
void AttentionOp::propagateUlysses(UlyssesRuleContext &context) {
  // Query, key and value [batch, heads, sequence, head_dim] with whole
  // sequences of 1/u of the heads.
  for (unsigned index = 0; index < 3; ++index) {
    Value operand = getOperand(index);
    if (rankOf(operand) != 4)
      return context.fail(*this,
                          "needs [batch, heads, sequence, head_dim] operands");
    UlyssesLayout layout = context.getLayout(operand);
    if (layout.isSplit() && layout.sequenceDim != 2)
      return context.fail(*this, "has an operand split along a dimension "
                                 "other than its sequence");
    context.requireDivisible(shapeOf(operand)[1]);
    context.require(*this, index, UlyssesLayout::heads(1, 2));
  }
  if (Value mask = getMask()) {
    unsigned index = getNumOperands() - 1;
    // A per-head mask takes the rank's heads; whole sequences either way.
    int64_t headDim = 1 - (4 - rankOf(mask));
    bool perHead = headDim >= 0 && shapeOf(mask)[headDim] > 1;
    if (perHead && context.getLayout(mask).isSplit())
      return context.fail(*this, "has a per-head mask split along the "
                                 "sequence");
    context.require(*this, index,
                    perHead ? UlyssesLayout::heads(headDim, -1)
                            : UlyssesLayout::whole());
  }
  context.setResult(getResult(), UlyssesLayout::heads(1, 2));
}

void CrossEntropyOp::propagateTensorParallel(TPRuleContext &context) {
  context.require(getLabels(), TPSharding::replicated());
  int64_t last = rankOf(getLogits()) - 1;
  if (context.getSharding(getLogits()) == TPSharding::sharded(last)) {
    context.recordVocabParallelLoss(*this, getLogits());
    return;
  }
  context.require(getLogits(), TPSharding::replicated());
}
void CrossEntropyOp::propagateUlysses(UlyssesRuleContext &context) {
  context.gatherAll(*this);
}

void ExtractPatchesOp::propagateTensorParallel(TPRuleContext &context) {
  context.require(getInput(), TPSharding::replicated());
}
void ExtractPatchesOp::propagateUlysses(UlyssesRuleContext &context) {
  context.gatherAll(*this);
}
