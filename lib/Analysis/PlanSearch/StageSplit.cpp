//===- StageSplit.cpp - Splitting the layers into stages ------------------===//
//
// The split minimizes sum_k t_k + (m - 1) max_k t_k exactly: for each
// candidate bottleneck B (stage times in increasing order) a shortest path
// over split points gives the least sum with every t_k <= B; the
// enumeration stops once (m - 1) B alone exceeds the best time.
//
//===----------------------------------------------------------------------===//

#include "StageSplit.h"
#include "SearchBounds.h"
#include "StageSolver.h"

#include "galvatron/Support/Debug.h"


#define DEBUG_TYPE "plan-search-split"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

/// A relaxed pass may visit this many times the states of the exact pass
/// before it, or this many per layer, before it is abandoned; and one at
/// this many memory bins or more that does not raise the lower bound ends
/// the configuration's relaxations.
static constexpr int64_t kRelaxedStateRatio = 4;
static constexpr int64_t kRelaxedStatesPerLayer = 1000;
static constexpr int64_t kStallCapacity = 64;
/// Every configuration is explored at this many memory bins or fewer
/// first.
static constexpr int64_t kCoarseBins = 64;

//===----------------------------------------------------------------------===//
// The split of one pass
//===----------------------------------------------------------------------===//

namespace {
/// The stages a pass may use: per stage and start, each end whose time is
/// within the bound, and every such time in increasing order.
struct StageOptions {
  struct Option {
    unsigned end;
    double time;
  };
  /// choices[k][start]
  std::vector<std::vector<std::vector<Option>>> choices;
  std::vector<double> times;

  /// Stages whose time times m stays below `bound`; `prefix` sums each
  /// layer's least time (a lower bound of any stage's).
  StageOptions(StageSolver &solver, ArrayRef<double> prefix, double bound);
  /// The least sum of stage times with every stage at most `cap`, and the
  /// split reaching it.
  double getLeastSum(double cap, SmallVector<unsigned> &split) const;
};
} // namespace

StageOptions::StageOptions(StageSolver &solver, ArrayRef<double> prefix,
                           double bound) {
  StrategySpace &space = solver.getSpace();
  const Configuration &configuration = solver.getConfiguration();
  const StageWindows &windows = solver.getWindows();
  int64_t pp = configuration.pp;
  unsigned layers = space.getLayerCount();
  double m = static_cast<double>(configuration.microBatches);
  choices.assign(pp, std::vector<std::vector<Option>>(layers));
  for (int64_t k = 0; k < pp; ++k) {
    unsigned firstStart = k;
    unsigned lastStart =
        std::min(layers - unsigned(pp - k), windows.latestStarts[k]);
    if (k == 0)
      lastStart = 0;
    for (unsigned start = firstStart; start <= lastStart; ++start) {
      if (k > 0 && space.options.space.stagesStartAtBlocks &&
          !space.model.layers[start].isTransformerBlock())
        continue;
      unsigned minEnd = std::max(start + 1, windows.earliestEnds[k]);
      unsigned maxEnd = layers - (pp - 1 - k);
      if (k + 1 == pp)
        minEnd = layers;
      for (unsigned end = minEnd; end <= maxEnd; ++end) {
        if (m * (prefix[end] - prefix[start]) >= bound)
          break;
        double time = solver.getStageTime(k, start, end);
        if (time == kInfinity) {
          // More layers only need more memory.
          if (k + 1 < pp)
            break;
          continue;
        }
        if (m * time >= bound)
          continue;
        choices[k][start].push_back({end, time});
        times.push_back(time);
      }
    }
  }
  llvm::sort(times);
  times.erase(std::unique(times.begin(), times.end()), times.end());
}

double StageOptions::getLeastSum(double cap,
                                 SmallVector<unsigned> &split) const {
  int64_t pp = choices.size();
  unsigned layers = choices.front().size();
  std::vector<std::vector<double>> sum(
      pp + 1, std::vector<double>(layers + 1, kInfinity));
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
}

