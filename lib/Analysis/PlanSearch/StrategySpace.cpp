//===- StrategySpace.cpp - What the plan search chooses among -------------===//
//
// The space of the search: pipeline degrees, micro-batch counts and their
// configurations, each layer's strategies on a stage, and their prices on
// one pipeline shape (StrategySpace.h).
//
//===----------------------------------------------------------------------===//

#include "StrategySpace.h"

#include "galvatron/Support/Error.h"
#include "galvatron/Support/Debug.h"

#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <numeric>

#define DEBUG_TYPE "plan-search-space"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

/// Micro-batch sizes a batch search prices per pipeline degree at most (its
/// largest global batch is kMaxGlobalBatch, as for every search).
static constexpr int64_t kMaxMicroBatchSizes = 4096;

int64_t search::quantize(double bytes, double quantum) {
  if (bytes <= 0)
    return 0;
  return static_cast<int64_t>(std::ceil(bytes / quantum - 1e-9));
}

int32_t MemoryGrid::toQuanta(double bytes) const {
  return static_cast<int32_t>(relaxed ? std::floor(bytes / quantum)
                                      : quantize(bytes, quantum));
}

//===----------------------------------------------------------------------===//
// The space, as the public API enumerates it
//===----------------------------------------------------------------------===//

SmallVector<int64_t>
mlir::galvatron::getPipelineDegrees(const ModelProfile &model, int64_t devices,
                                    const SearchSpace &space) {
  SmallVector<int64_t> degrees;
  int64_t limit = static_cast<int64_t>(model.layers.size());
  if (space.maxPp > 0)
    limit = std::min(limit, space.maxPp);
  for (int64_t pp = 1; pp <= std::min(limit, devices); ++pp)
    if (devices % pp == 0 && (space.fixedPp == 0 || pp == space.fixedPp))
      degrees.push_back(pp);
  return degrees;
}

SmallVector<int64_t> mlir::galvatron::getDivisors(int64_t n) {
  // From the prime factorization (trial division up to √n): the work grows
  // with √n, not with n.
  SmallVector<int64_t> divisors = {1};
  auto multiplyIn = [&](int64_t prime, int64_t power) {
    size_t count = divisors.size();
    int64_t factor = 1;
    for (int64_t k = 0; k < power; ++k) {
      factor *= prime;
      for (size_t i = 0; i < count; ++i)
        divisors.push_back(divisors[i] * factor);
    }
  };
  for (int64_t p = 2; p <= n / p; ++p) {
    int64_t power = 0;
    for (; n % p == 0; n /= p)
      ++power;
    multiplyIn(p, power);
  }
  if (n > 1)
    multiplyIn(n, 1);
  llvm::sort(divisors);
  return divisors;
}

SmallVector<int64_t>
mlir::galvatron::getMicroBatchCounts(int64_t globalBatch,
                                     const SearchSpace &space) {
  SmallVector<int64_t> counts;
  for (int64_t m : getDivisors(globalBatch))
    if (space.fixedMicroBatches == 0 || m == space.fixedMicroBatches)
      counts.push_back(m);
  return counts;
}

