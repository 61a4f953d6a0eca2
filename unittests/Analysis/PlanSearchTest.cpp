//===- PlanSearchTest.cpp - The search against brute force ----------------===//
//
// On small models and clusters, enumerates every plan of the search space
// (pipeline degree, micro-batches, schedule, split, every layer's strategy),
// prices each with evaluatePlan, keeps those that fit under the search's
// rounded memory accounting, and checks that searchPlan finds the same
// least iteration time, and searchPlans the same best time of each of the
// best configurations.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/PlanSearch.h"
#include "galvatron/Analysis/GalvatronStrategy.h"
#include "galvatron/Models/ModelPresets.h"

#include "mlir/IR/MLIRContext.h"
#include "gtest/gtest.h"

#include <functional>
#include <map>

using namespace mlir;
using namespace mlir::galvatron;

namespace {

ModelProfile profileOf(MLIRContext &context, StringRef name, int64_t seq = 0) {
  auto module = buildModel(&context, *findModelPreset(name), {1, seq});
  EXPECT_TRUE(bool(module));
  auto profile = ModelProfile::build(**module);
  EXPECT_TRUE(bool(profile));
  return std::move(*profile);
}

/// A cluster of `nodes` x `perNode` devices of the A100 preset with no
/// runtime reserve, so tiny models meet a memory budget of a few MB.
ClusterSpec smallCluster(int64_t nodes, int64_t perNode) {
  ClusterSpec cluster = *getClusterPreset("a100-80gb", nodes);
  cluster.devicesPerNode = perNode;
  cluster.efficiency.runtimeMemory = 0;
  cluster.efficiency.fragmentation = 0;
  return cluster;
}

struct BruteForceResult {
  double time = std::numeric_limits<double>::infinity();
  int64_t plans = 0, fitting = 0;
  /// The least memory any plan needs.
  double leastMemory = std::numeric_limits<double>::infinity();
  /// The least time per (pp, micro-batches) among fitting plans.
  std::map<std::pair<int64_t, int64_t>, double> configurations;
};

/// Every plan of the space, priced.
BruteForceResult bruteForce(const ModelProfile &model,
                            const ClusterSpec &cluster,
                            const SearchOptions &options) {
  BruteForceResult result;
  int64_t devices = cluster.getDevices();
  double budget =
      options.memoryBudget > 0 ? options.memoryBudget : cluster.memory;
  double usable = getUsableMemory(cluster, budget);
  unsigned layers = model.layers.size();
  SmallVector<PipelineSchedule, 2> schedules = {PipelineSchedule::gpipe,
                                                PipelineSchedule::pipedream_flush};
  if (options.space.schedule)
    schedules = {*options.space.schedule};
  for (int64_t pp : getPipelineDegrees(model, devices, options.space))
    for (int64_t m : getMicroBatchCounts(options.globalBatch, options.space))
      for (PipelineSchedule schedule : schedules) {
        int64_t micro = options.globalBatch / m;
        std::vector<SmallVector<LayerStrategy>> choices;
        for (const LayerProfile &layer : model.layers)
          choices.push_back(getLayerStrategies(layer, devices / pp,
                                               cluster.devicesPerNode, micro,
                                               options.space));
        // Splits: stage of each layer, non-decreasing, all pp used.
        SmallVector<int64_t> stages(layers, 0);
        std::function<void(unsigned, int64_t)> split = [&](unsigned index,
                                                           int64_t stage) {
          if (index == layers) {
            if (stage != pp - 1)
              return;
            ParallelPlan plan;
            plan.devices = devices;
            plan.devicesPerNode = cluster.devicesPerNode;
            plan.pp = pp;
            plan.microBatches = m;
            plan.globalBatch = options.globalBatch;
            plan.schedule = schedule;
            plan.precision = options.precision;
            plan.layers.resize(layers);
            std::function<void(unsigned)> assign = [&](unsigned layer) {
              if (layer == layers) {
                ++result.plans;
                if (!plan.check(model).empty())
                  return;
                PlanEvaluation evaluation =
                    evaluatePlan(model, plan, cluster, budget);
                result.leastMemory =
                    std::min(result.leastMemory, evaluation.peakMemory);
                if (!fitsQuantized(plan, evaluation, usable,
                                   options.memoryBins))
                  return;
                ++result.fitting;
                result.time = std::min(result.time, evaluation.iterationTime);
                auto [entry, added] = result.configurations.try_emplace(
                    {pp, m}, evaluation.iterationTime);
                entry->second =
                    std::min(entry->second, evaluation.iterationTime);
                return;
              }
              for (LayerStrategy strategy : choices[layer]) {
                strategy.stage = stages[layer];
                plan.layers[layer] = strategy;
                assign(layer + 1);
              }
            };
            assign(0);
            return;
          }
          for (int64_t next : {stage, stage + 1}) {
            if (index == 0 && next != 0)
              continue;
            if (next >= pp)
              continue;
            if (next != stage && options.space.stagesStartAtBlocks &&
                !model.layers[index].isTransformerBlock())
              continue;
            // A stage is non-empty: moving on requires the previous layer
            // on the current stage, which the recursion guarantees.
            stages[index] = next;
            split(index + 1, next);
          }
        };
        split(0, 0);
      }
  return result;
}

void expectSearchMatchesBruteForce(const ModelProfile &model,
                                   const ClusterSpec &cluster,
                                   SearchOptions options,
                                   int64_t minimumFitting = 1) {
  BruteForceResult brute = bruteForce(model, cluster, options);
  // With and without the heuristic incumbent: the dynamic program alone
  // must find the optimum.
  for (bool heuristic : {true, false}) {
  SCOPED_TRACE(heuristic ? "with heuristic incumbent" : "dynamic program only");
  options.heuristicIncumbent = heuristic;
  auto searched = searchPlan(model, cluster, options);
  ASSERT_GE(brute.fitting, minimumFitting) << "the case should have fitting plans";
  ASSERT_TRUE(bool(searched)) << llvm::toString(searched.takeError());
  EXPECT_NEAR(searched->evaluation.iterationTime, brute.time,
              1e-9 * brute.time)
      << "search " << searched->evaluation.iterationTime << " brute force "
      << brute.time << " over " << brute.plans << " plans ("
      << brute.fitting << " fit)";
  // The searched plan is in the space and fits.
  EXPECT_EQ(searched->plan.check(model), "");
  double usable = getUsableMemory(
      cluster, options.memoryBudget > 0 ? options.memoryBudget : cluster.memory);
  EXPECT_TRUE(fitsQuantized(searched->plan, searched->evaluation, usable,
                            options.memoryBins));
  // The best plans of the three best configurations: each its
  // configuration's best, in the order of the configurations' best times.
  std::vector<double> best;
  for (auto [key, time] : brute.configurations)
    best.push_back(time);
  llvm::sort(best);
  auto top = searchPlans(model, cluster, options, 3);
  ASSERT_TRUE(bool(top)) << llvm::toString(top.takeError());
  ASSERT_EQ(top->size(), std::min<size_t>(3, best.size()));
  EXPECT_EQ(top->front().evaluation.iterationTime,
            searched->evaluation.iterationTime);
  for (auto [index, result] : llvm::enumerate(*top)) {
    double time = result.evaluation.iterationTime;
    EXPECT_NEAR(time, best[index], 1e-9 * best[index]) << "plan " << index;
    double own =
        brute.configurations[std::make_pair(result.plan.pp,
                                            result.plan.microBatches)];
    EXPECT_NEAR(time, own, 1e-9 * time)
        << "plan " << index << " is not its configuration's best";
    EXPECT_TRUE(fitsQuantized(result.plan, result.evaluation, usable,
                              options.memoryBins));
  }
  }
}

/// The memory the fastest plan ignoring memory needs, to set budgets that
/// force trade-offs.
double unconstrainedMemory(const ModelProfile &model, const ClusterSpec &cluster,
                           SearchOptions options) {
  options.memoryBudget = 1e15;
  auto searched = searchPlan(model, cluster, options);
  EXPECT_TRUE(bool(searched));
  return searched->evaluation.peakMemory;
}

/// Budgets at `fractions` of what the fastest plan needs ignoring memory.
void expectMatchesAtBudgets(const ModelProfile &model,
                            const ClusterSpec &cluster, SearchOptions options,
                            ArrayRef<double> fractions) {
  double free = unconstrainedMemory(model, cluster, options);
  for (double fraction : fractions) {
    options.memoryBudget = fraction * free;
    SCOPED_TRACE(fraction);
    expectSearchMatchesBruteForce(model, cluster, options);
  }
}

TEST(PlanSearchTest, GptTinyTwoDevicesMatchesBruteForce) {
  MLIRContext context;
  ModelProfile model = profileOf(context, "gpt-tiny");
  ClusterSpec cluster = smallCluster(1, 2);
  SearchOptions options;
  options.globalBatch = 8;
  options.memoryBins = 64;
  expectMatchesAtBudgets(model, cluster, options, {1.5, 0.7, 0.45});
}

TEST(PlanSearchTest, LlamaTinyTwoNodesMatchesBruteForce) {
  MLIRContext context;
  ModelProfile model = profileOf(context, "llama-tiny");
  // Two nodes of two devices: groups and stages cross the network.
  ClusterSpec cluster = smallCluster(2, 2);
  SearchOptions options;
  options.globalBatch = 4;
  options.memoryBins = 64;
  options.space.maxTp = 2;
  options.space.dpTypes[1] = options.space.dpTypes[2] = false; // ddp, zero3
  options.space.nonConsecutiveTp = false;
  expectMatchesAtBudgets(model, cluster, options, {1.2, 0.6});
}

TEST(PlanSearchTest, TiedWeightsAndEncoderDecoderMatchBruteForce) {
  MLIRContext context;
  // T5: the shared embedding is read by the decoder embedding and the head
  // (same tp when on one stage), and an `other` layer sits between stacks.
  ModelProfile model = profileOf(context, "t5-tiny");
  ClusterSpec cluster = smallCluster(1, 2);
  SearchOptions options;
  options.globalBatch = 4;
  options.memoryBins = 32;
  options.space.sequenceParallel = false;
  options.space.checkpointing = false;
  options.space.dpTypes[1] = options.space.dpTypes[2] =
      options.space.dpTypes[3] = false;
  expectMatchesAtBudgets(model, cluster, options, {1.0, 0.75});
}

TEST(PlanSearchTest, BertTinyFourDevicesMatchesBruteForce) {
  MLIRContext context;
  ModelProfile model = profileOf(context, "bert-tiny");
  ClusterSpec cluster = smallCluster(1, 4);
  SearchOptions options;
  options.globalBatch = 8;
  options.memoryBins = 48;
  options.space.maxTp = 2;
  options.space.dpTypes[1] = options.space.dpTypes[3] = false; // ddp, zero2
  options.space.sequenceParallel = false;
  expectMatchesAtBudgets(model, cluster, options, {0.8, 0.4});
}

TEST(PlanSearchTest, BatchSearchIsTheBestOfEveryBatch) {
  // Every global batch of the range searched alone (each search is exact,
  // checked against brute force above), against one batch search, at
  // budgets where memory binds the micro-batch.
  MLIRContext context;
  ModelProfile model = profileOf(context, "gpt-tiny");
  ClusterSpec cluster = smallCluster(1, 2);
  SearchOptions options;
  options.memoryBins = 64;
  options.globalBatch = 8;
  double free = unconstrainedMemory(model, cluster, options);
  for (double fraction : {1.0, 0.5}) {
    SCOPED_TRACE(fraction);
    options.memoryBudget = fraction * free;
    double best = std::numeric_limits<double>::infinity();
    for (int64_t batch = 4; batch <= 40; batch += 4) {
      options.globalBatch = batch;
      auto alone = searchPlan(model, cluster, options);
      if (alone)
        best = std::min(best, alone->evaluation.iterationTime / double(batch));
      else
        llvm::consumeError(alone.takeError());
    }
    SearchOptions range = options;
    range.batchRange = BatchRange{4, 40, 4};
    auto searched = searchPlan(model, cluster, range);
    ASSERT_TRUE(bool(searched)) << llvm::toString(searched.takeError());
    EXPECT_NEAR(searched->evaluation.iterationTime /
                    double(searched->plan.globalBatch),
                best, 1e-9 * best);
    EXPECT_EQ(searched->plan.globalBatch % 4, 0);
    // A range a million times larger: the micro-batches that fit bound the
    // work, not the batches.
    range.batchRange = BatchRange{4, 40 << 20, 4};
    auto large = searchPlan(model, cluster, range);
    ASSERT_TRUE(bool(large)) << llvm::toString(large.takeError());
    EXPECT_LE(large->evaluation.iterationTime / double(large->plan.globalBatch),
              best * (1 + 1e-9));
    EXPECT_LT(large->statistics.configurations, 5000);
  }
}

TEST(PlanSearchTest, GalvatronTargetIsTheBestPlanGalvatronRuns) {
  // The target search against brute force over the spaces whose union is
  // what Galvatron's runtime can run; its plan exports.
  MLIRContext context;
  ModelProfile model = profileOf(context, "gpt-tiny");
  ClusterSpec cluster = smallCluster(1, 2);
  SearchOptions options;
  options.globalBatch = 8;
  options.memoryBins = 64;
  options.memoryBudget = 0.6 * unconstrainedMemory(model, cluster, options);
  for (PlanTarget target : {PlanTarget::galvatron, PlanTarget::megatron}) {
    double best = std::numeric_limits<double>::infinity();
    for (const SearchSpace &space :
         getTargetSpaces(options.space, target, /*maxTp=*/2)) {
      SearchOptions restricted = options;
      restricted.space = space;
      best = std::min(best, bruteForce(model, cluster, restricted).time);
    }
    auto searched = searchPlanFor(model, cluster, options, target);
    ASSERT_TRUE(bool(searched)) << llvm::toString(searched.takeError());
    EXPECT_NEAR(searched->evaluation.iterationTime, best, 1e-9 * best);
    if (target == PlanTarget::galvatron) {
      auto json = writeGalvatronStrategy(searched->plan, model);
      EXPECT_TRUE(bool(json)) << llvm::toString(json.takeError());
    }
  }
}

TEST(PlanSearchTest, NoFittingPlanNamesTheLeastMemory) {
  MLIRContext context;
  ModelProfile model = profileOf(context, "gpt-tiny");
  ClusterSpec cluster = smallCluster(1, 2);
  SearchOptions options;
  options.globalBatch = 8;
  options.memoryBins = 64;
  options.memoryBudget = 1000; // bytes
  BruteForceResult brute = bruteForce(model, cluster, options);
  EXPECT_EQ(brute.fitting, 0);
  auto searched = searchPlan(model, cluster, options);
  ASSERT_FALSE(bool(searched));
  std::string message = llvm::toString(searched.takeError());
  EXPECT_NE(message.find("no plan fits in"), std::string::npos) << message;
  EXPECT_NE(message.find("needs"), std::string::npos) << message;
}

TEST(PlanSearchTest, DivisorsComeFromThePrimeFactors) {
  for (int64_t n = 1; n <= 2000; ++n) {
    SmallVector<int64_t> scanned;
    for (int64_t d = 1; d <= n; ++d)
      if (n % d == 0)
        scanned.push_back(d);
    EXPECT_EQ(getDivisors(n), scanned) << n;
  }
  // Magnitudes a scan could never reach: 2^62 and a large prime's square
  // root bound the work.
  SmallVector<int64_t> powers;
  for (int k = 0; k <= 62; ++k)
    powers.push_back(int64_t(1) << k);
  EXPECT_EQ(getDivisors(int64_t(1) << 62), powers);
  EXPECT_EQ(getDivisors(1073741789), (SmallVector<int64_t>{1, 1073741789}));
  EXPECT_EQ(getDivisors(int64_t(1) << 30).size(), 31u);
}

} // namespace
