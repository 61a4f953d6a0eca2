//===- Partition.cpp - SPMD partitioning of the forward model -------------===//
//
// Rewrites each layer of the forward function into the program every rank
// of its pipeline stage runs: data parallelism slices the batch and marks
// parameter reads replicated (or ZeRO-3 sharded) over the DP group, tensor
// parallelism splits weights and activations as TensorParallelAnalysis
// decided and inserts Megatron's f and g (Ulysses: as UlyssesAnalysis
// decided). Each layer is rebuilt op by op through an IRMapping from the
// original values to the partitioned ones, never retyped in place.
// Gradients come later, from the collectives' rules.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Support/Debug.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/Training.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

#define DEBUG_TYPE "partition"

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

/// Partitions one layer: builds the program of one rank in a new body, op
/// by op, mapping each value of the original layer to its partitioned
/// counterpart (upstream MLIR's shard partitioner works the same way), and
/// replaces the layer by one with the partitioned result types.
class LayerPartitioner {
public:
  LayerPartitioner(LayerOp layer, const TensorParallelAnalysis &analysis,
                   DeviceMapping mapping, StrategyAttr strategy,
                   llvm::DenseMap<Value, DeviceMapping> &layouts,
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

  /// Replaces the layer by its partitioned counterpart; fails after a
  /// diagnostic, leaving the layer as it was.
  LogicalResult run();

private:
  /// Collectives (and local slices) that bring a value of the partitioned
  /// layer into the state a consumer needs.
  enum ConversionKind {
    Reduce,
    Gather,
    Scatter,
    MarkReplicated,
    /// Sequence parallelism's f and g: all-gather along the sequence (the
    /// gradient reduce-scattered), reduce-scatter of partial sums.
    GatherSequence,
    ReduceScatterSequence,
    /// Ulysses: split along `dim` instead of `concatDim` (all-to-all).
    Exchange
  };
  struct Conversion {
    ConversionKind kind;
    int64_t dim = -1;
    int64_t concatDim = -1;
  };

  /// How the analyses decided the ranks hold `original`, a value of the
  /// original layer.
  TPSharding decidedSharding(Value original) const;
  /// How the ranks hold `value`, a value of the partitioned layer.
  TPSharding shardingOf(Value value) const { return shardings.lookup(value); }
  LogicalResult chooseTensorParallelism();
  /// Adds the partitioned body's arguments, each brought to the layer's
  /// batch split (and sequence part).
  LogicalResult convertInputs(Block &body, OpBuilder &builder);
  /// Builds the partitioned counterpart of `op` at `builder`'s point.
  LogicalResult partitionOp(Operation *op, OpBuilder &builder);
  /// Brings the operands of `op` (already mapped) into the state `op`
  /// consumes them in.
  void convertTensorParallelOperands(Operation *op,
                                     MutableArrayRef<Value> operands);
  void convertUlyssesOperands(Operation *op, MutableArrayRef<Value> operands);
  /// The model outputs a data-parallel layer yields are gathered whole.
  void gatherModelOutputs(YieldOp yield, MutableArrayRef<Value> operands,
                          OpBuilder &builder);
  /// The types of `op`'s results on one rank: rows of the batch, TP parts.
  FailureOr<SmallVector<Type>> partitionedResultTypes(Operation *op);
  /// The attributes of `op` that change with its operands' and results'
  /// partitioned types (sizes they spell, what a rank's part is).
  FailureOr<SmallVector<NamedAttribute>>
  partitionedAttributes(Operation *op, ArrayRef<Value> operands,
                        TypeRange types);
  /// Where the part of `op`'s masked tensor a rank holds lies in the whole
  /// (the masked tensor's leading dimensions split as `op`'s first
  /// result's), so that every rank draws the serial run's dropout mask;
  /// null when the rank holds all of it.
  DictionaryAttr maskShard(DropoutMaskOpInterface op) const;
  /// Maps `original`'s results to `rebuilt`'s.
  void mapResults(Operation *original, Operation *rebuilt);
  /// Maps `original` to `value`, held as the analyses decided.
  void mapValue(Value original, Value value);
  LogicalResult partitionParameter(ParamOp read, OpBuilder &builder);
  /// A row-parallel linear's partial sums reduced before its bias is added
  /// once; `partialSums` itself when nothing needs reducing yet.
  Value reduceRowParallel(LinearOp linear, Value partialSums, Value bias);
  /// `value` converted as `conversion` says for `user`; made once per value
  /// and conversion, right after its definition.
  Value converted(Value value, Conversion conversion, Operation *user);
  SmallVector<int64_t> partShape(Value original) const;
  /// The size `original`'s vocabulary dimension `dim` is split at: padded.
  int64_t splitSize(Value original, int64_t dim) const;

  LayerOp layer;
  const TensorParallelAnalysis &analysis;
  /// Under Ulysses, how it lays out the layer's values; else null.
  const UlyssesAnalysis *ulysses;
  DeviceMapping mapping;
  DataParallelType dpType;
  bool sequenceParallel;
  /// The batch arrangement of each layer result (absent: whole); this
  /// layer reads its inputs' and records its results'.
  llvm::DenseMap<Value, DeviceMapping> &layouts;
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
  /// Values of the original layer to the partitioned layer's.
  IRMapping partitioned;
  /// How the ranks hold each value of the partitioned layer (absent:
  /// replicated).
  llvm::DenseMap<Value, TPSharding> shardings;
  /// Under sequence parallelism: the replicated [batch, sequence, ...]
  /// values of the original layer, split along the sequence instead.
  llvm::DenseSet<Value> sequenceValues;
  /// Values of the partitioned layer holding this rank's part of the
  /// sequence (the above and the conversions that make them).
  llvm::DenseSet<Value> sequenceParts;
  llvm::DenseMap<std::tuple<Value, int, int64_t, int64_t>, Value> conversions;
  /// Vocabulary-split values whose part is padded: their size before.
  llvm::DenseMap<Value, int64_t> paddedFrom;
  /// The vocabulary's size when the layer pads it, else 0.
  int64_t paddedVocabulary = 0;
  /// The batch-split results of the layer that are not model outputs.
  SmallVector<unsigned> batchSplitResults;
};

[[maybe_unused]] static llvm::raw_ostream &operator<<(llvm::raw_ostream &os,
                                                      TPSharding sharding) {
  switch (sharding.kind) {
  case TPSharding::Replicated:
    return os << "replicated";
  case TPSharding::Sharded:
    return os << "split(" << sharding.dim << ")";
  case TPSharding::Partial:
    return os << "partial";
  }
  return os;
}

/// `op` built anew from `operands` and result `types`, with its attributes
/// except that `changed` replaces those of the same names.
static Operation *rebuild(OpBuilder &builder, Operation *op,
                          ValueRange operands, TypeRange types,
                          ArrayRef<NamedAttribute> changed = {}) {
  OperationState state(op->getLoc(), op->getName(), operands, types,
                       op->getDiscardableAttrDictionary().getValue(),
                       op->getSuccessors());
  // Ops without inherent attributes have no properties to set; the
  // others' are null while none is set.
  assert((op->getPropertiesStorageSize() || changed.empty()) &&
         "changes an attribute the op lacks");
  if (op->getPropertiesStorageSize()) {
    NamedAttrList properties;
    if (auto inherent =
            dyn_cast_or_null<DictionaryAttr>(op->getPropertiesAsAttribute()))
      properties.assign(inherent.getValue());
    for (NamedAttribute attribute : changed)
      properties.set(attribute.getName(), attribute.getValue());
    state.propertiesAttr = properties.getDictionary(op->getContext());
  }
  for (unsigned i = 0; i < op->getNumRegions(); ++i)
    state.addRegion();
  Operation *rebuilt = builder.create(state);
  LLVM_DEBUG({
    llvm::dbgs() << "[partition]   rebuilt " << op->getName() << " -> (";
    llvm::interleaveComma(types, llvm::dbgs());
    llvm::dbgs() << ")";
    for (NamedAttribute attribute : changed)
      llvm::dbgs() << ", " << attribute.getName().getValue() << " = "
                   << attribute.getValue();
    llvm::dbgs() << "\n";
  });
  return rebuilt;
}

LogicalResult LayerPartitioner::chooseTensorParallelism() {
  LLVM_DEBUG(llvm::dbgs() << "[partition] layer '" << layer.getLayerName()
                          << "': tp=" << mapping.tp << " dp=" << mapping.dp
                          << " stage base " << mapping.stageBase << "\n");
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
    LLVM_DEBUG(llvm::dbgs()
               << "[partition]   Ulysses: " << sequenceValues.size()
               << " inputs split along the sequence\n");
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
        !sharedSplits.count(name)) {
      LLVM_DEBUG(llvm::dbgs()
                 << "[partition]   whole on every TP rank: " << name
                 << " is read split differently elsewhere\n");
      return success();
    }
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
          sequenceValues.insert(value);
    });
  LLVM_DEBUG(
      llvm::dbgs() << "[partition]   tensor parallel"
                   << (sequenceValues.empty() ? "" : ", sequence parallel")
                   << (vocabularyLookup ? ", vocabulary lookup" : "") << "\n");
  return success();
}

