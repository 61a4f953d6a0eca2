//===- StageSplit.h - Splitting the layers into stages ----------*- C++ -*-===//
//
// The exploration of configurations (private to lib/Analysis/PlanSearch):
// in the order of their lower bounds, at coarse then fine memory
// resolutions, each pass splitting the layers into pp stages to minimize
// sum_k t_k + (m - 1) max_k t_k exactly from the stage times of a
// StageSolver, and keeping the best splits.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESPLIT_H
#define GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESPLIT_H

#include "PlanRecovery.h"
#include "StrategySpace.h"

namespace mlir::galvatron::search {

/// Explores configurations with `fine` the finest memory resolution of
/// `usable` bytes per device, keeping the best plans in `kept`.
class SplitExplorer {
public:
  SplitExplorer(StrategySpace &space, KeptPlans &kept, MemoryGrid fine,
                double usable)
      : space(space), kept(kept), fine(fine), usable(usable) {}

  /// Explores the configurations in the order of their bounds, until no
  /// other can beat the kept plans.
  void explore(std::vector<Configuration> &configurations);
  /// Whether some plan of `configuration` may fit (its least memory does).
  bool mayFit(Configuration &configuration);

private:
  struct Pass {
    /// The best time found below the bound (infinity if none) and its
    /// split; whether a relaxed pass gave up.
    double time = kInfinity;
    SmallVector<unsigned> split;
    bool abandoned = false;
  };
  void seedWithHeuristics(MutableArrayRef<Configuration> configurations);
  /// Explores `configuration` at the memory resolutions from `fromBins`
  /// to `toBins`, tightening its lower bound with relaxed passes at
  /// `relaxedBins` quanta or fewer.
  void exploreLevels(Configuration &configuration, int64_t fromBins,
                     int64_t toBins, int64_t relaxedBins);
  /// A relaxed pass at `grid`'s resolution: its optimum bounds the
  /// configuration from below.
  void tightenLowerBound(Configuration &configuration, MemoryGrid grid);
  /// One pass at `grid`; an exact one keeps its best split.
  Pass explorePass(const Configuration &configuration, MemoryGrid grid,
                   int64_t stateLimit);
  /// Whether `phase` of the exploration stops at `configuration` (it and
  /// those after cannot win).
  bool endsPhase(const Configuration &configuration, StringRef phase) const;
  bool cannotWin(const Configuration &configuration) const {
    return configuration.lowerBound >= kept.getTimeBound(configuration);
  }

  StrategySpace &space;
  KeptPlans &kept;
  const MemoryGrid fine;
  const double usable;
};

} // namespace mlir::galvatron::search

#endif // GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESPLIT_H
