//===- SearchBounds.cpp - Bounds that prune the plan search ---------------===//
//
// docs/architecture.md ("Search") gives the arguments of each bound.
//
//===----------------------------------------------------------------------===//

#include "SearchBounds.h"
#include "StageSolver.h"

#include "galvatron/Support/Error.h"
#include "galvatron/Support/Debug.h"

#include "llvm/Support/FormatVariadic.h"

#include <cmath>
#include <set>

#define DEBUG_TYPE "plan-search-bounds"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::search;

//===----------------------------------------------------------------------===//
// What the rest of a stage needs
//===----------------------------------------------------------------------===//

RestBound::RestBound(ArrayRef<double> lambdas, ArrayRef<double> cost,
                     double floor)
    : floor(floor) {
  // Slopes -lambda increase as lambda decreases. The middle of three lines
  // is never the highest when the outer two cross no later than it rises
  // above the first.
  for (size_t j = lambdas.size(); j-- > 0;) {
    Line line{-lambdas[j], cost[j]};
    if (!lines.empty() && lines.back().slope == line.slope) {
      if (lines.back().intercept >= line.intercept)
        continue;
      lines.pop_back();
    }
    while (lines.size() >= 2) {
      const Line &a = lines[lines.size() - 2], &b = lines.back();
      if ((a.intercept - line.intercept) * (b.slope - a.slope) <=
          (a.intercept - b.intercept) * (line.slope - a.slope))
        lines.pop_back();
      else
        break;
    }
    lines.push_back(line);
  }
  for (size_t k = 0; k + 1 < lines.size(); ++k)
    crossings.push_back((lines[k].intercept - lines[k + 1].intercept) /
                        (lines[k + 1].slope - lines[k].slope));
}

/// The least exchange rates between time and memory over `options` (from
/// each layer's fastest candidate to each leaner one) widen [low, high].
static void widenRates(ArrayRef<Candidate> options, double &low,
                       double &high) {
  const Candidate *fastest = nullptr;
  for (const Candidate &candidate : options)
    if (!fastest || candidate.time < fastest->time)
      fastest = &candidate;
  if (!fastest)
    return;
  for (const Candidate &candidate : options)
    if (candidate.memory < fastest->memory) {
      double rate = (candidate.time - fastest->time) /
                    double(fastest->memory - candidate.memory);
      if (rate > 0) {
        low = std::min(low, rate);
        high = std::max(high, rate);
      }
    }
}

static std::vector<Candidate> flatten(const CandidateSet &set) {
  std::vector<Candidate> all;
  for (const std::vector<Candidate> &group : set)
    all.insert(all.end(), group.begin(), group.end());
  return all;
}

RestBounds RestBounds::compute(
    unsigned length, int64_t capacity,
    llvm::function_ref<const CandidateSet &(unsigned)> candidatesAt) {
  RestBounds bounds;
  bounds.length = length;
  bounds.memory.assign(length + 1, 0);
  bounds.transient.assign(length + 1, 0);
  bounds.time.assign(length + 1, 0.0);
  // Multipliers spanning the layers' exchange rates between time and
  // memory: from the fastest strategy to each leaner one.
  double low = kInfinity, high = 0;
  for (unsigned x = 0; x < length; ++x)
    widenRates(flatten(candidatesAt(x)), low, high);
  std::vector<double> lambdas;
  if (high > 0) {
    constexpr int kSteps = 128;
    low /= 4;
    high *= 4;
    for (int j = 0; j <= kSteps; ++j)
      lambdas.push_back(low * std::pow(high / low, double(j) / kSteps));
  }
  std::vector<double> restCost(lambdas.size(), 0.0);
  bounds.byMemory.assign(length + 1, RestBound());
  for (unsigned x = length; x-- > 0;) {
    int32_t memory = std::numeric_limits<int32_t>::max();
    int32_t transient = std::numeric_limits<int32_t>::max();
    double time = kInfinity;
    std::vector<double> cost(lambdas.size(), kInfinity);
    for (const std::vector<Candidate> &group : candidatesAt(x))
      for (const Candidate &candidate : group) {
        memory = std::min(memory, candidate.memory);
        transient = std::min(transient, candidate.transient);
        time = std::min(time, candidate.time);
        for (size_t j = 0; j < cost.size(); ++j)
          cost[j] = std::min(cost[j],
                             candidate.time + lambdas[j] * candidate.memory);
      }
    if (time == kInfinity) {
      // A layer with no strategy that fits: nothing completes.
      memory = static_cast<int32_t>(capacity) + 1;
      transient = 0;
    }
    bounds.memory[x] = static_cast<int32_t>(std::min<int64_t>(
        int64_t(bounds.memory[x + 1]) + memory, capacity + 1));
    bounds.transient[x] = std::max(bounds.transient[x + 1], transient);
    bounds.time[x] = bounds.time[x + 1] + time;
    for (size_t j = 0; j < cost.size(); ++j)
      restCost[j] += cost[j];
    bounds.byMemory[x] = RestBound(lambdas, restCost, bounds.time[x]);
  }
  return bounds;
}