TPSharding LayerPartitioner::decidedSharding(Value original) const {
  if (sequenceValues.contains(original))
    return TPSharding::sharded(1);
  if (ulysses) {
    UlyssesLayout layout = ulysses->getLayout(original);
    return layout.isSplit() ? TPSharding::sharded(layout.dim)
                            : TPSharding::replicated();
  }
  return tensorParallel ? analysis.getSharding(original)
                        : TPSharding::replicated();
}

int64_t LayerPartitioner::splitSize(Value original, int64_t dim) const {
  int64_t size = cast<RankedTensorType>(original.getType()).getDimSize(dim);
  if (tensorParallel && analysis.isVocabularyValue(original) &&
      analysis.getSharding(original).dim == dim)
    return padVocabulary(size, mapping.tp, vocabDivisor);
  return size;
}

SmallVector<int64_t> LayerPartitioner::partShape(Value original) const {
  auto type = cast<RankedTensorType>(original.getType());
  SmallVector<int64_t> shape(type.getShape());
  TPSharding sharding = decidedSharding(original);
  if (sharding.kind == TPSharding::Sharded)
    shape[sharding.dim] = splitSize(original, sharding.dim) / mapping.tp;
  return shape;
}

void LayerPartitioner::mapValue(Value original, Value value) {
  partitioned.map(original, value);
  shardings[value] = decidedSharding(original);
  if (sequenceValues.contains(original))
    sequenceParts.insert(value);
}

