//===- SearchBoundsTest.cpp - The plan search's pruning bounds ------------===//
//
// The bounds in lib/Analysis/PlanSearch/SearchBounds.h against direct
// evaluations of their definitions.
//
//===----------------------------------------------------------------------===//

#include "PlanSearch/SearchBounds.h"

#include "gtest/gtest.h"

#include <random>

using namespace mlir;
using namespace mlir::galvatron::search;

namespace {

/// max(floor, max_j (cost_j - lambda_j * left)), term by term.
double restBoundByDefinition(ArrayRef<double> lambdas, ArrayRef<double> cost,
                             double floor, double left) {
  double result = floor;
  for (size_t j = 0; j < lambdas.size(); ++j)
    result = std::max(result, cost[j] - lambdas[j] * left);
  return result;
}

TEST(SearchBoundsTest, RestBoundIsTheUpperEnvelope) {
  std::mt19937 random(7);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    // Increasing multipliers (as the search makes them), repeated ones
    // included, and arbitrary costs.
    size_t count = 1 + trial % 12;
    std::vector<double> lambdas, cost;
    double lambda = 1e-3;
    for (size_t j = 0; j < count; ++j) {
      if (unit(random) > 0.2)
        lambda *= 1.0 + 4.0 * unit(random);
      lambdas.push_back(lambda);
      cost.push_back(10.0 * unit(random));
    }
    double floor = 5.0 * unit(random);
    RestBound bound(lambdas, cost, floor);
    for (double left = 0; left <= 4000; left += 37.5)
      EXPECT_DOUBLE_EQ(bound(left),
                       restBoundByDefinition(lambdas, cost, floor, left))
          << "trial " << trial << ", " << left << " quanta left";
  }
}

TEST(SearchBoundsTest, RestBoundsSumWhatTheRestNeeds) {
  // Three layers; the bounds of the suffix after each prefix are the sums
  // of each remaining layer's least time, memory and largest transient.
  std::vector<CandidateSet> layers = {
      {{{1.0, 10, 2, 0}, {3.0, 4, 1, 1}}},
      {{{2.0, 6, 5, 0}}, {{0.5, 20, 0, 1}}},
      {{{4.0, 3, 3, 0}, {1.5, 9, 7, 1}}},
  };
  RestBounds bounds = RestBounds::compute(
      3, 100, [&](unsigned x) -> const CandidateSet & { return layers[x]; });
  ASSERT_EQ(bounds.length, 3u);
  EXPECT_EQ(bounds.time, (std::vector<double>{3.0, 2.0, 1.5, 0.0}));
  EXPECT_EQ(bounds.memory, (std::vector<int32_t>{13, 9, 3, 0}));
  EXPECT_EQ(bounds.transient, (std::vector<int32_t>{3, 3, 3, 0}));
  // With all the memory in the world the rest needs its least times; with
  // none it needs more (every lean strategy is slower).
  EXPECT_DOUBLE_EQ(bounds.byMemory[0](1e9), 3.0);
  EXPECT_GT(bounds.byMemory[0](0), 3.0);
  // A layer without candidates can never complete: more than the capacity.
  std::vector<CandidateSet> blocked = {layers[0], CandidateSet(2)};
  RestBounds none = RestBounds::compute(
      2, 100, [&](unsigned x) -> const CandidateSet & { return blocked[x]; });
  EXPECT_EQ(none.memory[0], 101);
}

TEST(SearchBoundsTest, WindowsGiveTheLeastStageLength) {
  StageWindows windows;
  EXPECT_EQ(windows.getMinimumLength(0), 1u); // not computed
  windows.latestStarts = {0, 5};
  windows.earliestEnds = {3, 4};
  EXPECT_EQ(windows.getMinimumLength(0), 3u);
  EXPECT_EQ(windows.getMinimumLength(1), 1u); // ends before it must start
}

} // namespace
