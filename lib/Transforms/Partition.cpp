//===- Partition.cpp - SPMD partitioning of the forward model -------------===//
//
// Rewrites each layer of the forward function into the program every rank
// of its pipeline stage runs: data parallelism slices the batch and marks
// parameter reads replicated (or ZeRO-3 sharded) over the DP group, tensor
// parallelism splits weights and activations as TensorParallelAnalysis
// decided and inserts Megatron's f and g. Gradients come later, from the
// collectives' rules.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/Training.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_PARTITION
#include "galvatron/Transforms/Passes.h.inc"
} // namespace mlir::galvatron

using namespace mlir;
using namespace mlir::galvatron;

namespace {

/// Where a layer's replicas sit: its stage's ranks arranged as tp x dp.
struct DeviceMapping {
  int64_t stageBase = 0;
  int64_t tp = 1, dp = 1;
  bool consecutive = true;

  /// World rank of (tp index, dp index).
  int64_t rankOf(int64_t tpIndex, int64_t dpIndex) const {
    return stageBase + (consecutive ? dpIndex * tp + tpIndex
                                    : tpIndex * dp + dpIndex);
  }
  /// The tensor-parallel groups (one per DP index) or the data-parallel
  /// groups (one per TP index), members in index order.
  ArrayAttr groups(MLIRContext *context, bool tensorParallel) const {
    SmallVector<SmallVector<int64_t>> list;
    int64_t outer = tensorParallel ? dp : tp, inner = tensorParallel ? tp : dp;
    for (int64_t o = 0; o < outer; ++o) {
      SmallVector<int64_t> &group = list.emplace_back();
      for (int64_t i = 0; i < inner; ++i)
        group.push_back(tensorParallel ? rankOf(i, o) : rankOf(o, i));
    }
    return buildDeviceGroups(context, list);
  }
  /// One group of all the stage's ranks (the data-parallel group of weights
  /// under Ulysses).
  ArrayAttr stageGroup(MLIRContext *context) const {
    SmallVector<SmallVector<int64_t>> list(1);
    for (int64_t rank = 0; rank < tp * dp; ++rank)
      list[0].push_back(stageBase + rank);
    return buildDeviceGroups(context, list);
  }
  /// The same arrangement in another stage.
  DeviceMapping inStage(int64_t base) const {
    DeviceMapping moved = *this;
    moved.stageBase = base;
    return moved;
  }
  /// Whether a batch split over these DP groups is the one over `other`'s.
  bool sameBatchSplit(const DeviceMapping &other) const {
    if (dp != other.dp)
      return false;
    if (dp == 1)
      return true;
    return tp == other.tp && (consecutive == other.consecutive || tp == 1);
  }
};

RankedTensorType withShape(Type type, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape,
                               cast<RankedTensorType>(type).getElementType());
}

/// The gradient sync each read of a data-parallel weight asks the training
/// step for; a weight gets it when every layer reading it asks for the
/// same (a tied embedding and LM head of one DP arrangement), and keeps
/// autodiff's per-micro-batch sync otherwise.
class SyncRequests {
public:
  void add(StringAttr name, const DataParallelSync &sync) {
    Request &request =
        requests.try_emplace(name, Request{sync, 0, true}).first->second;
    request.agree &= request.sync.groups == sync.groups &&
                     request.sync.zeroStage == sync.zeroStage &&
                     request.sync.dim == sync.dim;
    ++request.reads;
  }
  /// Marks the weights whose readers all agree.
  void apply(ModuleOp module,
             const llvm::DenseMap<StringAttr, unsigned> &readers) const {
    for (auto &[name, request] : requests)
      if (request.agree && request.reads == readers.lookup(name))
        module.lookupSymbol(name)->setAttr(
            DataParallelSync::getAttrName(),
            request.sync.toAttr(module.getContext()));
  }

private:
  struct Request {
    DataParallelSync sync;
    unsigned reads;
    bool agree;
  };
  llvm::MapVector<StringAttr, Request> requests;
};

/// Partitions one layer.
class LayerPartitioner {
public:
  LayerPartitioner(LayerOp layer, const TensorParallelAnalysis &analysis,
                   DeviceMapping mapping, StrategyAttr strategy,
                   const llvm::DenseMap<Value, DeviceMapping> &layouts,
                   llvm::DenseMap<StringAttr, ParameterOp> &shardedParameters,
                   const llvm::DenseMap<StringAttr, unsigned> &readers,
                   SyncRequests &syncRequests,
                   const llvm::DenseMap<StringAttr, ArrayAttr> &sharedSplits,
                   int64_t vocabDivisor, const UlyssesAnalysis *ulysses)
      : layer(layer), analysis(analysis), ulysses(ulysses), mapping(mapping),
        dpType(strategy.getDpType()), sequenceParallel(strategy.getSp()),
        layouts(layouts), shardedParameters(shardedParameters),
        readers(readers), syncRequests(syncRequests),
        sharedSplits(sharedSplits), vocabDivisor(vocabDivisor),
        context(layer.getContext()),
        tpGroups(mapping.groups(context, /*tensorParallel=*/true)),
        dpGroups(mapping.groups(context, /*tensorParallel=*/false)) {}