//===----------------------------------------------------------------------===//
// Stage windows
//===----------------------------------------------------------------------===//

unsigned StageWindows::getMinimumLength(int64_t stage) const {
  if (stage >= static_cast<int64_t>(latestStarts.size()) ||
      earliestEnds[stage] <= latestStarts[stage])
    return 1;
  return earliestEnds[stage] - latestStarts[stage];
}

/// The stage windows the time bound allows: stages before k cover [0, s)
/// and those after cover [e, L), each stage within best / m, and the
/// fastest strategies alone must fit in that time.
StageWindows search::computeStageWindows(StageSolver &solver) {
  StrategySpace &space = solver.getSpace();
  const Configuration &configuration = solver.getConfiguration();
  int64_t pp = configuration.pp;
  unsigned layers = space.getLayerCount();
  double stageBound = solver.getStageBound();
  StageWindows windows;
  windows.latestStarts.assign(pp, layers);
  windows.earliestEnds.assign(pp, 0);
  if (stageBound == kInfinity)
    return windows;
  // Lagrangian bounds of the time n stages need for layers [a, b): with
  // c_l(lambda) the least time + lambda * memory of layer l (fewest copies,
  // fewest micro-batches in flight, any offset), every split of [a, b) into
  // n fitting stages takes at least
  //   max over lambda of sum_{l in [a, b)} c_l(lambda) - lambda * n * budget.
  int64_t fewest = configuration.schedule == PipelineSchedule::gpipe
                       ? configuration.microBatches
                       : 1;
  SmallVector<int, 4> keys = space.getOffsetKeys();
  std::vector<std::vector<Candidate>> options(layers);
  double low = kInfinity, high = 0;
  for (unsigned layer = 0; layer < layers; ++layer) {
    for (int key : keys)
      for (const std::vector<Candidate> &group :
           solver.getCandidates(layer, 0, key, fewest))
        options[layer].insert(options[layer].end(), group.begin(), group.end());
    widenRates(options[layer], low, high);
  }
  SmallVector<double, 24> lambdas = {0.0};
  if (high > 0)
    for (int j = 0; j <= 20; ++j)
      lambdas.push_back(low / 4 *
                        std::pow(16 * high / low, double(j) / 20));
  // prefix[j][l]: sum of c(lambdas[j]) over layers [0, l).
  std::vector<std::vector<double>> prefix(
      lambdas.size(), std::vector<double>(layers + 1, 0.0));
  for (size_t j = 0; j < lambdas.size(); ++j)
    for (unsigned layer = 0; layer < layers; ++layer) {
      double best = kInfinity;
      for (const Candidate &candidate : options[layer])
        best = std::min(best, candidate.time + lambdas[j] * candidate.memory);
      prefix[j][layer + 1] = prefix[j][layer] + best;
    }
  int64_t capacity = solver.getGrid().capacity;
  auto bound = [&](unsigned a, unsigned b, int64_t stages) {
    double result = 0;
    for (size_t j = 0; j < lambdas.size(); ++j)
      result = std::max(result, prefix[j][b] - prefix[j][a] -
                                    lambdas[j] * double(stages) * capacity);
    return result;
  };
  for (int64_t k = 0; k < pp; ++k) {
    unsigned start = 0;
    while (start < layers &&
           bound(0, start + 1, k) <= stageBound * static_cast<double>(k))
      ++start;
    windows.latestStarts[k] = start;
    unsigned end = layers;
    while (end > 0 && bound(end - 1, layers, pp - 1 - k) <=
                          stageBound * static_cast<double>(pp - 1 - k))
      --end;
    windows.earliestEnds[k] = end;
    LLVM_DEBUG(llvm::dbgs() << "stage " << k << " window: starts by layer "
                            << start << ", ends at layer " << end
                            << " or later\n");
  }
  return windows;
}