void LayerPartitioner::mapResults(Operation *original, Operation *rebuilt) {
  for (auto [result, value] :
       llvm::zip_equal(original->getResults(), rebuilt->getResults())) {
    mapValue(result, value);
    TPSharding sharding = shardingOf(value);
    LLVM_DEBUG(llvm::dbgs() << "[partition]   result #"
                            << cast<OpResult>(result).getResultNumber() << ": "
                            << sharding << "\n");
    if (sharding.kind != TPSharding::Sharded)
      continue;
    int64_t size =
        cast<RankedTensorType>(result.getType()).getDimSize(sharding.dim);
    if (splitSize(result, sharding.dim) != size)
      paddedFrom[value] = size;
  }
}

Value LayerPartitioner::converted(Value value, Conversion conversion,
                                  Operation *user) {
  auto key = std::make_tuple(value, int(conversion.kind), conversion.dim,
                             conversion.concatDim);
  if (Value done = conversions.lookup(key))
    return done;
  OpBuilder builder(context);
  builder.setInsertionPointAfterValue(value);
  Location loc = value.getLoc();
  auto type = cast<RankedTensorType>(value.getType());
  SmallVector<int64_t> shape(type.getShape());
  int64_t dim = conversion.dim;
  TPSharding sharding = TPSharding::replicated();
  Value result;
  switch (conversion.kind) {
  case Reduce:
    result = AllReduceOp::create(builder, loc, value, CollectiveReduction::sum,
                                 tpGroups);
    break;
  case Gather: {
    shape[dim] *= mapping.tp;
    result = AllGatherOp::create(builder, loc, withShape(type, shape), value,
                                 dim, tpGroups, /*reduce_grad=*/false);
    // A padded vocabulary's padding is cut off again.
    if (int64_t valid = paddedFrom.lookup(value); valid && valid < shape[dim]) {
      SmallVector<int64_t> starts(shape.size(), 0), limits(shape),
          strides(shape.size(), 1);
      limits[dim] = valid;
      result = SliceOp::create(builder, loc, result, starts, limits, strides);
    }
    break;
  }
  case Scatter:
    shape[dim] /= mapping.tp;
    result = ShardOp::create(builder, loc, withShape(type, shape), value, dim,
                             tpGroups);
    sharding = TPSharding::sharded(dim);
    break;
  case MarkReplicated:
    result = ReplicateOp::create(builder, loc, value, tpGroups);
    break;
  case GatherSequence:
    shape[1] *= mapping.tp;
    result = AllGatherOp::create(builder, loc, withShape(type, shape), value, 1,
                                 tpGroups, /*reduce_grad=*/true);
    break;
  case ReduceScatterSequence:
    shape[1] /= mapping.tp;
    result =
        ReduceScatterOp::create(builder, loc, withShape(type, shape), value,
                                CollectiveReduction::sum, 1, tpGroups);
    sharding = TPSharding::sharded(1);
    sequenceParts.insert(result);
    break;
  case Exchange:
    shape[dim] /= mapping.tp;
    shape[conversion.concatDim] *= mapping.tp;
    result = AllToAllOp::create(builder, loc, withShape(type, shape), value,
                                dim, conversion.concatDim, tpGroups);
    sharding = TPSharding::sharded(dim);
    break;
  }
  LLVM_DEBUG({
    // In ConversionKind's order.
    static constexpr StringLiteral why[] = {
        "partial sums needed whole",
        "a split value needed whole",
        "a whole value needed split",
        "Megatron's f before column-parallel work",
        "sequence parallelism's f: the whole sequence",
        "sequence parallelism's g: partial sums to sequence parts",
        "Ulysses: sequence split <-> heads split"};
    llvm::dbgs() << "[partition]   " << result.getDefiningOp()->getName() << " "
                 << type << " -> " << result.getType() << " ("
                 << shardingOf(value) << " to " << sharding
                 << "): " << why[conversion.kind] << " for " << user->getName()
                 << "\n";
  });
  shardings[result] = sharding;
  conversions[key] = result;
  return result;
}