  LogicalResult run();

private:
  TPSharding shardingOf(Value value) const {
    auto it = overrides.find(value);
    if (it != overrides.end())
      return it->second;
    if (sequenceParts.contains(value))
      return TPSharding::sharded(1);
    if (ulysses) {
      UlyssesLayout layout = ulysses->getLayout(value);
      return layout.isSplit() ? TPSharding::sharded(layout.dim)
                              : TPSharding::replicated();
    }
    return tensorParallel ? analysis.getSharding(value)
                          : TPSharding::replicated();
  }
  LogicalResult chooseTensorParallelism();
  LogicalResult convertInputs();
  LogicalResult convertOperands(Operation *op);
  /// Inserts the conversions the Ulysses analysis asks for on `op`'s
  /// operands.
  void convertUlyssesOperands(Operation *op);
  /// `value` (in layout `from`) in layout `to`: an all-to-all between
  /// sequence and head splits, a gather, or a local slice; made once.
  Value convertedUlysses(Value value, UlyssesLayout from, UlyssesLayout to);
  LogicalResult retypeResults(Operation *op);
  /// Records where the part of `op`'s masked tensor lies in `whole`, that
  /// tensor before partitioning, so that every rank draws the serial
  /// run's dropout mask.
  void recordMaskShard(DropoutMaskOpInterface op, ArrayRef<int64_t> whole);
  LogicalResult partitionParameter(ParamOp read);
  void reduceRowParallel(LinearOp linear);
  /// The whole of `value` (all-reduced or all-gathered over the TP group),
  /// or its TP part along `dim` / its Megatron f marker; made once per
  /// value, right after its definition.
  Value converted(Value value, int kind, int64_t dim = -1);
  SmallVector<int64_t> partShape(Value value) const;
  /// The size `value`'s vocabulary dimension `dim` is split at: padded.
  int64_t splitSize(Value value, int64_t dim) const;

  LayerOp layer;
  const TensorParallelAnalysis &analysis;
  /// Under Ulysses, how it lays out the layer's values; else null.
  const UlyssesAnalysis *ulysses;
  DeviceMapping mapping;
  DataParallelType dpType;
  bool sequenceParallel;
  const llvm::DenseMap<Value, DeviceMapping> &layouts;
  llvm::DenseMap<StringAttr, ParameterOp> &shardedParameters;
  const llvm::DenseMap<StringAttr, unsigned> &readers;
  SyncRequests &syncRequests;
  /// Weights several layers read that every reader splits alike (a tied
  /// embedding and LM head), with the TP groups of all readers.
  const llvm::DenseMap<StringAttr, ArrayAttr> &sharedSplits;
  /// A vocabulary is padded to a multiple of vocabDivisor x tp.
  int64_t vocabDivisor;
  MLIRContext *context;
  ArrayAttr tpGroups, dpGroups;
  bool tensorParallel = false;
  llvm::DenseMap<Value, TPSharding> overrides;
  /// Under sequence parallelism: the replicated [batch, sequence, ...]
  /// values, split along the sequence instead.
  llvm::DenseSet<Value> sequenceValues;
  /// Values holding this rank's part of the sequence (the above and the
  /// conversions that make them).
  llvm::DenseSet<Value> sequenceParts;
  llvm::DenseMap<std::pair<Value, int64_t>, Value> conversions;
  llvm::DenseMap<std::pair<Value, std::pair<int64_t, int64_t>>, Value>
      ulyssesConversions;
  llvm::DenseSet<Operation *> inserted;
  /// Vocabulary-split values whose part is padded: their size before.
  llvm::DenseMap<Value, int64_t> paddedFrom;
  /// The vocabulary's size when the layer pads it, else 0.
  int64_t paddedVocabulary = 0;
};

enum ConversionKind {
  Reduce,
  Gather,
  Scatter,
  MarkReplicated,
  /// Sequence parallelism's f and g: all-gather along the sequence (the
  /// gradient reduce-scattered), reduce-scatter of partial sums.
  GatherSequence,
  ReduceScatterSequence
};

LogicalResult LayerPartitioner::chooseTensorParallelism() {
  if (mapping.tp == 1)
    return success();
  std::string reason;
  if (ulysses) {
    // Weights stay whole; the inputs split along the sequence.
    if (!ulysses->supportsDegree(mapping.tp, &reason))
      return layer.emitOpError()
             << "cannot run Ulysses on " << mapping.tp << " ranks: " << reason;
    for (BlockArgument argument : layer.getBodyBlock().getArguments())
      if (ulysses->getLayout(argument).isSplit())
        sequenceValues.insert(argument);
    return success();
  }
  if (!analysis.supportsDegree(mapping.tp, &reason))
    return layer.emitOpError()
           << "cannot run with tp=" << mapping.tp << ": " << reason;
  // A weight other layers read split differently (or not at all) keeps the
  // layer whole on every TP rank: exact, if not memory-saving.
  for (const TPParameterSharding &entry : analysis.getParameters()) {
    StringAttr name = ParamOp(entry.op).getNameAttr().getAttr();
    if (entry.dim >= 0 && readers.lookup(name) > 1 &&
        !sharedSplits.count(name))
      return success();
  }
  for (const TPParameterSharding &entry : analysis.getParameters())
    if (entry.dim >= 0)
      for (Operation *user : ParamOp(entry.op)->getUsers())
        if (!isa<LinearOp, EmbeddingOp>(user))
          return user->emitOpError() << "reads a tensor-parallel weight; "
                                        "only linear layers and lookups may";
  tensorParallel = true;
  // A vocabulary-parallel lookup needs every position's id: such a layer
  // keeps whole sequences (its result is replicated, which a
  // sequence-parallel consumer slices).
  bool vocabularyLookup = llvm::any_of(
      layer.getBodyBlock().getOps<EmbeddingOp>(), [&](EmbeddingOp lookup) {
        return analysis.getSharding(lookup.getResult()).kind ==
               TPSharding::Partial;
      });
  if (sequenceParallel && !vocabularyLookup &&
      analysis.supportsSequenceParallel())
    layer.getBodyBlock().walk([&](Operation *op) {
      // Results too: a dropout's mask has no user until autodiff.
      for (Value value : llvm::concat<Value>(op->getOperands(),
                                             op->getResults()))
        if (analysis.isSequenceParallelValue(value))
          sequenceParts.insert(value);
    });
  sequenceValues = sequenceParts;
  return success();
}

