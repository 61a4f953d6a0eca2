//===- PlanSearch.cpp - Optimal hybrid-parallel plan search ---------------===//
//
// Structure (docs/architecture.md, "Search", has the full argument):
//
//  1. Configurations (pp, m, schedule) are ordered by a lower bound on their
//     iteration time, sum of each layer's fastest strategy times
//     (1 + (m - 1)/pp), and explored until the bound reaches the best time
//     found.
//  2. Within a configuration, a stage's time for layers [s, e) comes from a
//     dynamic program over the layers with states (memory quanta used,
//     largest transient, time) per layout class of the last layer, kept as
//     Pareto sets; transitions between layout classes cost a layout change.
//     One forward pass from s yields every end e ("chains"); chains are
//     shared by stages whose layer sequences match (identical blocks), and
//     the last stage runs backwards from the end of the model.
//  3. The split minimizes sum_k t_k + (m - 1) max_k t_k exactly: for each
//     candidate bottleneck B (stage times in increasing order) a shortest
//     path over split points gives the least sum with every t_k <= B; the
//     enumeration stops once (m - 1) B alone exceeds the best time.
//  4. The winning stages are re-solved with back-pointers to recover the
//     strategies, and the plan is re-priced by evaluatePlan as a check.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/PlanSearch.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <memory>
#include <set>

using namespace mlir;
using namespace mlir::galvatron;

static constexpr double kInfinity = std::numeric_limits<double>::infinity();
/// Micro-batch sizes a batch search prices per pipeline degree at most (its
/// largest global batch is kMaxGlobalBatch, as for every search).
static constexpr int64_t kMaxMicroBatchSizes = 4096;
/// A relaxed pass may visit this many times the states of the exact pass
/// before it, or this many per layer, before it is abandoned; and one at
/// this many memory bins or more that does not raise the lower bound ends
/// the configuration's relaxations.
static constexpr int64_t kRelaxedStateRatio = 4;
static constexpr int64_t kRelaxedStatesPerLayer = 1000;
static constexpr int64_t kStallCapacity = 64;

/// Whole quanta covering `bytes` (the rounding the search's memory
/// accounting uses everywhere).
static int64_t quantize(double bytes, double quantum) {
  if (bytes <= 0)
    return 0;
  return static_cast<int64_t>(std::ceil(bytes / quantum - 1e-9));
}

//===----------------------------------------------------------------------===//
// The space
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
// The search
//===----------------------------------------------------------------------===//

namespace {

/// A layout class: what decides how a layer's boundary activations are
/// spread over a stage. `sp` stands for any split of the sequence
/// (Megatron's or Ulysses'), which spread them alike.
struct Layout {
  int64_t tp;
  bool consecutive;
  bool sp;

  LayerStrategy toStrategy() const {
    return {0, tp, consecutive, DataParallelType::ddp, sp, false};
  }
};

struct CostedStrategy {
  LayerStrategy strategy;
  unsigned layout;
  LayerCost cost;
};

/// A strategy as the dynamic program sees it.
struct Candidate {
  double time;
  int32_t memory;
  int32_t transient;
  /// Index into the CostedStrategy list.
  int32_t strategy;
};

/// Candidates of a layer grouped by layout class.
using CandidateSet = std::vector<std::vector<Candidate>>;

struct State {
  int32_t memory;
  int32_t transient;
  double time;
  int32_t parent;
  int16_t parentLayout;
  int32_t candidate;
};

/// A (pp, micro-batches, schedule) configuration of a global batch.
struct Configuration {
  int64_t pp, microBatches;
  PipelineSchedule schedule;
  double lowerBound;
  int64_t globalBatch;
  /// The least memory per device any of its plans needs (computed when it
  /// is first explored; negative until then).
  double leastMemory = -1;
  /// States the last exact pass visited, and whether a relaxed pass
  /// failed to raise lowerBound (only speed depends on these).
  int64_t exactStates = 0;
  bool relaxationStalled = false;

  int64_t getMicroBatch() const { return globalBatch / microBatches; }
  bool operator==(const Configuration &other) const {
    return pp == other.pp && microBatches == other.microBatches &&
           schedule == other.schedule && globalBatch == other.globalBatch;
  }
};

/// A layer's tie to the owner of a weight it shares (same stage: same tp
/// and consecutiveness).
struct Tie {
  unsigned reader, owner;
};

/// max(floor, max_j (cost_j - lambda_j * left)) as a function of the memory
/// left: the upper envelope of those lines, read by binary search.
class RestBound {
public:
  RestBound() = default;
  RestBound(ArrayRef<double> lambdas, ArrayRef<double> cost, double floor);
  double operator()(double left) const {
    if (lines.empty())
      return floor;
    size_t index = llvm::upper_bound(crossings, left) - crossings.begin();
    return std::max(floor, lines[index].intercept + lines[index].slope * left);
  }

private:
  struct Line {
    double slope, intercept;
  };
  /// Slopes increasing; line k + 1 is the highest from crossings[k] on.
  SmallVector<Line> lines;
  SmallVector<double> crossings;
  double floor = 0;
};

RestBound::RestBound(ArrayRef<double> lambdas, ArrayRef<double> cost,
                     double floor)
    : floor(floor) {
  // Slopes -lambda increase as lambda decreases. The middle of three lines
  // is never the highest when the outer two cross no later than it rises
  // above the first.
  for (size_t j = lambdas.size(); j-- > 0;) {
    Line line{-lambdas[j], cost[j]};
    if (!lines.empty() && lines.back().slope == line.slope) {
      if (lines.back().intercept >= line.intercept)
        continue;
      lines.pop_back();
    }
    while (lines.size() >= 2) {
      const Line &a = lines[lines.size() - 2], &b = lines.back();
      if ((a.intercept - line.intercept) * (b.slope - a.slope) <=
          (a.intercept - b.intercept) * (line.slope - a.slope))
        lines.pop_back();
      else
        break;
    }
    lines.push_back(line);
  }
  for (size_t k = 0; k + 1 < lines.size(); ++k)
    crossings.push_back((lines[k].intercept - lines[k + 1].intercept) /
                        (lines[k + 1].slope - lines[k].slope));
}

/// One forward (or backward) pass of the dynamic program from a start
/// layer, extended on demand.
struct Engine {
  int64_t inFlight = 1;
  int offsetKey = 0;
  unsigned start = 0;
  bool reverse = false;
  /// Forward passes after stage 0 pay the boundary layout change.
  bool entry = false;
  /// Forced layout key (tp, consecutiveness) per owner with readers in
  /// range; empty when unconstrained.
  SmallVector<std::pair<unsigned, unsigned>> forced;
  bool trace = false;
  /// When every stage the pass serves has at least `boundLength` layers:
  /// lower bounds of what the layers after each prefix up to that length
  /// still need, to discard states that cannot finish within the budget or
  /// the time bound. restBound[x] gives the least time the layers after
  /// prefix x need with `left` quanta of memory: the maximum over
  /// multipliers lambda of the sum over those layers of their least
  /// time + lambda * memory, less lambda * left (a Lagrangian bound).
  unsigned boundLength = 0;
  std::vector<int32_t> restMemory, restTransient;
  std::vector<double> restTime;
  std::vector<RestBound> restBound;

  std::vector<std::vector<State>> states;
  unsigned processed = 0;
  bool dead = false;
  /// best[len - 1][layout]: least time over the first len layers ending in
  /// that layout.
  std::vector<std::vector<double>> best;
  /// With `trace`: the state lists after each step.
  std::vector<std::vector<std::vector<State>>> history;
  std::vector<unsigned> historyLayers;
};

/// Key of the layer sequence an engine covers, position by position.
struct PositionKey {
  unsigned signature;
  unsigned copies;
  int ownerOffset;
  bool operator==(const PositionKey &other) const {
    return signature == other.signature && copies == other.copies &&
           ownerOffset == other.ownerOffset;
  }
};

class Searcher {
public:
  /// Searches the best plans of the `count` best configurations faster
  /// than `bound` seconds per sequence.
  Searcher(const ModelProfile &model, const ClusterSpec &cluster,
           const SearchOptions &options, unsigned count, double bound)
      : model(model), cluster(cluster), options(options),
        layers(model.layers.size()), keep(count), scoreBound(bound),
        bestScore(bound) {}

  /// The best plans of the `count` best configurations, best first; none
  /// when no plan beats a finite bound.
  llvm::Expected<std::vector<SearchResult>> run();

private:
  /// Checks the options and sets up the memory accounting, ties and cuts.
  llvm::Error prepare();
  /// The (pp, micro-batches) configurations of the global batch, or of
  /// the batch range, with their lower bounds.
  llvm::Expected<std::vector<Configuration>> enumerateConfigurations();
  /// The configurations a batch search needs (see searchPlan).
  llvm::Expected<std::vector<Configuration>> enumerateBatchConfigurations();
  /// Whether every layer has a strategy on stages of pp devices running
  /// micro-batches of `microBatch` sequences.
  bool everyLayerRuns(int64_t pp, int64_t microBatch) const;
  /// The largest micro-batch whose activations may fit stages of pp
  /// devices: each layer alone, and all of them in pp stages' memory.
  int64_t getLargestMicroBatch(int64_t pp);
  /// Explores the configurations in the order of their bounds.
  void findBest(std::vector<Configuration> &configurations);
  struct KeptPlan;
  /// The plan of a kept configuration, with its evaluation.
  llvm::Expected<SearchResult> recoverPlan(KeptPlan &entry);
  //===--------------------------------------------------------------------===//
  // Per (pp, micro-batch size)
  //===--------------------------------------------------------------------===//

  void prepareShape(int64_t pp, int64_t microBatch);
  StageContext getContext(int64_t stage, unsigned firstLayer) const;
  /// The context of a stage with `offsetKey` (all such stages price alike).
  StageContext getContextForOffset(int offsetKey, unsigned firstLayer) const;
  int getOffsetKey(int64_t stage) const;
  unsigned getLayout(const LayerStrategy &strategy) const;
  unsigned getTieKey(const LayerStrategy &strategy) const;
  /// Foreign parameters held as copies when a stage starts at `start`.
  unsigned getCopies(unsigned layer, unsigned start) const;
  const std::vector<CostedStrategy> &getCosts(unsigned layer, unsigned start,
                                              int offsetKey);
  double getMinimumTime(unsigned layer, int64_t microBatches);
  const std::vector<double> &getTransitions(unsigned layer, int offsetKey);
  const std::vector<double> &getBoundary(unsigned layer, int offsetKey);
  double getBoundaryCost(unsigned layer, unsigned layout, int offsetKey) {
    if (layer >= layers)
      return 0;
    return getBoundary(layer, offsetKey)[layout];
  }
  double getTransfer(int64_t stage, unsigned boundaryLayer);

  //===--------------------------------------------------------------------===//
  // Per configuration
  //===--------------------------------------------------------------------===//

