//===- PlanRecovery.cpp - Kept plans and their strategies -----------------===//

#include "PlanRecovery.h"
#include "StageSolver.h"

#include "galvatron/Support/Error.h"
#include "galvatron/Support/Debug.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>

#define DEBUG_TYPE "plan-search-recovery"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

//===----------------------------------------------------------------------===//
// Kept plans
//===----------------------------------------------------------------------===//

static double getScore(const KeptPlan &entry) {
  return entry.time / static_cast<double>(entry.configuration.globalBatch);
}

void KeptPlans::offer(const Configuration &configuration, double time,
                      ArrayRef<unsigned> split,
                      std::optional<ParallelPlan> plan) {
  double score = time / static_cast<double>(configuration.globalBatch);
  auto it = llvm::find_if(plans, [&](const KeptPlan &entry) {
    return entry.configuration == configuration;
  });
  if (it != plans.end()) {
    if (score >= getScore(*it))
      return;
    plans.erase(it);
  } else if (score >= bestScore) {
    return;
  }
  auto position =
      llvm::upper_bound(plans, score, [&](double s, const KeptPlan &entry) {
        return s < getScore(entry);
      });
  LLVM_DEBUG(llvm::dbgs() << "keep " << configuration << ": " << time
                          << " s, " << (plan ? "heuristic plan" : "split")
                          << ", #" << (position - plans.begin()) + 1 << "\n");
  plans.insert(position, KeptPlan{configuration, time,
                                  SmallVector<unsigned>(split),
                                  std::move(plan)});
  if (plans.size() > keep)
    plans.pop_back();
  bestScore = plans.size() < keep ? scoreBound : getScore(plans.back());
}

bool KeptPlans::holds(const Configuration &configuration) const {
  return llvm::any_of(plans, [&](const KeptPlan &entry) {
    return entry.configuration == configuration;
  });
}

//===----------------------------------------------------------------------===//
// A quick incumbent
//===----------------------------------------------------------------------===//

namespace {
/// The heuristic's strategies for one stage: per cap on the transient, the
/// least multiplier lambda of memory whose cheapest time + lambda * memory
/// choices fit, then layers upgraded while memory allows.
class StageHeuristic {
public:
  StageHeuristic(StrategySpace &space, const Configuration &configuration,
                 MemoryGrid grid, int64_t stage, unsigned start, unsigned end);
  /// Each layer's strategy, or none when nothing fits.
  std::optional<SmallVector<LayerStrategy>> solve();

private:
  /// What the choices read of each layer's strategies, computed once for
  /// the stage (the bisections read it many times).
  struct Option {
    double time, memory;
    int64_t quanta, transient;
    unsigned tieKey;
    const CostedStrategy *costed;
  };
  using Choice = std::vector<const Option *>;
  /// The strategy of each layer for a multiplier, among those whose
  /// transient stays within `cap`, honouring ties to an owner on this
  /// stage.
  void choose(double lambda, int64_t cap, Choice &into) const;
  /// Quanta used (with the cap) and time of a choice; infinity when a
  /// layer has no strategy or it does not fit.
  double measure(const Choice &choice, int64_t cap, int64_t &used) const;
  /// The best choice within `cap` (`lean` fits on entry).
  void improve(int64_t cap, Choice &lean) const;

  StrategySpace &space;
  MemoryGrid grid;
  unsigned start, end;
  std::vector<std::vector<Option>> options;
};
} // namespace

StageHeuristic::StageHeuristic(StrategySpace &space,
                               const Configuration &configuration,
                               MemoryGrid grid, int64_t stage, unsigned start,
                               unsigned end)
    : space(space), grid(grid), start(start), end(end), options(end - start) {
  int64_t inFlight = configuration.getInFlight(stage);
  int offsetKey = space.getOffsetKey(stage);
  for (unsigned layer = start; layer < end; ++layer)
    for (const CostedStrategy &costed :
         space.getCosts(layer, start, offsetKey)) {
      double memory = costed.cost.getMemory(inFlight);
      options[layer - start].push_back(
          {costed.cost.getMicroBatchTime(configuration.microBatches), memory,
           quantize(memory, grid.quantum),
           quantize(costed.cost.transient, grid.quantum),
           space.getTieKey(costed.strategy), &costed});
    }
}