//===----------------------------------------------------------------------===//
// Configurations: time
//===----------------------------------------------------------------------===//

/// A lower bound on a configuration's iteration time that accounts for
/// memory: with every layer priced at its cheapest t + lambda * memory and
/// the stages' memory pooled (each stage fits, so all layers together fit
/// pp budgets),
///   sum_k t_k >= max over lambda >= 0 of
///                sum_l min_s (t_ls + lambda * a_ls) - lambda * pp * budget,
/// with the memory of each layer at its smallest in-flight count; then
/// T >= (1 + (m - 1) / pp) * sum_k t_k.
double search::getLowerBound(StrategySpace &space,
                             const Configuration &configuration,
                             double usable) {
  space.setShape(configuration.pp, configuration.getMicroBatch());
  int64_t smallestInFlight =
      configuration.schedule == PipelineSchedule::gpipe
          ? configuration.microBatches
          : 1;
  // Distinct (signature, offset) groups with their counts; the cheapest
  // combination over offsets and copies keeps the bound valid.
  SmallVector<int, 4> keys = space.getOffsetKeys();
  std::map<unsigned, std::pair<unsigned, int64_t>> groups; // sig -> layer, n
  for (unsigned layer = 0; layer < space.getLayerCount(); ++layer) {
    auto &group = groups[space.model.layers[layer].signature];
    if (group.second++ == 0)
      group.first = layer;
  }
  struct Option {
    double time, memory;
  };
  std::vector<std::pair<int64_t, std::vector<Option>>> options;
  for (auto &[signature, group] : groups) {
    std::vector<Option> list;
    for (int key : keys)
      for (const CostedStrategy &costed : space.getCosts(group.first, 0, key))
        list.push_back(
            {costed.cost.getMicroBatchTime(configuration.microBatches),
             costed.cost.getMemory(smallestInFlight)});
    options.push_back({group.second, std::move(list)});
  }
  double pooled = static_cast<double>(configuration.pp) * usable;
  auto bound = [&](double lambda) {
    double total = -lambda * pooled;
    for (auto &[n, list] : options) {
      double best = kInfinity;
      for (const Option &option : list)
        best = std::min(best, option.time + lambda * option.memory);
      total += static_cast<double>(n) * best;
    }
    return total;
  };
  // Concave in lambda: a golden-section search on a log scale, starting
  // from lambda = 0 (the memory-blind bound).
  double best = bound(0.0);
  double lo = std::log(1e-18), hi = std::log(1e-6);
  const double ratio = 0.6180339887498949;
  double a = hi - ratio * (hi - lo), b = lo + ratio * (hi - lo);
  double fa = bound(std::exp(a)), fb = bound(std::exp(b));
  for (int iteration = 0; iteration < 60; ++iteration) {
    if (fa < fb) {
      lo = a;
      a = b;
      fa = fb;
      b = lo + ratio * (hi - lo);
      fb = bound(std::exp(b));
    } else {
      hi = b;
      b = a;
      fb = fa;
      a = hi - ratio * (hi - lo);
      fa = bound(std::exp(a));
    }
  }
  best = std::max({best, fa, fb});
  return best * (1.0 + double(configuration.microBatches - 1) /
                           double(configuration.pp));
}