int64_t LayerPartitioner::splitSize(Value value, int64_t dim) const {
  int64_t size = cast<RankedTensorType>(value.getType()).getDimSize(dim);
  if (tensorParallel && !overrides.count(value) &&
      analysis.isVocabularyValue(value) &&
      analysis.getSharding(value).dim == dim)
    return padVocabulary(size, mapping.tp, vocabDivisor);
  return size;
}

SmallVector<int64_t> LayerPartitioner::partShape(Value value) const {
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  TPSharding sharding = shardingOf(value);
  if (sharding.kind == TPSharding::Sharded)
    shape[sharding.dim] = splitSize(value, sharding.dim) / mapping.tp;
  return shape;
}

Value LayerPartitioner::converted(Value value, int kind, int64_t dim) {
  auto key = std::make_pair(value, int64_t(kind) * 64 + dim + 1);
  if (Value done = conversions.lookup(key))
    return done;
  OpBuilder builder(context);
  builder.setInsertionPointAfterValue(value);
  Location loc = value.getLoc();
  auto type = cast<RankedTensorType>(value.getType());
  Value result;
  switch (kind) {
  case Reduce:
    result = AllReduceOp::create(builder, loc, value, CollectiveReduction::sum,
                                 tpGroups);
    break;
  case Gather: {
    SmallVector<int64_t> whole(type.getShape());
    whole[dim] *= mapping.tp;
    result = AllGatherOp::create(builder, loc, withShape(type, whole), value,
                                 dim, tpGroups, /*reduce_grad=*/false);
    // A padded vocabulary's padding is cut off again.
    if (int64_t valid = paddedFrom.lookup(value); valid && valid < whole[dim]) {
      inserted.insert(result.getDefiningOp());
      SmallVector<int64_t> starts(whole.size(), 0), limits(whole),
          strides(whole.size(), 1);
      limits[dim] = valid;
      result = SliceOp::create(builder, loc, result, starts, limits, strides);
    }
    break;
  }
  case Scatter: {
    SmallVector<int64_t> part(type.getShape());
    part[dim] /= mapping.tp;
    result = ShardOp::create(builder, loc, withShape(type, part), value, dim,
                             tpGroups);
    break;
  }
  case MarkReplicated:
    result = ReplicateOp::create(builder, loc, value, tpGroups);
    break;
  case GatherSequence: {
    SmallVector<int64_t> whole(type.getShape());
    whole[1] *= mapping.tp;
    result = AllGatherOp::create(builder, loc, withShape(type, whole), value,
                                 1, tpGroups, /*reduce_grad=*/true);
    break;
  }
  case ReduceScatterSequence: {
    SmallVector<int64_t> part(type.getShape());
    part[1] /= mapping.tp;
    result = ReduceScatterOp::create(builder, loc, withShape(type, part),
                                     value, CollectiveReduction::sum, 1,
                                     tpGroups);
    break;
  }
  }
  inserted.insert(result.getDefiningOp());
  if (kind == ReduceScatterSequence)
    sequenceParts.insert(result);
  else
    overrides[result] = kind == Scatter ? TPSharding::sharded(dim)
                                        : TPSharding::replicated();
  conversions[key] = result;
  return result;
}