  void prepareConfiguration(const Configuration &configuration);
  int64_t getInFlight(int64_t stage) const;
  const CandidateSet &getCandidates(unsigned layer, unsigned start,
                                    int offsetKey, int64_t inFlight);
  void advance(Engine &engine);
  /// Lets `engine` prune with bounds over its first `length` layers (see
  /// Engine::boundLength).
  void setBoundLength(Engine &engine, unsigned length);
  /// The least length a stage-k pass must reach to be useful, from the
  /// time bound: 1 when unknown.
  unsigned getMinimumLength(int64_t stage) const;
  void computeWindows();
  unsigned getLayerAt(const Engine &engine, unsigned step) const {
    return engine.reverse ? engine.start - 1 - step : engine.start + step;
  }
  /// Where parameter copies are counted from: a backward pass serves last
  /// stages starting after every tied owner.
  unsigned getCopiesStart(const Engine &engine) const {
    return engine.reverse ? maxTiedOwner + 1 : engine.start;
  }
  double getLowerBound(const Configuration &configuration);
  Engine &getEngine(int64_t stage, unsigned start, unsigned end);
  double readout(Engine &engine, unsigned start, unsigned end, int64_t stage);
  double getStageTime(int64_t stage, unsigned start, unsigned end);
  std::vector<PositionKey> getSequence(unsigned start, unsigned length) const;
  SmallVector<std::pair<unsigned, unsigned>>
  getForcedOwners(unsigned start, unsigned end) const;
  /// Explores `configuration` at the memory resolutions from `fromBins`
  /// to `toBins`, tightening its lower bound.
  void explore(Configuration &configuration, int64_t fromBins,
               int64_t toBins, int64_t relaxedBins);
  /// A relaxed pass (memory rounded down) at the current quantum: its
  /// optimum bounds the configuration from below.
  void tightenLowerBound(Configuration &configuration);
  /// One pass at the current quantum; returns the best time it found below
  /// the best so far (infinity if none). Relaxed passes only report it.
  double explorePass(const Configuration &configuration);
  /// Re-solves stage `stage` = [start, end) with back-pointers.
  SmallVector<LayerStrategy> reconstruct(int64_t stage, unsigned start,
                                         unsigned end);
  /// The forced owner layouts to try when ties bind on [start, end).
  SmallVector<SmallVector<std::pair<unsigned, unsigned>>>
  getTieVariants(int64_t stage, unsigned start, unsigned end);
  /// A fresh pass over [start, end) with back-pointers: the stage's best
  /// time (exit change included, transfers not) and its strategies.
  std::pair<double, SmallVector<LayerStrategy>>
  solveTraced(int64_t stage, unsigned start, unsigned end,
              ArrayRef<std::pair<unsigned, unsigned>> forced);
  bool honoursTies(ArrayRef<LayerStrategy> strategies, unsigned start) const;
  /// The best time and strategies of a stage whose weights are tied.
  std::pair<double, SmallVector<LayerStrategy>>
  solveStage(int64_t stage, unsigned start, unsigned end);

  /// Caps on the transient a stage's least memory is taken over: every
  /// strategy's transient.
  SmallVector<double> getTransientCaps();
  /// The least memory per device any plan of `configuration` needs (tied
  /// layers on one stage are not held to the same tp: a lower bound), and
  /// the strategies of such a plan when `plan` is given.
  double getMinimumMemory(const Configuration &configuration,
                          SmallVector<LayerStrategy> *plan = nullptr);
  SmallVector<LayerStrategy> getLeastMemoryStrategies(
      ArrayRef<std::vector<unsigned>> from,
      llvm::function_ref<double(int64_t, unsigned, unsigned, size_t *)>
          stageMemory,
      ArrayRef<double> caps);
  /// Whether some plan of `configuration` may fit (its least memory does).
  bool mayFit(Configuration &configuration);
  /// The error when no configuration fits, naming the plan that needs the
  /// least memory and what it lacks.
  llvm::Error describeNoFit(ArrayRef<Configuration> configurations,
                            double budget);
  /// The best time a plan of `configuration` must beat.
  double getTimeBound(const Configuration &configuration) const {
    return bestScore * static_cast<double>(configuration.globalBatch);
  }
  /// Keeps a plan of `time` for `configuration` (from the search's split,
  /// or a heuristic plan) when it is among the `keep` best configurations'
  /// best plans so far, by time per sequence; bestScore becomes the time
  /// per sequence a plan must beat.
  void keepPlan(const Configuration &configuration, double time,
                ArrayRef<unsigned> split, std::optional<ParallelPlan> plan);
  bool isKept(const Configuration &configuration) const;
  /// A feasible plan for `configuration` from a quick heuristic (blocks
  /// split evenly; per stage, each layer's cheapest time + lambda * memory
  /// with the least lambda that fits), or none.
  std::optional<ParallelPlan> getHeuristicPlan(const Configuration &configuration);

  const ModelProfile &model;
  const ClusterSpec &cluster;
  const SearchOptions &options;
  unsigned layers;
  SearchStatistics statistics;
  double budget = 0, usable = 0, quantum = 0;
  /// Round memory down instead of up (a relaxation giving lower bounds).
  bool relaxed = false;
  /// A relaxed pass is abandoned (it bounds nothing) once the DP has
  /// visited more states than this.
  int64_t relaxedStateLimit = 0;
  bool abandoned = false;
  int64_t capacity = 0;
  SmallVector<Tie> ties;
  unsigned maxTiedOwner = 0;
  SmallVector<unsigned> cutIds;

  // Shape state.
  int64_t pp = 0, devicesPerStage = 0, microBatch = 0;
  std::vector<Layout> layouts;
  /// Keyed by (pp, micro-batch, signature, copies, offset key); kept across
  /// shapes so bounds and exploration price each strategy once.
  std::map<std::tuple<int64_t, int64_t, unsigned, unsigned, int>,
           std::vector<CostedStrategy>>
      costs;
  std::map<std::tuple<int64_t, int64_t, unsigned, int>, std::vector<double>>
      transitions, boundaries;

  // Configuration state.
  Configuration current{};
  /// A stage slower than this cannot be part of a better plan: best / m.
  double stageBound = kInfinity;
  /// Per stage: the latest start and the earliest end a better plan can
  /// have (computeWindows).
  std::vector<unsigned> latestStarts, earliestEnds;
  std::map<std::tuple<unsigned, unsigned, int, int64_t>, CandidateSet>
      candidates;
  std::vector<std::unique_ptr<Engine>> engines;
  std::map<std::tuple<int64_t, unsigned, unsigned>, double> stageTimes;

  // The best plan of each of the `keep` best configurations so far, best
  // first by time per sequence: a heuristic plan, or the search's split.
  struct KeptPlan {
    Configuration configuration;
    double time;
    SmallVector<unsigned> split;
    std::optional<ParallelPlan> heuristic;
  };
  unsigned keep;
  std::vector<KeptPlan> kept;
  /// Plans must be faster than `scoreBound` seconds per sequence;
  /// bestScore is the time per sequence a plan must beat (the last kept
  /// plan's once `keep` are kept).
  double scoreBound, bestScore;
  // The plan being recovered.
  std::optional<ParallelPlan> incumbent;
  Configuration bestConfiguration{};
  SmallVector<unsigned> bestSplit;
};

} // namespace

//===----------------------------------------------------------------------===//
// Shapes: devices per stage and micro-batch size
//===----------------------------------------------------------------------===//