/// Batched inputs take the layer's rows; a batch split another way is
/// gathered first. Values crossing stages arrive at the same local rank,
/// so the producer's arrangement is read in this layer's stage.
LogicalResult LayerPartitioner::convertInputs(Block &body, OpBuilder &builder) {
  for (auto [argument, operand] :
       llvm::zip(layer.getBodyBlock().getArguments(), layer.getInputs())) {
    Value value = body.addArgument(operand.getType(), argument.getLoc());
    DeviceMapping from =
        layouts.lookup(operand).inStage(mapping.stageBase);
    bool batched = analysis.isBatched(argument);
    DeviceMapping want = batched ? mapping : DeviceMapping{};
    if (!batched)
      want.stageBase = mapping.stageBase;
    bool convertBatch = !from.sameBatchSplit(want);
    auto type = cast<RankedTensorType>(operand.getType());
    SmallVector<int64_t> shape(type.getShape());
    if (convertBatch && from.dp > 1) {
      shape[0] *= from.dp;
      value = AllGatherOp::create(builder, layer.getLoc(),
                                  withShape(type, shape), value, 0,
                                  from.groups(context, false),
                                  /*reduce_grad=*/false);
      LLVM_DEBUG(llvm::dbgs()
                 << "[partition]   input #" << argument.getArgNumber()
                 << ": all_gather of the producer's batch split over dp="
                 << from.dp << "\n");
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
      LLVM_DEBUG(llvm::dbgs()
                 << "[partition]   input #" << argument.getArgNumber()
                 << ": shard of the batch over dp=" << want.dp << "\n");
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
      LLVM_DEBUG(llvm::dbgs()
                 << "[partition]   input #" << argument.getArgNumber()
                 << ": shard of the sequence over tp=" << mapping.tp << "\n");
    }
    mapValue(argument, value);
  }
  return success();
}

static bool isElementwiseBinary(Operation *op) {
  return isa<AddOp, SubOp, MulOp, DivOp, PowOp, MaxOp, MinOp, SelectOp>(op);
}

void LayerPartitioner::convertUlyssesOperands(Operation *op,
                                              MutableArrayRef<Value> operands) {
  for (const UlyssesConversion &conversion : ulysses->getConversions()) {
    if (conversion.user != op)
      continue;
    UlyssesLayout from = conversion.from, to = conversion.to;
    Conversion how{Scatter, to.dim};
    if (from.isSplit())
      how = to.isSplit() ? Conversion{Exchange, to.dim, from.dim}
                         : Conversion{Gather, from.dim};
    Value &operand = operands[conversion.operand];
    operand = converted(operand, how, op);
  }
}

