//===- PlanSearch.cpp - Optimal hybrid-parallel plan search ---------------===//
//
// The driver of the search; its parts live in lib/Analysis/PlanSearch/
// (docs/architecture.md, "Plan search", has the full argument):
//
//  1. StrategySpace: configurations (pp, m, schedule) and, per pipeline
//     shape, each layer's strategies priced by the cost model.
//  2. SearchBounds: configurations are ordered by a lower bound on their
//     iteration time and explored until it reaches the best time found;
//     windows and rest bounds prune the stages and the states.
//  3. StageSolver: a stage's time for layers [s, e) from a dynamic program
//     over the layers (Pareto sets of (memory, transient, time) states per
//     layout class).
//  4. StageSplit: the split minimizing sum_k t_k + (m - 1) max_k t_k, at
//     coarse then fine memory resolutions.
//  5. PlanRecovery: the kept plans, whose stages are re-solved with
//     back-pointers and re-priced by evaluatePlan as a check.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/PlanSearch.h"

#include "PlanSearch/PlanRecovery.h"
#include "PlanSearch/SearchBounds.h"
#include "PlanSearch/StageSplit.h"

#include "galvatron/Support/Error.h"
#include "galvatron/Support/Debug.h"

#include "llvm/Support/FormatVariadic.h"

#include <chrono>

#define DEBUG_TYPE "plan-search"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

namespace {
class Searcher {
public:
  /// Searches the best plans of the `count` best configurations faster
  /// than `bound` seconds per sequence.
  Searcher(const ModelProfile &model, const ClusterSpec &cluster,
           const SearchOptions &options, unsigned count, double bound)
      : options(options), space(model, cluster, options, statistics),
        kept(count, bound) {}

  /// The best plans of the `count` best configurations, best first; none
  /// when no plan beats a finite bound.
  llvm::Expected<std::vector<SearchResult>> run();

private:
  /// Checks the options and sets up the memory accounting.
  llvm::Error prepare();
  /// The configurations with their lower bounds; an error when there are
  /// none.
  llvm::Expected<std::vector<Configuration>> getConfigurations();
  /// The kept plans with their strategies and evaluations.
  llvm::Expected<std::vector<SearchResult>>
  recoverPlans(std::chrono::steady_clock::time_point started);

  const SearchOptions &options;
  SearchStatistics statistics;
  StrategySpace space;
  KeptPlans kept;
  double budget = 0, usable = 0;
  /// The finest memory resolution.
  MemoryGrid fine;
};
} // namespace

llvm::Error Searcher::prepare() {
  const SearchSpace &searchSpace = options.space;
  const ClusterSpec &cluster = space.cluster;
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
    if (searchSpace.schedule == PipelineSchedule::gpipe)
      return makeError("a batch search needs the 1F1B schedule");
  }
  if (options.vocabDivisor < 1)
    return makeError("vocab-divisor must be positive");
  if (options.memoryBins < 16 || options.memoryBins > (1 << 24))
    return makeError("memory-bins must lie in [16, 16777216]");
  if (searchSpace.fixedPp > 0 && devices % searchSpace.fixedPp != 0)
    return makeError(llvm::formatv("pp = {0} does not divide the {1} devices",
                                   searchSpace.fixedPp, devices));
  if (searchSpace.fixedPp > static_cast<int64_t>(space.getLayerCount()))
    return makeError(llvm::formatv("pp = {0} exceeds the model's {1} layers",
                                   searchSpace.fixedPp,
                                   space.getLayerCount()));
  if (searchSpace.fixedMicroBatches > 0 && !options.batchRange &&
      options.globalBatch % searchSpace.fixedMicroBatches != 0)
    return makeError(llvm::formatv(
        "{0} micro-batches do not divide the global batch of {1}",
        searchSpace.fixedMicroBatches, options.globalBatch));
  budget = options.memoryBudget > 0 ? options.memoryBudget : cluster.memory;
  if (llvm::Error error = checkMemoryBudget(cluster, budget))
    return error;
  usable = getUsableMemory(cluster, budget);
  fine = MemoryGrid{usable / static_cast<double>(options.memoryBins),
                    options.memoryBins};
  return llvm::Error::success();
}

llvm::Expected<std::vector<Configuration>> Searcher::getConfigurations() {
  llvm::Expected<std::vector<Configuration>> configurations =
      enumerateConfigurations(space, usable);
  if (!configurations)
    return configurations.takeError();
  if (configurations->empty())
    return makeError(llvm::formatv(
        "no configuration in the search space: no pipeline degree, "
        "micro-batch count and tensor-parallel degree fit {0} devices and {1} "
        "(each layer's data-parallel degree must divide the micro-batch)",
        space.cluster.getDevices(),
        options.batchRange
            ? llvm::formatv("a global batch in [{0}, {1}] in steps of {2}",
                            options.batchRange->minimum,
                            options.batchRange->maximum,
                            options.batchRange->step)
                  .str()
            : llvm::formatv("a global batch of {0}", options.globalBatch)
                  .str()));
  for (Configuration &configuration : *configurations) {
    configuration.lowerBound = getLowerBound(space, configuration, usable);
    LLVM_DEBUG(llvm::dbgs() << "configuration " << configuration
                            << ": lower bound " << configuration.lowerBound
                            << " s\n");
  }
  return configurations;
}

llvm::Expected<std::vector<SearchResult>>
Searcher::recoverPlans(std::chrono::steady_clock::time_point started) {
  std::vector<SearchResult> results;
  for (KeptPlan &entry : kept.getPlans()) {
    llvm::Expected<SearchResult> result =
        recoverPlan(space, entry, fine, kept.getTimeBound(entry.configuration),
                    usable, budget);
    if (!result)
      return result.takeError();
    result->statistics.seconds = std::chrono::duration<double>(
                                     std::chrono::steady_clock::now() - started)
                                     .count();
    results.push_back(std::move(*result));
  }
  return results;
}

llvm::Expected<std::vector<SearchResult>> Searcher::run() {
  auto started = std::chrono::steady_clock::now();
  if (llvm::Error error = prepare())
    return std::move(error);
  llvm::Expected<std::vector<Configuration>> configurations =
      getConfigurations();
  if (!configurations)
    return configurations.takeError();
  SplitExplorer explorer(space, kept, fine, usable);
  explorer.explore(*configurations);
  if (kept.empty() && kept.isBounded())
    return std::vector<SearchResult>();
  if (kept.empty()) {
    // Every configuration's least memory is known unless a time bound
    // stopped the exploration.
    for (Configuration &configuration : *configurations)
      explorer.mayFit(configuration);
    return describeNoFit(space, *configurations, budget);
  }
  return recoverPlans(started);
}

//===----------------------------------------------------------------------===//
// The public API
//===----------------------------------------------------------------------===//

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