//===----------------------------------------------------------------------===//
// Configurations: memory
//===----------------------------------------------------------------------===//

namespace {
/// The least memory of any stage of a configuration: over caps on the
/// transient, the cap plus each layer's least memory among strategies
/// within the cap.
class StageMemory {
public:
  StageMemory(StrategySpace &space, const Configuration &configuration);

  /// Caps on the transient (every strategy's transient, increasing).
  ArrayRef<double> getCaps() const { return caps; }
  /// The least memory of stage k = [start, end), and the cap reaching it.
  double operator()(int64_t k, unsigned start, unsigned end,
                    size_t *bestCap = nullptr) const;

private:
  static constexpr double kHuge = 1e30;
  using Table = std::vector<std::vector<double>>;
  void collectCaps();
  /// [layer][cap] for stages with `inFlight` micro-batches, `key` and
  /// parameter copies counted from `start`.
  const Table &getTable(int64_t inFlight, int key, unsigned start);

  /// Per stage: [layer][cap] with parameter copies counted as for a stage
  /// starting after every owner (`copies`), or before all of them
  /// (`none`); [cap][layer] sums of the finite entries of `copies` (an
  /// infinite one would absorb every other term), and counts of the
  /// others.
  struct Tables {
    const Table *copies, *none;
    std::vector<std::vector<double>> prefix;
    std::vector<std::vector<int64_t>> blocked;
  };

  StrategySpace &space;
  SmallVector<double> caps;
  std::map<std::tuple<int64_t, int, unsigned>, Table> tables;
  std::vector<Tables> stages;
};
} // namespace

StageMemory::StageMemory(StrategySpace &space,
                         const Configuration &configuration)
    : space(space) {
  space.setShape(configuration.pp, configuration.getMicroBatch());
  collectCaps();
  if (caps.empty())
    return;
  unsigned layers = space.getLayerCount();
  stages.resize(configuration.pp);
  for (int64_t k = 0; k < configuration.pp; ++k) {
    Tables &stage = stages[k];
    int64_t inFlight = configuration.getInFlight(k);
    stage.copies = &getTable(inFlight, space.getOffsetKey(k), layers);
    stage.none = &getTable(inFlight, space.getOffsetKey(k), 0);
    stage.prefix.assign(caps.size(), std::vector<double>(layers + 1, 0));
    stage.blocked.assign(caps.size(), std::vector<int64_t>(layers + 1, 0));
    for (size_t c = 0; c < caps.size(); ++c)
      for (unsigned layer = 0; layer < layers; ++layer) {
        double memory = (*stage.copies)[layer][c];
        bool fits = memory < kHuge;
        stage.prefix[c][layer + 1] =
            stage.prefix[c][layer] + (fits ? memory : 0.0);
        stage.blocked[c][layer + 1] = stage.blocked[c][layer] + !fits;
      }
  }
}

void StageMemory::collectCaps() {
  unsigned layers = space.getLayerCount();
  // Layers of one signature with as many copies price alike.
  std::set<std::tuple<unsigned, unsigned, int>> seen;
  for (int64_t k = 0; k < space.getPp(); ++k)
    for (unsigned layer = 0; layer < layers; ++layer)
      for (unsigned start : {0u, layers}) {
        int key = space.getOffsetKey(k);
        if (!seen.insert({space.model.layers[layer].signature,
                          space.getCopies(layer, start), key})
                 .second)
          continue;
        for (const CostedStrategy &c : space.getCosts(layer, start, key))
          caps.push_back(c.cost.transient);
      }
  llvm::sort(caps);
  caps.erase(std::unique(caps.begin(), caps.end()), caps.end());
}

