//===- BuildTrainStep.cpp - Loss, backward, optimizer and schedule --------===//

#include "galvatron/Transforms/Passes.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Transforms/Autodiff.h"
#include "galvatron/Transforms/LayerUtils.h"
#include "galvatron/Transforms/Training.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/Sequence.h"
#include "llvm/ADT/StringSwitch.h"
#include "llvm/Support/Format.h"

#include <cmath>
#include <limits>

namespace mlir::galvatron {
#define GEN_PASS_DEF_BUILDTRAINSTEP
#include "galvatron/Transforms/Passes.h.inc"

namespace {

// Functions, schedule and control state the pass creates.
constexpr StringLiteral kForward = "forward";
constexpr StringLiteral kBackward = "backward";
constexpr StringLiteral kOptimizer = "optimizer_step";
constexpr StringLiteral kSchedule = "train_step";
constexpr StringLiteral kLossState = "train.loss";
constexpr StringLiteral kStepState = "train.step";
constexpr StringLiteral kLossScaleState = "train.loss_scale";
constexpr StringLiteral kGoodStepsState = "train.good_steps";

/// Labels equal to this do not count (torch's default ignore_index).
constexpr int64_t kIgnoreIndex = -100;

enum class OptimizerKind { adamw, sgd, none };

/// The options resolved against the module's plan.
struct TrainConfig {
  int64_t microBatches;
  Precision precision;
  LossKind loss;
  OptimizerKind optimizer;
  CheckpointPolicy checkpoint;
};

/// Emits the ops of the optimizer step and the loss bookkeeping.
struct Emitter {
  OpBuilder &b;
  Location loc;

  RankedTensorType scalarType(Type element) {
    return RankedTensorType::get({}, element);
  }
  Value f32(double value) { return buildScalar(b, loc, value, b.getF32Type()); }
  Value i64(int64_t value) {
    return buildScalar(b, loc, static_cast<double>(value), b.getI64Type());
  }
  Value read(StateOp state) {
    return ReadStateOp::create(b, loc, state.getType(),
                               FlatSymbolRefAttr::get(state.getSymNameAttr()));
  }
  void assign(StringAttr name, Value value) {
    AssignOp::create(b, loc, FlatSymbolRefAttr::get(name), value);
  }
  void assign(StateOp state, Value value) {
    assign(state.getSymNameAttr(), value);
  }
  Value add(Value x, Value y) { return AddOp::create(b, loc, x, y); }
  Value sub(Value x, Value y) { return SubOp::create(b, loc, x, y); }
  Value mul(Value x, Value y) { return MulOp::create(b, loc, x, y); }
  Value div(Value x, Value y) { return DivOp::create(b, loc, x, y); }
  Value select(Value c, Value x, Value y) {
    return SelectOp::create(b, loc, c, x, y);
  }
  Value compare(ComparePredicate predicate, Value x, Value y) {
    return CompareOp::create(b, loc, predicate, x, y);
  }
  /// Σ x² over every element, as an f32 scalar.
  Value sumOfSquares(Value x) {
    Value squares = mul(x, x);
    auto type = cast<RankedTensorType>(x.getType());
    if (type.getRank() == 0)
      return squares;
    SmallVector<int64_t> axes;
    for (int64_t dim = 0; dim < type.getRank(); ++dim)
      axes.push_back(dim);
    return ReduceSumOp::create(b, loc, squares, axes, false);
  }
};

/// The type of a ZeRO-1/2 rank's slice of `parameter`.
RankedTensorType stateType(ParameterOp parameter,
                           const DataParallelSync &sync) {
  RankedTensorType type = parameter.getTensorType();
  return RankedTensorType::get(
      sync.stateShard(parameter, type.getShape()).partShape(),
      type.getElementType());
}

/// The ZeRO-1/2 sharding of `parameter` when the optimizer step holds a
/// slice of its gradient (the accumulator is the slice, or is local and is
/// reduce-scattered); none when it holds the whole.
std::optional<DataParallelSync>
getZeroSlice(ParameterOp parameter, const GradientAccumulators &accumulators) {
  std::optional<DataParallelSync> sync = getDataParallelSync(parameter);
  AccumulatedGradient kind = accumulators.kindOf(parameter);
  if (!sync || sync->zeroStage == 0 || kind == AccumulatedGradient::synced)
    return std::nullopt;
  return sync;
}

/// Where a function runs in a pipeline.
struct PipelinePosition {
  int64_t stage;
  int64_t stages;
};

/// The stage of `function` when it is one stage of a pipelined plan (every
/// layer on the same stage, pp > 1); none for a whole model.
std::optional<PipelinePosition> getPipelinePosition(func::FuncOp function) {
  PlanAttr plan = getPlan(function->getParentOfType<ModuleOp>());
  if (!plan || plan.getPp() == 1)
    return std::nullopt;
  std::optional<int64_t> stage;
  for (LayerOp layer : function.getBody().getOps<LayerOp>()) {
    StrategyAttr strategy = layer.getStrategyAttr();
    if (!strategy || (stage && *stage != strategy.getStage()))
      return std::nullopt;
    stage = strategy.getStage();
  }
  if (!stage)
    return std::nullopt;
  return PipelinePosition{*stage, plan.getPp()};
}

/// The calls of one training step on stage `position`, as phases over the
/// micro-batches. 1F1B (pipedream_flush): a warm-up of pp - stage - 1
/// forwards, a steady state of one forward and one backward, a cool-down
/// of the remaining backwards; without a pipeline this is F0 B0 F1 B1 ...,
/// holding one micro-batch's activations. GPipe on a pipeline: every
/// forward, then every backward. The update comes last.
SmallVector<Attribute> buildSchedulePhases(MLIRContext *context,
                                           int64_t microBatches,
                                           PipelinePosition position,
                                           PipelineSchedule schedule) {
  int64_t warmUp = microBatches;
  if (schedule == PipelineSchedule::pipedream_flush || position.stages == 1)
    warmUp = std::min(position.stages - position.stage - 1, microBatches);
  SmallVector<Attribute> phases;
  auto step = [&](ScheduleStepKind kind, int64_t micro) -> Attribute {
    return ScheduleStepAttr::get(context, kind, micro);
  };
  auto add = [&](int64_t iterations, ArrayRef<Attribute> steps) {
    if (iterations > 0)
      phases.push_back(SchedulePhaseAttr::get(
          context, iterations, ArrayAttr::get(context, steps)));
  };
  add(warmUp, {step(ScheduleStepKind::forward, 0)});
  add(microBatches - warmUp, {step(ScheduleStepKind::forward, warmUp),
                              step(ScheduleStepKind::backward, 0)});
  add(warmUp, {step(ScheduleStepKind::backward, microBatches - warmUp)});
  add(1, {step(ScheduleStepKind::optimizer, -1)});
  return phases;
}

struct BuildTrainStepPass : impl::BuildTrainStepBase<BuildTrainStepPass> {
  using BuildTrainStepBase::BuildTrainStepBase;

