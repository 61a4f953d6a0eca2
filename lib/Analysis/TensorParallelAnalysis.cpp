//===- TensorParallelAnalysis.cpp - Megatron-style TP of a layer ----------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Dialect/Galvatron/IR/TensorShapes.h"

#include "llvm/ADT/STLExtras.h"
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

using mlir::galvatron::tensors::rankOf;
using mlir::galvatron::tensors::shapeOf;

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
TensorParallelAnalysis::getLinearParallelism(Operation *linear) const {
  auto it = linears.find(linear);
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
  if (auto param = dyn_cast<ParamOp>(op)) {
    parameters.push_back({param, -1, {}});
    return;
  }
  if (auto yield = dyn_cast<YieldOp>(op)) {
    visitYield(yield);
    return;
  }
  if (auto rule = dyn_cast<TensorParallelOpInterface>(op)) {
    rule.propagateTensorParallel(*this);
    return;
  }
  for (Value operand : op->getOperands())
    if (getSharding(operand).kind != TPSharding::Replicated)
      fail(op, "no tensor-parallel rule for this op on a sharded or "
               "partial-sum operand");
}

void TensorParallelAnalysis::shardWeight(Value weight, int64_t dim,
                                         ArrayRef<int64_t> segments) {
  Value source = shardedWeightSource(weight, dim);
  if (TPParameterSharding *entry = parameterOf(source)) {
    entry->dim = dim;
    entry->segments.assign(segments.begin(), segments.end());
    return;
  }
  require(weight, TPSharding::sharded(dim));
}

bool TensorParallelAnalysis::splitProducerSegments(
    Value value, ArrayRef<int64_t> segments) {
  auto producer = value.getDefiningOp<LinearOp>();
  if (!producer || getLinearParallelism(producer) != LinearParallelism::Column)
    return false;
  int64_t dim = producer.getTransposeWeight() ? 0 : 1;
  TPParameterSharding *weight =
      parameterOf(shardedWeightSource(producer.getWeight(), dim));
  if (!weight)
    return false;
  weight->segments.assign(segments.begin(), segments.end());
  if (producer.getBias())
    if (TPParameterSharding *bias = parameterOf(producer.getBias()))
      bias->segments = weight->segments;
  return true;
}

void TensorParallelAnalysis::recordVocabParallelLoss(Operation *loss,
                                                     Value logits) {
  record(TPCommPoint::VocabParallelLoss, logits);
  splitSizes[loss] = shapeOf(logits).back();
}

bool TensorParallelAnalysis::shardVocabulary(Operation *lookup, Value table) {
  TPParameterSharding *entry = parameterOf(table);
  if (lookup != vocabularyLookup || !entry)
    return false;
  entry->dim = 0;
  return true;
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
  auto rule = dyn_cast<TensorParallelOpInterface>(op);
  bool positionwise = isa<YieldOp>(op) || (rule && rule.isPositionwise(*this));
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