const StageMemory::Table &StageMemory::getTable(int64_t inFlight, int key,
                                                unsigned start) {
  auto [it, inserted] =
      tables.insert({std::make_tuple(inFlight, key, start), {}});
  if (!inserted)
    return it->second;
  // Shared by the layers of one signature.
  std::map<std::pair<unsigned, unsigned>, std::vector<double>> bySignature;
  for (unsigned layer = 0; layer < space.getLayerCount(); ++layer) {
    auto signature = std::make_pair(space.model.layers[layer].signature,
                                    space.getCopies(layer, start));
    auto found = bySignature.find(signature);
    if (found == bySignature.end()) {
      SmallVector<std::pair<double, double>> options;
      for (const CostedStrategy &c : space.getCosts(layer, start, key))
        options.push_back({c.cost.transient, c.cost.getMemory(inFlight)});
      llvm::sort(options);
      std::vector<double> row(caps.size(), kHuge);
      double running = kHuge;
      size_t next = 0;
      for (size_t c = 0; c < caps.size(); ++c) {
        while (next < options.size() && options[next].first <= caps[c])
          running = std::min(running, options[next++].second);
        row[c] = running;
      }
      found = bySignature.emplace(signature, std::move(row)).first;
    }
    it->second.push_back(found->second);
  }
  return it->second;
}

double StageMemory::operator()(int64_t k, unsigned start, unsigned end,
                               size_t *bestCap) const {
  const Tables &stage = stages[k];
  double best = kInfinity;
  for (size_t c = 0; c < caps.size(); ++c) {
    double total = caps[c] + stage.prefix[c][end] - stage.prefix[c][start];
    int64_t blocked = stage.blocked[c][end] - stage.blocked[c][start];
    // A weight tied to an owner on this stage is not a copy.
    for (const Tie &tie : space.getTies()) {
      if (tie.owner < start || tie.reader < start || tie.reader >= end)
        continue;
      double copy = (*stage.copies)[tie.reader][c];
      double none = (*stage.none)[tie.reader][c];
      if (copy >= kHuge)
        --blocked;
      else
        total -= copy;
      if (none >= kHuge)
        ++blocked;
      else
        total += none;
    }
    if (blocked == 0 && total < best) {
      best = total;
      if (bestCap)
        *bestCap = c;
    }
  }
  return best;
}

/// The strategies of the leanest plan of the split `from` (see
/// getLeastMemory).
static SmallVector<LayerStrategy>
getLeastMemoryStrategies(StrategySpace &space,
                         const Configuration &configuration,
                         ArrayRef<std::vector<unsigned>> from,
                         const StageMemory &stageMemory) {
  unsigned layers = space.getLayerCount();
  SmallVector<LayerStrategy> strategies(layers);
  unsigned end = layers;
  for (int64_t k = configuration.pp; k > 0; --k) {
    unsigned start = from[k][end];
    size_t cap = 0;
    stageMemory(k - 1, start, end, &cap);
    int64_t inFlight = configuration.getInFlight(k - 1);
    for (unsigned layer = start; layer < end; ++layer) {
      const LayerStrategy *lean = nullptr;
      double least = kInfinity;
      for (const CostedStrategy &c :
           space.getCosts(layer, start, space.getOffsetKey(k - 1)))
        if (c.cost.transient <= stageMemory.getCaps()[cap] &&
            c.cost.getMemory(inFlight) < least) {
          least = c.cost.getMemory(inFlight);
          lean = &c.strategy;
        }
      if (lean)
        strategies[layer] = *lean;
      strategies[layer].stage = k - 1;
    }
    end = start;
  }
  return strategies;
}