/// Batched inputs take the layer's rows; a batch split another way is
/// gathered first. Values crossing stages arrive at the same local rank,
/// so the producer's arrangement is read in this layer's stage.
LogicalResult LayerPartitioner::convertInputs() {
  Block &body = layer.getBodyBlock();
  OpBuilder builder = OpBuilder::atBlockBegin(&body);
  for (auto [argument, operand] :
       llvm::zip(body.getArguments(), layer.getInputs())) {
    argument.setType(operand.getType());
    DeviceMapping from =
        layouts.lookup(operand).inStage(mapping.stageBase);
    bool batched = analysis.isBatched(argument);
    DeviceMapping want = batched ? mapping : DeviceMapping{};
    if (!batched)
      want.stageBase = mapping.stageBase;
    bool convertBatch = !from.sameBatchSplit(want);
    if (!convertBatch && !sequenceValues.contains(argument))
      continue;
    SmallVector<OpOperand *> uses;
    for (OpOperand &use : argument.getUses())
      uses.push_back(&use);
    Value value = argument;
    auto type = cast<RankedTensorType>(argument.getType());
    SmallVector<int64_t> shape(type.getShape());
    if (convertBatch && from.dp > 1) {
      shape[0] *= from.dp;
      value = AllGatherOp::create(builder, layer.getLoc(),
                                  withShape(type, shape), value, 0,
                                  from.groups(context, false),
                                  /*reduce_grad=*/false);
      inserted.insert(value.getDefiningOp());
    }
    if (convertBatch && want.dp > 1) {
      if (shape.empty() || shape[0] % want.dp != 0)
        return layer.emitOpError()
               << "input #" << argument.getArgNumber() << " of batch "
               << (shape.empty() ? 0 : shape[0])
               << " does not split among dp=" << want.dp << " replicas";
      shape[0] /= want.dp;
      value = ShardOp::create(builder, layer.getLoc(), withShape(type, shape),
                              value, 0, dpGroups);
      inserted.insert(value.getDefiningOp());
    }
    if (sequenceValues.contains(argument)) {
      // The layer's part of the sequence.
      if (shape.size() < 2 || shape[1] % mapping.tp != 0)
        return layer.emitOpError()
               << "input #" << argument.getArgNumber()
               << " has a sequence that does not split among tp="
               << mapping.tp << " ranks";
      shape[1] /= mapping.tp;
      value = ShardOp::create(builder, layer.getLoc(), withShape(type, shape),
                              value, 1, tpGroups);
      inserted.insert(value.getDefiningOp());
      sequenceParts.insert(value);
    }
    if (value == argument)
      continue;
    for (OpOperand *use : uses)
      use->set(value);
  }
  return success();
}

static bool isElementwiseBinary(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, SelectOp>(op);
}

/// Brings each operand into the state `op` consumes it in.
void LayerPartitioner::convertUlyssesOperands(Operation *op) {
  for (const UlyssesConversion &conversion : ulysses->getConversions())
    if (conversion.user == op)
      op->setOperand(conversion.operand,
                     convertedUlysses(op->getOperand(conversion.operand),
                                      conversion.from, conversion.to));
}

Value LayerPartitioner::convertedUlysses(Value value, UlyssesLayout from,
                                         UlyssesLayout to) {
  int64_t encoded = int64_t(to.kind) * 4096 + (to.dim + 1) * 64 +
                    (to.sequenceDim + 1);
  auto key = std::make_pair(value, std::make_pair(encoded, int64_t(0)));
  if (Value done = ulyssesConversions.lookup(key))
    return done;
  OpBuilder builder(context);
  builder.setInsertionPointAfterValue(value);
  Location loc = value.getLoc();
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  Value result;
  if (from.isSplit() && to.isSplit()) {
    // Sequence <-> heads: split the target's dimension, gather the other.
    int64_t split = to.dim, concat = from.dim;
    shape[split] /= mapping.tp;
    shape[concat] *= mapping.tp;
    result = AllToAllOp::create(builder, loc, withShape(type, shape), value,
                                split, concat, tpGroups);
  } else if (from.isSplit()) {
    shape[from.dim] *= mapping.tp;
    result = AllGatherOp::create(builder, loc, withShape(type, shape), value,
                                 from.dim, tpGroups, /*reduce_grad=*/false);
  } else {
    shape[to.dim] /= mapping.tp;
    result = ShardOp::create(builder, loc, withShape(type, shape), value,
                             to.dim, tpGroups);
  }
  inserted.insert(result.getDefiningOp());
  overrides[result] = to.isSplit() ? TPSharding::sharded(to.dim)
                                   : TPSharding::replicated();
  ulyssesConversions[key] = result;
  return result;
}

LogicalResult LayerPartitioner::convertOperands(Operation *op) {
  if (ulysses) {
    convertUlyssesOperands(op);
    return success();
  }
  if (!tensorParallel)
    return success();
  auto yield = dyn_cast<YieldOp>(op);
  TPSharding result = op->getNumResults() ? shardingOf(op->getResult(0))
                                          : TPSharding::replicated();
  auto linear = dyn_cast<LinearOp>(op);
  for (OpOperand &operand : op->getOpOperands()) {
    Value value = operand.get();
    // Weights are split where they are read.
    if (linear && operand.getOperandNumber() > 0)
      continue;
    TPSharding state = shardingOf(value);
    switch (state.kind) {
    case TPSharding::Partial: {
      bool sumOfPartials = isa<AddOp, SubOp, ReshapeOp, TransposeOp,
                               BroadcastOp>(op) &&
                           result.kind == TPSharding::Partial;
      if (!sumOfPartials)
        operand.set(converted(value, Reduce));
      break;
    }
    case TPSharding::Sharded: {
      if (sequenceParts.contains(value) && linear &&
          analysis.getLinearParallelism(linear) == LinearParallelism::Column) {
        // Sequence parallelism's f: the whole sequence for column-parallel
        // work; the members' gradients are summed and scattered back.
        operand.set(converted(value, GatherSequence));
        break;
      }
      bool keeps = !yield && result.kind != TPSharding::Replicated;
      if (keeps && isElementwiseBinary(op) &&
          result.kind == TPSharding::Sharded) {
        int64_t rankDiff =
            cast<RankedTensorType>(op->getResult(0).getType()).getRank() -
            cast<RankedTensorType>(value.getType()).getRank();
        keeps = state.dim + rankDiff == result.dim;
      }
      if (!keeps)
        operand.set(converted(value, Gather, state.dim));
      break;
    }
    case TPSharding::Replicated: {
      if (linear && linear.getInput() == value &&
          analysis.getLinearParallelism(linear) == LinearParallelism::Column) {
        operand.set(converted(value, MarkReplicated));
        break;
      }

      if (result.kind != TPSharding::Sharded ||
          !(isElementwiseBinary(op) || isa<AttentionOp>(op)))
        break;
      auto type = cast<RankedTensorType>(value.getType());
      int64_t dim =
          result.dim -
          (cast<RankedTensorType>(op->getResult(0).getType()).getRank() -
           type.getRank());
      if (dim >= 0 && type.getDimSize(dim) > 1)
        operand.set(converted(value, Scatter, dim));
      break;
    }
    }
  }
  return success();
}

