//===- PlanRecovery.h - Kept plans and their strategies ---------*- C++ -*-===//
//
// The plans the search keeps (private to lib/Analysis/PlanSearch): the best
// plan of each of the `count` best configurations, as a split whose stage
// strategies are recovered at the end by traced passes of the dynamic
// program, or as a whole plan from a quick heuristic that seeds the time
// bound.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_PLANSEARCH_PLANRECOVERY_H
#define GALVATRON_LIB_ANALYSIS_PLANSEARCH_PLANRECOVERY_H

#include "StrategySpace.h"

#include <optional>

namespace mlir::galvatron::search {

/// The best plan found for a configuration: a heuristic plan, or the
/// search's split with its predicted time.
struct KeptPlan {
  Configuration configuration;
  double time;
  SmallVector<unsigned> split;
  std::optional<ParallelPlan> heuristic;
};

/// The best plans of the `keep` best configurations so far, best first by
/// time per sequence, all faster than `scoreBound` seconds per sequence.
class KeptPlans {
public:
  KeptPlans(unsigned keep, double scoreBound)
      : keep(keep), scoreBound(scoreBound), bestScore(scoreBound) {}

  /// The time a plan of `configuration` must beat to be kept.
  double getTimeBound(const Configuration &configuration) const {
    return bestScore * static_cast<double>(configuration.globalBatch);
  }
  /// Keeps a plan of `time` for `configuration` (a split, or a heuristic
  /// plan) when it is among the best so far.
  void offer(const Configuration &configuration, double time,
             ArrayRef<unsigned> split, std::optional<ParallelPlan> plan);
  bool holds(const Configuration &configuration) const;
  bool empty() const { return plans.empty(); }
  /// Whether a finite bound was given (then finding none is no error).
  bool isBounded() const { return scoreBound < kInfinity; }
  MutableArrayRef<KeptPlan> getPlans() { return plans; }

private:
  unsigned keep;
  std::vector<KeptPlan> plans;
  /// bestScore is the time per sequence a plan must beat (the last kept
  /// plan's once `keep` are kept).
  double scoreBound, bestScore;
};

/// A feasible plan for `configuration` from a quick heuristic (blocks
/// split evenly; per stage, each layer's cheapest time + lambda * memory
/// with the least lambda that fits `grid`), or none.
std::optional<ParallelPlan> getHeuristicPlan(StrategySpace &space,
                                             const Configuration &configuration,
                                             MemoryGrid grid, double usable);

/// The plan of a kept entry with its evaluation against `budget` bytes per
/// device (`usable` of them): a heuristic plan as it is, a split with its
/// stages' strategies re-solved at `grid` under `timeBound` and checked
/// against the predicted time.
llvm::Expected<SearchResult> recoverPlan(StrategySpace &space, KeptPlan &entry,
                                         MemoryGrid grid, double timeBound,
                                         double usable, double budget);

} // namespace mlir::galvatron::search

#endif // GALVATRON_LIB_ANALYSIS_PLANSEARCH_PLANRECOVERY_H