void LayerPartitioner::convertTensorParallelOperands(
    Operation *op, MutableArrayRef<Value> operands) {
  bool yield = isa<YieldOp>(op);
  TPSharding result = op->getNumResults() ? decidedSharding(op->getResult(0))
                                          : TPSharding::replicated();
  auto linear = dyn_cast<LinearOp>(op);
  bool columnParallel = linear && analysis.getLinearParallelism(linear) ==
                                      LinearParallelism::Column;
  int64_t resultRank =
      op->getNumResults()
          ? cast<RankedTensorType>(op->getResult(0).getType()).getRank()
          : 0;
  for (auto [index, value] : llvm::enumerate(operands)) {
    // Weights are split where they are read.
    if (linear && index > 0)
      continue;
    TPSharding state = shardingOf(value);
    switch (state.kind) {
    case TPSharding::Partial: {
      bool sumOfPartials = isa<AddOp, SubOp, ReshapeOp, TransposeOp,
                               BroadcastOp>(op) &&
                           result.kind == TPSharding::Partial;
      if (!sumOfPartials)
        value = converted(value, {Reduce}, op);
      break;
    }
    case TPSharding::Sharded: {
      if (sequenceParts.contains(value) && columnParallel) {
        // Sequence parallelism's f: the whole sequence for column-parallel
        // work; the members' gradients are summed and scattered back.
        value = converted(value, {GatherSequence}, op);
        break;
      }
      bool keeps = !yield && result.kind != TPSharding::Replicated;
      if (keeps && isElementwiseBinary(op) &&
          result.kind == TPSharding::Sharded) {
        int64_t rankDiff =
            resultRank - cast<RankedTensorType>(value.getType()).getRank();
        keeps = state.dim + rankDiff == result.dim;
      }
      if (!keeps)
        value = converted(value, {Gather, state.dim}, op);
      break;
    }
    case TPSharding::Replicated: {
      if (index == 0 && columnParallel) {
        value = converted(value, {MarkReplicated}, op);
        break;
      }
      if (result.kind != TPSharding::Sharded ||
          !(isElementwiseBinary(op) || isa<AttentionOp>(op)))
        break;
      auto type = cast<RankedTensorType>(value.getType());
      int64_t dim = result.dim - (resultRank - type.getRank());
      if (dim >= 0 && type.getDimSize(dim) > 1)
        value = converted(value, {Scatter, dim}, op);
      break;
    }
    }
  }
}

void LayerPartitioner::gatherModelOutputs(YieldOp yield,
                                          MutableArrayRef<Value> operands,
                                          OpBuilder &builder) {
  if (mapping.dp == 1)
    return;
  for (auto [index, original] : llvm::enumerate(yield.getValues())) {
    if (!analysis.isBatched(original))
      continue;
    bool returned =
        llvm::any_of(layer->getResult(index).getUsers(),
                     [](Operation *user) { return isa<func::ReturnOp>(user); });
    if (!returned) {
      batchSplitResults.push_back(index);
      continue;
    }
    // The function's results are whole on every rank.
    Value &value = operands[index];
    auto type = cast<RankedTensorType>(value.getType());
    SmallVector<int64_t> shape(type.getShape());
    shape[0] *= mapping.dp;
    value = AllGatherOp::create(builder, yield.getLoc(), withShape(type, shape),
                                value, 0, dpGroups, /*reduce_grad=*/false);
    LLVM_DEBUG(llvm::dbgs()
               << "[partition]   model output #" << index
               << ": all_gather of the batch over dp=" << mapping.dp << "\n");
  }
}

