//===- GalvatronSharding.cpp - Tensor-parallel rules of the ops -----------===//
//
// Each op's Megatron-style tensor-parallel rule (`propagateTensorParallel`):
// from its operands' shardings, its results' shardings and what its
// operands need, and whether it acts position by position along the
// sequence (`isPositionwise`, for sequence parallelism). The analysis in
// lib/Analysis/TensorParallelAnalysis.cpp walks a layer and keeps the books.
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

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

#define GALVATRON_UNARY_RULE(OP)                                               \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    context.propagateDimensionPreserving(*this, {});                           \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &) { return true; }

GALVATRON_UNARY_RULE(NegOp)
GALVATRON_UNARY_RULE(AbsOp)
GALVATRON_UNARY_RULE(ExpOp)
GALVATRON_UNARY_RULE(LogOp)
GALVATRON_UNARY_RULE(SqrtOp)
GALVATRON_UNARY_RULE(RsqrtOp)
GALVATRON_UNARY_RULE(ReciprocalOp)
GALVATRON_UNARY_RULE(TanhOp)
GALVATRON_UNARY_RULE(ErfOp)
GALVATRON_UNARY_RULE(SigmoidOp)
GALVATRON_UNARY_RULE(ReluOp)
GALVATRON_UNARY_RULE(SiluOp)
GALVATRON_UNARY_RULE(GeluOp)
GALVATRON_UNARY_RULE(CastOp)
GALVATRON_UNARY_RULE(DropoutOp)
#undef GALVATRON_UNARY_RULE

#define GALVATRON_ELEMENTWISE_RULE(OP, ADDITIVE)                               \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    context.propagateElementwise(*this, ADDITIVE);                             \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &context) {                      \
    return context.hasPositionwiseOperands(*this);                             \
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

void RMSNormOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(*this, {rankOf(getInput()) - 1});
}
bool RMSNormOp::isPositionwise(const TPRuleContext &) {
  return rankOf(getInput()) >= 3;
}

void SoftmaxOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(
      *this, {normalizedAxis(static_cast<int64_t>(getAxis()), getInput())});
}
bool SoftmaxOp::isPositionwise(const TPRuleContext &) {
  return rankOf(getInput()) >= 3 &&
         normalizedAxis(static_cast<int64_t>(getAxis()), getInput()) >= 2;
}

void RotaryOp::propagateTensorParallel(TPRuleContext &context) {
  context.propagateDimensionPreserving(
      *this,
      {rankOf(getInput()) - 1, static_cast<int64_t>(getSeqAxis())});
}
bool RotaryOp::isPositionwise(const TPRuleContext &) {
  return getSeqAxis() == 1;
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

void BroadcastOp::propagateTensorParallel(TPRuleContext &context) {
  TPSharding in = context.getSharding(getInput());
  if (in.kind == TPSharding::Sharded)
    in.dim += rankOf(getResult()) - rankOf(getInput());
  context.setResult(getResult(), in);
}
bool BroadcastOp::isPositionwise(const TPRuleContext &) {
  return keepsLeadingDims(getInput(), getResult());
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

#define GALVATRON_REDUCTION_RULE(OP, LINEAR)                                   \
  void OP::propagateTensorParallel(TPRuleContext &context) {                   \
    propagateReduction(*this, getAxes(), getKeepDims(), LINEAR, context);      \
  }                                                                            \
  bool OP::isPositionwise(const TPRuleContext &) {                             \
    return llvm::all_of(getAxes(), [](int64_t a) { return a >= 2; });          \
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

void CrossEntropyOp::propagateTensorParallel(TPRuleContext &context) {
  context.require(getLabels(), TPSharding::replicated());
  int64_t last = rankOf(getLogits()) - 1;
  if (context.getSharding(getLogits()) == TPSharding::sharded(last)) {
    context.recordVocabParallelLoss(*this, getLogits());
    return;
  }
  context.require(getLogits(), TPSharding::replicated());
}

void ExtractPatchesOp::propagateTensorParallel(TPRuleContext &context) {
  context.require(getInput(), TPSharding::replicated());
}
