//===- TensorParallelAnalysis.cpp - Megatron-style TP of a layer ----------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::galvatron;

StringRef mlir::galvatron::stringifyTPCommKind(TPCommPoint::Kind kind) {
  switch (kind) {
  case TPCommPoint::ReducePartial:
    return "reduce-partial";
  case TPCommPoint::ReplicatedInput:
    return "replicated-input";
  case TPCommPoint::GatherShards:
    return "gather-shards";
  case TPCommPoint::ScatterReplicated:
    return "scatter-replicated";
  case TPCommPoint::VocabParallelLoss:
    return "vocab-parallel-loss";
  }
  llvm_unreachable("unknown comm kind");
}

static ArrayRef<int64_t> shapeOf(Value value) {
  if (auto type = dyn_cast<RankedTensorType>(value.getType()))
    return type.getShape();
  return {};
}

static int64_t rankOf(Value value) {
  return static_cast<int64_t>(shapeOf(value).size());
}

static bool isFloat(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return type && isa<FloatType>(type.getElementType());
}

/// Marks `op`'s results batched when an operand is, and as needing a
/// gradient when it reads a parameter or a float operand that needs one.
static void propagateFlags(Operation &op, llvm::DenseSet<Value> &batched,
                           llvm::DenseSet<Value> &gradient) {
  bool anyBatched = llvm::any_of(
      op.getOperands(), [&](Value v) { return batched.contains(v); });
  bool anyGradient =
      isa<ParamOp>(op) || llvm::any_of(op.getOperands(), [&](Value v) {
        return gradient.contains(v);
      });
  for (Value result : op.getResults()) {
    if (anyBatched)
      batched.insert(result);
    if (anyGradient && isFloat(result))
      gradient.insert(result);
  }
}

//===----------------------------------------------------------------------===//
// Construction
//===----------------------------------------------------------------------===//

TensorParallelAnalysis::TensorParallelAnalysis(LayerOp layer,
                                               ArrayRef<bool> inputBatched,
                                               ArrayRef<bool> inputNeedsGradient)
    : layer(layer) {
  for (auto [index, argument] :
       llvm::enumerate(layer.getBodyBlock().getArguments())) {
    if (index < inputBatched.size() && inputBatched[index]) {
      batched.insert(argument);
      if (!sequenceLength && rankOf(argument) >= 2)
        sequenceLength = shapeOf(argument)[1];
    }
    if (index < inputNeedsGradient.size() && inputNeedsGradient[index] &&
        isFloat(argument))
      gradient.insert(argument);
  }
  run();
}