SplitExplorer::Pass
SplitExplorer::explorePass(const Configuration &configuration,
                           MemoryGrid grid, int64_t stateLimit) {
  StageSolver solver(space, configuration, grid,
                     kept.getTimeBound(configuration), stateLimit);
  solver.setWindows(computeStageWindows(solver));
  double m = static_cast<double>(configuration.microBatches);
  unsigned layers = space.getLayerCount();

  // Lower bounds of stage times from each layer's fastest strategy.
  std::vector<double> prefix(layers + 1, 0.0);
  for (unsigned layer = 0; layer < layers; ++layer)
    prefix[layer + 1] = prefix[layer] +
                        space.getMinimumTime(layer, configuration.microBatches);
  double lowerSum = prefix[layers];

  // Stage options within the bound best / m (a stage slower than that
  // cannot be part of a better plan).
  double bound = kept.getTimeBound(configuration);
  StageOptions options(solver, prefix, bound);
  std::vector<double> caps = options.times;
  // With one micro-batch the time is the plain sum: no bottleneck term.
  if (configuration.microBatches == 1 && !caps.empty())
    caps = {caps.back()};
  Pass pass;
  for (double cap : caps) {
    if (solver.isAbandoned())
      break;
    if ((m - 1.0) * cap + std::max(lowerSum, cap) >= std::min(bound, pass.time))
      break;
    SmallVector<unsigned> split;
    double sum = options.getLeastSum(cap, split);
    if (sum == kInfinity)
      continue;
    double total = sum + (m - 1.0) * cap;
    if (total < pass.time) {
      pass.time = total;
      pass.split = split;
    }
  }
  pass.abandoned = solver.isAbandoned();
  LLVM_DEBUG({
    llvm::dbgs() << (grid.relaxed ? "relaxed" : "exact") << " pass "
                 << configuration << " at " << grid.capacity << " bins: ";
    if (pass.time == kInfinity)
      llvm::dbgs() << "no plan below " << bound << " s\n";
    else {
      llvm::dbgs() << "best split";
      for (unsigned point : pass.split)
        llvm::dbgs() << " " << point;
      llvm::dbgs() << " in " << pass.time << " s\n";
    }
  });
  if (!grid.relaxed && pass.time < kInfinity)
    kept.offer(configuration, pass.time, pass.split, std::nullopt);
  return pass;
}

//===----------------------------------------------------------------------===//
// Resolutions of one configuration
//===----------------------------------------------------------------------===//

void SplitExplorer::exploreLevels(Configuration &configuration,
                                  int64_t fromBins, int64_t toBins,
                                  int64_t relaxedBins) {
  // Passes at 4x coarser quanta first: their plans fit at the finer quanta
  // too (all round up, and 4 fine quanta make a coarse one), so each
  // pass's best time bounds the next, which then discards slow states
  // early. Coarse levels also run relaxed: memory rounded down, so every
  // plan that fits exactly fits there too and the relaxed optimum bounds
  // the configuration from below; once that bound reaches the best time
  // the configuration cannot win.
  SmallVector<int64_t, 8> levels;
  for (int64_t bins = fine.capacity; bins >= 16; bins /= 4)
    if (bins >= fromBins && bins <= toBins)
      levels.push_back(fine.capacity / bins);
  for (int64_t scale : llvm::reverse(levels)) {
    if (cannotWin(configuration))
      break;
    MemoryGrid grid{fine.quantum * static_cast<double>(scale),
                    fine.capacity / scale};
    int64_t visited = space.statistics.dpStates;
    explorePass(configuration, grid, std::numeric_limits<int64_t>::max());
    configuration.exactStates = space.statistics.dpStates - visited;
    if (grid.capacity <= relaxedBins)
      tightenLowerBound(configuration, grid);
  }
}