  void runOnOperation() override {
    if (failed(run()))
      signalPassFailure();
  }

private:
  /// An error about the model as a whole, or about what lies at `location`
  /// (an input, the logits, a clashing symbol).
  InFlightDiagnostic error() { return error(getOperation().getLoc()); }
  InFlightDiagnostic error(Location location) {
    return mlir::emitError(location) << "--galvatron-build-train-step: ";
  }
  LogicalResult run();
  FailureOr<TrainConfig> resolveConfig(func::FuncOp main);
  FailureOr<Value> addLoss(func::FuncOp forward, const TrainConfig &config,
                           StateOp lossState);
  func::FuncOp buildOptimizer(func::FuncOp after, const TrainConfig &config,
                              StateDeclarer &states,
                              const GradientAccumulators &accumulators,
                              ArrayRef<StateOp> control);
  LogicalResult checkHyperparameters();
};

LogicalResult BuildTrainStepPass::checkHyperparameters() {
  auto require = [&](bool ok, StringRef what) -> LogicalResult {
    if (ok)
      return success();
    return error() << what;
  };
  // The step computes in f32: a value it cannot hold (inf, nan, 1e39)
  // would turn every weight into inf or nan at the first update.
  for (auto [name, value] : {std::pair<StringRef, double>{"lr", lr},
                             {"min-lr", minLr},
                             {"beta1", beta1},
                             {"beta2", beta2},
                             {"eps", epsilon},
                             {"weight-decay", weightDecay},
                             {"momentum", momentum},
                             {"max-grad-norm", maxGradNorm},
                             {"initial-loss-scale", initialLossScale}})
    if (!std::isfinite(value) ||
        std::abs(value) > double(std::numeric_limits<float>::max())) {
      std::string text;
      llvm::raw_string_ostream(text) << llvm::format("%g", value);
      return error() << name << "=" << text
                     << " is not a finite f32 number (the optimizer step "
                        "computes in f32)";
    }
  return failure(
      failed(require(lr >= 0.0 && minLr >= 0.0,
                     "learning rates must be non-negative")) ||
      failed(require(warmupSteps >= 0 && decaySteps >= 0,
                     "warm-up and decay steps must be non-negative")) ||
      failed(require(beta1 >= 0.0 && beta1 < 1.0 && beta2 >= 0.0 && beta2 < 1.0,
                     "beta1 and beta2 must lie in [0, 1)")) ||
      failed(require(epsilon >= 0.0 && weightDecay >= 0.0,
                     "eps and weight-decay must be non-negative")) ||
      failed(require(momentum >= 0.0 && momentum < 1.0,
                     "momentum must lie in [0, 1)")) ||
      failed(require(maxGradNorm >= 0.0,
                     "max-grad-norm must be non-negative (0: no clipping)")) ||
      failed(require(initialLossScale > 0.0 && lossScaleWindow >= 1,
                     "the loss scale and its window must be positive")));
}

FailureOr<TrainConfig> BuildTrainStepPass::resolveConfig(func::FuncOp main) {
  TrainConfig config;
  std::optional<LossKind> lossKind =
      llvm::StringSwitch<std::optional<LossKind>>(loss)
          .Case("next-token", LossKind::next_token)
          .Case("masked", LossKind::masked_token)
          .Default(std::nullopt);
  if (!lossKind)
    return error() << "unknown loss '" << loss
                   << "' (expected next-token or masked)";
  config.loss = *lossKind;
  std::optional<OptimizerKind> optimizerKind =
      llvm::StringSwitch<std::optional<OptimizerKind>>(optimizer)
          .Case("adamw", OptimizerKind::adamw)
          .Case("sgd", OptimizerKind::sgd)
          .Case("none", OptimizerKind::none)
          .Default(std::nullopt);
  if (!optimizerKind)
    return error() << "unknown optimizer '" << optimizer
                   << "' (expected adamw, sgd or none)";
  config.optimizer = *optimizerKind;
  std::optional<CheckpointPolicy> policy = parseCheckpointPolicy(checkpoint);
  if (!policy)
    return error() << "unknown checkpoint policy '" << checkpoint
                   << "' (expected plan, none, blocks or all)";
  config.checkpoint = *policy;

  PlanAttr plan = getPlan(getOperation());
  config.microBatches = microBatches;
  if (plan) {
    if (microBatches && microBatches != plan.getMicroBatches())
      return error() << "micro-batches=" << static_cast<int64_t>(microBatches)
                     << " conflicts with the plan's " << plan.getMicroBatches();
    config.microBatches = plan.getMicroBatches();
  } else if (!config.microBatches) {
    config.microBatches = 1;
  }
  if (config.microBatches < 1)
    return error() << "micro-batches must be positive, got "
                   << config.microBatches;

  config.precision = plan ? plan.getPrecision() : Precision::fp32;
  if (!precision.empty()) {
    std::optional<Precision> requested = symbolizePrecision(precision);
    if (!requested)
      return error() << "unknown precision '" << precision
                     << "' (expected fp32, bf16 or fp16)";
    if (plan && *requested != plan.getPrecision())
      return error() << "precision=" << precision
                     << " conflicts with the plan's "
                     << stringifyPrecision(plan.getPrecision());
    config.precision = *requested;
  }

  // The model is built for one micro-batch.
  if (plan) {
    int64_t microBatch = plan.getGlobalBatch() / plan.getMicroBatches();
    for (auto [index, type] : llvm::enumerate(main.getArgumentTypes())) {
      auto tensor = dyn_cast<RankedTensorType>(type);
      if (tensor && tensor.getRank() >= 1 && tensor.getDimSize(0) != microBatch)
        return error(main.getArgument(index).getLoc())
               << "input #" << index << " of @" << function << " has batch "
               << tensor.getDimSize(0)
               << " but the plan's micro-batch is global_batch / "
                  "micro_batches = "
               << microBatch;
    }
  }
  return config;
}

/// The mean cross-entropy of `logits` against `labels`. Logits the
/// partitioner gathered along the vocabulary (a column-parallel head) are
/// taken as the shards under that gather: Megatron's parallel
/// cross-entropy all-reduces the row maximum, the exponential sums and the
/// target logits over the TP group, never the whole logits. When the rows
/// were gathered over DP groups too, each replica takes the loss of its own
/// rows (its part of the labels), divided by the whole batch's count of
/// counted labels, and the parts are summed over the DP groups.
static Value buildCrossEntropy(OpBuilder &builder, Location loc, Value logits,
                               Value labels) {
  int64_t last = cast<RankedTensorType>(logits.getType()).getRank() - 1;
  SmallVector<AllGatherOp> batchGathers;
  auto gather = logits.getDefiningOp<AllGatherOp>();
  while (gather && int64_t(gather.getDim()) != last) {
    batchGathers.push_back(gather);
    gather = gather.getInput().getDefiningOp<AllGatherOp>();
  }
  // A padded vocabulary: its padding was cut off after the gather.
  IntegerAttr vocabSize;
  Value gatheredLogits = batchGathers.empty() ? logits
                                              : batchGathers.back().getInput();
  if (auto cut = gatheredLogits.getDefiningOp<SliceOp>()) {
    auto whole = cut.getInput().getDefiningOp<AllGatherOp>();
    auto wholeShape = cast<RankedTensorType>(cut.getInput().getType()).getShape();
    bool prefix = llvm::all_of(cut.getStarts(), [](int64_t s) { return s == 0; }) &&
                  llvm::all_of(cut.getStrides(), [](int64_t s) { return s == 1; }) &&
                  cut.getLimits().drop_back() == wholeShape.drop_back();
    if (whole && prefix && int64_t(whole.getDim()) == last) {
      gather = whole;
      vocabSize = builder.getI64IntegerAttr(
          cast<RankedTensorType>(cut.getType()).getDimSize(last));
    }
  }
  AllGatherOp vocabularyGather = gather;
  if (!vocabularyGather && batchGathers.empty())
    return CrossEntropyOp::create(builder, loc, logits, labels, kIgnoreIndex,
                                  LossReduction::mean);
  Emitter emit{builder, loc};
  // The rank's rows (and columns) of the logits.
  Value part = vocabularyGather ? vocabularyGather.getInput()
                                : batchGathers.back().getInput();
  Value rowLabels = labels;
  for (AllGatherOp gather : batchGathers) {
    auto type = cast<RankedTensorType>(rowLabels.getType());
    SmallVector<int64_t> shape(type.getShape());
    shape[gather.getDim()] /= gather.getGroupSize();
    rowLabels = ShardOp::create(builder, loc, type.clone(shape), rowLabels,
                                gather.getDim(), gather.getGroups());
  }
  // The loss of those rows: summed (or, with whole rows, averaged) over
  // them, on vocabulary shards in Megatron's way.
  auto rowsLossOf = [&](LossReduction reduction) -> Value {
    if (!vocabularyGather)
      return CrossEntropyOp::create(builder, loc, part, rowLabels,
                                    kIgnoreIndex, reduction);
    ArrayAttr groups = vocabularyGather.getGroups();
    auto partType = cast<RankedTensorType>(part.getType());
    Value localMax = ReduceMaxOp::create(builder, loc, part, {last});
    Value max = AllReduceOp::create(builder, loc, localMax,
                                    CollectiveReduction::max, groups);
    SmallVector<int64_t> statsShape(partType.getShape().drop_back());
    statsShape.push_back(2);
    Value stats = VocabCrossEntropyStatsOp::create(
        builder, loc, RankedTensorType::get(statsShape, builder.getF32Type()),
        part, max, rowLabels, groups, kIgnoreIndex, vocabSize);
    Value sums = AllReduceOp::create(builder, loc, stats,
                                     CollectiveReduction::sum, groups);
    return VocabCrossEntropyOp::create(
        builder, loc, emit.scalarType(builder.getF32Type()), sums, part, max,
        rowLabels, groups, kIgnoreIndex, reduction, vocabSize);
  };
  if (batchGathers.empty())
    return rowsLossOf(LossReduction::mean);
  // Data-parallel replicas: each sums its rows' losses and divides by the
  // whole batch's count of labels, and the replicas' shares are added.
  Value rowsLoss = rowsLossOf(LossReduction::sum);
  auto labelsType = cast<RankedTensorType>(labels.getType());
  Value counts = CastOp::create(
      builder, loc, labelsType.clone(builder.getF32Type()),
      emit.compare(ComparePredicate::ne, labels, emit.i64(kIgnoreIndex)));
  auto axes = llvm::to_vector(llvm::seq<int64_t>(0, labelsType.getRank()));
  Value counted = ReduceSumOp::create(builder, loc, counts, axes, false);
  Value loss = emit.div(rowsLoss, counted);
  for (AllGatherOp gather : batchGathers)
    loss = AllReduceOp::create(builder, loc, loss, CollectiveReduction::sum,
                               gather.getGroups());
  return loss;
}

FailureOr<Value> BuildTrainStepPass::addLoss(func::FuncOp forward,
                                             const TrainConfig &config,
                                             StateOp lossState) {
  Operation *terminator = forward.getBody().front().getTerminator();
  // The logits: the result named "logits", or the only result.
  std::optional<unsigned> logitsIndex;
  for (unsigned index = 0; index < forward.getNumResults(); ++index)
    if (auto name = forward.getResultAttrOfType<StringAttr>(
            index, GalvatronDialect::getNameAttrName());
        name && name.getValue() == "logits")
      logitsIndex = index;
  if (!logitsIndex && forward.getNumResults() == 1)
    logitsIndex = 0;
  if (!logitsIndex)
    return error(forward.getLoc())
           << "cannot tell which result of @" << function
           << " holds the logits: name it \"logits\" with "
           << GalvatronDialect::getNameAttrName();
  Value logits = terminator->getOperand(*logitsIndex);
  auto logitsType = dyn_cast<RankedTensorType>(logits.getType());
  auto head = logits.getDefiningOp<LayerOp>();
  if (!logitsType || logitsType.getRank() < 1 ||
      !isa<FloatType>(logitsType.getElementType()) || !head)
    return error(logits.getLoc())
           << "the logits must be a float tensor computed by a layer";
  unsigned resultIndex = cast<OpResult>(logits).getResultNumber();

  // labels: the logits' leading shape, integers, -100 where not counted.
  MLIRContext *context = &getContext();
  auto labelsType = RankedTensorType::get(logitsType.getShape().drop_back(),
                                          IntegerType::get(context, 64));
  unsigned labelsIndex = forward.getNumArguments();
  if (failed(forward.insertArgument(
          labelsIndex, labelsType,
          DictionaryAttr::get(
              context, {NamedAttribute(GalvatronDialect::getNameAttrName(),
                                       StringAttr::get(context, "labels"))}),
          forward.getLoc())))
    return failure();
  head = appendLayerInputs(head, forward.getArgument(labelsIndex));

  // The loss inside the head layer; loss / micro-batches summed into state.
  YieldOp yield = getLayerYield(head);
  OpBuilder builder(yield);
  Emitter emit{builder, head.getLoc()};
  Value labels = head.getBodyBlock().getArguments().back();
  Value loss = buildCrossEntropy(builder, head.getLoc(),
                                yield.getOperand(resultIndex), labels);
  Value share = emit.mul(loss, emit.f32(1.0 / config.microBatches));
  Value sum = emit.read(lossState);
  emit.assign(lossState, emit.add(sum, share));
  SmallVector<Value> values(yield.getValues());
  SmallVector<int> newIndex;
  for (unsigned i = 0; i < values.size(); ++i)
    newIndex.push_back(i);
  values.push_back(loss);
  head = rebuildLayerResults(head, values, newIndex);
  return head.getResults().back();
}

/// Makes `function` return `values`, without result attributes.
static void setResults(func::FuncOp function, ValueRange values) {
  Operation *terminator = function.getBody().front().getTerminator();
  terminator->setOperands(values);
  function.setFunctionType(FunctionType::get(
      function.getContext(), function.getArgumentTypes(), values.getTypes()));
  function.setAllResultAttrs(ArrayRef<DictionaryAttr>{});
}

func::FuncOp BuildTrainStepPass::buildOptimizer(
    func::FuncOp after, const TrainConfig &config, StateDeclarer &states,
    const GradientAccumulators &accumulators, ArrayRef<StateOp> control) {
  StateOp lossState = control[0], stepState = control[1];
  bool fp16 = config.precision == Precision::fp16;
  MLIRContext *context = &getContext();
  Location loc = after.getLoc();
  OpBuilder b(context);
  b.setInsertionPointAfter(after);
  auto function =
      func::FuncOp::create(b, loc, kOptimizer, b.getFunctionType({}, {}));
  b.setInsertionPointToStart(function.addEntryBlock());
  Emitter emit{b, loc};

  // On a pipeline stage, once per step: the gradients of weights several
  // stages read (a tied embedding and LM head) are summed over those
  // stages; the loss (only the last stage's is not zero) and the squared
  // norm (each weight counted on its first stage) over the whole pipeline,
  // so every stage clips and reports like one device.
  std::optional<PipelinePosition> position = getPipelinePosition(after);
  auto sumOverStages = [&](Value value, ArrayRef<int64_t> stages) -> Value {
    PlanAttr plan = getPlan(getOperation());
    int64_t perStage = plan.getDevices() / plan.getPp();
    SmallVector<SmallVector<int64_t>> groups(perStage);
    for (int64_t local = 0; local < perStage; ++local)
      for (int64_t stage : stages)
        groups[local].push_back(stage * perStage + local);
    return AllReduceOp::create(b, loc, value, CollectiveReduction::sum,
                               buildDeviceGroups(context, groups));
  };
  SmallVector<int64_t> allStages;
  if (position)
    allStages = llvm::to_vector(llvm::seq<int64_t>(0, position->stages));
  auto sharedStages = [](ParameterOp parameter) {
    auto stages =
        parameter->getAttrOfType<DenseI64ArrayAttr>(kPipelineStagesAttrName);
    return stages ? stages.asArrayRef() : ArrayRef<int64_t>();
  };

  // The mean loss of the step, then a fresh sum for the next one.
  Value meanLoss = emit.read(lossState);
  emit.assign(lossState, emit.f32(0.0));
  if (position)
    meanLoss = sumOverStages(meanLoss, allStages);

  // The step's gradient of each parameter. Data-parallel gradients
  // accumulated locally are synced here, once per step after the last
  // micro-batch's backward: DDP all-reduces, ZeRO-1 reduce-scatters to the
  // rank's slice (ZeRO-2 accumulated its slice already).
  llvm::MapVector<ParameterOp, Value> gradients;
  for (auto &[parameter, accumulator] : accumulators.get()) {
    Value gradient = emit.read(accumulator);
    std::optional<DataParallelSync> sync = getDataParallelSync(parameter);
    if (accumulators.kindOf(parameter) == AccumulatedGradient::local) {
      if (sync->zeroStage == 0)
        gradient = AllReduceOp::create(b, loc, gradient,
                                       CollectiveReduction::sum, sync->groups);
      else
        gradient = ReduceScatterOp::create(
            b, loc, stateType(parameter, *sync), gradient,
            CollectiveReduction::sum, sync->dim, sync->groups);
    }
    ArrayRef<int64_t> stages = position ? sharedStages(parameter)
                                        : ArrayRef<int64_t>();
    if (!stages.empty()) {
      gradient = sumOverStages(gradient, stages);
      emit.assign(accumulator, gradient);
    }
    gradients[parameter] = gradient;
  }

  // Global norm of the step's gradients (unscaled under fp16). A
  // partitioned parameter's part (or ZeRO slice) contributes its squares
  // summed over the groups holding the other parts (one all-reduce per set
  // of groups), so each element counts once; a weight several stages read
  // counts on its first stage.
  llvm::MapVector<Attribute, Value> partSquares;
  for (auto &[parameter, gradient] : gradients) {
    ArrayRef<int64_t> stages = position ? sharedStages(parameter)
                                        : ArrayRef<int64_t>();
    if (!stages.empty() && stages.front() != position->stage)
      continue;
    Value squares = emit.sumOfSquares(gradient);
    SmallVector<Attribute> groups;
    if (std::optional<ParameterShard> shard = getParameterShard(parameter))
      for (const ParameterShard::Split &split : shard->splits)
        groups.push_back(split.groups);
    if (std::optional<DataParallelSync> sync =
            getZeroSlice(parameter, accumulators))
      groups.push_back(sync->groups);
    Value &sum = partSquares[b.getArrayAttr(groups)];
    sum = sum ? emit.add(sum, squares) : squares;
  }
  Value sumSquares;
  for (auto [groups, squares] : partSquares) {
    Value whole = squares;
    for (Attribute group : cast<ArrayAttr>(groups))
      whole = AllReduceOp::create(b, loc, whole, CollectiveReduction::sum,
                                  cast<ArrayAttr>(group));
    sumSquares = sumSquares ? emit.add(sumSquares, whole) : whole;
  }
  if (position)
    sumSquares =
        sumOverStages(sumSquares ? sumSquares : emit.f32(0.0), allStages);
  Value norm = SqrtOp::create(b, loc, sumSquares);
  Value lossScale, finite;
  if (fp16) {
    lossScale = emit.read(control[2]);
    norm = emit.div(norm, lossScale);
    // inf - inf and NaN - NaN are NaN, which equals nothing.
    Value difference = emit.sub(norm, norm);
    finite = emit.compare(ComparePredicate::eq, difference, emit.f32(0.0));
  }
  // torch.nn.utils.clip_grad_norm_: scale by min(1, max / (norm + 1e-6)).
  Value gradScale = emit.f32(1.0);
  if (maxGradNorm > 0.0) {
    Value denominator = emit.add(norm, emit.f32(1e-6));
    Value coefficient = emit.div(emit.f32(maxGradNorm), denominator);
    gradScale = MinOp::create(b, loc, gradScale, coefficient);
  }
  if (fp16)
    gradScale = emit.div(gradScale, lossScale);

  // The 1-based number of this update; a skipped fp16 step does not count.
  Value increment = fp16 ? Value(CastOp::create(
                               b, loc, emit.scalarType(b.getI64Type()), finite))
                         : emit.i64(1);
  Value step = emit.add(emit.read(stepState), increment);
  emit.assign(stepState, step);
  Value rate = LRScheduleOp::create(
      b, loc, emit.scalarType(b.getF32Type()), step, b.getF64FloatAttr(lr),
      b.getF64FloatAttr(minLr), b.getI64IntegerAttr(warmupSteps),
      b.getI64IntegerAttr(decaySteps));

  // A ZeRO-1/2 rank updates its slice of the weight with its slice of the
  // optimizer state, then gathers the updated slices into the whole.
  auto updateParameter = [&](ParameterOp parameter, StateOp gradientState,
                             Value gradient) -> LogicalResult {
    RankedTensorType type = parameter.getTensorType();
    StringAttr name = parameter.getSymNameAttr();
    std::optional<DataParallelSync> sync =
        getZeroSlice(parameter, accumulators);
    RankedTensorType stateTensor = sync ? stateType(parameter, *sync) : type;
    auto declare = [&](StringRef suffix) -> FailureOr<StateOp> {
      FailureOr<StateOp> state =
          states.declare((name.getValue() + suffix).str(),
                         StateKind::optimizer, stateTensor, parameter);
      if (succeeded(state) && sync)
        (*state)->setAttr(
            ParameterShard::getAttrName(),
            sync->stateShard(parameter, type.getShape()).toAttr(context));
      return state;
    };
    Value param = ParamOp::create(b, loc, type, name.getValue());
    if (sync)
      param = ShardOp::create(b, loc, stateTensor, param, sync->dim,
                              sync->groups);
    auto assignParameter = [&](Value updated) {
      if (sync)
        updated = AllGatherOp::create(b, loc, type, updated, sync->dim,
                                      sync->groups, /*reduce_grad=*/false);
      emit.assign(name, updated);
    };
    if (config.optimizer == OptimizerKind::sgd) {
      FailureOr<StateOp> buffer = declare(".momentum_buffer");
      if (failed(buffer))
        return failure();
      auto update = SGDUpdateOp::create(
          b, loc, param, gradient, emit.read(*buffer), rate, gradScale, finite,
          b.getF64FloatAttr(momentum), b.getF64FloatAttr(weightDecay),
          b.getBoolAttr(nesterov));
      assignParameter(update.getNewParam());
      emit.assign(*buffer, update.getNewMomentumBuffer());
    } else {
      FailureOr<StateOp> expAvg = declare(".exp_avg");
      FailureOr<StateOp> expAvgSq = declare(".exp_avg_sq");
      if (failed(expAvg) || failed(expAvgSq))
        return failure();
      Value expAvgValue = emit.read(*expAvg);
      Value expAvgSqValue = emit.read(*expAvgSq);
      auto update = AdamWUpdateOp::create(
          b, loc, param, gradient, expAvgValue, expAvgSqValue, rate, step,
          gradScale, finite, b.getF64FloatAttr(beta1), b.getF64FloatAttr(beta2),
          b.getF64FloatAttr(epsilon), b.getF64FloatAttr(weightDecay));
      assignParameter(update.getNewParam());
      emit.assign(*expAvg, update.getNewExpAvg());
      emit.assign(*expAvgSq, update.getNewExpAvgSq());
    }
    emit.assign(gradientState, buildZeros(b, loc, gradientState.getType()));
    return success();
  };
  // Without an optimizer the step only reports; the accumulated gradients
  // stay for inspection (gradient checks).
  if (config.optimizer != OptimizerKind::none)
    for (auto [parameter, gradientState] : accumulators.get())
      if (failed(updateParameter(parameter, gradientState,
                                 gradients.lookup(parameter))))
        return {};

  SmallVector<std::pair<StringRef, Value>> metrics = {
      {"loss", meanLoss}, {"grad_norm", norm}, {"lr", rate}};
  if (fp16) {
    // Dynamic loss scaling: halve on overflow, double after a window of
    // finite steps (torch.cuda.amp.GradScaler).
    StateOp goodState = control[3];
    Value previous = emit.read(goodState);
    Value good = emit.add(previous, emit.i64(1));
    Value grow =
        emit.compare(ComparePredicate::ge, good, emit.i64(lossScaleWindow));
    Value doubled = emit.mul(lossScale, emit.f32(2.0));
    Value halved = emit.mul(lossScale, emit.f32(0.5));
    Value scaleIfFinite = emit.select(grow, doubled, lossScale);
    emit.assign(control[2], emit.select(finite, scaleIfFinite, halved));
    Value zero = emit.i64(0);
    Value goodIfFinite = emit.select(grow, zero, good);
    emit.assign(goodState, emit.select(finite, goodIfFinite, zero));
    metrics.push_back({"loss_scale", lossScale});
  }
  SmallVector<Value> values;
  for (auto &metric : metrics)
    values.push_back(metric.second);
  func::ReturnOp::create(b, loc, values);
  function.setFunctionType(
      b.getFunctionType({}, ValueRange(values).getTypes()));
  for (auto [index, metric] : llvm::enumerate(metrics))
    function.setResultAttr(index, GalvatronDialect::getNameAttrName(),
                           b.getStringAttr(metric.first));
  return function;
}

LogicalResult BuildTrainStepPass::run() {
  ModuleOp module = getOperation();
  if (failed(checkHyperparameters()))
    return failure();
  auto main = module.lookupSymbol<func::FuncOp>(function);
  if (!main || main.isExternal())
    return error() << "no function @" << function << " with a body";
  for (StringRef name : {kForward, kBackward, kOptimizer, kSchedule})
    if (Operation *existing = module.lookupSymbol(name);
        existing && existing != main)
      return error(existing->getLoc()) << "@" << name << " already exists";
  FailureOr<TrainConfig> config = resolveConfig(main);
  if (failed(config))
    return failure();

  func::FuncOp forward = main;
  forward.setSymName(kForward);
  if (config->precision != Precision::fp32) {
    Builder builder(&getContext());
    convertToLowPrecision(forward, config->precision == Precision::bf16
                                       ? FloatType(builder.getBF16Type())
                                       : FloatType(builder.getF16Type()));
  }

  StateDeclarer states(module);
  auto scalar = [&](Type element) {
    return RankedTensorType::get({}, element);
  };
  Builder builder(&getContext());
  SmallVector<StateOp> control;
  auto declareControl = [&](StringRef name, Type element,
                            InitAttr init = {}) -> LogicalResult {
    FailureOr<StateOp> state =
        states.declare(name, StateKind::control, scalar(element), {}, init);
    if (failed(state))
      return failure();
    control.push_back(*state);
    return success();
  };
  if (failed(declareControl(kLossState, builder.getF32Type())) ||
      failed(declareControl(kStepState, builder.getI64Type())))
    return failure();
  bool fp16 = config->precision == Precision::fp16;
  if (fp16 &&
      (failed(declareControl(kLossScaleState, builder.getF32Type(),
                             InitAttr::get(&getContext(), InitKind::constant,
                                           initialLossScale))) ||
       failed(declareControl(kGoodStepsState, builder.getI64Type()))))
    return failure();

  // A pipeline stage other than the last has no loss: its backward starts
  // from the gradients its sends receive back.
  std::optional<PipelinePosition> position = getPipelinePosition(forward);
  bool hasLoss = !position || position->stage == position->stages - 1;
  Value lossValue;
  if (hasLoss) {
    FailureOr<Value> loss = addLoss(forward, *config, control[0]);
    if (failed(loss))
      return failure();
    setResults(forward, *loss);
  } else {
    setResults(forward, {});
  }
  // Dropping the logits and other outputs rebuilds the head layer.
  pruneUnusedLayerResults(forward);
  if (hasLoss)
    lossValue = forward.getBody().front().getTerminator()->getOperand(0);

  GradientAccumulators accumulators(
      states, /*deferSync=*/config->optimizer != OptimizerKind::none);
  AutodiffOptions options;
  options.backwardName = kBackward.str();
  options.recompute = [&](LayerOp layer) {
    return shouldRecompute(config->checkpoint, layer);
  };
  options.parameterGradient = [&](OpBuilder &b, Location loc,
                                  ParameterOp parameter, Value gradient) {
    return accumulators.accumulate(b, loc, parameter, gradient);
  };
  // d(loss)/d(loss) = 1 / micro-batches, times the loss scale under fp16.
  double seedScale = 1.0 / config->microBatches;
  SmallVector<GradientSeed> seeds;
  if (hasLoss)
    seeds.push_back({lossValue, [&](OpBuilder &b, Location loc) -> Value {
                       Emitter emit{b, loc};
                       Value value = emit.f32(seedScale);
                       return fp16 ? emit.mul(emit.read(control[2]), value)
                                   : value;
                     }});
  FailureOr<BackwardFunction> backward =
      buildBackward(forward, seeds, options);
  if (failed(backward))
    return failure();
  if (accumulators.get().empty())
    return error(forward.getLoc()) << "the loss of @" << function
                                   << " does not depend on any parameter";
  accumulators.eraseBypassedSyncs();
  setResults(forward, backward->savedValues);
  pruneUnusedLayerResults(forward);

  func::FuncOp optimizerStep = buildOptimizer(backward->function, *config,
                                              states, accumulators, control);
  if (!optimizerStep)
    return failure();

  OpBuilder b(&getContext());
  b.setInsertionPointAfter(optimizerStep);
  PlanAttr plan = getPlan(module);
  SmallVector<Attribute> phases = buildSchedulePhases(
      &getContext(), config->microBatches,
      position ? *position : PipelinePosition{0, 1},
      plan ? plan.getSchedule() : PipelineSchedule::pipedream_flush);
  ScheduleOp::create(
      b, module.getLoc(), b.getStringAttr(kSchedule),
      LossKindAttr::get(&getContext(), config->loss),
      b.getI64IntegerAttr(config->microBatches),
      FlatSymbolRefAttr::get(forward.getSymNameAttr()),
      FlatSymbolRefAttr::get(backward->function.getSymNameAttr()),
      FlatSymbolRefAttr::get(optimizerStep.getSymNameAttr()),
      b.getArrayAttr(phases));
  return success();
}

} // namespace
} // namespace mlir::galvatron