/// Results take their part's shape: rows of the batch, TP parts.
LogicalResult LayerPartitioner::retypeResults(Operation *op) {
  for (Value result : op->getResults()) {
    auto type = dyn_cast<RankedTensorType>(result.getType());
    if (!type)
      continue;
    SmallVector<int64_t> shape = partShape(result);
    if (mapping.dp > 1 && analysis.isBatched(result)) {
      if (shape.empty() || shape[0] % mapping.dp != 0)
        return op->emitOpError()
               << "result of batch " << (shape.empty() ? 0 : shape[0])
               << " does not split among dp=" << mapping.dp << " replicas";
      shape[0] /= mapping.dp;
    }
    TPSharding sharding = shardingOf(result);
    if (sharding.kind == TPSharding::Sharded) {
      int64_t size = type.getDimSize(sharding.dim);
      int64_t padded = splitSize(result, sharding.dim);
      if (padded % mapping.tp != 0)
        return op->emitOpError()
               << "dimension " << sharding.dim << " of " << type
               << " does not split among tp=" << mapping.tp << " ranks";
      if (padded != size)
        paddedFrom[result] = size;
    }
    result.setType(withShape(type, shape));
  }
  // Attributes that spell sizes.
  if (auto split = dyn_cast<SplitOp>(op)) {
    TPSharding in = shardingOf(split.getInput());
    if (in.kind == TPSharding::Sharded && in.dim == int64_t(split.getAxis())) {
      SmallVector<int64_t> sizes;
      for (int64_t size : split.getSizes())
        sizes.push_back(size / mapping.tp);
      split.setSizes(sizes);
    }
  }
  if (auto slice = dyn_cast<SliceOp>(op)) {
    auto in = cast<RankedTensorType>(slice.getInput().getType());
    auto out = cast<RankedTensorType>(slice.getResult().getType());
    SmallVector<int64_t> limits(slice.getLimits());
    for (int64_t d = 0; d < in.getRank(); ++d) {
      if (limits[d] - slice.getStarts()[d] == out.getDimSize(d) ||
          slice.getStrides()[d] != 1)
        continue;
      // A split dimension is taken whole (the analysis gathers otherwise).
      if (slice.getStarts()[d] != 0)
        return op->emitOpError() << "slices split dimension " << d;
      limits[d] = in.getDimSize(d);
    }
    slice.setLimits(limits);
  }
  return success();
}

void LayerPartitioner::recordMaskShard(DropoutMaskOpInterface op,
                                       ArrayRef<int64_t> whole) {
  ParameterShard shard;
  shard.fullShape.assign(whole.begin(), whole.end());
  Value result = op->getResult(0);
  if (mapping.dp > 1 && analysis.isBatched(result))
    shard.splits.push_back({0, dpGroups});
  TPSharding sharding = shardingOf(result);
  if (sharding.kind == TPSharding::Sharded)
    shard.splits.push_back({sharding.dim, tpGroups});
  if (!shard.splits.empty())
    op.setMaskShard(shard.toAttr(context));
}

