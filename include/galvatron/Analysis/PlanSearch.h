//===- PlanSearch.h - Optimal hybrid-parallel plan search -------*- C++ -*-===//
//
// Finds the plan with the lowest predicted iteration time (CostModel.h) that
// fits device memory, over the space:
//   pp        every divisor of the device count up to max-pp and the layer
//             count (or a fixed one),
//   m         every micro-batch count dividing the global batch (or a fixed
//             one),
//   schedule  1F1B (GPipe only when asked: it costs the same time and holds
//             more micro-batches, so it never wins),
//   split     every contiguous split of the layers into pp non-empty stages,
//   per layer tp (powers of two up to max-tp that divide the stage and the
//             layer's heads), used for Megatron TP (with or without its
//             sequence parallelism) or DeepSpeed-Ulysses sequence
//             parallelism, tp consecutiveness, dp type (ddp, zero1,
//             zero2, zero3), checkpointing; dp =
//             devices / pp / tp must divide the micro-batch; layers sharing
//             a weight on one stage share tp and consecutiveness.
//
// Memory is discretized: each layer's memory (model states plus in-flight
// activations) and each layer's transient are rounded up to a quantum of
// usable-memory / memory-bins bytes, and a stage fits when its rounded sum
// plus its largest rounded transient fits in the bins. "Optimal" means: no
// plan in the space that fits under this rounded accounting is predicted to
// be faster. The rounding only over-estimates, so the chosen plan fits
// exactly; plans missed are those within (layers per stage + 1) quanta of
// the budget. docs/architecture.md gives the algorithm and its complexity.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_PLANSEARCH_H
#define GALVATRON_ANALYSIS_PLANSEARCH_H

#include "galvatron/Analysis/CostModel.h"

#include <optional>