void Searcher::prepareShape(int64_t newPp, int64_t newMicroBatch) {
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

StageContext Searcher::getContext(int64_t stage, unsigned firstLayer) const {
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

StageContext Searcher::getContextForOffset(int offsetKey,
                                           unsigned firstLayer) const {
  int64_t stage = 0;
  while (getOffsetKey(stage) != offsetKey)
    ++stage;
  return getContext(stage, firstLayer);
}

/// Costs repeat with period devices-per-node in the first device (group
/// shapes), except whether the stage sits on the first node.
int Searcher::getOffsetKey(int64_t stage) const {
  int64_t first = stage * devicesPerStage;
  return static_cast<int>((first % cluster.devicesPerNode) * 2 +
                          (first >= cluster.devicesPerNode ? 1 : 0));
}

unsigned Searcher::getLayout(const LayerStrategy &strategy) const {
  int64_t dp = devicesPerStage / strategy.tp;
  bool consecutive = strategy.consecutive || strategy.tp == 1 || dp == 1;
  bool sp = strategy.splitsSequence();
  for (auto [index, layout] : llvm::enumerate(layouts))
    if (layout.tp == strategy.tp && layout.consecutive == consecutive &&
        layout.sp == sp)
      return index;
  llvm_unreachable("strategy outside the layout classes");
}

unsigned Searcher::getTieKey(const LayerStrategy &strategy) const {
  // How the layer splits its weights: Ulysses keeps them whole.
  int64_t split = strategy.getWeightSplit();
  int64_t dp = devicesPerStage / split;
  bool consecutive = strategy.consecutive || split == 1 || dp == 1;
  return static_cast<unsigned>(split * 2 + (consecutive ? 1 : 0));
}

unsigned Searcher::getCopies(unsigned layer, unsigned start) const {
  unsigned copies = 0;
  for (const LayerProfile::Parameter &param : model.layers[layer].parameters)
    if (param.owner != layer && param.owner < start)
      ++copies;
  return copies;
}

const std::vector<CostedStrategy> &
Searcher::getCosts(unsigned layer, unsigned start, int offsetKey) {
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

double Searcher::getMinimumTime(unsigned layer, int64_t microBatches) {
  double best = kInfinity;
  SmallVector<int, 4> keys;
  for (int64_t stage = 0; stage < pp; ++stage)
    if (!llvm::is_contained(keys, getOffsetKey(stage)))
      keys.push_back(getOffsetKey(stage));
  // Copies only add work, so counting none bounds from below.
  for (int key : keys)
    for (const CostedStrategy &costed : getCosts(layer, 0, key))
      best = std::min(best, costed.cost.getMicroBatchTime(microBatches));
  return best;
}

const std::vector<double> &Searcher::getTransitions(unsigned layer,
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

const std::vector<double> &Searcher::getBoundary(unsigned layer,
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

double Searcher::getTransfer(int64_t stage, unsigned boundaryLayer) {
  return getPipelineTransferTime(stage, model.layers[boundaryLayer].inputCut,
                                 getContext(stage, 0));
}

//===----------------------------------------------------------------------===//
// Configurations
//===----------------------------------------------------------------------===//

void Searcher::prepareConfiguration(const Configuration &configuration) {
  current = configuration;
  stageBound = getTimeBound(configuration) /
               static_cast<double>(configuration.microBatches) * (1.0 + 1e-9);
  candidates.clear();
  engines.clear();
  stageTimes.clear();
}

int64_t Searcher::getInFlight(int64_t stage) const {
  if (current.schedule == PipelineSchedule::gpipe)
    return current.microBatches;
  return std::min(current.microBatches, pp - stage);
}

const CandidateSet &Searcher::getCandidates(unsigned layer, unsigned start,
                                            int offsetKey, int64_t inFlight) {
  const LayerProfile &profile = model.layers[layer];
  auto key = std::make_tuple(profile.signature, getCopies(layer, start),
                             offsetKey, inFlight);
  auto it = candidates.find(key);
  if (it != candidates.end())
    return it->second;
  const std::vector<CostedStrategy> &list = getCosts(layer, start, offsetKey);
  CandidateSet set(layouts.size());
  for (auto [index, costed] : llvm::enumerate(list)) {
    auto toQuanta = [&](double bytes) {
      return static_cast<int32_t>(relaxed ? std::floor(bytes / quantum)
                                          : quantize(bytes, quantum));
    };
    Candidate candidate{costed.cost.getMicroBatchTime(current.microBatches),
                        toQuanta(costed.cost.getMemory(inFlight)),
                        toQuanta(costed.cost.transient),
                        static_cast<int32_t>(index)};
    if (candidate.memory + candidate.transient > capacity)
      continue;
    set[costed.layout].push_back(candidate);
  }
  // Within a layout class, transitions are equal: drop dominated ones
  // (for a layer with a tie, only among strategies splitting the tied
  // weights alike).
  bool tied = llvm::any_of(ties, [&](const Tie &tie) {
    return tie.owner == layer || tie.reader == layer;
  });
  auto tieKey = [&](const Candidate &c) {
    return tied ? getTieKey(list[c.strategy].strategy) : 0u;
  };
  for (std::vector<Candidate> &group : set) {
    llvm::sort(group, [](const Candidate &a, const Candidate &b) {
      return std::tie(a.memory, a.transient, a.time, a.strategy) <
             std::tie(b.memory, b.transient, b.time, b.strategy);
    });
    std::vector<Candidate> kept;
    for (const Candidate &c : group) {
      bool dominated = llvm::any_of(kept, [&](const Candidate &k) {
        return k.memory <= c.memory && k.transient <= c.transient &&
               k.time <= c.time && tieKey(k) == tieKey(c);
      });
      if (!dominated)
        kept.push_back(c);
    }
    group = std::move(kept);
  }
  return candidates.emplace(key, std::move(set)).first->second;
}

namespace {
/// Builds a Pareto set of states (none beats another in memory, transient
/// and time) from states arriving in increasing (memory, transient) order.
class ParetoBuilder {
public:
  explicit ParetoBuilder(std::vector<State> &out) : out(out) { out.clear(); }

  void add(const State &state) {
    // Stairs hold (transient, least time) with transient increasing and
    // time strictly decreasing over everything kept so far, all of which
    // has no more memory than `state`.
    auto after = llvm::upper_bound(
        stairs, state.transient,
        [](int32_t value, const std::pair<int32_t, double> &step) {
          return value < step.first;
        });
    if (after != stairs.begin() && std::prev(after)->second <= state.time)
      return;
    if (!out.empty() && out.back().memory == state.memory &&
        out.back().transient == state.transient)
      out.back() = state;
    else
      out.push_back(state);
    auto first = after;
    while (first != stairs.begin() &&
           std::prev(first)->first == state.transient)
      --first;
    auto last = after;
    while (last != stairs.end() && last->second >= state.time)
      ++last;
    stairs.insert(stairs.erase(first, last), {state.transient, state.time});
  }

private:
  std::vector<State> &out;
  SmallVector<std::pair<int32_t, double>, 16> stairs;
};

bool precedes(const State &a, const State &b) {
  return std::tie(a.memory, a.transient, a.time) <
         std::tie(b.memory, b.transient, b.time);
}

/// The states of every layout in one order by (memory, transient): one
/// k-way merge of the lists, shared by every target layout (the order does
/// not depend on the target, only the times do). `runs` holds the start of
/// each run of equal (memory, transient), and the order's end.
struct ArrivalOrder {
  struct Entry {
    uint32_t from, index;
  };
  std::vector<Entry> entries;
  std::vector<uint32_t> runs;

  void build(ArrayRef<std::vector<State>> sources) {
    entries.clear();
    runs.clear();
    struct Head {
      int32_t memory, transient;
      uint32_t from, index;
    };
    auto later = [](const Head &a, const Head &b) {
      return std::tie(b.memory, b.transient, b.from) <
             std::tie(a.memory, a.transient, a.from);
    };
    auto head = [&](uint32_t from, uint32_t index) {
      const State &state = sources[from][index];
      return Head{state.memory, state.transient, from, index};
    };
    SmallVector<Head, 32> heads;
    for (uint32_t from = 0; from < sources.size(); ++from)
      if (!sources[from].empty())
        heads.push_back(head(from, 0));
    std::make_heap(heads.begin(), heads.end(), later);
    while (!heads.empty()) {
      std::pop_heap(heads.begin(), heads.end(), later);
      Head &top = heads.back();
      const State *last =
          entries.empty()
              ? nullptr
              : &sources[entries.back().from][entries.back().index];
      if (!last || last->memory != top.memory ||
          last->transient != top.transient)
        runs.push_back(uint32_t(entries.size()));
      entries.push_back({top.from, top.index});
      if (top.index + 1 < sources[top.from].size()) {
        top = head(top.from, top.index + 1);
        std::push_heap(heads.begin(), heads.end(), later);
      } else {
        heads.pop_back();
      }
    }
    runs.push_back(uint32_t(entries.size()));
  }
};

/// out = Pareto(the states of every layout, each plus its change into the
/// target: changes[from * stride]), with back-pointers to them, from their
/// shared order. Of states of equal (memory, transient) only the fastest
/// can be kept.
void mergeArrivals(ArrayRef<std::vector<State>> sources,
                   const ArrivalOrder &order, const double *changes,
                   size_t stride, std::vector<State> &out) {
  ParetoBuilder builder(out);
  for (size_t run = 0; run + 1 < order.runs.size(); ++run) {
    const ArrivalOrder::Entry *best = nullptr;
    double bestTime = kInfinity;
    for (uint32_t i = order.runs[run]; i < order.runs[run + 1]; ++i) {
      const ArrivalOrder::Entry &entry = order.entries[i];
      double time =
          sources[entry.from][entry.index].time + changes[entry.from * stride];
      if (!best || time < bestTime) {
        best = &entry;
        bestTime = time;
      }
    }
    const State &state = sources[best->from][best->index];
    builder.add(State{state.memory, state.transient, bestTime,
                      static_cast<int32_t>(best->index),
                      static_cast<int16_t>(best->from), -1});
  }
}

/// out = Pareto(a ∪ b) for a and b sorted by (memory, transient).
void mergePareto(const std::vector<State> &a, const std::vector<State> &b,
                 std::vector<State> &out) {
  ParetoBuilder builder(out);
  size_t i = 0, j = 0;
  while (i < a.size() || j < b.size()) {
    if (j == b.size() || (i < a.size() && precedes(a[i], b[j])))
      builder.add(a[i++]);
    else
      builder.add(b[j++]);
  }
}
} // namespace

void Searcher::advance(Engine &engine) {
  unsigned layer = getLayerAt(engine, engine.processed);
  unsigned copiesStart = getCopiesStart(engine);
  const CandidateSet &set =
      getCandidates(layer, copiesStart, engine.offsetKey, engine.inFlight);
  const std::vector<CostedStrategy> &strategies =
      getCosts(layer, copiesStart, engine.offsetKey);
  size_t count = layouts.size();
  bool first = engine.processed == 0;
  const std::vector<double> *matrix = nullptr;
  const std::vector<double> *entry = nullptr;
  if (!first)
    matrix = &getTransitions(engine.reverse ? layer + 1 : layer,
                             engine.offsetKey);
  else if (engine.entry)
    entry = &getBoundary(layer, engine.offsetKey);

  // Tie restrictions on this layer.
  std::optional<unsigned> forcedKey;
  for (auto [owner, key] : engine.forced) {
    if (owner == layer)
      forcedKey = key;
    for (const Tie &tie : ties)
      if (tie.reader == layer && tie.owner == owner)
        forcedKey = key;
  }

  // What the rest of the stage needs at least, when the end is known.
  int32_t restMemory = 0, restTransient = 0;
  double restTime = 0;
  const RestBound *restBound = nullptr;
  size_t rest = engine.processed + 1;
  if (engine.boundLength && rest < engine.restTime.size()) {
    restMemory = engine.restMemory[rest];
    restTransient = engine.restTransient[rest];
    restTime = engine.restTime[rest];
    restBound = &engine.restBound[rest];
  }
  double timeLimit = stageBound - restTime;

  std::vector<std::vector<State>> next(count);
  std::vector<State> incoming, shifted, merged;
  ArrivalOrder order;
  if (!first)
    order.build(engine.states);
  for (size_t to = 0; to < count; ++to) {
    const std::vector<Candidate> &group = set[to];
    if (group.empty())
      continue;
    // A layout class holds TP and Ulysses strategies, which split tied
    // weights differently.
    auto tieAllowed = [&](const Candidate &candidate) {
      return !forcedKey ||
             getTieKey(strategies[candidate.strategy].strategy) == *forcedKey;
    };
    if (llvm::none_of(group, tieAllowed))
      continue;
    // Every way to arrive in layout `to`: from each layout's states plus
    // the layout change.
    incoming.clear();
    if (first)
      incoming.push_back({0, 0, entry ? (*entry)[to] : 0.0, -1, -1, -1});
    else
      mergeArrivals(engine.states, order, &(*matrix)[to], count, incoming);
    // Then this layer's strategies in that layout.
    std::vector<State> &result = next[to];
    for (const Candidate &candidate : group) {
      if (!tieAllowed(candidate))
        continue;
      shifted.clear();
      for (const State &state : incoming) {
        int32_t memory = state.memory + candidate.memory;
        if (memory + restMemory + candidate.transient > capacity)
          break; // incoming is sorted by memory
        int32_t transient = std::max(state.transient, candidate.transient);
        if (memory + restMemory + std::max(transient, restTransient) >
            capacity)
          continue;
        double time = state.time + candidate.time;
        if (time > timeLimit)
          continue;
        // The least time the rest needs with the memory left.
        if (restBound &&
            time + (*restBound)(double(capacity - memory -
                                       std::max(transient, restTransient))) >
                stageBound)
          continue;
        shifted.push_back({memory, transient, time, state.parent,
                           state.parentLayout, candidate.strategy});
      }
      statistics.dpStates += shifted.size();
      mergePareto(result, shifted, merged);
      std::swap(result, merged);
    }
  }
  ++statistics.dpSteps;
  engine.states = std::move(next);
  std::vector<double> best(count, kInfinity);
  bool alive = false;
  for (size_t layout = 0; layout < count; ++layout)
    for (const State &state : engine.states[layout]) {
      best[layout] = std::min(best[layout], state.time);
      alive = true;
    }
  engine.best.push_back(std::move(best));
  if (engine.trace) {
    engine.history.push_back(engine.states);
    engine.historyLayers.push_back(layer);
  }
  ++engine.processed;
  engine.dead = !alive;
}

void Searcher::setBoundLength(Engine &engine, unsigned length) {
  engine.boundLength = length;
  engine.restMemory.assign(length + 1, 0);
  engine.restTransient.assign(length + 1, 0);
  engine.restTime.assign(length + 1, 0.0);
  // Multipliers spanning the layers' exchange rates between time and
  // memory: from the fastest strategy to each leaner one.
  double low = kInfinity, high = 0;
  for (unsigned x = 0; x < length; ++x) {
    const CandidateSet &set =
        getCandidates(getLayerAt(engine, x), getCopiesStart(engine),
                      engine.offsetKey, engine.inFlight);
    const Candidate *fastest = nullptr;
    for (const std::vector<Candidate> &group : set)
      for (const Candidate &candidate : group)
        if (!fastest || candidate.time < fastest->time)
          fastest = &candidate;
    if (!fastest)
      continue;
    for (const std::vector<Candidate> &group : set)
      for (const Candidate &candidate : group)
        if (candidate.memory < fastest->memory) {
          double rate = (candidate.time - fastest->time) /
                        double(fastest->memory - candidate.memory);
          if (rate > 0) {
            low = std::min(low, rate);
            high = std::max(high, rate);
          }
        }
  }
  std::vector<double> lambdas;
  if (high > 0) {
    constexpr int kSteps = 128;
    low /= 4;
    high *= 4;
    for (int j = 0; j <= kSteps; ++j)
      lambdas.push_back(low * std::pow(high / low, double(j) / kSteps));
  }
  std::vector<double> restCost(lambdas.size(), 0.0);
  engine.restBound.assign(length + 1, RestBound());
  for (unsigned x = length; x-- > 0;) {
    const CandidateSet &set =
        getCandidates(getLayerAt(engine, x), getCopiesStart(engine),
                      engine.offsetKey, engine.inFlight);
    int32_t memory = std::numeric_limits<int32_t>::max();
    int32_t transient = std::numeric_limits<int32_t>::max();
    double time = kInfinity;
    std::vector<double> cost(lambdas.size(), kInfinity);
    for (const std::vector<Candidate> &group : set)
      for (const Candidate &candidate : group) {
        memory = std::min(memory, candidate.memory);
        transient = std::min(transient, candidate.transient);
        time = std::min(time, candidate.time);
        for (size_t j = 0; j < cost.size(); ++j)
          cost[j] = std::min(cost[j],
                             candidate.time + lambdas[j] * candidate.memory);
      }
    if (time == kInfinity) {
      // A layer with no strategy that fits: nothing completes.
      memory = static_cast<int32_t>(capacity) + 1;
      transient = 0;
    }
    engine.restMemory[x] = static_cast<int32_t>(std::min<int64_t>(
        int64_t(engine.restMemory[x + 1]) + memory, capacity + 1));
    engine.restTransient[x] = std::max(engine.restTransient[x + 1], transient);
    engine.restTime[x] = engine.restTime[x + 1] + time;
    for (size_t j = 0; j < cost.size(); ++j)
      restCost[j] += cost[j];
    engine.restBound[x] = RestBound(lambdas, restCost, engine.restTime[x]);
  }
}

/// The stage windows the time bound allows: stages before k cover [0, s)
/// and those after cover [e, L), each stage within best / m, and the
/// fastest strategies alone must fit in that time.
void Searcher::computeWindows() {
  latestStarts.assign(pp, layers);
  earliestEnds.assign(pp, 0);
  if (stageBound == kInfinity)
    return;
  // Lagrangian bounds of the time n stages need for layers [a, b): with
  // c_l(lambda) the least time + lambda * memory of layer l (fewest copies,
  // fewest micro-batches in flight, any offset), every split of [a, b) into
  // n fitting stages takes at least
  //   max over lambda of sum_{l in [a, b)} c_l(lambda) - lambda * n * budget.
  int64_t fewest =
      current.schedule == PipelineSchedule::gpipe ? current.microBatches : 1;
  SmallVector<int, 4> keys;
  for (int64_t stage = 0; stage < pp; ++stage)
    if (!llvm::is_contained(keys, getOffsetKey(stage)))
      keys.push_back(getOffsetKey(stage));
  std::vector<std::vector<Candidate>> options(layers);
  double low = kInfinity, high = 0;
  for (unsigned layer = 0; layer < layers; ++layer) {
    for (int key : keys)
      for (const std::vector<Candidate> &group :
           getCandidates(layer, 0, key, fewest))
        options[layer].insert(options[layer].end(), group.begin(), group.end());
    const Candidate *fastest = nullptr;
    for (const Candidate &candidate : options[layer])
      if (!fastest || candidate.time < fastest->time)
        fastest = &candidate;
    for (const Candidate &candidate : options[layer])
      if (fastest && candidate.memory < fastest->memory) {
        double rate = (candidate.time - fastest->time) /
                      double(fastest->memory - candidate.memory);
        if (rate > 0) {
          low = std::min(low, rate);
          high = std::max(high, rate);
        }
      }
  }
  SmallVector<double, 24> lambdas = {0.0};
  if (high > 0)
    for (int j = 0; j <= 20; ++j)
      lambdas.push_back(low / 4 *
                        std::pow(16 * high / low, double(j) / 20));
  // prefix[j][l]: sum of c(lambdas[j]) over layers [0, l).
  std::vector<std::vector<double>> prefix(
      lambdas.size(), std::vector<double>(layers + 1, 0.0));
  for (size_t j = 0; j < lambdas.size(); ++j)
    for (unsigned layer = 0; layer < layers; ++layer) {
      double best = kInfinity;
      for (const Candidate &candidate : options[layer])
        best = std::min(best, candidate.time + lambdas[j] * candidate.memory);
      prefix[j][layer + 1] = prefix[j][layer] + best;
    }
  auto bound = [&](unsigned a, unsigned b, int64_t stages) {
    double result = 0;
    for (size_t j = 0; j < lambdas.size(); ++j)
      result = std::max(result, prefix[j][b] - prefix[j][a] -
                                    lambdas[j] * double(stages) * capacity);
    return result;
  };
  for (int64_t k = 0; k < pp; ++k) {
    unsigned start = 0;
    while (start < layers &&
           bound(0, start + 1, k) <= stageBound * static_cast<double>(k))
      ++start;
    latestStarts[k] = start;
    unsigned end = layers;
    while (end > 0 && bound(end - 1, layers, pp - 1 - k) <=
                          stageBound * static_cast<double>(pp - 1 - k))
      --end;
    earliestEnds[k] = end;
  }
}

unsigned Searcher::getMinimumLength(int64_t stage) const {
  if (stage >= static_cast<int64_t>(latestStarts.size()) ||
      earliestEnds[stage] <= latestStarts[stage])
    return 1;
  return earliestEnds[stage] - latestStarts[stage];
}

/// A lower bound on a configuration's iteration time that accounts for
/// memory: with every layer priced at its cheapest t + lambda * memory and
/// the stages' memory pooled (each stage fits, so all layers together fit
/// pp budgets),
///   sum_k t_k >= max over lambda >= 0 of
///                sum_l min_s (t_ls + lambda * a_ls) - lambda * pp * budget,
/// with the memory of each layer at its smallest in-flight count; then
/// T >= (1 + (m - 1) / pp) * sum_k t_k.
double Searcher::getLowerBound(const Configuration &configuration) {
  prepareShape(configuration.pp, configuration.getMicroBatch());
  current = configuration;
  int64_t smallestInFlight =
      configuration.schedule == PipelineSchedule::gpipe
          ? configuration.microBatches
          : 1;
  // Distinct (signature, offset) groups with their counts; the cheapest
  // combination over offsets and copies keeps the bound valid.
  SmallVector<int, 4> keys;
  for (int64_t stage = 0; stage < pp; ++stage)
    if (!llvm::is_contained(keys, getOffsetKey(stage)))
      keys.push_back(getOffsetKey(stage));
  std::map<unsigned, std::pair<unsigned, int64_t>> groups; // sig -> layer, n
  for (unsigned layer = 0; layer < layers; ++layer) {
    auto &group = groups[model.layers[layer].signature];
    if (group.second++ == 0)
      group.first = layer;
  }
  struct Option {
    double time, memory;
  };
  std::vector<std::pair<int64_t, std::vector<Option>>> options;
  for (auto &[signature, group] : groups) {
    std::vector<Option> list;
    for (int key : keys)
      for (const CostedStrategy &costed : getCosts(group.first, 0, key))
        list.push_back(
            {costed.cost.getMicroBatchTime(configuration.microBatches),
             costed.cost.getMemory(smallestInFlight)});
    options.push_back({group.second, std::move(list)});
  }
  double pooled = static_cast<double>(pp) * usable;
  auto bound = [&](double lambda) {
    double total = -lambda * pooled;
    for (auto &[n, list] : options) {
      double best = kInfinity;
      for (const Option &option : list)
        best = std::min(best, option.time + lambda * option.memory);
      total += static_cast<double>(n) * best;
    }
    return total;
  };
  // Concave in lambda: a golden-section search on a log scale, starting
  // from lambda = 0 (the memory-blind bound).
  double best = bound(0.0);
  double lo = std::log(1e-18), hi = std::log(1e-6);
  const double ratio = 0.6180339887498949;
  double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
  double fa = bound(std::exp(a)), fb = bound(std::exp(b));
  for (int iteration = 0; iteration < 60; ++iteration) {
    if (fa < fb) {
      lo = a;
      a = b;
      fa = fb;
      b = lo + ratio * (hi - lo);
      fb = bound(std::exp(b));
    } else {
      hi = b;
      b = a;
      fb = fa;
      a = hi - ratio * (hi - lo);
      fa = bound(std::exp(a));
    }
  }
  best = std::max({best, fa, fb});
  return best * (1.0 + double(configuration.microBatches - 1) /
                           double(configuration.pp));
}

std::vector<PositionKey> Searcher::getSequence(unsigned start,
                                               unsigned length) const {
  std::vector<PositionKey> sequence;
  for (unsigned layer = start; layer < start + length; ++layer) {
    int ownerOffset = -1;
    for (const Tie &tie : ties)
      if (tie.reader == layer && tie.owner >= start)
        ownerOffset = static_cast<int>(layer - tie.owner);
    sequence.push_back({model.layers[layer].signature, getCopies(layer, start),
                        ownerOffset});
  }
  return sequence;
}

SmallVector<std::pair<unsigned, unsigned>>
Searcher::getForcedOwners(unsigned start, unsigned end) const {
  SmallVector<std::pair<unsigned, unsigned>> owners;
  for (const Tie &tie : ties)
    if (tie.owner >= start && tie.reader < end &&
        !llvm::any_of(owners, [&](auto &o) { return o.first == tie.owner; }))
      owners.push_back({tie.owner, 0});
  return owners;
}

Engine &Searcher::getEngine(int64_t stage, unsigned start, unsigned end) {
  int64_t inFlight = getInFlight(stage);
  int offsetKey = getOffsetKey(stage);
  bool entry = stage > 0;
  unsigned length = end - start;
  std::vector<PositionKey> sequence = getSequence(start, length);
  for (const std::unique_ptr<Engine> &engine : engines) {
    if (engine->reverse || !engine->forced.empty() ||
        engine->inFlight != inFlight || engine->offsetKey != offsetKey ||
        engine->entry != entry ||
        engine->boundLength > getMinimumLength(stage))
      continue;
    unsigned available = layers - engine->start;
    if (available < length)
      continue;
    if (getSequence(engine->start, length) == sequence)
      return *engine;
  }
  auto engine = std::make_unique<Engine>();
  engine->inFlight = inFlight;
  engine->offsetKey = offsetKey;
  engine->start = start;
  engine->entry = entry;
  engines.push_back(std::move(engine));
  return *engines.back();
}

double Searcher::readout(Engine &engine, unsigned start, unsigned end,
                         int64_t stage) {
  unsigned length = engine.reverse ? engine.start - start : end - start;
  while (engine.processed < length && !engine.dead) {
    if (relaxed && statistics.dpStates > relaxedStateLimit) {
      abandoned = true;
      return kInfinity;
    }
    advance(engine);
  }
  if (engine.processed < length)
    return kInfinity;
  const std::vector<double> &best = engine.best[length - 1];
  double result = kInfinity;
  for (size_t layout = 0; layout < layouts.size(); ++layout) {
    if (best[layout] == kInfinity)
      continue;
    double extra = 0;
    if (engine.reverse)
      extra = getBoundaryCost(start, layout, engine.offsetKey);
    else if (stage + 1 < pp)
      extra = getBoundaryCost(end, layout, engine.offsetKey);
    result = std::min(result, best[layout] + extra);
  }
  return result;
}

double Searcher::getStageTime(int64_t stage, unsigned start, unsigned end) {
  if (abandoned)
    return kInfinity;
  auto key = std::make_tuple(stage, start, end);
  auto cached = stageTimes.find(key);
  if (cached != stageTimes.end())
    return cached->second;
  double time = kInfinity;
  bool last = stage + 1 == pp;
  if (last && stage > 0 && start > maxTiedOwner) {
    // The last stage from a backward pass shared by every start.
    Engine *engine = nullptr;
    int64_t inFlight = getInFlight(stage);
    int offsetKey = getOffsetKey(stage);
    for (const std::unique_ptr<Engine> &candidate : engines)
      if (candidate->reverse && candidate->inFlight == inFlight &&
          candidate->offsetKey == offsetKey)
        engine = candidate.get();
    if (!engine) {
      auto created = std::make_unique<Engine>();
      created->inFlight = inFlight;
      created->offsetKey = offsetKey;
      created->start = layers;
      created->reverse = true;
      unsigned length = layers - std::min(layers - 1, latestStarts[stage]);
      if (stageBound < kInfinity && length > 1)
        setBoundLength(*created, length);
      engines.push_back(std::move(created));
      engine = engines.back().get();
    }
    time = readout(*engine, start, end, stage);
  } else {
    SmallVector<std::pair<unsigned, unsigned>> owners =
        getForcedOwners(start, end);
    // Every stage this pass will serve has at least `boundLength` layers.
    unsigned boundLength =
        pp == 1 ? end - start
                : std::min(layers - start, getMinimumLength(stage));
    if (owners.empty()) {
      Engine &engine = getEngine(stage, start, end);
      if (engine.processed == 0 && !engine.boundLength && boundLength > 1)
        setBoundLength(engine, boundLength);
      time = readout(engine, start, end, stage);
    } else {
      // Tied weights on this stage.
      time = solveStage(stage, start, end).first;
    }
  }
  if (time < kInfinity) {
    if (stage > 0)
      time += getTransfer(stage - 1, start);
    if (!last)
      time += getTransfer(stage, end);
  }
  stageTimes[key] = time;
  return time;
}

//===----------------------------------------------------------------------===//
// Exploring a configuration: the split
//===----------------------------------------------------------------------===//

void Searcher::explore(Configuration &configuration, int64_t fromBins,
                       int64_t toBins, int64_t relaxedBins) {
  // Passes at 4x coarser quanta first: their plans fit at the finer quanta
  // too (all round up, and 4 fine quanta make a coarse one), so each
  // pass's best time bounds the next, which then discards slow states
  // early. Coarse levels also run relaxed: memory rounded down, so every
  // plan that fits exactly fits there too and the relaxed optimum bounds
  // the configuration from below; once that bound reaches the best time
  // the configuration cannot win.
  int64_t fineCapacity = capacity;
  double fineQuantum = quantum;
  SmallVector<int64_t, 8> levels;
  for (int64_t bins = fineCapacity; bins >= 16; bins /= 4)
    if (bins >= fromBins && bins <= toBins)
      levels.push_back(fineCapacity / bins);
  for (int64_t scale : llvm::reverse(levels)) {
    if (configuration.lowerBound >= getTimeBound(configuration))
      break;
    capacity = fineCapacity / scale;
    quantum = fineQuantum * static_cast<double>(scale);
    int64_t visited = statistics.dpStates;
    explorePass(configuration);
    configuration.exactStates = statistics.dpStates - visited;
    if (capacity <= relaxedBins)
      tightenLowerBound(configuration);
  }
  capacity = fineCapacity;
  quantum = fineQuantum;
}

void Searcher::tightenLowerBound(Configuration &configuration) {
  if (configuration.relaxationStalled)
    return;
  // Rounding memory down admits far more states than rounding up where
  // memory is tight; a relaxed pass visiting many times the states of the
  // exact one costs more than it can save.
  relaxed = true;
  abandoned = false;
  relaxedStateLimit =
      statistics.dpStates +
      std::max<int64_t>(kRelaxedStateRatio * configuration.exactStates,
                        kRelaxedStatesPerLayer * layers);
  double bound = explorePass(configuration);
  relaxed = false;
  bool stopped = abandoned;
  abandoned = false;
  // A relaxation that does not raise the bound at this resolution rarely
  // refutes the configuration at finer ones, where it costs more than the
  // exact pass: no more of them.
  if (stopped || (bound <= configuration.lowerBound &&
                    capacity >= kStallCapacity)) {
    configuration.relaxationStalled = true;
    return;
  }
  configuration.lowerBound = std::max(configuration.lowerBound, bound);
}

double Searcher::explorePass(const Configuration &configuration) {
  prepareShape(configuration.pp, configuration.getMicroBatch());
  prepareConfiguration(configuration);
  computeWindows();
  double m = static_cast<double>(configuration.microBatches);

  // Lower bounds of stage times from each layer's fastest strategy.
  std::vector<double> prefix(layers + 1, 0.0);
  for (unsigned layer = 0; layer < layers; ++layer)
    prefix[layer + 1] =
        prefix[layer] + getMinimumTime(layer, configuration.microBatches);
  double lowerSum = prefix[layers];

  // Stage options within the bound best / m (a stage slower than that
  // cannot be part of a better plan).
  struct Option {
    unsigned end;
    double time;
  };
  // options[k][start]
  std::vector<std::vector<std::vector<Option>>> choices(
      pp, std::vector<std::vector<Option>>(layers));
  std::vector<double> values;
  auto collect = [&](double bound) {
    for (auto &perStage : choices)
      for (auto &perStart : perStage)
        perStart.clear();
    values.clear();
    for (int64_t k = 0; k < pp; ++k) {
      unsigned firstStart = k;
      unsigned lastStart = std::min(layers - unsigned(pp - k), latestStarts[k]);
      if (k == 0)
        lastStart = 0;
      for (unsigned start = firstStart; start <= lastStart; ++start) {
        if (k > 0 && options.space.stagesStartAtBlocks &&
            !model.layers[start].isTransformerBlock())
          continue;
        unsigned minEnd = std::max(start + 1, earliestEnds[k]);
        unsigned maxEnd = layers - (pp - 1 - k);
        if (k + 1 == pp)
          minEnd = layers;
        for (unsigned end = minEnd; end <= maxEnd; ++end) {
          if (m * (prefix[end] - prefix[start]) >= bound)
            break;
          double time = getStageTime(k, start, end);
          if (time == kInfinity) {
            // More layers only need more memory.
            if (k + 1 < pp)
              break;
            continue;
          }
          if (m * time >= bound)
            continue;
          choices[k][start].push_back({end, time});
          values.push_back(time);
        }
      }
    }
    llvm::sort(values);
    values.erase(std::unique(values.begin(), values.end()), values.end());
  };

  // The least sum of stage times with every stage at most `cap`, and the
  // split reaching it.
  auto leastSum = [&](double cap, SmallVector<unsigned> &split) {
    std::vector<std::vector<double>> sum(pp + 1,
                                         std::vector<double>(layers + 1,
                                                             kInfinity));
    std::vector<std::vector<unsigned>> from(
        pp + 1, std::vector<unsigned>(layers + 1, 0));
    sum[0][0] = 0;
    for (int64_t k = 0; k < pp; ++k)
      for (unsigned start = 0; start < layers; ++start) {
        if (sum[k][start] == kInfinity)
          continue;
        for (const Option &option : choices[k][start]) {
          if (option.time > cap)
            continue;
          double total = sum[k][start] + option.time;
          if (total < sum[k + 1][option.end]) {
            sum[k + 1][option.end] = total;
            from[k + 1][option.end] = start;
          }
        }
      }
    double result = sum[pp][layers];
    if (result < kInfinity) {
      split.assign(pp + 1, 0);
      split[pp] = layers;
      for (int64_t k = pp; k > 0; --k)
        split[k - 1] = from[k][split[k]];
    }
    return result;
  };

  double passBest = kInfinity;
  double bound = getTimeBound(configuration);
  collect(bound);
  // With one micro-batch the time is the plain sum: no bottleneck term.
  if (configuration.microBatches == 1 && !values.empty())
    values = {values.back()};
  for (double cap : values) {
    if (abandoned)
      break;
    if ((m - 1.0) * cap + std::max(lowerSum, cap) >= std::min(bound, passBest))
      break;
    SmallVector<unsigned> split;
    double sum = leastSum(cap, split);
    if (sum == kInfinity)
      continue;
    double total = sum + (m - 1.0) * cap;
    if (total < passBest) {
      passBest = total;
      if (!relaxed)
        keepPlan(configuration, total, split, std::nullopt);
    }
  }
  return passBest;
}

//===----------------------------------------------------------------------===//
// Reconstruction
//===----------------------------------------------------------------------===//

SmallVector<SmallVector<std::pair<unsigned, unsigned>>>
Searcher::getTieVariants(int64_t stage, unsigned start, unsigned end) {
  SmallVector<SmallVector<std::pair<unsigned, unsigned>>> variants;
  SmallVector<std::pair<unsigned, unsigned>> owners =
      getForcedOwners(start, end);
  SmallVector<SmallVector<unsigned>> keys;
  for (auto [owner, unused] : owners) {
    SmallVector<unsigned> ownerKeys;
    for (const CostedStrategy &costed :
         getCosts(owner, start, getOffsetKey(stage)))
      if (!llvm::is_contained(ownerKeys, getTieKey(costed.strategy)))
        ownerKeys.push_back(getTieKey(costed.strategy));
    if (ownerKeys.empty())
      return variants;
    keys.push_back(ownerKeys);
  }
  SmallVector<size_t> choice(owners.size(), 0);
  while (true) {
    SmallVector<std::pair<unsigned, unsigned>> forced;
    for (size_t i = 0; i < owners.size(); ++i)
      forced.push_back({owners[i].first, keys[i][choice[i]]});
    variants.push_back(forced);
    size_t i = 0;
    while (i < owners.size() && ++choice[i] == keys[i].size())
      choice[i++] = 0;
    if (i == owners.size())
      break;
  }
  return variants;
}

std::pair<double, SmallVector<LayerStrategy>> Searcher::solveTraced(
    int64_t stage, unsigned start, unsigned end,
    ArrayRef<std::pair<unsigned, unsigned>> forced) {
  Engine engine;
  engine.inFlight = getInFlight(stage);
  engine.offsetKey = getOffsetKey(stage);
  engine.start = start;
  engine.entry = stage > 0;
  engine.forced.assign(forced.begin(), forced.end());
  engine.trace = true;
  setBoundLength(engine, end - start);
  while (engine.processed < end - start && !engine.dead)
    advance(engine);
  if (engine.processed < end - start)
    return {kInfinity, {}};
  // The best final state, with the exit change.
  double best = kInfinity;
  int bestLayout = -1, bestIndex = -1;
  for (size_t layout = 0; layout < layouts.size(); ++layout) {
    double extra = stage + 1 < pp
                       ? getBoundaryCost(end, layout, engine.offsetKey)
                       : 0.0;
    for (auto [index, state] : llvm::enumerate(engine.states[layout]))
      if (state.time + extra < best) {
        best = state.time + extra;
        bestLayout = layout;
        bestIndex = index;
      }
  }
  if (bestLayout < 0)
    return {kInfinity, {}};
  SmallVector<LayerStrategy> strategies(end - start);
  int layout = bestLayout, index = bestIndex;
  for (int step = static_cast<int>(end - start) - 1; step >= 0; --step) {
    const State &state = engine.history[step][layout][index];
    unsigned layer = engine.historyLayers[step];
    LayerStrategy strategy =
        getCosts(layer, start, engine.offsetKey)[state.candidate].strategy;
    strategy.stage = stage;
    strategies[layer - start] = strategy;
    layout = state.parentLayout;
    index = state.parent;
  }
  return {best, std::move(strategies)};
}

bool Searcher::honoursTies(ArrayRef<LayerStrategy> strategies,
                           unsigned start) const {
  for (const Tie &tie : ties)
    if (tie.owner >= start && tie.reader < start + strategies.size() &&
        getTieKey(strategies[tie.reader - start]) !=
            getTieKey(strategies[tie.owner - start]))
      return false;
  return true;
}

std::pair<double, SmallVector<LayerStrategy>>
Searcher::solveStage(int64_t stage, unsigned start, unsigned end) {
  // Without the ties first: when its best plan honours them, it is the
  // answer; otherwise one pass per layout of the owners.
  auto relaxedResult = solveTraced(stage, start, end, {});
  if (relaxedResult.first == kInfinity ||
      honoursTies(relaxedResult.second, start))
    return relaxedResult;
  // Try first the owners' layouts the relaxed plan chose, and bound each
  // pass by the best one so far.
  auto variants = getTieVariants(stage, start, end);
  auto preferred = [&](const SmallVector<std::pair<unsigned, unsigned>> &v) {
    return llvm::all_of(v, [&](const std::pair<unsigned, unsigned> &owner) {
      return getTieKey(relaxedResult.second[owner.first - start]) ==
             owner.second;
    });
  };
  std::stable_partition(variants.begin(), variants.end(), preferred);
  double savedBound = stageBound;
  std::pair<double, SmallVector<LayerStrategy>> best{kInfinity, {}};
  for (const auto &forced : variants) {
    auto result = solveTraced(stage, start, end, forced);
    if (result.first < best.first) {
      best = std::move(result);
      stageBound = std::min(stageBound, best.first * (1.0 + 1e-9));
    }
  }
  stageBound = savedBound;
  return best;
}

SmallVector<LayerStrategy> Searcher::reconstruct(int64_t stage, unsigned start,
                                                 unsigned end) {
  return solveStage(stage, start, end).second;
}

//===----------------------------------------------------------------------===//
// A quick incumbent
//===----------------------------------------------------------------------===//

std::optional<ParallelPlan>
Searcher::getHeuristicPlan(const Configuration &configuration) {
  prepareShape(configuration.pp, configuration.getMicroBatch());
  prepareConfiguration(configuration);
  ParallelPlan plan;
  plan.devices = cluster.getDevices();
  plan.devicesPerNode = cluster.devicesPerNode;
  plan.pp = pp;
  plan.microBatches = configuration.microBatches;
  plan.globalBatch = configuration.globalBatch;
  plan.schedule = configuration.schedule;
  plan.precision = options.precision;
  plan.vocabDivisor = options.vocabDivisor;
  if (!assignStages(plan, model, {}).empty())
    return std::nullopt;
  unsigned start = 0;
  for (int64_t k = 0; k < pp; ++k) {
    unsigned end = start;
    while (end < layers && plan.layers[end].stage == k)
      ++end;
    if (end == start)
      return std::nullopt;
    int64_t inFlight = getInFlight(k);
    int offsetKey = getOffsetKey(k);
    // What the choices below read of each layer's strategies, computed once
    // for the stage (the bisections read it many times).
    struct Option {
      double time, memory;
      int64_t quanta, transient;
      unsigned tieKey;
      const CostedStrategy *costed;
    };
    std::vector<std::vector<Option>> options(end - start);
    for (unsigned layer = start; layer < end; ++layer)
      for (const CostedStrategy &costed : getCosts(layer, start, offsetKey)) {
        double memory = costed.cost.getMemory(inFlight);
        options[layer - start].push_back(
            {costed.cost.getMicroBatchTime(current.microBatches), memory,
             quantize(memory, quantum), quantize(costed.cost.transient, quantum),
             getTieKey(costed.strategy), &costed});
      }
    // The strategy of each layer for a multiplier, among those whose
    // transient stays within `cap`, honouring ties to an owner on this
    // stage.
    std::vector<const Option *> picks(end - start);
    auto choose = [&](double lambda, int64_t cap,
                      std::vector<const Option *> &into) {
      for (unsigned layer = start; layer < end; ++layer) {
        std::optional<unsigned> key;
        for (const Tie &tie : ties)
          if (tie.reader == layer && tie.owner >= start && into[tie.owner - start])
            key = into[tie.owner - start]->tieKey;
        const Option *best = nullptr;
        double bestScore = kInfinity;
        for (const Option &option : options[layer - start]) {
          if ((key && option.tieKey != *key) || option.transient > cap)
            continue;
          double score = lambda == kInfinity
                             ? option.memory
                             : option.time + lambda * option.memory;
          if (score < bestScore) {
            bestScore = score;
            best = &option;
          }
        }
        into[layer - start] = best;
      }
    };
    // Quanta used (with the cap) and time of a choice; infinity when a
    // layer has no strategy or it does not fit.
    auto measure = [&](const std::vector<const Option *> &choice,
                       int64_t cap, int64_t &used) {
      used = cap;
      double time = 0;
      for (const Option *pick : choice) {
        if (!pick)
          return kInfinity;
        used += pick->quanta;
        time += pick->time;
      }
      return used <= capacity ? time : kInfinity;
    };
    SmallVector<int64_t> caps;
    for (const std::vector<Option> &layer : options)
      for (const Option &option : layer)
        caps.push_back(option.transient);
    llvm::sort(caps);
    caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
    double bestStageTime = kInfinity;
    std::vector<const Option *> lean(end - start), rich(end - start);
    for (int64_t cap : caps) {
      int64_t used = 0;
      choose(kInfinity, cap, lean);
      if (measure(lean, cap, used) == kInfinity)
        continue;
      // Bisect the multiplier: `lean` fits, `rich` does not.
      double low = 0, high = 1e-12;
      choose(0, cap, rich);
      if (measure(rich, cap, used) < kInfinity) {
        lean = rich;
      } else {
        std::vector<const Option *> trial(end - start);
        while (high < 1e6) {
          choose(high, cap, trial);
          if (measure(trial, cap, used) < kInfinity)
            break;
          high *= 4;
        }
        if (measure(trial, cap, used) < kInfinity)
          lean = trial;
        for (int iteration = 0; iteration < 24; ++iteration) {
          double middle = std::sqrt(std::max(low, 1e-15) * high);
          choose(middle, cap, trial);
          if (measure(trial, cap, used) < kInfinity) {
            high = middle;
            lean = trial;
          } else {
            low = middle;
            rich = trial;
          }
        }
        // Upgrade layers to their richer choice while memory allows (the
        // rounding of the relaxation, which would mix the two).
        measure(lean, cap, used);
        for (size_t i = 0; i < lean.size(); ++i) {
          if (!rich[i] || rich[i] == lean[i] ||
              rich[i]->tieKey != lean[i]->tieKey)
            continue;
          int64_t extra = rich[i]->quanta - lean[i]->quanta;
          if (used + extra > capacity)
            continue;
          lean[i] = rich[i];
          used += extra;
        }
      }
      double time = measure(lean, cap, used);
      if (time < bestStageTime) {
        bestStageTime = time;
        picks = lean;
      }
    }
    if (bestStageTime == kInfinity)
      return std::nullopt;
    for (unsigned layer = start; layer < end; ++layer) {
      plan.layers[layer] = picks[layer - start]->costed->strategy;
      plan.layers[layer].stage = k;
    }
    start = end;
  }
  if (!plan.check(model).empty())
    return std::nullopt;
  PlanEvaluation evaluation = evaluatePlan(model, plan, cluster, usable);
  if (!fitsQuantized(plan, evaluation, usable, options.memoryBins))
    return std::nullopt;
  return plan;
}

//===----------------------------------------------------------------------===//
// Memory when nothing fits
//===----------------------------------------------------------------------===//

namespace {
/// Per stage: each layer's least memory under each cap on the transient,
/// and prefix sums over layers, for the least memory of any plan.
struct StageMemoryTables {
  /// [layer][cap]: with parameter copies counted as for a stage starting
  /// after every owner, or before all of them.
  const std::vector<std::vector<double>> *copies, *none;
  /// [cap][layer]: sums of the rows' finite entries (an infinite one would
  /// absorb every other term), and counts of the others.
  std::vector<std::vector<double>> prefix;
  std::vector<std::vector<int64_t>> blocked;
};
} // namespace

SmallVector<double> Searcher::getTransientCaps() {
  SmallVector<double> caps;
  // Layers of one signature with as many copies price alike.
  std::set<std::tuple<unsigned, unsigned, int>> seen;
  for (int64_t k = 0; k < pp; ++k)
    for (unsigned layer = 0; layer < layers; ++layer)
      for (unsigned start : {0u, layers}) {
        int key = getOffsetKey(k);
        if (!seen.insert({model.layers[layer].signature,
                          getCopies(layer, start), key})
                 .second)
          continue;
        for (const CostedStrategy &c : getCosts(layer, start, key))
          caps.push_back(c.cost.transient);
      }
  llvm::sort(caps);
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
  return caps;
}

double Searcher::getMinimumMemory(const Configuration &configuration,
                                  SmallVector<LayerStrategy> *plan) {
  constexpr double kHuge = 1e30;
  prepareShape(configuration.pp, configuration.getMicroBatch());
  prepareConfiguration(configuration);
  // A stage's least memory: over caps on the transient, the cap plus each
  // layer's least memory among strategies within the cap.
  SmallVector<double> caps = getTransientCaps();
  if (caps.empty())
    return kInfinity;
  // [(in flight, offset key, start)] -> [layer][cap], shared by the layers
  // of one signature.
  std::map<std::tuple<int64_t, int, unsigned>, std::vector<std::vector<double>>>
      rows;
  auto tableFor = [&](int64_t inFlight, int key, unsigned start)
      -> const std::vector<std::vector<double>> & {
    auto [it, inserted] =
        rows.insert({std::make_tuple(inFlight, key, start), {}});
    if (!inserted)
      return it->second;
    std::map<std::pair<unsigned, unsigned>, std::vector<double>> bySignature;
    for (unsigned layer = 0; layer < layers; ++layer) {
      auto signature = std::make_pair(model.layers[layer].signature,
                                      getCopies(layer, start));
      auto found = bySignature.find(signature);
      if (found == bySignature.end()) {
        SmallVector<std::pair<double, double>> options;
        for (const CostedStrategy &c : getCosts(layer, start, key))
          options.push_back({c.cost.transient, c.cost.getMemory(inFlight)});
        llvm::sort(options);
        std::vector<double> row(caps.size(), kHuge);
        double running = kHuge;
        size_t next = 0;
        for (size_t c = 0; c < caps.size(); ++c) {
          while (next < options.size() && options[next].first <= caps[c])
            running = std::min(running, options[next++].second);
          row[c] = running;
        }
        found = bySignature.emplace(signature, std::move(row)).first;
      }
      it->second.push_back(found->second);
    }
    return it->second;
  };
  std::vector<StageMemoryTables> stages(pp);
  for (int64_t k = 0; k < pp; ++k) {
    StageMemoryTables &tables = stages[k];
    tables.copies = &tableFor(getInFlight(k), getOffsetKey(k), layers);
    tables.none = &tableFor(getInFlight(k), getOffsetKey(k), 0);
    tables.prefix.assign(caps.size(), std::vector<double>(layers + 1, 0));
    tables.blocked.assign(caps.size(), std::vector<int64_t>(layers + 1, 0));
    for (size_t c = 0; c < caps.size(); ++c)
      for (unsigned layer = 0; layer < layers; ++layer) {
        double memory = (*tables.copies)[layer][c];
        bool fits = memory < kHuge;
        tables.prefix[c][layer + 1] =
            tables.prefix[c][layer] + (fits ? memory : 0.0);
        tables.blocked[c][layer + 1] = tables.blocked[c][layer] + !fits;
      }
  }
  // The least memory of stage k = [start, end), and the cap reaching it.
  auto stageMemory = [&](int64_t k, unsigned start, unsigned end,
                         size_t *bestCap = nullptr) {
    const StageMemoryTables &tables = stages[k];
    double best = kInfinity;
    for (size_t c = 0; c < caps.size(); ++c) {
      double total = caps[c] + tables.prefix[c][end] - tables.prefix[c][start];
      int64_t blocked = tables.blocked[c][end] - tables.blocked[c][start];
      // A weight tied to an owner on this stage is not a copy.
      for (const Tie &tie : ties) {
        if (tie.owner < start || tie.reader < start || tie.reader >= end)
          continue;
        double copy = (*tables.copies)[tie.reader][c];
        double none = (*tables.none)[tie.reader][c];
        if (copy >= kHuge)
          --blocked;
        else
          total -= copy;
        if (none >= kHuge)
          ++blocked;
        else
          total += none;
      }
      if (blocked == 0 && total < best) {
        best = total;
        if (bestCap)
          *bestCap = c;
      }
    }
    return best;
  };
  // Minimize the largest stage over splits. More layers need more memory,
  // so worst[k][s] grows with s while the next stage's memory shrinks: the
  // best start is where they cross.
  std::vector<std::vector<double>> worst(
      pp + 1, std::vector<double>(layers + 1, kInfinity));
  std::vector<std::vector<unsigned>> from(pp + 1,
                                          std::vector<unsigned>(layers + 1));
  worst[0][0] = 0;
  for (int64_t k = 0; k < pp; ++k) {
    unsigned firstEnd = k + 1 == pp ? layers : k + 1;
    for (unsigned end = firstEnd; end + (pp - 1 - k) <= layers; ++end) {
      unsigned low = k, high = end - 1; // candidate starts
      auto value = [&](unsigned start) {
        if (worst[k][start] == kInfinity)
          return kInfinity;
        return std::max(worst[k][start], stageMemory(k, start, end));
      };
      while (low < high) {
        unsigned middle = (low + high) / 2;
        if (worst[k][middle] >= stageMemory(k, middle, end))
          high = middle;
        else
          low = middle + 1;
      }
      worst[k + 1][end] = value(low);
      from[k + 1][end] = low;
      if (low > static_cast<unsigned>(k) && value(low - 1) < worst[k + 1][end]) {
        worst[k + 1][end] = value(low - 1);
        from[k + 1][end] = low - 1;
      }
    }
  }
  double least = worst[pp][layers];
  if (least >= kHuge)
    return kInfinity;
  if (plan)
    *plan = getLeastMemoryStrategies(from, stageMemory, caps);
  return least;
}

SmallVector<LayerStrategy> Searcher::getLeastMemoryStrategies(
    ArrayRef<std::vector<unsigned>> from,
    llvm::function_ref<double(int64_t, unsigned, unsigned, size_t *)>
        stageMemory,
    ArrayRef<double> caps) {
  SmallVector<LayerStrategy> strategies(layers);
  unsigned end = layers;
  for (int64_t k = pp; k > 0; --k) {
    unsigned start = from[k][end];
    size_t cap = 0;
    stageMemory(k - 1, start, end, &cap);
    int64_t inFlight = getInFlight(k - 1);
    for (unsigned layer = start; layer < end; ++layer) {
      const LayerStrategy *lean = nullptr;
      double least = kInfinity;
      for (const CostedStrategy &c :
           getCosts(layer, start, getOffsetKey(k - 1)))
        if (c.cost.transient <= caps[cap] &&
            c.cost.getMemory(inFlight) < least) {
          least = c.cost.getMemory(inFlight);
          lean = &c.strategy;
        }
      if (lean)
        strategies[layer] = *lean;
      strategies[layer].stage = k - 1;
    }
    end = start;
  }
  return strategies;
}

//===----------------------------------------------------------------------===//
// Driver
//===----------------------------------------------------------------------===//

llvm::Error Searcher::prepare() {
  const SearchSpace &space = options.space;
  int64_t devices = cluster.getDevices();
  if (!options.batchRange && options.globalBatch < 1)
    return makeError("the global batch must be positive");
  if (const std::optional<BatchRange> &range = options.batchRange) {
    if (range->minimum < 1 || range->step < 1 ||
        range->maximum < range->minimum)
      return makeError(llvm::formatv(
          "the batch range [{0}, {1}] in steps of {2} is empty or not "
          "positive",
          range->minimum, range->maximum, range->step));
    if (range->maximum > kMaxGlobalBatch)
      return makeError(llvm::formatv("max-batch {0} exceeds {1}",
                                     range->maximum, kMaxGlobalBatch));
    // GPipe holds every micro-batch: more of them need more memory, and
    // every count of the range would have to be searched.
    if (space.schedule == PipelineSchedule::gpipe)
      return makeError("a batch search needs the 1F1B schedule");
  }
  if (options.vocabDivisor < 1)
    return makeError("vocab-divisor must be positive");
  if (options.memoryBins < 16 || options.memoryBins > (1 << 24))
    return makeError("memory-bins must lie in [16, 16777216]");
  if (space.fixedPp > 0 && devices % space.fixedPp != 0)
    return makeError(llvm::formatv("pp = {0} does not divide the {1} devices",
                                   space.fixedPp, devices));
  if (space.fixedPp > static_cast<int64_t>(layers))
    return makeError(llvm::formatv("pp = {0} exceeds the model's {1} layers",
                                   space.fixedPp, layers));
  if (space.fixedMicroBatches > 0 && !options.batchRange &&
      options.globalBatch % space.fixedMicroBatches != 0)
    return makeError(llvm::formatv(
        "{0} micro-batches do not divide the global batch of {1}",
        space.fixedMicroBatches, options.globalBatch));
  budget = options.memoryBudget > 0 ? options.memoryBudget : cluster.memory;
  if (llvm::Error error = checkMemoryBudget(cluster, budget))
    return error;
  usable = getUsableMemory(cluster, budget);
  quantum = usable / static_cast<double>(options.memoryBins);
  capacity = options.memoryBins;

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
  return llvm::Error::success();
}

bool Searcher::everyLayerRuns(int64_t degree, int64_t batch) const {
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

llvm::Expected<std::vector<Configuration>>
Searcher::enumerateConfigurations() {
  if (options.batchRange)
    return enumerateBatchConfigurations();
  const SearchSpace &space = options.space;
  PipelineSchedule schedule =
      space.schedule.value_or(PipelineSchedule::pipedream_flush);
  std::vector<Configuration> configurations;
  int64_t globalBatch = options.globalBatch;
  for (int64_t degree :
       getPipelineDegrees(model, cluster.getDevices(), space)) {
    for (int64_t m : getMicroBatchCounts(globalBatch, space)) {
      if (!everyLayerRuns(degree, globalBatch / m))
        continue;
      Configuration configuration{degree, m, schedule, 0, globalBatch};
      configuration.lowerBound = getLowerBound(configuration);
      configurations.push_back(configuration);
      ++statistics.configurations;
    }
  }
  return configurations;
}

int64_t Searcher::getLargestMicroBatch(int64_t degree) {
  // A layer's memory is its states plus in-flight activations, linear in
  // the micro-batch; priced where every strategy exists (a micro-batch of
  // one sequence per device at dp = D), min over strategies of those lines
  // bounds it from below at any micro-batch (fewer strategies may exist
  // there, none leaner).
  int64_t perStage = cluster.getDevices() / degree;
  prepareShape(degree, perStage);
  struct Line {
    double fixed, slope;
  };
  std::vector<SmallVector<Line>> lines(layers);
  for (unsigned layer = 0; layer < layers; ++layer)
    for (int64_t stage = 0; stage < degree; ++stage)
      for (const CostedStrategy &c : getCosts(layer, 0, getOffsetKey(stage)))
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
  int64_t low = 0, high = options.batchRange->maximum;
  while (low < high) {
    int64_t middle = low + (high - low + 1) / 2;
    if (fits(middle))
      low = middle;
    else
      high = middle - 1;
  }
  return low;
}

llvm::Expected<std::vector<Configuration>>
Searcher::enumerateBatchConfigurations() {
  const BatchRange &range = *options.batchRange;
  const SearchSpace &space = options.space;
  PipelineSchedule schedule =
      space.schedule.value_or(PipelineSchedule::pipedream_flush);
  auto inRange = [&](int64_t batch) {
    return batch >= range.minimum && batch <= range.maximum &&
           batch % range.step == 0;
  };
  std::vector<Configuration> configurations;
  llvm::SmallDenseSet<int64_t, 64> batches;
  for (int64_t degree :
       getPipelineDegrees(model, cluster.getDevices(), space)) {
    int64_t largest = getLargestMicroBatch(degree);
    if (largest > kMaxMicroBatchSizes)
      return makeError(llvm::formatv(
          "the batch range allows {0} micro-batch sizes on {1} pipeline "
          "stages (memory bounds them only there); narrow max-batch or "
          "search micro-batch sizes in steps with batch-step",
          largest, degree));
    for (int64_t micro = 1; micro <= largest; ++micro) {
      // The largest batch of the range with this micro-batch, and those
      // with fewer micro-batches than stages.
      SmallVector<int64_t, 8> counts;
      int64_t unit = std::lcm(micro, range.step);
      int64_t top = range.maximum / unit * unit;
      if (top >= range.minimum && top / micro >= degree)
        counts.push_back(top / micro);
      for (int64_t m = 1; m < degree; ++m)
        if (inRange(m * micro))
          counts.push_back(m);
      if (space.fixedMicroBatches > 0)
        counts.assign(inRange(space.fixedMicroBatches * micro)
                          ? 1
                          : 0,
                      space.fixedMicroBatches);
      if (counts.empty() || !everyLayerRuns(degree, micro))
        continue;
      for (int64_t m : counts) {
        Configuration configuration{degree, m, schedule, 0, m * micro};
        configuration.lowerBound = getLowerBound(configuration);
        configurations.push_back(configuration);
        batches.insert(m * micro);
        ++statistics.configurations;
      }
    }
  }
  statistics.batches = batches.size();
  return configurations;
}

bool Searcher::mayFit(Configuration &configuration) {
  if (configuration.leastMemory < 0)
    configuration.leastMemory = getMinimumMemory(configuration);
  return configuration.leastMemory <= usable;
}

void Searcher::findBest(std::vector<Configuration> &configurations) {
  // Every configuration at coarse resolutions first, for an incumbent and
  // tighter lower bounds; then the promising ones at fine resolutions, in
  // the order of their bounds. A configuration whose least memory does not
  // fit is never explored.
  auto byBound = [](const Configuration &a, const Configuration &b) {
    return a.lowerBound / double(a.globalBatch) <
           b.lowerBound / double(b.globalBatch);
  };
  auto cannotWin = [&](const Configuration &configuration) {
    return configuration.lowerBound >= getTimeBound(configuration);
  };
  constexpr int64_t kCoarseBins = 64;
  llvm::stable_sort(configurations, byBound);
  for (Configuration &configuration : configurations) {
    if (!options.heuristicIncumbent || cannotWin(configuration))
      break;
    if (!mayFit(configuration))
      continue;
    if (std::optional<ParallelPlan> plan = getHeuristicPlan(configuration)) {
      double time = evaluatePlan(model, *plan, cluster, usable).iterationTime;
      keepPlan(configuration, time, {}, std::move(plan));
    }
  }
  for (Configuration &configuration : configurations) {
    if (cannotWin(configuration))
      break;
    if (!mayFit(configuration))
      continue;
    ++statistics.configurationsExplored;
    explore(configuration, 0, kCoarseBins, kCoarseBins);
  }
  llvm::stable_sort(configurations, byBound);
  for (Configuration &configuration : configurations) {
    if (cannotWin(configuration))
      break;
    if (!mayFit(configuration))
      continue;
    // Relaxed passes at rising resolutions first can refute it cheaply;
    // the configurations holding kept plans need their fine pass anyway.
    int64_t fineCapacity = capacity;
    double fineQuantum = quantum;
    bool holdsBest = isKept(configuration);
    for (int64_t bins = kCoarseBins * 4;
         !holdsBest && bins < options.memoryBins; bins *= 4) {
      if (cannotWin(configuration) || configuration.relaxationStalled)
        break;
      capacity = bins;
      quantum = usable / static_cast<double>(bins);
      tightenLowerBound(configuration);
    }
    capacity = fineCapacity;
    quantum = fineQuantum;
    explore(configuration, options.memoryBins, options.memoryBins, 0);
  }
}

llvm::Error Searcher::describeNoFit(ArrayRef<Configuration> configurations,
                                    double budget) {
  const Configuration *leanest = nullptr;
  for (const Configuration &configuration : configurations)
    if (configuration.leastMemory >= 0 &&
        (!leanest || configuration.leastMemory < leanest->leastMemory))
      leanest = &configuration;
  double gib = double(1ull << 30);
  if (!leanest || leanest->leastMemory == kInfinity)
    return makeError(
        llvm::formatv("no plan fits in {0:F2} GiB per device", budget / gib));
  SmallVector<LayerStrategy> strategies;
  double least = getMinimumMemory(*leanest, &strategies);
  const EfficiencyFactors &efficiency = cluster.efficiency;
  double needed =
      (least + efficiency.runtimeMemory) / (1.0 - efficiency.fragmentation);
  // The leanest plan, by the strategy of its middle layer (a block).
  const LayerStrategy &block = strategies[strategies.size() / 2];
  int64_t stageDevices = cluster.getDevices() / leanest->pp;
  std::string strategy = llvm::formatv(
      "{0} {1}, dp {2} {3}{4}", block.usesUlysses() ? "ulysses" : "tp",
      block.tp, stageDevices / block.tp,
      stringifyDataParallelType(block.dpType), block.ckpt ? ", checkpointed"
                                                          : "");
  return makeError(llvm::formatv(
      "no plan fits in {0:F2} GiB per device: the plan needing the least "
      "memory (pp = {1}, {2} micro-batches of {3}, '{4}' {5}) needs {6:F2} "
      "GiB per device, {7:F2} GiB more ({8:F2} GiB of model states, "
      "activations and buffers plus the runtime reserve)",
      budget / gib, leanest->pp, leanest->microBatches,
      leanest->getMicroBatch(), model.layers[strategies.size() / 2].name,
      strategy, needed / gib, (needed - budget) / gib, least / gib));
}

llvm::Expected<std::vector<SearchResult>> Searcher::run() {
  auto started = std::chrono::steady_clock::now();
  if (llvm::Error error = prepare())
    return std::move(error);
  llvm::Expected<std::vector<Configuration>> enumerated =
      enumerateConfigurations();
  if (!enumerated)
    return enumerated.takeError();
  std::vector<Configuration> &configurations = *enumerated;
  if (configurations.empty())
    return makeError(llvm::formatv(
        "no configuration in the search space: no pipeline degree, "
        "micro-batch count and tensor-parallel degree fit {0} devices and {1} "
        "(each layer's data-parallel degree must divide the micro-batch)",
        cluster.getDevices(),
        options.batchRange
            ? llvm::formatv("a global batch in [{0}, {1}] in steps of {2}",
                            options.batchRange->minimum,
                            options.batchRange->maximum,
                            options.batchRange->step)
                  .str()
            : llvm::formatv("a global batch of {0}", options.globalBatch)
                  .str()));
  findBest(configurations);
  if (kept.empty() && scoreBound < kInfinity)
    return std::vector<SearchResult>();
  if (kept.empty()) {
    // Every configuration's least memory is known unless a time bound
    // stopped the exploration.
    for (Configuration &configuration : configurations)
      mayFit(configuration);
    return describeNoFit(configurations, budget);
  }
  std::vector<SearchResult> results;
  for (KeptPlan &entry : kept) {
    llvm::Expected<SearchResult> result = recoverPlan(entry);
    if (!result)
      return result.takeError();
    result->statistics.seconds = std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - started)
                                     .count();
    results.push_back(std::move(*result));
  }
  return results;
}

llvm::Expected<SearchResult> Searcher::recoverPlan(KeptPlan &entry) {
  incumbent = std::move(entry.heuristic);
  bestConfiguration = entry.configuration;
  bestSplit = entry.split;
  SearchResult result;
  ParallelPlan &plan = result.plan;
  result.statistics = statistics;
  if (incumbent) {
    // Nothing beat the heuristic plan: it is optimal.
    plan = *incumbent;
    result.evaluation = evaluatePlan(model, plan, cluster, budget);
    return result;
  }
  // Recover the strategies of the winning configuration.
  prepareShape(bestConfiguration.pp, bestConfiguration.getMicroBatch());
  prepareConfiguration(bestConfiguration);
  plan.devices = cluster.getDevices();
  plan.devicesPerNode = cluster.devicesPerNode;
  plan.pp = bestConfiguration.pp;
  plan.microBatches = bestConfiguration.microBatches;
  plan.globalBatch = bestConfiguration.globalBatch;
  plan.schedule = bestConfiguration.schedule;
  plan.precision = options.precision;
  plan.vocabDivisor = options.vocabDivisor;
  for (int64_t k = 0; k < pp; ++k) {
    SmallVector<LayerStrategy> stage =
        reconstruct(k, bestSplit[k], bestSplit[k + 1]);
    if (stage.size() != bestSplit[k + 1] - bestSplit[k])
      return makeError("internal error: the search could not recover the "
                       "strategies of stage " +
                       llvm::Twine(k));
    plan.layers.append(stage.begin(), stage.end());
  }
  if (std::string error = plan.check(model); !error.empty())
    return makeError("internal error: the searched plan is inconsistent: " +
                     error);
  result.evaluation = evaluatePlan(model, plan, cluster, budget);
  double bestTime = entry.time;
  double difference = std::fabs(result.evaluation.iterationTime - bestTime);
  if (difference > 1e-6 * bestTime ||
      !fitsQuantized(plan, result.evaluation, usable, options.memoryBins))
    return makeError(llvm::formatv(
        "internal error: the search predicted {0} s but the plan evaluates to "
        "{1} s",
        bestTime, result.evaluation.iterationTime));
  return result;
}

void Searcher::keepPlan(const Configuration &configuration, double time,
                        ArrayRef<unsigned> split,
                        std::optional<ParallelPlan> plan) {
  double score = time / static_cast<double>(configuration.globalBatch);
  auto scoreOf = [](const KeptPlan &entry) {
    return entry.time / static_cast<double>(entry.configuration.globalBatch);
  };
  auto it = llvm::find_if(kept, [&](const KeptPlan &entry) {
    return entry.configuration == configuration;
  });
  if (it != kept.end()) {
    if (score >= scoreOf(*it))
      return;
    kept.erase(it);
  } else if (score >= bestScore) {
    return;
  }
  auto position = llvm::upper_bound(kept, score, [&](double s,
                                                     const KeptPlan &entry) {
    return s < scoreOf(entry);
  });
  kept.insert(position, KeptPlan{configuration, time,
                                 SmallVector<unsigned>(split), std::move(plan)});
  if (kept.size() > keep)
    kept.pop_back();
  bestScore = kept.size() < keep ? scoreBound : scoreOf(kept.back());
}

bool Searcher::isKept(const Configuration &configuration) const {
  return llvm::any_of(kept, [&](const KeptPlan &entry) {
    return entry.configuration == configuration;
  });
}

llvm::Expected<std::optional<SearchResult>>
mlir::galvatron::searchPlanBelow(const ModelProfile &model,
                                 const ClusterSpec &cluster,
                                 const SearchOptions &options,
                                 double secondsPerSequence) {
  Searcher searcher(model, cluster, options, 1, secondsPerSequence);
  auto results = searcher.run();
  if (!results)
    return results.takeError();
  if (results->empty())
    return std::nullopt;
  return std::optional<SearchResult>(std::move(results->front()));
}

llvm::Expected<SearchResult>
mlir::galvatron::searchPlan(const ModelProfile &model,
                            const ClusterSpec &cluster,
                            const SearchOptions &options) {
  auto results = searchPlans(model, cluster, options, 1);
  if (!results)
    return results.takeError();
  return std::move(results->front());
}

llvm::Expected<std::vector<SearchResult>>
mlir::galvatron::searchPlans(const ModelProfile &model,
                             const ClusterSpec &cluster,
                             const SearchOptions &options, unsigned count) {
  if (count < 1)
    return makeError("the number of plans must be positive");
  Searcher searcher(model, cluster, options, count, kInfinity);
  return searcher.run();
}