/// Splits the weight per the analysis (and ZeRO-3), and marks the read for
/// data parallelism.
LogicalResult LayerPartitioner::partitionParameter(ParamOp read) {
  auto module = layer->getParentOfType<ModuleOp>();
  StringAttr name = read.getNameAttr().getAttr();
  auto declaration = module.lookupSymbol<ParameterOp>(name);
  SmallVector<int64_t> original(declaration.getTensorType().getShape());
  SmallVector<int64_t> source = original;
  // A tied weight: an earlier reader split it as this one does.
  ArrayAttr splitGroups = sharedSplits.lookup(name);
  ParameterShard shard;
  if (shardedParameters.count(name)) {
    if (!splitGroups)
      return read.emitOpError()
             << "reads a partitioned parameter a second time";
    ParameterShard earlier = *getParameterShard(declaration);
    original = earlier.fullShape;
    source = earlier.sourceShape.empty() ? earlier.fullShape
                                         : earlier.sourceShape;
    shard.unpaddedShape = earlier.unpaddedShape;
  }
  if (!splitGroups)
    splitGroups = tpGroups;
  // The shape the layer reads: the TP part.
  SmallVector<int64_t> tpPart(original);
  shard.fullShape = original;
  if (source != original)
    shard.sourceShape = source;
  int64_t refinedDim = -1, segments = 0;
  bool tensorSplit = false;
  if (tensorParallel) {
    for (const TPParameterSharding &entry : analysis.getParameters()) {
      if (ParamOp(entry.op) != read || entry.dim < 0)
        continue;
      int64_t dim = entry.dim;
      if (!entry.segments.empty()) {
        segments = entry.segments.size();
        if (!llvm::all_equal(entry.segments))
          return read.emitOpError()
                 << "is a fused weight with unequal segments; tensor "
                    "parallelism splits only equal ones";
        shard.fullShape[dim] = entry.segments[0];
        shard.fullShape.insert(shard.fullShape.begin() + dim, segments);
        shard.sourceShape = source;
        refinedDim = dim;
        dim += 1;
      }
      if (entry.vocabulary) {
        // Padded as Megatron pads it; the rows past the source tensor's are
        // zero and not part of the model.
        int64_t padded =
            padVocabulary(shard.fullShape[dim], mapping.tp, vocabDivisor);
        if (padded != shard.fullShape[dim]) {
          shard.unpaddedShape = shard.fullShape;
          shard.fullShape[dim] = padded;
          tpPart[entry.dim] = padded;
        }
        if (!shard.unpaddedShape.empty())
          paddedVocabulary = shard.unpaddedShape[dim];
      }
      if (shard.fullShape[dim] % mapping.tp != 0)
        return read.emitOpError() << "dimension " << entry.dim << " of "
                                  << read.getType() << " does not split among tp="
                                  << mapping.tp << " ranks";
      shard.splits.push_back({dim, splitGroups});
      tpPart[entry.dim] /= mapping.tp;
      tensorSplit = true;
    }
  }
  SmallVector<int64_t> stored = shard.partShape();
  SmallVector<int64_t> tpStored = stored;
  // ZeRO shards the TP part along its first dimension divisible by dp; a
  // weight without one gets DDP. ZeRO-3 stores 1/dp of weights no other
  // layer reads. ZeRO-1/2 store the weight whole and, like DDP, leave the
  // gradient sync (and the sharding of the optimizer state and, for stage
  // 2, the gradient) to the training step, which syncs once per step; a
  // weight several pipeline stages read keeps autodiff's sync in every
  // micro-batch's backward.
  // The ranks holding the weight whole that see different data: the DP
  // replicas, and under Ulysses every rank of the stage when the weight
  // works on sequence parts (each has the gradient of its part).
  ArrayAttr replicas = dpGroups;
  int64_t replicaCount = mapping.dp;
  if (ulysses && mapping.tp > 1 && ulysses->isUsedOnParts(read.getResult())) {
    replicas = mapping.stageGroup(context);
    replicaCount = mapping.tp * mapping.dp;
  }
  std::optional<int64_t> zeroDim;
  if (replicaCount > 1)
    if (auto dim = llvm::find_if(
            stored, [&](int64_t size) { return size % replicaCount == 0; });
        dim != stored.end())
      zeroDim = dim - stored.begin();
  bool zero3 = dpType == DataParallelType::zero3 && zeroDim &&
               readers.lookup(name) == 1;
  if (zero3) {
    shard.splits.push_back({*zeroDim, replicas});
    stored = shard.partShape();
  } else if (replicaCount > 1 &&
             !declaration->hasAttr(kPipelineStagesAttrName)) {
    DataParallelSync sync{replicas, 0, 0};
    if (zeroDim && (dpType == DataParallelType::zero1 ||
                    dpType == DataParallelType::zero2)) {
      sync.zeroStage = dpType == DataParallelType::zero1 ? 1 : 2;
      sync.dim = *zeroDim;
    }
    syncRequests.add(name, sync);
  }
  if (!shard.splits.empty()) {
    declaration.setTypeAttr(TypeAttr::get(withShape(read.getType(), stored)));
    declaration->setAttr(ParameterShard::getAttrName(), shard.toAttr(context));
    shardedParameters[name] = declaration;
  }
  read.getResult().setType(declaration.getTensorType());

  OpBuilder builder(context);
  builder.setInsertionPointAfter(read);
  Value value = read.getResult();
  SmallVector<Operation *> users(value.getUsers());
  if (zero3) {
    value = AllGatherOp::create(builder, read.getLoc(),
                                withShape(value.getType(), tpStored), value,
                                shard.splits.back().dim, replicas,
                                /*reduce_grad=*/true);
    inserted.insert(value.getDefiningOp());
  } else if (replicaCount > 1) {
    value = ReplicateOp::create(builder, read.getLoc(), value, replicas);
    inserted.insert(value.getDefiningOp());
  }
  // Under sequence parallelism a whole weight applied to this rank's part
  // of the sequence (norms, a row-parallel bias) gets a part of its
  // gradient: summed over the TP group as well.
  bool onSequenceParts =
      !ulysses && !tensorSplit && llvm::any_of(users, [&](Operation *user) {
        auto linear = dyn_cast<LinearOp>(user);
        if (linear && linear.getBias() == read.getResult())
          return !sequenceValues.empty() &&
                 analysis.getLinearParallelism(linear) ==
                     LinearParallelism::Row;
        return llvm::any_of(user->getResults(), [&](Value result) {
          return sequenceValues.contains(result);
        });
      });
  if (onSequenceParts) {
    value = ReplicateOp::create(builder, read.getLoc(), value, tpGroups);
    inserted.insert(value.getDefiningOp());
  }
  if (refinedDim >= 0) {
    value = ReshapeOp::create(builder, read.getLoc(),
                              withShape(value.getType(), tpPart), value);
    inserted.insert(value.getDefiningOp());
  }
  for (Operation *user : users)
    user->replaceUsesOfWith(read.getResult(), value);
  return success();
}