SmallVector<LayerStrategy> mlir::galvatron::getLayerStrategies(
    const LayerProfile &layer, int64_t devicesPerStage, int64_t devicesPerNode,
    int64_t microBatch, const SearchSpace &space) {
  SmallVector<LayerStrategy> strategies;
  int64_t maxTp = space.maxTp > 0 ? space.maxTp : devicesPerNode;
  for (int64_t tp = 1; tp <= std::min(maxTp, devicesPerStage); tp *= 2) {
    if (tp < space.minTp || devicesPerStage % tp != 0)
      continue;
    int64_t dp = devicesPerStage / tp;
    if (microBatch % dp != 0)
      continue;
    // The group of tp ranks runs Megatron TP (without or with its sequence
    // parallelism) or Ulysses.
    struct Mode {
      bool sp, ulysses;
    };
    SmallVector<Mode, 3> modes;
    if (layer.supportsTP(tp)) {
      modes.push_back({false, false});
      if (tp > 1 && space.sequenceParallel && layer.sequenceParallel)
        modes.push_back({true, false});
    }
    if (tp > 1 && space.ulysses && layer.supportsUlysses(tp))
      modes.push_back({false, true});
    SmallVector<bool, 2> consecutive = {true};
    if (tp > 1 && dp > 1 && space.nonConsecutiveTp)
      consecutive.push_back(false);
    SmallVector<bool, 2> checkpoint = {false};
    if (space.checkpointing)
      checkpoint.push_back(true);
    // One strategy for the layers outside the blocks (Galvatron's vtp, vsp
    // and embed_sdp) or for every layer (Megatron).
    const std::optional<UniformStrategy> &uniform =
        layer.isTransformerBlock() ? space.blocks : space.outside;
    for (bool c : consecutive)
      for (Mode mode : modes) {
        if (uniform && (uniform->tp != tp || uniform->ulysses != mode.ulysses ||
                        uniform->sp != mode.sp || !c))
          continue;
        // Under Ulysses data parallelism spans the whole stage.
        int64_t paramDp = mode.ulysses ? devicesPerStage : dp;
        SmallVector<DataParallelType, 4> types;
        if (paramDp == 1)
          types.push_back(DataParallelType::ddp);
        else
          for (int type = 0; type < 4; ++type)
            if (space.dpTypes[type])
              types.push_back(static_cast<DataParallelType>(type));
        for (DataParallelType type : types)
          for (bool k : checkpoint) {
            if (uniform && (uniform->zero3 != (type == DataParallelType::zero3 &&
                                               paramDp > 1) ||
                            (k && !uniform->checkpointing)))
              continue;
            strategies.push_back({0, tp, c, type, mode.sp, k, mode.ulysses});
          }
      }
  }
  return strategies;
}

bool mlir::galvatron::fitsQuantized(const ParallelPlan &plan,
                                    const PlanEvaluation &evaluation,
                                    double usableMemory, int64_t memoryBins) {
  if (usableMemory <= 0)
    return false;
  double quantum = usableMemory / static_cast<double>(memoryBins);
  for (auto [k, stage] : llvm::enumerate(evaluation.stages)) {
    int64_t used = 0, transient = 0;
    for (unsigned index = stage.firstLayer; index < stage.endLayer; ++index) {
      const LayerCost &cost = evaluation.layers[index];
      used += quantize(cost.getMemory(stage.inFlight), quantum);
      transient = std::max(transient, quantize(cost.transient, quantum));
    }
    if (used + transient > memoryBins)
      return false;
  }
  return true;
}

//===----------------------------------------------------------------------===//
// StrategySpace
//===----------------------------------------------------------------------===//

StrategySpace::StrategySpace(const ModelProfile &model,
                             const ClusterSpec &cluster,
                             const SearchOptions &options,
                             SearchStatistics &statistics)
    : model(model), cluster(cluster), options(options), statistics(statistics),
      layers(model.layers.size()) {
  // Tied weights and boundary sizes.
  for (auto [index, layer] : llvm::enumerate(model.layers))
    for (const LayerProfile::Parameter &param : layer.parameters)
      if (param.owner != index) {
        ties.push_back({static_cast<unsigned>(index), param.owner});
        maxTiedOwner = std::max(maxTiedOwner, param.owner);
      }
  SmallVector<ByteCount> distinctCuts;
  for (const LayerProfile &layer : model.layers) {
    auto it = llvm::find(distinctCuts, layer.inputCut);
    cutIds.push_back(it - distinctCuts.begin());
    if (it == distinctCuts.end())
      distinctCuts.push_back(layer.inputCut);
  }
}

bool StrategySpace::isTied(unsigned layer) const {
  return llvm::any_of(ties, [&](const Tie &tie) {
    return tie.owner == layer || tie.reader == layer;
  });
}

bool StrategySpace::everyLayerRuns(int64_t degree, int64_t batch) const {
  SmallVector<unsigned> seen;
  return llvm::all_of(model.layers, [&](const LayerProfile &layer) {
    if (llvm::is_contained(seen, layer.signature))
      return true;
    seen.push_back(layer.signature);
    return !getLayerStrategies(layer, cluster.getDevices() / degree,
                               cluster.devicesPerNode, batch, options.space)
                .empty();
  });
}

