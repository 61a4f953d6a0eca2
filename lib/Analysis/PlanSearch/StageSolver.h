//===- StageSolver.h - The per-stage dynamic program ------------*- C++ -*-===//
//
// A stage's best time for layers [start, end) (private to
// lib/Analysis/PlanSearch): a dynamic program over the layers whose states
// (memory quanta used, largest transient, time) per layout class of the
// last layer are kept as Pareto sets; layout changes cost a transition.
// One forward pass from a start yields every end ("engine"); engines are
// shared by stages whose layer sequences match, and the last stage runs
// backwards from the end of the model. A traced pass keeps back-pointers
// to recover the strategies (PlanRecovery.cpp).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESOLVER_H
#define GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESOLVER_H

#include "SearchBounds.h"
#include "StrategySpace.h"

#include <memory>

namespace mlir::galvatron::search {

/// A state of the dynamic program: where the layers so far stand, and how
/// it was reached (parent state and its layout; the layer's candidate).
struct State {
  int32_t memory;
  int32_t transient;
  double time;
  int32_t parent;
  int16_t parentLayout;
  int32_t candidate;
};

/// One forward (or backward) pass of the dynamic program from a start
/// layer, extended on demand.
struct Engine {
  int64_t inFlight = 1;
  int offsetKey = 0;
  unsigned start = 0;
  bool reverse = false;
  /// Forward passes after stage 0 pay the boundary layout change.
  bool entry = false;
  /// Forced tie key per owner with readers in range; empty when
  /// unconstrained.
  SmallVector<std::pair<unsigned, unsigned>> forced;
  /// States slower than this cannot be part of a better plan.
  double timeBound = kInfinity;
  /// Keep every step's states (for back-pointers).
  bool trace = false;
  /// Bounds over the first `bounds.length` layers, valid when every stage
  /// the pass serves has at least that many.
  RestBounds bounds;

  std::vector<std::vector<State>> states;
  unsigned processed = 0;
  bool dead = false;
  /// best[len - 1][layout]: least time over the first len layers ending in
  /// that layout.
  std::vector<std::vector<double>> best;
  /// With `trace`: the state lists after each step.
  std::vector<std::vector<std::vector<State>>> history;
  std::vector<unsigned> historyLayers;

  unsigned getLayerAt(unsigned step) const {
    return reverse ? start - 1 - step : start + step;
  }
};

/// The stage times of one configuration at one memory resolution (`grid`),
/// for a plan faster than `timeBound` seconds per iteration. It sets the
/// space's shape to the configuration's, which must stay while it is used
/// (each solver lives within one pass).
class StageSolver {
public:
  /// A relaxed solver gives up (isAbandoned) once the search has visited
  /// more than `stateLimit` states in all.
  StageSolver(StrategySpace &space, const Configuration &configuration,
              MemoryGrid grid, double timeBound,
              int64_t stateLimit = std::numeric_limits<int64_t>::max());

  StrategySpace &getSpace() { return space; }
  const Configuration &getConfiguration() const { return configuration; }
  MemoryGrid getGrid() const { return grid; }
  /// A stage slower than this cannot be part of a better plan: bound / m.
  double getStageBound() const { return stageBound; }
  bool isAbandoned() const { return abandoned; }

  /// Restricts stage passes to what `windows` allow.
  void setWindows(StageWindows windows) { this->windows = std::move(windows); }
  const StageWindows &getWindows() const { return windows; }

  /// The candidates of `layer` on a stage starting at `start`.
  const CandidateSet &getCandidates(unsigned layer, unsigned start,
                                    int offsetKey, int64_t inFlight);
  /// Stage `stage` = [start, end): its best time with its pipeline
  /// transfers, infinity when nothing fits within the stage bound.
  double getStageTime(int64_t stage, unsigned start, unsigned end);

  /// The best time (exit change included, transfers not) and strategies
  /// of stage `stage` = [start, end), tied weights honoured
  /// (PlanRecovery.cpp).
  std::pair<double, SmallVector<LayerStrategy>>
  solveStage(int64_t stage, unsigned start, unsigned end);

private:
  using ForcedKeys = SmallVector<std::pair<unsigned, unsigned>>;

  /// Extends `engine` by one layer.
  void advance(Engine &engine);
  /// The tie key `layer` must have in `engine`'s pass, if any.
  std::optional<unsigned> getForcedKey(const Engine &engine,
                                       unsigned layer) const;
  /// Makes `next` the states after `layer` (of `generated` states).
  void finishStep(Engine &engine, std::vector<std::vector<State>> next,
                  unsigned layer, int64_t generated);
  /// Lets `engine` prune with bounds over its first `length` layers.
  void setBoundLength(Engine &engine, unsigned length);
  /// Where parameter copies are counted from: a backward pass serves last
  /// stages starting after every tied owner.
  unsigned getCopiesStart(const Engine &engine) const {
    return engine.reverse ? space.getMaxTiedOwner() + 1 : engine.start;
  }
  /// A new engine for stage `stage` (bounded by the stage bound).
  Engine &addEngine(int64_t stage, unsigned start, bool reverse);
  /// A forward engine serving stage `stage` = [start, end).
  Engine &getEngine(int64_t stage, unsigned start, unsigned end);
  /// The backward engine serving last stages.
  Engine &getLastStageEngine(int64_t stage);
  /// The best time of [start, end) from `engine`, with the exit change.
  double readout(Engine &engine, unsigned start, unsigned end, int64_t stage);
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
  std::vector<PositionKey> getSequence(unsigned start, unsigned length) const;
  /// The owners of weights read in [start, end), each with key 0.
  ForcedKeys getForcedOwners(unsigned start, unsigned end) const;

  // Reconstruction (PlanRecovery.cpp).
  /// The forced owner tie keys to try when ties bind on [start, end).
  SmallVector<ForcedKeys> getTieVariants(int64_t stage, unsigned start,
                                         unsigned end);
  /// A fresh pass over [start, end) with back-pointers, bounded by
  /// `timeBound`.
  std::pair<double, SmallVector<LayerStrategy>>
  solveTraced(int64_t stage, unsigned start, unsigned end,
              ArrayRef<std::pair<unsigned, unsigned>> forced,
              double timeBound);
  bool honoursTies(ArrayRef<LayerStrategy> strategies, unsigned start) const;

  StrategySpace &space;
  const Configuration configuration;
  const MemoryGrid grid;
  const double stageBound;
  const int64_t stateLimit;
  bool abandoned = false;
  StageWindows windows;
  std::map<std::tuple<unsigned, unsigned, int, int64_t>, CandidateSet>
      candidates;
  std::vector<std::unique_ptr<Engine>> engines;
  std::map<std::tuple<int64_t, unsigned, unsigned>, double> stageTimes;
};

} // namespace mlir::galvatron::search

#endif // GALVATRON_LIB_ANALYSIS_PLANSEARCH_STAGESOLVER_H