/// A row-parallel linear's partial sums are reduced before its bias is
/// added once.
void LayerPartitioner::reduceRowParallel(LinearOp linear) {
  Value bias = linear.getBias();
  bool sequence = !sequenceValues.empty();
  if (!bias && !sequence)
    return;
  Value reduced = converted(linear.getResult(),
                            sequence ? ReduceScatterSequence : Reduce);
  Value result = reduced;
  if (bias) {
    linear.getBiasMutable().clear();
    OpBuilder builder(context);
    builder.setInsertionPointAfterValue(reduced);
    result = AddOp::create(builder, linear.getLoc(), reduced, bias);
    inserted.insert(result.getDefiningOp());
    if (sequence)
      sequenceParts.insert(result);
    else
      overrides[result] = TPSharding::replicated();
  }
  linear.getResult().replaceAllUsesExcept(result, reduced.getDefiningOp());
}

LogicalResult LayerPartitioner::run() {
  if (failed(chooseTensorParallelism()) || failed(convertInputs()))
    return failure();
  Block &body = layer.getBodyBlock();
  SmallVector<Operation *> ops;
  for (Operation &op : body)
    if (!inserted.contains(&op))
      ops.push_back(&op);
  // The whole shapes of the tensors dropout masks cover, before any op of
  // the layer (an operand's producer included) is retyped.
  llvm::DenseMap<Operation *, SmallVector<int64_t>> maskedShapes;
  for (Operation *op : ops)
    if (auto masked = dyn_cast<DropoutMaskOpInterface>(op);
        masked && masked.dropsElements())
      maskedShapes[op] = masked.getMaskedShape();
  for (Operation *op : ops) {
    if (auto read = dyn_cast<ParamOp>(op)) {
      if (failed(partitionParameter(read)))
        return failure();
      continue;
    }
    if (failed(convertOperands(op)) || failed(retypeResults(op)))
      return failure();
    if (auto it = maskedShapes.find(op); it != maskedShapes.end())
      recordMaskShard(cast<DropoutMaskOpInterface>(op), it->second);
    // Each rank looks up the ids of its block of the vocabulary.
    if (auto lookup = dyn_cast<EmbeddingOp>(op);
        lookup && tensorParallel &&
        analysis.getSharding(lookup.getResult()).kind == TPSharding::Partial) {
      lookup.setVocabGroupsAttr(tpGroups);
      if (paddedVocabulary)
        lookup.setVocabSizeAttr(IntegerAttr::get(
            IntegerType::get(context, 64), paddedVocabulary));
    }
    if (auto linear = dyn_cast<LinearOp>(op);
        linear && tensorParallel &&
        analysis.getLinearParallelism(linear) == LinearParallelism::Row)
      reduceRowParallel(linear);
  }
  auto yield = cast<YieldOp>(body.getTerminator());
  for (auto [result, value] : llvm::zip(layer.getResults(), yield.getValues()))
    result.setType(value.getType());
  return success();
}

/// The mapping of a layer's strategy.
DeviceMapping mappingOf(StrategyAttr strategy, PlanAttr plan) {
  DeviceMapping mapping;
  int64_t perStage = plan.getDevices() / plan.getPp();
  mapping.stageBase = strategy.getStage() * perStage;
  mapping.tp = strategy.getTp();
  mapping.dp = strategy.getDp();
  mapping.consecutive = strategy.getTpConsecutive();
  return mapping;
}