namespace mlir::galvatron {

/// One strategy several layers must share: the model-parallel group's
/// size and use, whether ZeRO-3 shards the weights (else the space's other
/// data-parallel types), and whether the layers may be checkpointed.
struct UniformStrategy {
  int64_t tp = 1;
  bool sp = false, ulysses = false, zero3 = false;
  bool checkpointing = false;
};

/// Restrictions of the search space.
struct SearchSpace {
  /// Largest TP degree (0 = devices per node) and smallest.
  int64_t maxTp = 0;
  int64_t minTp = 1;
  /// Largest pipeline degree (0 = no limit); a fixed one (0 = search).
  int64_t maxPp = 0;
  int64_t fixedPp = 0;
  /// A fixed micro-batch count (0 = search).
  int64_t fixedMicroBatches = 0;
  /// A fixed schedule (none = both, which means 1F1B; see above).
  std::optional<PipelineSchedule> schedule;
  bool sequenceParallel = true;
  /// DeepSpeed-Ulysses sequence parallelism as an alternative to TP.
  bool ulysses = true;
  bool checkpointing = true;
  bool nonConsecutiveTp = true;
  /// Allowed data-parallel types, indexed by DataParallelType.
  bool dpTypes[4] = {true, true, true, true};
  /// The strategy every transformer block uses, or every layer outside
  /// the blocks (embeddings, head), when given.
  std::optional<UniformStrategy> blocks, outside;
  /// Stages after the first start at a transformer block: the layers
  /// outside the blocks sit with the block before them (Galvatron's and
  /// Megatron's placement).
  bool stagesStartAtBlocks = false;
};

/// Global batches a batch search chooses among (Galvatron's min_bsz,
/// max_bsz and bsz_scale): the multiples of `step` in [minimum, maximum].
struct BatchRange {
  int64_t minimum = 0, maximum = 0, step = 1;
};

struct SearchOptions {
  int64_t globalBatch = 1;
  /// When given, the global batch is searched too: the plan with the most
  /// sequences per second over the range wins (globalBatch is unused).
  std::optional<BatchRange> batchRange;
  Precision precision = Precision::bf16;
  /// Split vocabularies are padded to a multiple of vocabDivisor x tp.
  int64_t vocabDivisor = kDefaultVocabDivisor;
  /// Bytes per device; 0 = the cluster's device memory.
  double memoryBudget = 0;
  /// Memory discretization: the usable memory is split into this many
  /// quanta.
  int64_t memoryBins = 4096;
  /// Seed the time bound with a quick heuristic plan per configuration.
  /// Only speed depends on it: the result is the same either way.
  bool heuristicIncumbent = true;
  SearchSpace space;
};

struct SearchStatistics {
  /// Layer strategies priced (evaluateLayer calls; identical layers share).
  int64_t strategiesEvaluated = 0;
  /// (pp, micro-batches, schedule) configurations in the space, and those
  /// not discarded by their lower bound.
  int64_t configurations = 0;
  int64_t configurationsExplored = 0;
  /// Layer steps of the dynamic program and states it generated.
  int64_t dpSteps = 0;
  int64_t dpStates = 0;
  /// A batch search: the global batches its configurations cover.
  int64_t batches = 0;
  double seconds = 0;
};

struct SearchResult {
  ParallelPlan plan;
  PlanEvaluation evaluation;
  SearchStatistics statistics;
};

/// Searches the space. Fails with a message when options are inconsistent
/// or when no plan fits, then naming the plan that needs the least memory
/// and how much it lacks.
///
/// A batch search (options.batchRange) looks for the most sequences per
/// second over global batches and plans. For a pipeline degree and a
/// micro-batch size with at least pp micro-batches, the memory a 1F1B plan
/// needs does not grow with their count and its time per sequence does not
/// either, so only the largest batch of the range with that micro-batch
/// size (and those with fewer micro-batches than stages) can win: the work
/// depends on the micro-batch sizes that fit memory, not on how large the
/// range is.
llvm::Expected<SearchResult> searchPlan(const ModelProfile &model,
                                        const ClusterSpec &cluster,
                                        const SearchOptions &options);

/// The same search for plans faster than `secondsPerSequence` (iteration
/// time / global batch): none when no plan is.
llvm::Expected<std::optional<SearchResult>>
searchPlanBelow(const ModelProfile &model, const ClusterSpec &cluster,
                const SearchOptions &options, double secondsPerSequence);

/// The trainer a plan must run on: any (our runtime, the whole space),
/// Galvatron's runtime, or Megatron-LM.
enum class PlanTarget { any, galvatron, megatron };
std::optional<PlanTarget> parsePlanTarget(llvm::StringRef name);

/// The fastest plan `target` can run (lib/Analysis/PlanTargets.cpp says
/// what each can): the best of searches over restricted spaces.
llvm::Expected<SearchResult> searchPlanFor(const ModelProfile &model,
                                           const ClusterSpec &cluster,
                                           const SearchOptions &options,
                                           PlanTarget target);

/// The `count` best plans of distinct (pp, micro-batches, schedule)
/// configurations, best first: each the optimal plan of its configuration,
/// and no configuration left out has a faster plan than the last one. The
/// first is searchPlan's. Fewer when fewer configurations have a plan that
/// fits; the statistics are the whole search's.
llvm::Expected<std::vector<SearchResult>>
searchPlans(const ModelProfile &model, const ClusterSpec &cluster,
            const SearchOptions &options, unsigned count);

//===----------------------------------------------------------------------===//
// The space, for tests that enumerate it
//===----------------------------------------------------------------------===//

/// Pipeline degrees in the space for `model` on `devices`.
SmallVector<int64_t> getPipelineDegrees(const ModelProfile &model,
                                        int64_t devices,
                                        const SearchSpace &space);
/// The divisors of `n` > 0, in increasing order.
SmallVector<int64_t> getDivisors(int64_t n);
/// Micro-batch counts in the space.
SmallVector<int64_t> getMicroBatchCounts(int64_t globalBatch,
                                         const SearchSpace &space);
/// Strategies of `layer` (stage 0) in a stage of `devicesPerStage` devices
/// running micro-batches of `microBatch` sequences.
SmallVector<LayerStrategy>
getLayerStrategies(const LayerProfile &layer, int64_t devicesPerStage,
                   int64_t devicesPerNode, int64_t microBatch,
                   const SearchSpace &space);

/// The restricted spaces whose union is what `target` runs (for TP degrees
/// up to `maxTp`).
SmallVector<SearchSpace> getTargetSpaces(const SearchSpace &space,
                                         PlanTarget target, int64_t maxTp);

/// The search's rounded memory accounting of an evaluated plan: whether
/// every stage fits `usableMemory` split into `memoryBins` quanta.
bool fitsQuantized(const ParallelPlan &plan, const PlanEvaluation &evaluation,
                   double usableMemory, int64_t memoryBins);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_PLANSEARCH_H