void SplitExplorer::tightenLowerBound(Configuration &configuration,
                                      MemoryGrid grid) {
  if (configuration.relaxationStalled)
    return;
  // Rounding memory down admits far more states than rounding up where
  // memory is tight; a relaxed pass visiting many times the states of the
  // exact one costs more than it can save.
  grid.relaxed = true;
  int64_t stateLimit =
      space.statistics.dpStates +
      std::max<int64_t>(kRelaxedStateRatio * configuration.exactStates,
                        kRelaxedStatesPerLayer * space.getLayerCount());
  Pass pass = explorePass(configuration, grid, stateLimit);
  // A relaxation that does not raise the bound at this resolution rarely
  // refutes the configuration at finer ones, where it costs more than the
  // exact pass: no more of them.
  if (pass.abandoned || (pass.time <= configuration.lowerBound &&
                         grid.capacity >= kStallCapacity)) {
    LLVM_DEBUG(llvm::dbgs() << "relaxations of " << configuration
                            << " stop: "
                            << (pass.abandoned ? "too many states"
                                               : "the bound did not rise")
                            << "\n");
    configuration.relaxationStalled = true;
    return;
  }
  LLVM_DEBUG(if (pass.time > configuration.lowerBound) llvm::dbgs()
             << "lower bound of " << configuration << " rises to "
             << pass.time << " s\n");
  configuration.lowerBound = std::max(configuration.lowerBound, pass.time);
}

//===----------------------------------------------------------------------===//
// Every configuration
//===----------------------------------------------------------------------===//

bool SplitExplorer::mayFit(Configuration &configuration) {
  if (configuration.leastMemory < 0)
    configuration.leastMemory = getLeastMemory(space, configuration);
  bool fits = configuration.leastMemory <= usable;
  LLVM_DEBUG(if (!fits) llvm::dbgs()
             << "skip " << configuration << ": its leanest plan needs "
             << configuration.leastMemory << " bytes per device of " << usable
             << "\n");
  return fits;
}

void SplitExplorer::seedWithHeuristics(
    MutableArrayRef<Configuration> configurations) {
  for (Configuration &configuration : configurations) {
    if (cannotWin(configuration))
      break;
    if (!mayFit(configuration))
      continue;
    std::optional<ParallelPlan> plan =
        getHeuristicPlan(space, configuration, fine, usable);
    if (!plan)
      continue;
    double time =
        evaluatePlan(space.model, *plan, space.cluster, usable).iterationTime;
    LLVM_DEBUG(llvm::dbgs() << "heuristic plan for " << configuration
                            << ": " << time << " s\n");
    kept.offer(configuration, time, {}, std::move(plan));
  }
}

bool SplitExplorer::endsPhase(const Configuration &configuration,
                              StringRef phase) const {
  if (!cannotWin(configuration))
    return false;
  LLVM_DEBUG(llvm::dbgs() << phase << " passes stop at " << configuration
                          << ": its bound " << configuration.lowerBound
                          << " s reaches the best time\n");
  return true;
}

void SplitExplorer::explore(std::vector<Configuration> &configurations) {
  // Every configuration at coarse resolutions first, for an incumbent and
  // tighter lower bounds; then the promising ones at fine resolutions, in
  // the order of their bounds. A configuration whose least memory does not
  // fit is never explored.
  auto byBound = [](const Configuration &a, const Configuration &b) {
    return a.lowerBound / double(a.globalBatch) <
           b.lowerBound / double(b.globalBatch);
  };
  llvm::stable_sort(configurations, byBound);
  if (space.options.heuristicIncumbent)
    seedWithHeuristics(configurations);
  for (Configuration &configuration : configurations) {
    if (endsPhase(configuration, "coarse"))
      break;
    if (!mayFit(configuration))
      continue;
    ++space.statistics.configurationsExplored;
    exploreLevels(configuration, 0, kCoarseBins, kCoarseBins);
  }
  llvm::stable_sort(configurations, byBound);
  for (Configuration &configuration : configurations) {
    if (endsPhase(configuration, "fine"))
      break;
    if (!mayFit(configuration))
      continue;
    // Relaxed passes at rising resolutions first can refute it cheaply;
    // the configurations holding kept plans need their fine pass anyway.
    bool holdsBest = kept.holds(configuration);
    for (int64_t bins = kCoarseBins * 4;
         !holdsBest && bins < space.options.memoryBins; bins *= 4) {
      if (cannotWin(configuration) || configuration.relaxationStalled)
        break;
      tightenLowerBound(configuration,
                        MemoryGrid{usable / static_cast<double>(bins), bins});
    }
    exploreLevels(configuration, space.options.memoryBins,
                  space.options.memoryBins, 0);
  }
}