FailureOr<SmallVector<Type>>
LayerPartitioner::partitionedResultTypes(Operation *op) {
  SmallVector<Type> types;
  for (Value result : op->getResults()) {
    auto type = dyn_cast<RankedTensorType>(result.getType());
    if (!type) {
      types.push_back(result.getType());
      continue;
    }
    SmallVector<int64_t> shape = partShape(result);
    if (mapping.dp > 1 && analysis.isBatched(result)) {
      if (shape.empty() || shape[0] % mapping.dp != 0)
        return op->emitOpError()
               << "result of batch " << (shape.empty() ? 0 : shape[0])
               << " does not split among dp=" << mapping.dp << " replicas";
      shape[0] /= mapping.dp;
    }
    TPSharding sharding = decidedSharding(result);
    if (sharding.kind == TPSharding::Sharded &&
        splitSize(result, sharding.dim) % mapping.tp != 0)
      return op->emitOpError()
             << "dimension " << sharding.dim << " of " << type
             << " does not split among tp=" << mapping.tp << " ranks";
    types.push_back(withShape(type, shape));
  }
  return types;
}

DictionaryAttr LayerPartitioner::maskShard(DropoutMaskOpInterface op) const {
  ParameterShard shard;
  // The original op: its types are still the whole ones.
  SmallVector<int64_t> whole = op.getMaskedShape();
  shard.fullShape.assign(whole.begin(), whole.end());
  Value result = op->getResult(0);
  if (mapping.dp > 1 && analysis.isBatched(result))
    shard.splits.push_back({0, dpGroups});
  TPSharding sharding = decidedSharding(result);
  if (sharding.kind == TPSharding::Sharded)
    shard.splits.push_back({sharding.dim, tpGroups});
  return shard.splits.empty() ? DictionaryAttr() : shard.toAttr(context);
}

FailureOr<SmallVector<NamedAttribute>>
LayerPartitioner::partitionedAttributes(Operation *op, ArrayRef<Value> operands,
                                        TypeRange types) {
  SmallVector<NamedAttribute> changed;
  auto change = [&](StringAttr name, Attribute value) {
    if (value)
      changed.emplace_back(name, value);
  };
  if (auto split = dyn_cast<SplitOp>(op)) {
    // Sizes along the split axis are the part's.
    TPSharding in = shardingOf(operands[0]);
    if (in.kind == TPSharding::Sharded && in.dim == int64_t(split.getAxis())) {
      SmallVector<int64_t> sizes;
      for (int64_t size : split.getSizes())
        sizes.push_back(size / mapping.tp);
      change(split.getSizesAttrName(), DenseI64ArrayAttr::get(context, sizes));
    }
  } else if (auto slice = dyn_cast<SliceOp>(op)) {
    auto in = cast<RankedTensorType>(operands[0].getType());
    auto out = cast<RankedTensorType>(types[0]);
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
    change(slice.getLimitsAttrName(), DenseI64ArrayAttr::get(context, limits));
  } else if (auto lookup = dyn_cast<EmbeddingOp>(op)) {
    // Each rank looks up the ids of its block of the vocabulary.
    if (tensorParallel &&
        analysis.getSharding(lookup.getResult()).kind == TPSharding::Partial) {
      change(lookup.getVocabGroupsAttrName(), tpGroups);
      if (paddedVocabulary)
        change(
            lookup.getVocabSizeAttrName(),
            IntegerAttr::get(IntegerType::get(context, 64), paddedVocabulary));
    }
  } else if (auto masked = dyn_cast<DropoutMaskOpInterface>(op);
             masked && masked.dropsElements()) {
    change(masked.getMaskShardAttrName(), maskShard(masked));
  }
  return changed;
}

LogicalResult LayerPartitioner::partitionOp(Operation *op, OpBuilder &builder) {
  LLVM_DEBUG(llvm::dbgs() << "[partition]  " << op->getName() << " at "
                          << op->getLoc() << "\n");
  if (auto read = dyn_cast<ParamOp>(op))
    return partitionParameter(read, builder);
  SmallVector<Value> operands =
      llvm::map_to_vector(op->getOperands(), [&](Value value) {
        return partitioned.lookup(value);
      });
  if (ulysses)
    convertUlyssesOperands(op, operands);
  else if (tensorParallel)
    convertTensorParallelOperands(op, operands);
  if (auto yield = dyn_cast<YieldOp>(op))
    gatherModelOutputs(yield, operands, builder);
  // A row-parallel linear adds its bias after the reduction.
  auto linear = dyn_cast<LinearOp>(op);
  bool rowParallel =
      linear && tensorParallel &&
      analysis.getLinearParallelism(linear) == LinearParallelism::Row;
  Value bias;
  if (rowParallel && linear.getBias())
    bias = operands.pop_back_val();
  FailureOr<SmallVector<Type>> types = partitionedResultTypes(op);
  if (failed(types))
    return failure();
  FailureOr<SmallVector<NamedAttribute>> attributes =
      partitionedAttributes(op, operands, *types);
  if (failed(attributes))
    return failure();
  Operation *rebuilt = rebuild(builder, op, operands, *types, *attributes);
  mapResults(op, rebuilt);
  if (rowParallel)
    partitioned.map(linear.getResult(),
                    reduceRowParallel(linear, rebuilt->getResult(0), bias));
  return success();
}