void StageHeuristic::choose(double lambda, int64_t cap, Choice &into) const {
  for (unsigned layer = start; layer < end; ++layer) {
    std::optional<unsigned> key;
    for (const Tie &tie : space.getTies())
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
}

double StageHeuristic::measure(const Choice &choice, int64_t cap,
                               int64_t &used) const {
  used = cap;
  double time = 0;
  for (const Option *pick : choice) {
    if (!pick)
      return kInfinity;
    used += pick->quanta;
    time += pick->time;
  }
  return used <= grid.capacity ? time : kInfinity;
}

void StageHeuristic::improve(int64_t cap, Choice &lean) const {
  int64_t used = 0;
  // Bisect the multiplier: `lean` fits, `rich` does not.
  Choice rich(end - start);
  double low = 0, high = 1e-12;
  choose(0, cap, rich);
  if (measure(rich, cap, used) < kInfinity) {
    lean = rich;
    return;
  }
  Choice trial(end - start);
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
    if (!rich[i] || rich[i] == lean[i] || rich[i]->tieKey != lean[i]->tieKey)
      continue;
    int64_t extra = rich[i]->quanta - lean[i]->quanta;
    if (used + extra > grid.capacity)
      continue;
    lean[i] = rich[i];
    used += extra;
  }
}

std::optional<SmallVector<LayerStrategy>> StageHeuristic::solve() {
  SmallVector<int64_t> caps;
  for (const std::vector<Option> &layer : options)
    for (const Option &option : layer)
      caps.push_back(option.transient);
  llvm::sort(caps);
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
  double bestStageTime = kInfinity;
  Choice picks(end - start), lean(end - start);
  for (int64_t cap : caps) {
    int64_t used = 0;
    choose(kInfinity, cap, lean);
    if (measure(lean, cap, used) == kInfinity)
      continue;
    improve(cap, lean);
    double time = measure(lean, cap, used);
    if (time < bestStageTime) {
      bestStageTime = time;
      picks = lean;
    }
  }
  if (bestStageTime == kInfinity)
    return std::nullopt;
  SmallVector<LayerStrategy> strategies;
  for (const Option *pick : picks)
    strategies.push_back(pick->costed->strategy);
  return strategies;
}

std::optional<ParallelPlan>
search::getHeuristicPlan(StrategySpace &space,
                         const Configuration &configuration, MemoryGrid grid,
                         double usable) {
  space.setShape(configuration.pp, configuration.getMicroBatch());
  ParallelPlan plan = space.makePlan(configuration);
  if (!assignStages(plan, space.model, {}).empty())
    return std::nullopt;
  unsigned layers = space.getLayerCount();
  unsigned start = 0;
  for (int64_t k = 0; k < configuration.pp; ++k) {
    unsigned end = start;
    while (end < layers && plan.layers[end].stage == k)
      ++end;
    if (end == start)
      return std::nullopt;
    std::optional<SmallVector<LayerStrategy>> strategies =
        StageHeuristic(space, configuration, grid, k, start, end).solve();
    if (!strategies)
      return std::nullopt;
    for (unsigned layer = start; layer < end; ++layer) {
      plan.layers[layer] = (*strategies)[layer - start];
      plan.layers[layer].stage = k;
    }
    start = end;
  }
  if (!plan.check(space.model).empty())
    return std::nullopt;
  PlanEvaluation evaluation =
      evaluatePlan(space.model, plan, space.cluster, usable);
  if (!fitsQuantized(plan, evaluation, usable, space.options.memoryBins))
    return std::nullopt;
  return plan;
}

//===----------------------------------------------------------------------===//
// Stage strategies
//===----------------------------------------------------------------------===//