ParallelPlan StrategySpace::makePlan(const Configuration &configuration) const {
  ParallelPlan plan;
  plan.devices = cluster.getDevices();
  plan.devicesPerNode = cluster.devicesPerNode;
  plan.pp = configuration.pp;
  plan.microBatches = configuration.microBatches;
  plan.globalBatch = configuration.globalBatch;
  plan.schedule = configuration.schedule;
  plan.precision = options.precision;
  plan.vocabDivisor = options.vocabDivisor;
  return plan;
}

void StrategySpace::setShape(int64_t newPp, int64_t newMicroBatch) {
  if (newPp == pp && newMicroBatch == microBatch)
    return;
  pp = newPp;
  microBatch = newMicroBatch;
  devicesPerStage = cluster.getDevices() / pp;
  layouts.clear();
  const SearchSpace &space = options.space;
  int64_t maxTp = space.maxTp > 0 ? space.maxTp : cluster.devicesPerNode;
  for (int64_t tp = 1; tp <= std::min(maxTp, devicesPerStage); tp *= 2) {
    if (tp < space.minTp || devicesPerStage % tp != 0)
      continue;
    int64_t dp = devicesPerStage / tp;
    for (bool consecutive : {true, false}) {
      if (!consecutive && (tp == 1 || dp == 1))
        continue;
      for (bool sp : {false, true}) {
        if (sp && tp == 1)
          continue;
        layouts.push_back({tp, consecutive, sp});
      }
    }
  }
}

StageContext StrategySpace::getContext(int64_t stage,
                                       unsigned firstLayer) const {
  StageContext context;
  context.cluster = &cluster;
  context.precision = options.precision;
  context.pp = pp;
  context.devicesPerStage = devicesPerStage;
  context.firstDevice = stage * devicesPerStage;
  context.microBatch = microBatch;
  context.firstLayer = firstLayer;
  context.vocabDivisor = options.vocabDivisor;
  return context;
}

StageContext StrategySpace::getContextForOffset(int offsetKey,
                                                unsigned firstLayer) const {
  int64_t stage = 0;
  while (getOffsetKey(stage) != offsetKey)
    ++stage;
  return getContext(stage, firstLayer);
}

int StrategySpace::getOffsetKey(int64_t stage) const {
  int64_t first = stage * devicesPerStage;
  return static_cast<int>((first % cluster.devicesPerNode) * 2 +
                          (first >= cluster.devicesPerNode ? 1 : 0));
}

SmallVector<int, 4> StrategySpace::getOffsetKeys() const {
  SmallVector<int, 4> keys;
  for (int64_t stage = 0; stage < pp; ++stage)
    if (!llvm::is_contained(keys, getOffsetKey(stage)))
      keys.push_back(getOffsetKey(stage));
  return keys;
}

unsigned StrategySpace::getLayout(const LayerStrategy &strategy) const {
  int64_t dp = devicesPerStage / strategy.tp;
  bool consecutive = strategy.consecutive || strategy.tp == 1 || dp == 1;
  bool sp = strategy.splitsSequence();
  for (auto [index, layout] : llvm::enumerate(layouts))
    if (layout.tp == strategy.tp && layout.consecutive == consecutive &&
        layout.sp == sp)
      return index;
  llvm_unreachable("strategy outside the layout classes");
}

unsigned StrategySpace::getTieKey(const LayerStrategy &strategy) const {
  // How the layer splits its weights: Ulysses keeps them whole.
  int64_t split = strategy.getWeightSplit();
  int64_t dp = devicesPerStage / split;
  bool consecutive = strategy.consecutive || split == 1 || dp == 1;
  return static_cast<unsigned>(split * 2 + (consecutive ? 1 : 0));
}

unsigned StrategySpace::getCopies(unsigned layer, unsigned start) const {
  unsigned copies = 0;
  for (const LayerProfile::Parameter &param : model.layers[layer].parameters)
    if (param.owner != layer && param.owner < start)
      ++copies;
  return copies;
}

const std::vector<CostedStrategy> &
StrategySpace::getCosts(unsigned layer, unsigned start, int offsetKey) {
  const LayerProfile &profile = model.layers[layer];
  auto key = std::make_tuple(pp, microBatch, profile.signature,
                             getCopies(layer, start), offsetKey);
  auto it = costs.find(key);
  if (it != costs.end())
    return it->second;
  StageContext context = getContextForOffset(offsetKey, start);
  std::vector<CostedStrategy> list;
  for (const LayerStrategy &strategy :
       getLayerStrategies(profile, devicesPerStage, cluster.devicesPerNode,
                          microBatch, options.space)) {
    ++statistics.strategiesEvaluated;
    list.push_back({strategy, getLayout(strategy),
                    evaluateLayer(profile, layer, strategy, context)});
  }
  return costs.emplace(key, std::move(list)).first->second;
}

