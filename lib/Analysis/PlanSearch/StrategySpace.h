//===- StrategySpace.h - What the plan search chooses among -----*- C++ -*-===//
//
// The space of the search (private to lib/Analysis/PlanSearch): the
// (pp, micro-batches, schedule) configurations of a global batch, and for a
// pipeline shape (pp, micro-batch size) each layer's strategies priced by
// the cost model, their layout classes and the layout changes between them.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_PLANSEARCH_STRATEGYSPACE_H
#define GALVATRON_LIB_ANALYSIS_PLANSEARCH_STRATEGYSPACE_H

#include "galvatron/Analysis/PlanSearch.h"

#include <limits>
#include <map>
#include <tuple>
#include <vector>

namespace mlir::galvatron::search {

inline constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// Whole quanta covering `bytes` (the rounding the search's memory
/// accounting uses everywhere).
int64_t quantize(double bytes, double quantum);

/// How the dynamic program counts memory: `capacity` quanta of `quantum`
/// bytes, each amount rounded up (exact: a plan that fits, fits), or down
/// (relaxed: every plan that fits exactly fits too, so the optimum bounds
/// from below).
struct MemoryGrid {
  double quantum = 0;
  int64_t capacity = 0;
  bool relaxed = false;

  int32_t toQuanta(double bytes) const;
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
  /// Micro-batches stage `stage` holds at once.
  int64_t getInFlight(int64_t stage) const {
    if (schedule == PipelineSchedule::gpipe)
      return microBatches;
    return std::min(microBatches, pp - stage);
  }
  bool operator==(const Configuration &other) const {
    return pp == other.pp && microBatches == other.microBatches &&
           schedule == other.schedule && globalBatch == other.globalBatch;
  }
};

/// "pp 2 m 8 (batch 64)", for traces.
llvm::raw_ostream &operator<<(llvm::raw_ostream &os,
                              const Configuration &configuration);

class StrategySpace;

/// The configurations of the options' global batch (or batch range) that
/// the model may run, lower bounds not yet set; `usable` bytes per device
/// bound a batch range's micro-batch sizes. Fails when a batch range
/// allows too many of them.
llvm::Expected<std::vector<Configuration>>
enumerateConfigurations(StrategySpace &space, double usable);

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

/// A strategy as the dynamic program sees it: its time for the
/// configuration and its memory in quanta.
struct Candidate {
  double time;
  int32_t memory;
  int32_t transient;
  /// Index into the CostedStrategy list.
  int32_t strategy;
};

/// Candidates of a layer grouped by layout class.
using CandidateSet = std::vector<std::vector<Candidate>>;

/// A layer's tie to the owner of a weight it shares (same stage: same tp
/// and consecutiveness).
struct Tie {
  unsigned reader, owner;
};

/// The model's layers priced on one pipeline shape at a time. Prices are
/// cached across shapes, so every strategy is priced once per search.
class StrategySpace {
public:
  StrategySpace(const ModelProfile &model, const ClusterSpec &cluster,
                const SearchOptions &options, SearchStatistics &statistics);

  const ModelProfile &model;
  const ClusterSpec &cluster;
  const SearchOptions &options;
  SearchStatistics &statistics;

  unsigned getLayerCount() const { return layers; }
  ArrayRef<Tie> getTies() const { return ties; }
  /// The last layer owning a weight another layer reads (0 when none).
  unsigned getMaxTiedOwner() const { return maxTiedOwner; }
  bool isTied(unsigned layer) const;

  /// Whether every layer has a strategy on stages of pp devices running
  /// micro-batches of `microBatch` sequences.
  bool everyLayerRuns(int64_t pp, int64_t microBatch) const;
  /// A plan of `configuration` with no layers yet.
  ParallelPlan makePlan(const Configuration &configuration) const;

  //===--------------------------------------------------------------------===//
  // The current shape: pp stages running micro-batches of `microBatch`
  //===--------------------------------------------------------------------===//

  void setShape(int64_t pp, int64_t microBatch);
  int64_t getPp() const { return pp; }
  ArrayRef<Layout> getLayouts() const { return layouts; }

  StageContext getContext(int64_t stage, unsigned firstLayer) const;
  /// Costs repeat with period devices-per-node in a stage's first device,
  /// except whether the stage sits on the first node: stages of one offset
  /// key price alike.
  int getOffsetKey(int64_t stage) const;
  /// The distinct offset keys of the stages, in stage order.
  SmallVector<int, 4> getOffsetKeys() const;
  unsigned getLayout(const LayerStrategy &strategy) const;
  /// How a strategy splits tied weights (tied layers must agree).
  unsigned getTieKey(const LayerStrategy &strategy) const;
  /// Foreign parameters held as copies when a stage starts at `start`.
  unsigned getCopies(unsigned layer, unsigned start) const;
  const std::vector<CostedStrategy> &getCosts(unsigned layer, unsigned start,
                                              int offsetKey);
  /// The least time of `layer` over every strategy and stage offset.
  double getMinimumTime(unsigned layer, int64_t microBatches);
  /// Layout change times into `layer`: [from * layouts + to].
  const std::vector<double> &getTransitions(unsigned layer, int offsetKey);
  /// Times to bring a stage boundary at `layer` into each layout (none
  /// past the last layer).
  double getBoundaryCost(unsigned layer, unsigned layout, int offsetKey);
  /// Point-to-point time of the activations entering `boundaryLayer` from
  /// stage `stage` to the next.
  double getTransfer(int64_t stage, unsigned boundaryLayer);

private:
  StageContext getContextForOffset(int offsetKey, unsigned firstLayer) const;
  const std::vector<double> &getBoundary(unsigned layer, int offsetKey);

  unsigned layers;
  SmallVector<Tie> ties;
  unsigned maxTiedOwner = 0;
  /// Per layer: an id of its input cut's size (layers with equal cuts
  /// share layout change prices).
  SmallVector<unsigned> cutIds;

  int64_t pp = 0, devicesPerStage = 0, microBatch = 0;
  std::vector<Layout> layouts;
  /// Keyed by (pp, micro-batch, signature, copies, offset key).
  std::map<std::tuple<int64_t, int64_t, unsigned, unsigned, int>,
           std::vector<CostedStrategy>>
      costs;
  std::map<std::tuple<int64_t, int64_t, unsigned, int>, std::vector<double>>
      transitions, boundaries;
};

} // namespace mlir::galvatron::search

#endif // GALVATRON_LIB_ANALYSIS_PLANSEARCH_STRATEGYSPACE_H