/// The weights several layers read (a tied embedding and LM head) that
/// every reader splits alike: along the same dimension, in one piece, among
/// TP groups arranged alike in its stage, so that a rank holds the same
/// block in every reader and stages' gradients add part by part. Maps each
/// to the union of the readers' TP groups.
llvm::DenseMap<StringAttr, ArrayAttr>
findSharedSplits(ArrayRef<TensorParallelAnalysis> analyses, PlanAttr plan,
                 const llvm::DenseMap<StringAttr, unsigned> &readers) {
  struct Split {
    int64_t dim = -1;
    DeviceMapping mapping;
    llvm::SetVector<int64_t> stages;
    bool alike = true;
  };
  llvm::MapVector<StringAttr, Split> splits;
  for (const TensorParallelAnalysis &analysis : analyses) {
    DeviceMapping mapping =
        mappingOf(analysis.getLayer().getStrategyAttr(), plan);
    bool shardable = mapping.tp > 1 &&
                     !analysis.getLayer().getStrategyAttr().getUlysses() &&
                     analysis.supportsDegree(mapping.tp);
    for (const TPParameterSharding &entry : analysis.getParameters()) {
      StringAttr name = ParamOp(entry.op).getNameAttr().getAttr();
      if (readers.lookup(name) < 2)
        continue;
      auto [it, first] = splits.try_emplace(name);
      Split &split = it->second;
      bool alike = shardable && entry.dim >= 0 && entry.segments.empty();
      if (alike && !first)
        alike = entry.dim == split.dim &&
                mapping.inStage(0).groups(plan.getContext(), true) ==
                    split.mapping.inStage(0).groups(plan.getContext(), true);
      split.alike &= alike;
      split.dim = entry.dim;
      split.mapping = mapping;
      split.stages.insert(mapping.stageBase);
    }
  }
  // A layer that keeps one shared weight whole runs whole, so it reads its
  // other shared weights whole too.
  for (bool changed = true; changed;) {
    changed = false;
    for (const TensorParallelAnalysis &analysis : analyses) {
      auto sharedOf = [&](const TPParameterSharding &entry) -> Split * {
        auto it = splits.find(ParamOp(entry.op).getNameAttr().getAttr());
        return it == splits.end() ? nullptr : &it->second;
      };
      bool whole = llvm::any_of(
          analysis.getParameters(), [&](const TPParameterSharding &entry) {
            Split *split = sharedOf(entry);
            return split && entry.dim >= 0 && !split->alike;
          });
      for (const TPParameterSharding &entry : analysis.getParameters())
        if (Split *split = sharedOf(entry); whole && split && split->alike) {
          split->alike = false;
          changed = true;
        }
    }
  }
  llvm::DenseMap<StringAttr, ArrayAttr> shared;
  for (auto &[name, split] : splits) {
    if (!split.alike)
      continue;
    SmallVector<Attribute> groups;
    for (int64_t base : split.stages)
      llvm::append_range(
          groups, split.mapping.inStage(base).groups(plan.getContext(), true));
    shared[name] = ArrayAttr::get(plan.getContext(), groups);
  }
  return shared;
}

} // namespace

namespace mlir::galvatron {
namespace {
struct PartitionPass : impl::PartitionBase<PartitionPass> {
  using PartitionBase::PartitionBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto plan =
        module->getAttrOfType<PlanAttr>(GalvatronDialect::getPlanAttrName());
    if (!plan) {
      module.emitError() << "--galvatron-partition needs a #galvatron.plan "
                            "(run --galvatron-search or "
                            "--galvatron-apply-strategy first)";
      return signalPassFailure();
    }
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward || forward.isExternal()) {
      module.emitError() << "--galvatron-partition: no function '" << function
                         << "'";
      return signalPassFailure();
    }
    std::vector<TensorParallelAnalysis> analyses =
        TensorParallelAnalysis::analyzeFunction(forward);
    llvm::DenseMap<StringAttr, unsigned> readers =
        countParameterReaders(analyses);
    llvm::DenseMap<StringAttr, ArrayAttr> sharedSplits =
        findSharedSplits(analyses, plan, readers);
    // The batch arrangement of each layer result (absent: whole).
    llvm::DenseMap<Value, DeviceMapping> layouts;
    llvm::DenseMap<StringAttr, ParameterOp> shardedParameters;
    SyncRequests syncRequests;
    for (TensorParallelAnalysis &analysis : analyses) {
      LayerOp layer = analysis.getLayer();
      // The plan's verifier guarantees every layer a strategy.
      StrategyAttr strategy = layer.getStrategyAttr();
      DeviceMapping mapping = mappingOf(strategy, plan);
      auto yield = cast<YieldOp>(layer.getBodyBlock().getTerminator());
      SmallVector<bool> batchedResults;
      for (Value value : yield.getValues())
        batchedResults.push_back(analysis.isBatched(value));
      std::optional<UlyssesAnalysis> ulysses;
      if (strategy.getUlysses() && mapping.tp > 1)
        ulysses.emplace(analysis);
      LayerPartitioner partitioner(layer, analysis, mapping,
                                   strategy, layouts,
                                   shardedParameters, readers,
                                   syncRequests, sharedSplits,
                                   plan.getVocabDivisor(),
                                   ulysses ? &*ulysses : nullptr);
      if (failed(partitioner.run()))
        return signalPassFailure();
      for (auto [result, value, batched] :
           llvm::zip(layer.getResults(), yield.getValues(), batchedResults)) {
        if (mapping.dp == 1 || !batched)
          continue;
        bool returned = llvm::any_of(result.getUsers(), [](Operation *user) {
          return isa<func::ReturnOp>(user);
        });
        if (!returned) {
          layouts[result] = mapping;
          continue;
        }
        // The function's results are whole on every rank.
        auto type = cast<RankedTensorType>(value.getType());
        SmallVector<int64_t> shape(type.getShape());
        shape[0] *= mapping.dp;
        OpBuilder builder(yield);
        Value whole = AllGatherOp::create(
            builder, yield.getLoc(), withShape(type, shape), value, 0,
            mapping.groups(&getContext(), false), /*reduce_grad=*/false);
        yield->setOperand(cast<OpResult>(result).getResultNumber(), whole);
        result.setType(whole.getType());
      }
    }
    syncRequests.apply(module, readers);
  }
};
} // namespace
} // namespace mlir::galvatron
