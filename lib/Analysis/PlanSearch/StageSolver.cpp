//===- StageSolver.cpp - The per-stage dynamic program --------------------===//
//
// Stage times for the split (StageSolver.h); the traced passes that
// recover strategies are in PlanRecovery.cpp.
//
//===----------------------------------------------------------------------===//

#include "StageSolver.h"

#include "galvatron/Support/Debug.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>

#define DEBUG_TYPE "plan-search-dp"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

//===----------------------------------------------------------------------===//
// Pareto sets of states
//===----------------------------------------------------------------------===//

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


//===----------------------------------------------------------------------===//
// Candidates
//===----------------------------------------------------------------------===//

StageSolver::StageSolver(StrategySpace &space,
                         const Configuration &configuration, MemoryGrid grid,
                         double timeBound, int64_t stateLimit)
    : space(space), configuration(configuration), grid(grid),
      stageBound(timeBound / static_cast<double>(configuration.microBatches) *
                 (1.0 + 1e-9)),
      stateLimit(stateLimit) {
  space.setShape(configuration.pp, configuration.getMicroBatch());
}

const CandidateSet &StageSolver::getCandidates(unsigned layer, unsigned start,
                                               int offsetKey,
                                               int64_t inFlight) {
  const LayerProfile &profile = space.model.layers[layer];
  auto key = std::make_tuple(profile.signature, space.getCopies(layer, start),
                             offsetKey, inFlight);
  auto it = candidates.find(key);
  if (it != candidates.end())
    return it->second;
  const std::vector<CostedStrategy> &list =
      space.getCosts(layer, start, offsetKey);
  CandidateSet set(space.getLayouts().size());
  for (auto [index, costed] : llvm::enumerate(list)) {
    Candidate candidate{
        costed.cost.getMicroBatchTime(configuration.microBatches),
        grid.toQuanta(costed.cost.getMemory(inFlight)),
        grid.toQuanta(costed.cost.transient), static_cast<int32_t>(index)};
    if (candidate.memory + candidate.transient > grid.capacity)
      continue;
    set[costed.layout].push_back(candidate);
  }
  // Within a layout class, transitions are equal: drop dominated ones
  // (for a layer with a tie, only among strategies splitting the tied
  // weights alike).
  bool tied = space.isTied(layer);
  auto tieKey = [&](const Candidate &c) {
    return tied ? space.getTieKey(list[c.strategy].strategy) : 0u;
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

//===----------------------------------------------------------------------===//
// One step of a pass
//===----------------------------------------------------------------------===//

namespace {
/// What the rest of the stage needs at least after the current step, when
/// the pass has bounds there.
struct RestNeeds {
  int32_t memory = 0, transient = 0;
  double time = 0;
  const RestBound *byMemory = nullptr;

  explicit RestNeeds(const Engine &engine) {
    size_t rest = engine.processed + 1;
    if (!engine.bounds.length || rest >= engine.bounds.time.size())
      return;
    memory = engine.bounds.memory[rest];
    transient = engine.bounds.transient[rest];
    time = engine.bounds.time[rest];
    byMemory = &engine.bounds.byMemory[rest];
  }
};
} // namespace

/// The states of `incoming` (sorted by memory) extended by `candidate`
/// that may still finish within `capacity` and `timeBound`.
static void extendStates(ArrayRef<State> incoming, const Candidate &candidate,
                         const RestNeeds &rest, int64_t capacity,
                         double timeBound, std::vector<State> &shifted) {
  shifted.clear();
  double timeLimit = timeBound - rest.time;
  for (const State &state : incoming) {
    int32_t memory = state.memory + candidate.memory;
    if (memory + rest.memory + candidate.transient > capacity)
      break; // incoming is sorted by memory
    int32_t transient = std::max(state.transient, candidate.transient);
    if (memory + rest.memory + std::max(transient, rest.transient) > capacity)
      continue;
    double time = state.time + candidate.time;
    if (time > timeLimit)
      continue;
    // The least time the rest needs with the memory left.
    if (rest.byMemory &&
        time + (*rest.byMemory)(double(capacity - memory -
                                       std::max(transient, rest.transient))) >
            timeBound)
      continue;
    shifted.push_back({memory, transient, time, state.parent,
                       state.parentLayout, candidate.strategy});
  }
}

void StageSolver::advance(Engine &engine) {
  unsigned layer = engine.getLayerAt(engine.processed);
  unsigned copiesStart = getCopiesStart(engine);
  const CandidateSet &set =
      getCandidates(layer, copiesStart, engine.offsetKey, engine.inFlight);
  const std::vector<CostedStrategy> &strategies =
      space.getCosts(layer, copiesStart, engine.offsetKey);
  size_t count = space.getLayouts().size();
  bool first = engine.processed == 0;
  const std::vector<double> *matrix =
      first ? nullptr
            : &space.getTransitions(engine.reverse ? layer + 1 : layer,
                                    engine.offsetKey);

  std::optional<unsigned> forcedKey = getForcedKey(engine, layer);
  // A layout class holds TP and Ulysses strategies, which split tied
  // weights differently.
  auto tieAllowed = [&](const Candidate &candidate) {
    return !forcedKey ||
           space.getTieKey(strategies[candidate.strategy].strategy) ==
               *forcedKey;
  };
  RestNeeds rest(engine);

  std::vector<std::vector<State>> next(count);
  std::vector<State> incoming, shifted, merged;
  ArrivalOrder order;
  if (!first)
    order.build(engine.states);
  int64_t generated = 0;
  for (size_t to = 0; to < count; ++to) {
    const std::vector<Candidate> &group = set[to];
    if (group.empty() || llvm::none_of(group, tieAllowed))
      continue;
    // Every way to arrive in layout `to`: from each layout's states plus
    // the layout change.
    incoming.clear();
    if (first)
      incoming.push_back(
          {0, 0,
           engine.entry ? space.getBoundaryCost(layer, to, engine.offsetKey)
                        : 0.0,
           -1, -1, -1});
    else
      mergeArrivals(engine.states, order, &(*matrix)[to], count, incoming);
    // Then this layer's strategies in that layout.
    std::vector<State> &result = next[to];
    for (const Candidate &candidate : group) {
      if (!tieAllowed(candidate))
        continue;
      extendStates(incoming, candidate, rest, grid.capacity, engine.timeBound,
                   shifted);
      generated += shifted.size();
      mergePareto(result, shifted, merged);
      std::swap(result, merged);
    }
  }
  space.statistics.dpStates += generated;
  finishStep(engine, std::move(next), layer, generated);
}

std::optional<unsigned> StageSolver::getForcedKey(const Engine &engine,
                                                  unsigned layer) const {
  std::optional<unsigned> forcedKey;
  for (auto [owner, key] : engine.forced) {
    if (owner == layer)
      forcedKey = key;
    for (const Tie &tie : space.getTies())
      if (tie.reader == layer && tie.owner == owner)
        forcedKey = key;
  }
  return forcedKey;
}

void StageSolver::finishStep(Engine &engine,
                             std::vector<std::vector<State>> next,
                             unsigned layer, int64_t generated) {
  ++space.statistics.dpSteps;
  engine.states = std::move(next);
  std::vector<double> best(engine.states.size(), kInfinity);
  size_t kept = 0;
  for (auto [layout, states] : llvm::enumerate(engine.states)) {
    for (const State &state : states)
      best[layout] = std::min(best[layout], state.time);
    kept += states.size();
  }
  LLVM_DEBUG(llvm::dbgs() << "  layer " << layer << ": " << kept << " of "
                          << generated << " states kept ("
                          << generated - int64_t(kept) << " dominated)"
                          << (kept ? "" : "; the pass ends: nothing fits")
                          << "\n");
  engine.best.push_back(std::move(best));
  if (engine.trace) {
    engine.history.push_back(engine.states);
    engine.historyLayers.push_back(layer);
  }
  ++engine.processed;
  engine.dead = kept == 0;
}

void StageSolver::setBoundLength(Engine &engine, unsigned length) {
  engine.bounds = RestBounds::compute(
      length, grid.capacity, [&](unsigned x) -> const CandidateSet & {
        return getCandidates(engine.getLayerAt(x), getCopiesStart(engine),
                             engine.offsetKey, engine.inFlight);
      });
}

//===----------------------------------------------------------------------===//
// Stage times
//===----------------------------------------------------------------------===//

std::vector<StageSolver::PositionKey>
StageSolver::getSequence(unsigned start, unsigned length) const {
  std::vector<PositionKey> sequence;
  for (unsigned layer = start; layer < start + length; ++layer) {
    int ownerOffset = -1;
    for (const Tie &tie : space.getTies())
      if (tie.reader == layer && tie.owner >= start)
        ownerOffset = static_cast<int>(layer - tie.owner);
    sequence.push_back({space.model.layers[layer].signature,
                        space.getCopies(layer, start), ownerOffset});
  }
  return sequence;
}

StageSolver::ForcedKeys StageSolver::getForcedOwners(unsigned start,
                                                     unsigned end) const {
  ForcedKeys owners;
  for (const Tie &tie : space.getTies())
    if (tie.owner >= start && tie.reader < end &&
        !llvm::any_of(owners, [&](auto &o) { return o.first == tie.owner; }))
      owners.push_back({tie.owner, 0});
  return owners;
}

Engine &StageSolver::addEngine(int64_t stage, unsigned start, bool reverse) {
  auto engine = std::make_unique<Engine>();
  engine->inFlight = configuration.getInFlight(stage);
  engine->offsetKey = space.getOffsetKey(stage);
  engine->start = start;
  engine->reverse = reverse;
  engine->entry = !reverse && stage > 0;
  engine->timeBound = stageBound;
  LLVM_DEBUG(llvm::dbgs() << "new " << (reverse ? "backward" : "forward")
                          << " pass from layer " << start << " (stage "
                          << stage << ", " << engine->inFlight
                          << " micro-batches in flight)\n");
  engines.push_back(std::move(engine));
  return *engines.back();
}

Engine &StageSolver::getEngine(int64_t stage, unsigned start, unsigned end) {
  int64_t inFlight = configuration.getInFlight(stage);
  int offsetKey = space.getOffsetKey(stage);
  bool entry = stage > 0;
  unsigned length = end - start;
  std::vector<PositionKey> sequence = getSequence(start, length);
  for (const std::unique_ptr<Engine> &engine : engines) {
    if (engine->reverse || !engine->forced.empty() ||
        engine->inFlight != inFlight || engine->offsetKey != offsetKey ||
        engine->entry != entry ||
        engine->bounds.length > windows.getMinimumLength(stage))
      continue;
    unsigned available = space.getLayerCount() - engine->start;
    if (available < length)
      continue;
    if (getSequence(engine->start, length) == sequence)
      return *engine;
  }
  return addEngine(stage, start, /*reverse=*/false);
}

Engine &StageSolver::getLastStageEngine(int64_t stage) {
  int64_t inFlight = configuration.getInFlight(stage);
  int offsetKey = space.getOffsetKey(stage);
  for (const std::unique_ptr<Engine> &candidate : engines)
    if (candidate->reverse && candidate->inFlight == inFlight &&
        candidate->offsetKey == offsetKey)
      return *candidate;
  unsigned layers = space.getLayerCount();
  Engine &engine = addEngine(stage, layers, /*reverse=*/true);
  unsigned length =
      layers - std::min(layers - 1, windows.latestStarts[stage]);
  if (stageBound < kInfinity && length > 1)
    setBoundLength(engine, length);
  return engine;
}

double StageSolver::readout(Engine &engine, unsigned start, unsigned end,
                            int64_t stage) {
  unsigned length = engine.reverse ? engine.start - start : end - start;
  while (engine.processed < length && !engine.dead) {
    if (grid.relaxed && space.statistics.dpStates > stateLimit) {
      LLVM_DEBUG(llvm::dbgs() << "relaxed pass abandoned: over " << stateLimit
                              << " states\n");
      abandoned = true;
      return kInfinity;
    }
    advance(engine);
  }
  if (engine.processed < length)
    return kInfinity;
  const std::vector<double> &best = engine.best[length - 1];
  double result = kInfinity;
  for (size_t layout = 0; layout < space.getLayouts().size(); ++layout) {
    if (best[layout] == kInfinity)
      continue;
    double extra = 0;
    if (engine.reverse)
      extra = space.getBoundaryCost(start, layout, engine.offsetKey);
    else if (stage + 1 < configuration.pp)
      extra = space.getBoundaryCost(end, layout, engine.offsetKey);
    result = std::min(result, best[layout] + extra);
  }
  return result;
}

double StageSolver::getStageTime(int64_t stage, unsigned start, unsigned end) {
  if (abandoned)
    return kInfinity;
  auto key = std::make_tuple(stage, start, end);
  auto cached = stageTimes.find(key);
  if (cached != stageTimes.end())
    return cached->second;
  int64_t pp = configuration.pp;
  unsigned layers = space.getLayerCount();
  double time = kInfinity;
  bool last = stage + 1 == pp;
  if (last && stage > 0 && start > space.getMaxTiedOwner()) {
    // The last stage from a backward pass shared by every start.
    time = readout(getLastStageEngine(stage), start, end, stage);
  } else if (!getForcedOwners(start, end).empty()) {
    // Tied weights on this stage.
    time = solveStage(stage, start, end).first;
  } else {
    // Every stage this pass will serve has at least `boundLength` layers.
    unsigned boundLength =
        pp == 1 ? end - start
                : std::min(layers - start, windows.getMinimumLength(stage));
    Engine &engine = getEngine(stage, start, end);
    if (engine.processed == 0 && !engine.bounds.length && boundLength > 1)
      setBoundLength(engine, boundLength);
    time = readout(engine, start, end, stage);
  }
  if (time < kInfinity) {
    if (stage > 0)
      time += space.getTransfer(stage - 1, start);
    if (!last)
      time += space.getTransfer(stage, end);
  }
  stageTimes[key] = time;
  return time;
}