std::vector<TensorParallelAnalysis>
TensorParallelAnalysis::analyzeFunction(func::FuncOp function) {
  llvm::DenseSet<Value> batchedValues, gradientValues;
  for (BlockArgument argument : function.getArguments())
    batchedValues.insert(argument);
  std::vector<TensorParallelAnalysis> result;
  for (Operation &op : function.getBody().getOps()) {
    auto layer = dyn_cast<LayerOp>(op);
    if (!layer) {
      // Glue outside layers.
      propagateFlags(op, batchedValues, gradientValues);
      continue;
    }
    SmallVector<bool> inputBatched, inputGradient;
    for (Value input : layer.getInputs()) {
      inputBatched.push_back(batchedValues.contains(input));
      inputGradient.push_back(gradientValues.contains(input));
    }
    TensorParallelAnalysis &analysis =
        result.emplace_back(layer, inputBatched, inputGradient);
    auto yield = cast<YieldOp>(layer.getBodyBlock().getTerminator());
    for (auto [yielded, output] :
         llvm::zip(yield.getValues(), layer.getResults())) {
      if (analysis.isBatched(yielded))
        batchedValues.insert(output);
      if (analysis.needsGradient(yielded))
        gradientValues.insert(output);
    }
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Queries
//===----------------------------------------------------------------------===//

bool TensorParallelAnalysis::supportsDegree(int64_t tp,
                                            std::string *reason) const {
  if (tp == 1)
    return true;
  if (!isShardable()) {
    if (reason)
      *reason = failure;
    return false;
  }
  for (int64_t size : divisors)
    if (size % tp != 0) {
      if (reason)
        *reason = ("a reshape or attention splits " + llvm::Twine(size) +
                   " heads, which do not divide among " + llvm::Twine(tp) +
                   " ranks")
                      .str();
      return false;
    }
  for (int64_t size : weightSplits)
    if (size % tp != 0) {
      if (reason)
        *reason = ("a weight dimension of " + llvm::Twine(size) +
                   " does not divide among " + llvm::Twine(tp) + " ranks")
                      .str();
      return false;
    }
  return true;
}

TPSharding TensorParallelAnalysis::getSharding(Value value) const {
  auto it = shardings.find(value);
  return it == shardings.end() ? TPSharding::replicated() : it->second;
}

bool TensorParallelAnalysis::isSequenceShaped(Value value) const {
  return sequenceLength > 1 && isBatched(value) && rankOf(value) >= 2 &&
         shapeOf(value)[1] == sequenceLength;
}

LinearParallelism
TensorParallelAnalysis::getLinearParallelism(LinearOp op) const {
  auto it = linears.find(op.getOperation());
  return it == linears.end() ? LinearParallelism::Replicated : it->second;
}

//===----------------------------------------------------------------------===//
// Propagation helpers
//===----------------------------------------------------------------------===//

void TensorParallelAnalysis::fail(Operation *op, const llvm::Twine &why) {
  if (!failure.empty())
    return;
  failure = (op->getName().getStringRef() + ": " + why).str();
}

void TensorParallelAnalysis::record(TPCommPoint::Kind kind, Value value) {
  if (recorded.insert({value, static_cast<unsigned>(kind)}).second)
    commPoints.push_back({kind, value});
}

void TensorParallelAnalysis::require(Value value, TPSharding target) {
  TPSharding current = getSharding(value);
  if (current == target)
    return;
  if (current.kind == TPSharding::Partial) {
    record(TPCommPoint::ReducePartial, value);
    current = TPSharding::replicated();
  } else if (current.kind == TPSharding::Sharded) {
    record(TPCommPoint::GatherShards, value);
    current = TPSharding::replicated();
  }
  if (target.kind == TPSharding::Sharded)
    record(TPCommPoint::ScatterReplicated, value);
}

void TensorParallelAnalysis::setResult(Value value, TPSharding sharding,
                                       int64_t splitSize) {
  if (sharding.kind != TPSharding::Replicated)
    shardings[value] = sharding;
  if (splitSize > 0) {
    int64_t &size = splitSizes[value.getDefiningOp()];
    size = std::max(size, splitSize);
  }
}

TPParameterSharding *TensorParallelAnalysis::parameterOf(Value value) {
  auto param = value.getDefiningOp<ParamOp>();
  if (!param)
    return nullptr;
  for (TPParameterSharding &entry : parameters)
    if (entry.op == param)
      return &entry;
  return nullptr;
}

/// Splits a weight operand along `dim`: a parameter read records the split
/// (looking through a reshape that keeps the leading dimension, as ViT's
/// patch kernel has); any other value is sliced like an activation.
static Value shardedWeightSource(Value weight, int64_t &dim) {
  if (auto reshape = weight.getDefiningOp<ReshapeOp>()) {
    ArrayRef<int64_t> in = shapeOf(reshape.getInput());
    ArrayRef<int64_t> out = shapeOf(weight);
    if (dim == 0 && !in.empty() && !out.empty() && in[0] == out[0] &&
        reshape.getInput().getDefiningOp<ParamOp>())
      return reshape.getInput();
  }
  return weight;
}

//===----------------------------------------------------------------------===//
// The walk
//===----------------------------------------------------------------------===//

void TensorParallelAnalysis::run() {
  Block &body = layer.getBodyBlock();
  int64_t largestTable = 0;
  for (auto lookup : body.getOps<EmbeddingOp>()) {
    int64_t elements = cast<RankedTensorType>(lookup.getTable().getType())
                           .getNumElements();
    if (elements > largestTable) {
      largestTable = elements;
      vocabularyLookup = lookup;
    }
  }
  for (Operation &op : body) {
    propagateFlags(op, batched, gradient);
    visit(&op);
    checkSequenceParallel(&op);
  }
  collectWeightSplits();
}

void TensorParallelAnalysis::collectWeightSplits() {
  auto markVocabulary = [&](Value weight) {
    if (TPParameterSharding *entry = parameterOf(weight))
      entry->vocabulary = entry->dim >= 0;
  };
  // The vocabulary lookup, and the heads producing vocabulary-parallel
  // model outputs (their weights and biases split along the outputs).
  if (vocabularyLookup && getSharding(vocabularyLookup->getResult(0)).kind ==
                              TPSharding::Partial) {
    vocabularyOps.insert(vocabularyLookup);
    markVocabulary(cast<EmbeddingOp>(vocabularyLookup).getTable());
  }
  auto yield = cast<YieldOp>(layer.getBodyBlock().getTerminator());
  for (unsigned index : shardedResults) {
    auto head = yield.getValues()[index].getDefiningOp<LinearOp>();
    if (!head || getLinearParallelism(head) != LinearParallelism::Column)
      continue;
    vocabularyOps.insert(head);
    markVocabulary(head.getWeight());
    if (head.getBias())
      markVocabulary(head.getBias());
    for (Operation *user : head.getResult().getUsers())
      if (isa<CrossEntropyOp>(user))
        vocabularyOps.insert(user);
  }
  for (const TPParameterSharding &entry : parameters) {
    if (entry.dim < 0 || entry.vocabulary)
      continue;
    if (entry.segments.empty())
      weightSplits.push_back(shapeOf(ParamOp(entry.op).getResult())[entry.dim]);
    else
      llvm::append_range(weightSplits, entry.segments);
  }
  llvm::sort(weightSplits);
  weightSplits.erase(std::unique(weightSplits.begin(), weightSplits.end()),
                     weightSplits.end());
}

void TensorParallelAnalysis::visit(Operation *op) {
  llvm::TypeSwitch<Operation *>(op)
      .Case([&](ParamOp param) {
        parameters.push_back({param, -1, {}});
      })
      .Case<ConstantOp, RelativePositionBucketOp>([](Operation *) {})
      .Case([&](LinearOp linear) { visitLinear(linear); })
      .Case([&](EmbeddingOp lookup) { visitEmbedding(lookup); })
      .Case<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, SelectOp>(
          [&](Operation *elementwise) { visitElementwise(elementwise); })
      .Case<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp, TanhOp,
            ErfOp, SigmoidOp, ReluOp, SiluOp, GeluOp, CastOp>(
          [&](Operation *unary) {
            visitDimensionPreserving(unary, {}, /*passPartial=*/false);
          })
      .Case<LayerNormOp, RMSNormOp>([&](Operation *norm) {
        visitDimensionPreserving(norm, {rankOf(norm->getOperand(0)) - 1},
                                 /*passPartial=*/false);
      })
      .Case([&](SoftmaxOp softmax) {
        int64_t axis = static_cast<int64_t>(softmax.getAxis());
        if (axis < 0)
          axis += rankOf(softmax.getInput());
        visitDimensionPreserving(softmax, {axis}, /*passPartial=*/false);
      })
      .Case([&](RotaryOp rotary) {
        visitDimensionPreserving(rotary,
                                 {rankOf(rotary.getInput()) - 1,
                                  static_cast<int64_t>(rotary.getSeqAxis())},
                                 /*passPartial=*/false);
      })
      .Case([&](ReshapeOp reshape) { visitReshape(reshape); })
      .Case([&](TransposeOp transpose) {
        TPSharding in = getSharding(transpose.getInput());
        if (in.kind == TPSharding::Sharded) {
          ArrayRef<int64_t> perm = transpose.getPerm();
          int64_t position = llvm::find(perm, in.dim) - perm.begin();
          in = TPSharding::sharded(position);
        }
        setResult(transpose.getResult(), in);
      })
      .Case([&](SliceOp slice) {
        TPSharding in = getSharding(slice.getInput());
        if (in.kind == TPSharding::Sharded) {
          int64_t d = in.dim;
          bool whole = slice.getStarts()[d] == 0 &&
                       slice.getLimits()[d] == shapeOf(slice.getInput())[d] &&
                       slice.getStrides()[d] == 1;
          if (!whole) {
            require(slice.getInput(), TPSharding::replicated());
            in = TPSharding::replicated();
          }
        }
        setResult(slice.getResult(), in);
      })
      .Case([&](SplitOp split) { visitSplit(split); })
      .Case([&](ConcatOp concat) {
        int64_t axis = concat.getAxis();
        std::optional<int64_t> target;
        for (Value input : concat.getInputs()) {
          TPSharding s = getSharding(input);
          if (s.kind == TPSharding::Sharded && s.dim != axis && !target)
            target = s.dim;
        }
        TPSharding result = target ? TPSharding::sharded(*target)
                                   : TPSharding::replicated();
        for (Value input : concat.getInputs())
          require(input, result);
        setResult(concat.getResult(), result,
                  target ? shapeOf(concat.getResult())[*target] : 0);
      })
      .Case([&](BroadcastOp broadcast) {
        TPSharding in = getSharding(broadcast.getInput());
        if (in.kind == TPSharding::Sharded)
          in.dim += rankOf(broadcast.getResult()) - rankOf(broadcast.getInput());
        setResult(broadcast.getResult(), in);
      })
      .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>([&](Operation *reduce) {
        Value input = reduce->getOperand(0);
        auto axes = reduce->getAttrOfType<DenseI64ArrayAttr>("axes").asArrayRef();
        bool keepDims =
            reduce->getAttrOfType<BoolAttr>("keep_dims").getValue();
        bool linear = !isa<ReduceMaxOp>(reduce);
        TPSharding in = getSharding(input);
        if (in.kind == TPSharding::Partial && !linear) {
          require(input, TPSharding::replicated());
          in = TPSharding::replicated();
        }
        if (in.kind == TPSharding::Sharded) {
          if (llvm::is_contained(axes, in.dim)) {
            if (linear) {
              setResult(reduce->getResult(0), TPSharding::partial(),
                        shapeOf(input)[in.dim]);
              return;
            }
            require(input, TPSharding::replicated());
            in = TPSharding::replicated();
          } else if (!keepDims) {
            in.dim -= llvm::count_if(axes, [&](int64_t a) { return a < in.dim; });
          }
        }
        setResult(reduce->getResult(0), in,
                  in.kind == TPSharding::Sharded
                      ? shapeOf(reduce->getResult(0))[in.dim]
                      : 0);
      })
      .Case([&](MatmulOp matmul) { visitMatmul(matmul); })
      .Case([&](AttentionOp attention) { visitAttention(attention); })
      .Case([&](CrossEntropyOp loss) {
        TPSharding logits = getSharding(loss.getLogits());
        require(loss.getLabels(), TPSharding::replicated());
        int64_t last = rankOf(loss.getLogits()) - 1;
        if (logits == TPSharding::sharded(last)) {
          record(TPCommPoint::VocabParallelLoss, loss.getLogits());
          splitSizes[loss] = shapeOf(loss.getLogits())[last];
          return;
        }
        require(loss.getLogits(), TPSharding::replicated());
      })
      .Case([&](ExtractPatchesOp patches) {
        require(patches.getInput(), TPSharding::replicated());
      })
      .Case([&](YieldOp yield) { visitYield(yield); })
      .Default([&](Operation *other) {
        for (Value operand : other->getOperands())
          if (getSharding(operand).kind != TPSharding::Replicated)
            fail(other, "no tensor-parallel rule for this op on a sharded or "
                        "partial-sum operand");
      });
}

void TensorParallelAnalysis::visitDimensionPreserving(
    Operation *op, ArrayRef<int64_t> blocked, bool passPartial) {
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

void TensorParallelAnalysis::visitElementwise(Operation *op) {
  Value result = op->getResult(0);
  int64_t rank = rankOf(result);
  bool additive = isa<AddOp, SubOp>(op);
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

void TensorParallelAnalysis::visitLinear(LinearOp op) {
  Value input = op.getInput();
  TPSharding in = getSharding(input);
  int64_t last = rankOf(input) - 1;
  bool transposed = op.getTransposeWeight();
  auto shardWeight = [&](Value weight, int64_t dim,
                         ArrayRef<int64_t> segments = {}) {
    Value source = shardedWeightSource(weight, dim);
    if (TPParameterSharding *entry = parameterOf(source)) {
      entry->dim = dim;
      entry->segments.assign(segments.begin(), segments.end());
      return;
    }
    require(weight, TPSharding::sharded(dim));
  };
  if (in.kind == TPSharding::Sharded && in.dim == last) {
    // Row parallel: each rank multiplies its slice of the features; the
    // bias is added once, after the partial sums are reduced.
    linears[op] = LinearParallelism::Row;
    shardWeight(op.getWeight(), transposed ? 1 : 0);
    if (op.getBias())
      require(op.getBias(), TPSharding::replicated());
    setResult(op.getResult(), TPSharding::partial(), op.getInFeatures());
    return;
  }
  if (in.kind != TPSharding::Replicated)
    require(input, TPSharding::replicated());
  // Column parallel: each rank computes its slice of the outputs.
  linears[op] = LinearParallelism::Column;
  record(TPCommPoint::ReplicatedInput, input);
  shardWeight(op.getWeight(), transposed ? 0 : 1);
  if (op.getBias())
    shardWeight(op.getBias(), 0);
  int64_t resultLast = rankOf(op.getResult()) - 1;
  setResult(op.getResult(), TPSharding::sharded(resultLast),
            op.getOutFeatures());
}

void TensorParallelAnalysis::visitEmbedding(EmbeddingOp op) {
  require(op.getIndices(), TPSharding::replicated());
  if (op.getOperation() != vocabularyLookup ||
      !parameterOf(op.getTable())) {
    require(op.getTable(), TPSharding::replicated());
    return;
  }
  // Vocabulary parallel: each rank holds a block of rows and contributes
  // the rows of its block; the lookup is a partial sum.
  parameterOf(op.getTable())->dim = 0;
  setResult(op.getResult(), TPSharding::partial(),
            shapeOf(op.getTable())[0]);
}

void TensorParallelAnalysis::visitReshape(ReshapeOp op) {
  Value input = op.getInput();
  TPSharding in = getSharding(input);
  if (in.kind != TPSharding::Sharded) {
    setResult(op.getResult(), in);
    return;
  }
  ArrayRef<int64_t> inShape = shapeOf(input), outShape = shapeOf(op.getResult());
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
      divisors.push_back(outShape[e]);
    else if (outShape[e] > inShape[in.dim])
      divisors.push_back(inShape[in.dim]);
    setResult(op.getResult(), TPSharding::sharded(e));
    return;
  }
  require(input, TPSharding::replicated());
  setResult(op.getResult(), TPSharding::replicated());
}

void TensorParallelAnalysis::visitSplit(SplitOp op) {
  Value input = op.getInput();
  TPSharding in = getSharding(input);
  if (in.kind == TPSharding::Sharded &&
      in.dim == static_cast<int64_t>(op.getAxis())) {
    // A fused projection (GPT-2's c_attn) split into q, k and v: shard each
    // segment of the producer's weight separately.
    auto producer = input.getDefiningOp<LinearOp>();
    TPParameterSharding *weight = nullptr;
    if (producer &&
        getLinearParallelism(producer) == LinearParallelism::Column) {
      int64_t dim = producer.getTransposeWeight() ? 0 : 1;
      weight = parameterOf(shardedWeightSource(producer.getWeight(), dim));
    }
    if (weight) {
      weight->segments.assign(op.getSizes().begin(), op.getSizes().end());
      if (producer.getBias())
        if (TPParameterSharding *bias = parameterOf(producer.getBias()))
          bias->segments = weight->segments;
      for (Value result : op.getResults())
        setResult(result, in);
      return;
    }
    require(input, TPSharding::replicated());
    in = TPSharding::replicated();
  }
  for (Value result : op.getResults())
    setResult(result, in);
}

void TensorParallelAnalysis::visitMatmul(MatmulOp op) {
  Value lhs = op.getLhs(), rhs = op.getRhs();
  for (Value operand : {lhs, rhs})
    if (getSharding(operand).kind == TPSharding::Partial)
      require(operand, TPSharding::replicated());
  int64_t rank = rankOf(op.getResult());
  int64_t lhsRank = rankOf(lhs), rhsRank = rankOf(rhs);
  // Roles of the operands' last two dimensions.
  int64_t lhsM = op.getTransposeLhs() ? lhsRank - 1 : lhsRank - 2;
  int64_t lhsK = op.getTransposeLhs() ? lhsRank - 2 : lhsRank - 1;
  int64_t rhsK = op.getTransposeRhs() ? rhsRank - 1 : rhsRank - 2;
  int64_t rhsN = op.getTransposeRhs() ? rhsRank - 2 : rhsRank - 1;
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
  TPSharding l = getSharding(lhs), r = getSharding(rhs);
  auto finish = [&](TPSharding result, int64_t splitSize) {
    setResult(op.getResult(), result, splitSize);
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
      require(side, dim < 0 ? TPSharding::replicated()
                            : TPSharding::sharded(dim));
    }
    finish(TPSharding::sharded(batchDim), shapeOf(op.getResult())[batchDim]);
    return;
  }
  if (l == TPSharding::sharded(lhsM)) {
    require(rhs, TPSharding::replicated());
    finish(TPSharding::sharded(rank - 2), shapeOf(op.getResult())[rank - 2]);
    return;
  }
  if (r == TPSharding::sharded(rhsN)) {
    require(lhs, TPSharding::replicated());
    finish(TPSharding::sharded(rank - 1), shapeOf(op.getResult())[rank - 1]);
    return;
  }
  if (l == TPSharding::sharded(lhsK) || r == TPSharding::sharded(rhsK)) {
    require(lhs, TPSharding::sharded(lhsK));
    require(rhs, TPSharding::sharded(rhsK));
    finish(TPSharding::partial(), shapeOf(lhs)[lhsK]);
    return;
  }
  require(lhs, TPSharding::replicated());
  require(rhs, TPSharding::replicated());
  finish(TPSharding::replicated(), 0);
}

void TensorParallelAnalysis::visitAttention(AttentionOp op) {
  Value query = op.getQuery();
  if (getSharding(query).kind == TPSharding::Partial)
    require(query, TPSharding::replicated());
  if (getSharding(query) != TPSharding::sharded(1)) {
    for (Value operand : op.getOperands())
      require(operand, TPSharding::replicated());
    return;
  }
  // Heads split: every rank attends with its query heads and the key/value
  // heads they share.
  require(op.getKey(), TPSharding::sharded(1));
  require(op.getValue(), TPSharding::sharded(1));
  if (Value mask = op.getMask()) {
    int64_t headDim = 1 - (4 - rankOf(mask));
    bool perHead = headDim >= 0 && shapeOf(mask)[headDim] > 1;
    require(mask, perHead ? TPSharding::sharded(headDim)
                          : TPSharding::replicated());
  }
  divisors.push_back(shapeOf(query)[1]);
  divisors.push_back(shapeOf(op.getKey())[1]);
  setResult(op.getResult(), TPSharding::sharded(1), shapeOf(query)[1]);
}

void TensorParallelAnalysis::visitYield(YieldOp op) {
  for (auto [index, value] : llvm::enumerate(op.getValues())) {
    TPSharding s = getSharding(value);
    if (s.kind == TPSharding::Replicated)
      continue;
    Value output = layer.getResult(index);
    bool modelOutput =
        !output.use_empty() &&
        llvm::all_of(output.getUsers(),
                     [](Operation *user) { return isa<func::ReturnOp>(user); });
    if (s.kind == TPSharding::Sharded && s.dim == rankOf(value) - 1 &&
        modelOutput) {
      shardedResults.push_back(index);
      continue;
    }
    require(value, TPSharding::replicated());
  }
}

//===----------------------------------------------------------------------===//
// Sequence parallelism
//===----------------------------------------------------------------------===//

void TensorParallelAnalysis::checkSequenceParallel(Operation *op) {
  if (!sequenceFailure.empty())
    return;
  auto isSPValue = [&](Value v) { return isSequenceParallelValue(v); };
  bool touches = llvm::any_of(op->getOperands(), isSPValue) ||
                 llvm::any_of(op->getResults(), isSPValue);
  if (!touches)
    return;
  auto keepsLeadingDims = [&](Value in, Value out) {
    return rankOf(in) >= 2 && rankOf(out) >= 2 &&
           shapeOf(in).take_front(2) == shapeOf(out).take_front(2);
  };
  // Other operands of an elementwise op must reach the sequence split for
  // free: partial sums (reduce-scattered instead of all-reduced), or
  // replicated values that are sequence-parallel themselves, unbatched, or
  // of extent 1 in the sequence dimension.
  auto positionwiseOperands = [&]() {
    return llvm::all_of(op->getOperands(), [&](Value v) {
      TPSharding::Kind kind = getSharding(v).kind;
      if (kind == TPSharding::Partial)
        return true;
      if (kind != TPSharding::Replicated)
        return false;
      if (isSPValue(v) || !isBatched(v))
        return true;
      int64_t seqDim = 1 - (rankOf(op->getResult(0)) - rankOf(v));
      return seqDim < 0 || shapeOf(v)[seqDim] == 1;
    });
  };
  bool positionwise =
      llvm::TypeSwitch<Operation *, bool>(op)
          .Case<YieldOp, LinearOp, EmbeddingOp>([](Operation *) {
            return true;
          })
          .Case<NegOp, AbsOp, ExpOp, LogOp, SqrtOp, RsqrtOp, ReciprocalOp,
                TanhOp, ErfOp, SigmoidOp, ReluOp, SiluOp, GeluOp, CastOp>(
              [](Operation *) { return true; })
          .Case<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, SelectOp>(
              [&](Operation *) { return positionwiseOperands(); })
          .Case<LayerNormOp, RMSNormOp>(
              [&](Operation *norm) { return rankOf(norm->getOperand(0)) >= 3; })
          .Case([&](SoftmaxOp softmax) {
            int64_t rank = rankOf(softmax.getInput());
            int64_t axis = static_cast<int64_t>(softmax.getAxis());
            if (axis < 0)
              axis += rank;
            return rank >= 3 && axis >= 2;
          })
          .Case([&](RotaryOp rotary) { return rotary.getSeqAxis() == 1; })
          .Case([&](ReshapeOp reshape) {
            return keepsLeadingDims(reshape.getInput(), reshape.getResult());
          })
          .Case([&](TransposeOp transpose) {
            ArrayRef<int64_t> perm = transpose.getPerm();
            return perm.size() >= 2 && perm[0] == 0 && perm[1] == 1;
          })
          .Case([&](SliceOp slice) {
            return keepsLeadingDims(slice.getInput(), slice.getResult()) &&
                   slice.getStrides()[0] == 1 && slice.getStrides()[1] == 1 &&
                   slice.getStarts()[0] == 0 && slice.getStarts()[1] == 0;
          })
          .Case([&](SplitOp split) { return split.getAxis() >= 2; })
          .Case([&](ConcatOp concat) { return concat.getAxis() >= 2; })
          .Case([&](BroadcastOp broadcast) {
            return keepsLeadingDims(broadcast.getInput(), broadcast.getResult());
          })
          .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>([](Operation *reduce) {
            auto axes =
                reduce->getAttrOfType<DenseI64ArrayAttr>("axes").asArrayRef();
            return llvm::all_of(axes, [](int64_t a) { return a >= 2; });
          })
          .Default([](Operation *) { return false; });
  if (!positionwise)
    sequenceFailure = (op->getName().getStringRef() +
                       " acts across the sequence on a replicated activation")
                          .str();
}

//===----------------------------------------------------------------------===//
// Printing
//===----------------------------------------------------------------------===//

/// "galvatron.layer_norm 2x64x64xf32" or "argument 0 2x64x64xf32".
static void describe(llvm::raw_ostream &os, Value value) {
  if (auto argument = dyn_cast<BlockArgument>(value))
    os << "argument " << argument.getArgNumber();
  else if (auto param = value.getDefiningOp<ParamOp>())
    os << "@" << param.getName();
  else
    os << value.getDefiningOp()->getName().getStringRef();
  os << " ";
  if (auto type = dyn_cast<RankedTensorType>(value.getType())) {
    for (int64_t size : type.getShape())
      os << size << "x";
    os << type.getElementType();
  }
}

void TensorParallelAnalysis::print(llvm::raw_ostream &os) const {
  LayerOp layer = this->layer;
  os << "layer \"" << layer.getLayerName() << "\" ("
     << stringifyLayerKind(layer.getKind()) << "): ";
  if (!isShardable()) {
    os << "tp = 1 only: " << failure << "\n";
    return;
  }
  os << "shardable";
  if (!divisors.empty()) {
    os << ", heads";
    llvm::SmallVector<int64_t> unique(divisors);
    llvm::sort(unique);
    unique.erase(std::unique(unique.begin(), unique.end()), unique.end());
    for (int64_t size : unique)
      os << " " << size;
  }
  os << "; sequence parallel: ";
  if (supportsSequenceParallel())
    os << "yes\n";
  else
    os << "no (" << sequenceFailure << ")\n";
  for (Operation &op : layer.getBodyBlock()) {
    auto linear = dyn_cast<LinearOp>(op);
    if (!linear)
      continue;
    os << "  linear ";
    describe(os, linear.getWeight());
    switch (getLinearParallelism(linear)) {
    case LinearParallelism::Column:
      os << ": column\n";
      break;
    case LinearParallelism::Row:
      os << ": row\n";
      break;
    case LinearParallelism::Replicated:
      os << ": replicated\n";
      break;
    }
  }
  for (const TPParameterSharding &parameter : parameters) {
    ParamOp param = parameter.op;
    os << "  param @" << param.getName() << ": ";
    if (parameter.dim < 0) {
      os << "replicated\n";
      continue;
    }
    os << "split dim " << parameter.dim;
    if (parameter.vocabulary)
      os << " (vocabulary, padded to a multiple of the TP degree)";
    if (!parameter.segments.empty()) {
      os << " in segments";
      for (int64_t size : parameter.segments)
        os << " " << size;
    }
    os << "\n";
  }
  for (const TPCommPoint &point : commPoints) {
    os << "  comm " << stringifyTPCommKind(point.kind) << " on ";
    describe(os, point.value);
    if (isSequenceShaped(point.value))
      os << " [sequence]";
    if ((point.kind == TPCommPoint::ReplicatedInput ||
         point.kind == TPCommPoint::ScatterReplicated) &&
        !needsGradient(point.value))
      os << " [no gradient]";
    os << "\n";
  }
  for (unsigned index : shardedResults)
    os << "  result " << index << ": vocabulary-parallel output\n";
}

llvm::DenseMap<StringAttr, unsigned> mlir::galvatron::countParameterReaders(
    ArrayRef<TensorParallelAnalysis> analyses) {
  llvm::DenseMap<StringAttr, unsigned> readers;
  for (const TensorParallelAnalysis &analysis : analyses) {
    llvm::DenseSet<StringAttr> names;
    analysis.getLayer().walk(
        [&](ParamOp read) { names.insert(read.getNameAttr().getAttr()); });
    for (StringAttr name : names)
      ++readers[name];
  }
  return readers;
}