SmallVector<StageSolver::ForcedKeys>
StageSolver::getTieVariants(int64_t stage, unsigned start, unsigned end) {
  SmallVector<ForcedKeys> variants;
  ForcedKeys owners = getForcedOwners(start, end);
  SmallVector<SmallVector<unsigned>> keys;
  for (auto [owner, unused] : owners) {
    SmallVector<unsigned> ownerKeys;
    for (const CostedStrategy &costed :
         space.getCosts(owner, start, space.getOffsetKey(stage)))
      if (!llvm::is_contained(ownerKeys, space.getTieKey(costed.strategy)))
        ownerKeys.push_back(space.getTieKey(costed.strategy));
    if (ownerKeys.empty())
      return variants;
    keys.push_back(ownerKeys);
  }
  SmallVector<size_t> choice(owners.size(), 0);
  while (true) {
    ForcedKeys forced;
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

std::pair<double, SmallVector<LayerStrategy>> StageSolver::solveTraced(
    int64_t stage, unsigned start, unsigned end,
    ArrayRef<std::pair<unsigned, unsigned>> forced, double timeBound) {
  Engine engine;
  engine.inFlight = configuration.getInFlight(stage);
  engine.offsetKey = space.getOffsetKey(stage);
  engine.start = start;
  engine.entry = stage > 0;
  engine.forced.assign(forced.begin(), forced.end());
  engine.timeBound = timeBound;
  engine.trace = true;
  setBoundLength(engine, end - start);
  while (engine.processed < end - start && !engine.dead)
    advance(engine);
  if (engine.processed < end - start)
    return {kInfinity, {}};
  // The best final state, with the exit change.
  double best = kInfinity;
  int bestLayout = -1, bestIndex = -1;
  for (size_t layout = 0; layout < space.getLayouts().size(); ++layout) {
    double extra =
        stage + 1 < configuration.pp
            ? space.getBoundaryCost(end, layout, engine.offsetKey)
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
        space.getCosts(layer, start, engine.offsetKey)[state.candidate]
            .strategy;
    strategy.stage = stage;
    strategies[layer - start] = strategy;
    layout = state.parentLayout;
    index = state.parent;
  }
  return {best, std::move(strategies)};
}

bool StageSolver::honoursTies(ArrayRef<LayerStrategy> strategies,
                              unsigned start) const {
  for (const Tie &tie : space.getTies())
    if (tie.owner >= start && tie.reader < start + strategies.size() &&
        space.getTieKey(strategies[tie.reader - start]) !=
            space.getTieKey(strategies[tie.owner - start]))
      return false;
  return true;
}

std::pair<double, SmallVector<LayerStrategy>>
StageSolver::solveStage(int64_t stage, unsigned start, unsigned end) {
  // Without the ties first: when its best plan honours them, it is the
  // answer; otherwise one pass per layout of the owners.
  auto relaxedResult = solveTraced(stage, start, end, {}, stageBound);
  if (relaxedResult.first == kInfinity ||
      honoursTies(relaxedResult.second, start))
    return relaxedResult;
  // Try first the owners' layouts the relaxed plan chose, and bound each
  // pass by the best one so far.
  SmallVector<ForcedKeys> variants = getTieVariants(stage, start, end);
  auto preferred = [&](const ForcedKeys &v) {
    return llvm::all_of(v, [&](const std::pair<unsigned, unsigned> &owner) {
      return space.getTieKey(relaxedResult.second[owner.first - start]) ==
             owner.second;
    });
  };
  std::stable_partition(variants.begin(), variants.end(), preferred);
  LLVM_DEBUG(llvm::dbgs() << "stage " << stage << " [" << start << ", " << end
                          << "): the best plan splits tied weights apart; "
                          << variants.size() << " tie variants\n");
  double bound = stageBound;
  std::pair<double, SmallVector<LayerStrategy>> best{kInfinity, {}};
  for (const ForcedKeys &forced : variants) {
    auto result = solveTraced(stage, start, end, forced, bound);
    if (result.first < best.first) {
      best = std::move(result);
      bound = std::min(bound, best.first * (1.0 + 1e-9));
    }
  }
  return best;
}

//===----------------------------------------------------------------------===//
// The plan of a kept entry
//===----------------------------------------------------------------------===//

llvm::Expected<SearchResult> search::recoverPlan(StrategySpace &space,
                                                 KeptPlan &entry,
                                                 MemoryGrid grid,
                                                 double timeBound,
                                                 double usable,
                                                 double budget) {
  SearchResult result;
  ParallelPlan &plan = result.plan;
  result.statistics = space.statistics;
  if (entry.heuristic) {
    // Nothing beat the heuristic plan: it is optimal.
    LLVM_DEBUG(llvm::dbgs() << "plan " << entry.configuration
                            << ": the heuristic plan\n");
    plan = std::move(*entry.heuristic);
    result.evaluation = evaluatePlan(space.model, plan, space.cluster, budget);
    return result;
  }
  // Recover the strategies of the winning configuration.
  const Configuration &configuration = entry.configuration;
  StageSolver solver(space, configuration, grid, timeBound);
  plan = space.makePlan(configuration);
  ArrayRef<unsigned> split = entry.split;
  for (int64_t k = 0; k < configuration.pp; ++k) {
    SmallVector<LayerStrategy> stage =
        solver.solveStage(k, split[k], split[k + 1]).second;
    if (stage.size() != split[k + 1] - split[k])
      return makeError("internal error: the search could not recover the "
                       "strategies of stage " +
                       llvm::Twine(k));
    LLVM_DEBUG(llvm::dbgs() << "plan " << configuration << ": stage " << k
                            << " = layers [" << split[k] << ", "
                            << split[k + 1] << ") reconstructed\n");
    plan.layers.append(stage.begin(), stage.end());
  }
  if (std::string error = plan.check(space.model); !error.empty())
    return makeError("internal error: the searched plan is inconsistent: " +
                     error);
  result.evaluation = evaluatePlan(space.model, plan, space.cluster, budget);
  double difference = std::fabs(result.evaluation.iterationTime - entry.time);
  if (difference > 1e-6 * entry.time ||
      !fitsQuantized(plan, result.evaluation, usable,
                     space.options.memoryBins))
    return makeError(llvm::formatv(
        "internal error: the search predicted {0} s but the plan evaluates to "
        "{1} s",
        entry.time, result.evaluation.iterationTime));
  return result;
}