double StrategySpace::getMinimumTime(unsigned layer, int64_t microBatches) {
  double best = kInfinity;
  // Copies only add work, so counting none bounds from below.
  for (int key : getOffsetKeys())
    for (const CostedStrategy &costed : getCosts(layer, 0, key))
      best = std::min(best, costed.cost.getMicroBatchTime(microBatches));
  return best;
}

const std::vector<double> &StrategySpace::getTransitions(unsigned layer,
                                                         int offsetKey) {
  auto key = std::make_tuple(pp, microBatch, cutIds[layer], offsetKey);
  auto it = transitions.find(key);
  if (it != transitions.end())
    return it->second;
  StageContext context = getContextForOffset(offsetKey, 0);
  size_t count = layouts.size();
  std::vector<double> matrix(count * count, 0.0);
  for (size_t from = 0; from < count; ++from)
    for (size_t to = 0; to < count; ++to)
      matrix[from * count + to] = getLayoutChangeTime(
          layouts[from].toStrategy(), layouts[to].toStrategy(),
          model.layers[layer].inputCut, context);
  return transitions.emplace(key, std::move(matrix)).first->second;
}

const std::vector<double> &StrategySpace::getBoundary(unsigned layer,
                                                      int offsetKey) {
  auto key = std::make_tuple(pp, microBatch, cutIds[layer], offsetKey);
  auto it = boundaries.find(key);
  if (it != boundaries.end())
    return it->second;
  StageContext context = getContextForOffset(offsetKey, 0);
  std::vector<double> costs;
  for (const Layout &layout : layouts)
    costs.push_back(getStageBoundaryTime(layout.toStrategy(),
                                         model.layers[layer].inputCut,
                                         context));
  return boundaries.emplace(key, std::move(costs)).first->second;
}

double StrategySpace::getBoundaryCost(unsigned layer, unsigned layout,
                                      int offsetKey) {
  if (layer >= layers)
    return 0;
  return getBoundary(layer, offsetKey)[layout];
}

double StrategySpace::getTransfer(int64_t stage, unsigned boundaryLayer) {
  return getPipelineTransferTime(stage, model.layers[boundaryLayer].inputCut,
                                 getContext(stage, 0));
}

//===----------------------------------------------------------------------===//
// Configurations
//===----------------------------------------------------------------------===//

llvm::raw_ostream &search::operator<<(llvm::raw_ostream &os,
                                      const Configuration &configuration) {
  return os << "pp " << configuration.pp << " m " << configuration.microBatches
            << " (batch " << configuration.globalBatch << ")";
}

static std::vector<Configuration>
enumerateFixedBatch(StrategySpace &space) {
  const SearchOptions &options = space.options;
  PipelineSchedule schedule =
      options.space.schedule.value_or(PipelineSchedule::pipedream_flush);
  std::vector<Configuration> configurations;
  int64_t globalBatch = options.globalBatch;
  for (int64_t degree : getPipelineDegrees(
           space.model, space.cluster.getDevices(), options.space)) {
    for (int64_t m : getMicroBatchCounts(globalBatch, options.space)) {
      if (!space.everyLayerRuns(degree, globalBatch / m)) {
        LLVM_DEBUG(llvm::dbgs() << "skip pp " << degree << " m " << m
                                << ": a layer has no strategy for "
                                   "micro-batches of "
                                << globalBatch / m << "\n");
        continue;
      }
      configurations.push_back({degree, m, schedule, 0, globalBatch});
      ++space.statistics.configurations;
    }
  }
  return configurations;
}

