//===- SearchBounds.h - Bounds that prune the plan search -------*- C++ -*-===//
//
// Lower bounds on times and memory (private to lib/Analysis/PlanSearch):
// what a configuration needs at least (to order configurations and skip
// those that cannot win or cannot fit), where its stages may start and end
// (windows), and what the layers after a prefix of a stage still need (to
// discard dynamic-program states early). Every bound only under-estimates,
// so pruning never changes the plan found.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_PLANSEARCH_SEARCHBOUNDS_H
#define GALVATRON_LIB_ANALYSIS_PLANSEARCH_SEARCHBOUNDS_H

#include "StrategySpace.h"

#include "llvm/ADT/STLExtras.h"

namespace mlir::galvatron::search {

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

/// For a pass over the first `length` layers of a stage: lower bounds of
/// what the layers after each prefix x still need. byMemory[x] gives the
/// least time they need with `left` quanta of memory: the maximum over
/// multipliers lambda of the sum over those layers of their least
/// time + lambda * memory, less lambda * left (a Lagrangian bound).
struct RestBounds {
  unsigned length = 0;
  std::vector<int32_t> memory, transient;
  std::vector<double> time;
  std::vector<RestBound> byMemory;

  /// `candidatesAt(x)`: the candidates of the pass's x-th layer.
  static RestBounds
  compute(unsigned length, int64_t capacity,
          llvm::function_ref<const CandidateSet &(unsigned)> candidatesAt);
};

/// Per stage: the latest start and the earliest end a plan faster than the
/// stage bound can have.
struct StageWindows {
  std::vector<unsigned> latestStarts, earliestEnds;

  /// The least length a stage-k pass must reach to be useful: 1 when
  /// unknown.
  unsigned getMinimumLength(int64_t stage) const;
};

class StageSolver;
/// The windows of `solver`'s configuration under its stage bound.
StageWindows computeStageWindows(StageSolver &solver);

/// A lower bound on `configuration`'s iteration time that accounts for
/// memory (`usable` bytes per device).
double getLowerBound(StrategySpace &space, const Configuration &configuration,
                     double usable);

/// The least memory per device any plan of `configuration` needs (tied
/// layers on one stage are not held to the same tp: a lower bound), and
/// the strategies of such a plan when `plan` is given.
double getLeastMemory(StrategySpace &space, const Configuration &configuration,
                      SmallVector<LayerStrategy> *plan = nullptr);

/// The error when no configuration fits `budget`, naming the plan that
/// needs the least memory and what it lacks (their leastMemory computed).
llvm::Error describeNoFit(StrategySpace &space,
                          ArrayRef<Configuration> configurations,
                          double budget);

} // namespace mlir::galvatron::search

#endif // GALVATRON_LIB_ANALYSIS_PLANSEARCH_SEARCHBOUNDS_H