double search::getLeastMemory(StrategySpace &space,
                              const Configuration &configuration,
                              SmallVector<LayerStrategy> *plan) {
  constexpr double kHuge = 1e30;
  StageMemory stageMemory(space, configuration);
  if (stageMemory.getCaps().empty())
    return kInfinity;
  // Minimize the largest stage over splits. More layers need more memory,
  // so worst[k][s] grows with s while the next stage's memory shrinks: the
  // best start is where they cross.
  int64_t pp = configuration.pp;
  unsigned layers = space.getLayerCount();
  std::vector<std::vector<double>> worst(
      pp + 1, std::vector<double>(layers + 1, kInfinity));
  std::vector<std::vector<unsigned>> from(pp + 1,
                                          std::vector<unsigned>(layers + 1));
  worst[0][0] = 0;
  for (int64_t k = 0; k < pp; ++k) {
    unsigned firstEnd = k + 1 == pp ? layers : k + 1;
    for (unsigned end = firstEnd; end + (pp - 1 - k) <= layers; ++end) {
      unsigned low = k, high = end - 1; // candidate starts
      auto value = [&](unsigned start) {
        if (worst[k][start] == kInfinity)
          return kInfinity;
        return std::max(worst[k][start], stageMemory(k, start, end));
      };
      while (low < high) {
        unsigned middle = (low + high) / 2;
        if (worst[k][middle] >= stageMemory(k, middle, end))
          high = middle;
        else
          low = middle + 1;
      }
      worst[k + 1][end] = value(low);
      from[k + 1][end] = low;
      if (low > static_cast<unsigned>(k) && value(low - 1) < worst[k + 1][end]) {
        worst[k + 1][end] = value(low - 1);
        from[k + 1][end] = low - 1;
      }
    }
  }
  double least = worst[pp][layers];
  if (least >= kHuge)
    return kInfinity;
  if (plan)
    *plan = getLeastMemoryStrategies(space, configuration, from, stageMemory);
  return least;
}

llvm::Error search::describeNoFit(StrategySpace &space,
                                  ArrayRef<Configuration> configurations,
                                  double budget) {
  const Configuration *leanest = nullptr;
  for (const Configuration &configuration : configurations)
    if (configuration.leastMemory >= 0 &&
        (!leanest || configuration.leastMemory < leanest->leastMemory))
      leanest = &configuration;
  double gib = double(1ull << 30);
  if (!leanest || leanest->leastMemory == kInfinity)
    return makeError(
        llvm::formatv("no plan fits in {0:F2} GiB per device", budget / gib));
  SmallVector<LayerStrategy> strategies;
  double least = getLeastMemory(space, *leanest, &strategies);
  const EfficiencyFactors &efficiency = space.cluster.efficiency;
  double needed =
      (least + efficiency.runtimeMemory) / (1.0 - efficiency.fragmentation);
  // The leanest plan, by the strategy of its middle layer (a block).
  const LayerStrategy &block = strategies[strategies.size() / 2];
  int64_t stageDevices = space.cluster.getDevices() / leanest->pp;
  std::string strategy = llvm::formatv(
      "{0} {1}, dp {2} {3}{4}", block.usesUlysses() ? "ulysses" : "tp",
      block.tp, stageDevices / block.tp,
      stringifyDataParallelType(block.dpType), block.ckpt ? ", checkpointed"
                                                          : "");
  return makeError(llvm::formatv(
      "no plan fits in {0:F2} GiB per device: the plan needing the least "
      "memory (pp = {1}, {2} micro-batches of {3}, '{4}' {5}) needs {6:F2} "
      "GiB per device, {7:F2} GiB more ({8:F2} GiB of model states, "
      "activations and buffers plus the runtime reserve)",
      budget / gib, leanest->pp, leanest->microBatches,
      leanest->getMicroBatch(), space.model.layers[strategies.size() / 2].name,
      strategy, needed / gib, (needed - budget) / gib, least / gib));
}