/// Splits the weight per the analysis (and ZeRO-3), and marks the read for
/// data parallelism.
LogicalResult LayerPartitioner::partitionParameter(ParamOp read,
                                                   OpBuilder &builder) {
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
  Value value =
      rebuild(builder, read, {}, {declaration.getTensorType()})->getResult(0);
  LLVM_DEBUG(llvm::dbgs() << "[partition]   weight " << name << ": "
                          << (tensorSplit ? "split" : "whole")
                          << (zero3 ? ", ZeRO-3" : "") << "\n");
  if (zero3) {
    value = AllGatherOp::create(builder, read.getLoc(),
                                withShape(value.getType(), tpStored), value,
                                shard.splits.back().dim, replicas,
                                /*reduce_grad=*/true);
    LLVM_DEBUG(llvm::dbgs() << "[partition]   ZeRO-3: all_gather over "
                            << replicaCount << " replicas\n");
  } else if (replicaCount > 1) {
    value = ReplicateOp::create(builder, read.getLoc(), value, replicas);
    LLVM_DEBUG(llvm::dbgs() << "[partition]   replicated over " << replicaCount
                            << " ranks\n");
  }
  // Under sequence parallelism a whole weight applied to this rank's part
  // of the sequence (norms, a row-parallel bias) gets a part of its
  // gradient: summed over the TP group as well.
  bool onSequenceParts =
      !ulysses && !tensorSplit &&
      llvm::any_of(read->getUsers(), [&](Operation *user) {
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
    LLVM_DEBUG(llvm::dbgs() << "[partition]   replicated over the TP group: "
                               "applied to sequence parts\n");
  }
  if (refinedDim >= 0)
    value = ReshapeOp::create(builder, read.getLoc(),
                              withShape(value.getType(), tpPart), value);
  mapValue(read.getResult(), value);
  return success();
}

Value LayerPartitioner::reduceRowParallel(LinearOp linear, Value partialSums,
                                          Value bias) {
  bool sequence = !sequenceValues.empty();
  if (!bias && !sequence)
    return partialSums;
  Value reduced = converted(
      partialSums, {sequence ? ReduceScatterSequence : Reduce}, linear);
  if (!bias)
    return reduced;
  OpBuilder builder(context);
  builder.setInsertionPointAfterValue(reduced);
  Value result = AddOp::create(builder, linear.getLoc(), reduced, bias);
  LLVM_DEBUG(llvm::dbgs() << "[partition]   bias added after the reduction\n");
  shardings[result] = shardingOf(reduced);
  if (sequence)
    sequenceParts.insert(result);
  return result;
}

LogicalResult LayerPartitioner::run() {
  if (failed(chooseTensorParallelism()))
    return failure();
  // Built detached, so that a failure leaves the layer as it was.
  auto body = std::make_unique<Block>();
  OpBuilder builder(context);
  builder.setInsertionPointToEnd(body.get());
  if (failed(convertInputs(*body, builder)))
    return failure();
  for (Operation &op : layer.getBodyBlock())
    if (failed(partitionOp(&op, builder)))
      return failure();
  // The layer itself, with the partitioned result types.
  builder.setInsertionPoint(layer);
  Operation *rebuilt = rebuild(builder, layer, layer.getInputs(),
                               body->getTerminator()->getOperandTypes());
  rebuilt->getRegion(0).push_back(body.release());
  for (unsigned index : batchSplitResults)
    layouts[rebuilt->getResult(index)] = mapping;
  layer->replaceAllUsesWith(rebuilt);
  layer.erase();
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
    }
    syncRequests.apply(module, readers);
  }
};
} // namespace
} // namespace mlir::galvatron