/// The largest micro-batch whose activations may fit stages of `degree`
/// devices: each layer alone, and all of them in `degree` stages' memory.
static int64_t getLargestMicroBatch(StrategySpace &space, int64_t degree,
                                    double usable) {
  // A layer's memory is its states plus in-flight activations, linear in
  // the micro-batch; priced where every strategy exists (a micro-batch of
  // one sequence per device at dp = D), min over strategies of those lines
  // bounds it from below at any micro-batch (fewer strategies may exist
  // there, none leaner).
  int64_t perStage = space.cluster.getDevices() / degree;
  space.setShape(degree, perStage);
  struct Line {
    double fixed, slope;
  };
  unsigned layers = space.getLayerCount();
  std::vector<SmallVector<Line>> lines(layers);
  for (unsigned layer = 0; layer < layers; ++layer)
    for (int64_t stage = 0; stage < degree; ++stage)
      for (const CostedStrategy &c :
           space.getCosts(layer, 0, space.getOffsetKey(stage)))
        lines[layer].push_back(
            {c.cost.getStates(), c.cost.activations / double(perStage)});
  auto fits = [&](int64_t batch) {
    double total = 0;
    for (const SmallVector<Line> &options : lines) {
      double least = kInfinity;
      for (const Line &line : options)
        least = std::min(least, line.fixed + line.slope * double(batch));
      if (least > usable)
        return false;
      total += least;
    }
    return total <= double(degree) * usable;
  };
  int64_t low = 0, high = space.options.batchRange->maximum;
  while (low < high) {
    int64_t middle = low + (high - low + 1) / 2;
    if (fits(middle))
      low = middle;
    else
      high = middle - 1;
  }
  return low;
}

/// The micro-batch counts a batch search needs for micro-batches of
/// `micro` on `degree` stages (see searchPlan).
static SmallVector<int64_t, 8> getBatchCounts(const SearchOptions &options,
                                              int64_t degree, int64_t micro) {
  const BatchRange &range = *options.batchRange;
  auto inRange = [&](int64_t batch) {
    return batch >= range.minimum && batch <= range.maximum &&
           batch % range.step == 0;
  };
  int64_t fixed = options.space.fixedMicroBatches;
  if (fixed > 0)
    return SmallVector<int64_t, 8>(inRange(fixed * micro) ? 1 : 0, fixed);
  // The largest batch of the range with this micro-batch, and those with
  // fewer micro-batches than stages.
  SmallVector<int64_t, 8> counts;
  int64_t unit = std::lcm(micro, range.step);
  int64_t top = range.maximum / unit * unit;
  if (top >= range.minimum && top / micro >= degree)
    counts.push_back(top / micro);
  for (int64_t m = 1; m < degree; ++m)
    if (inRange(m * micro))
      counts.push_back(m);
  return counts;
}

static llvm::Expected<std::vector<Configuration>>
enumerateBatchRange(StrategySpace &space, double usable) {
  const SearchOptions &options = space.options;
  PipelineSchedule schedule =
      options.space.schedule.value_or(PipelineSchedule::pipedream_flush);
  std::vector<Configuration> configurations;
  llvm::SmallDenseSet<int64_t, 64> batches;
  for (int64_t degree : getPipelineDegrees(
           space.model, space.cluster.getDevices(), options.space)) {
    int64_t largest = getLargestMicroBatch(space, degree, usable);
    LLVM_DEBUG(llvm::dbgs() << "pp " << degree << ": micro-batches of up to "
                            << largest << " sequences may fit\n");
    if (largest > kMaxMicroBatchSizes)
      return makeError(llvm::formatv(
          "the batch range allows {0} micro-batch sizes on {1} pipeline "
          "stages (memory bounds them only there); narrow max-batch or "
          "search micro-batch sizes in steps with batch-step",
          largest, degree));
    for (int64_t micro = 1; micro <= largest; ++micro) {
      SmallVector<int64_t, 8> counts = getBatchCounts(options, degree, micro);
      if (counts.empty() || !space.everyLayerRuns(degree, micro))
        continue;
      for (int64_t m : counts) {
        configurations.push_back({degree, m, schedule, 0, m * micro});
        batches.insert(m * micro);
        ++space.statistics.configurations;
      }
    }
  }
  space.statistics.batches = batches.size();
  return configurations;
}

llvm::Expected<std::vector<Configuration>>
search::enumerateConfigurations(StrategySpace &space, double usable) {
  if (space.options.batchRange)
    return enumerateBatchRange(space, usable);
  return enumerateFixedBatch(space);
}
