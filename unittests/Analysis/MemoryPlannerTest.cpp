//===- MemoryPlannerTest.cpp - Static arena planning ----------------------===//

#include "galvatron/Analysis/MemoryPlanner.h"

#include "gtest/gtest.h"

#include <random>

using namespace mlir::galvatron;

namespace {

bool liveTogether(const MemoryRequest &a, const MemoryRequest &b) {
  return a.start <= b.end && b.start <= a.end;
}

void expectValid(llvm::ArrayRef<MemoryRequest> requests,
                 const MemoryPlan &plan, uint64_t alignment) {
  ASSERT_EQ(plan.offsets.size(), requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(plan.offsets[i] % alignment, 0u);
    EXPECT_LE(plan.offsets[i] + requests[i].size, plan.size);
    for (size_t j = 0; j < i; ++j) {
      if (!requests[i].size || !requests[j].size ||
          !liveTogether(requests[i], requests[j]))
        continue;
      bool apart = plan.offsets[i] + requests[i].size <= plan.offsets[j] ||
                   plan.offsets[j] + requests[j].size <= plan.offsets[i];
      ASSERT_TRUE(apart) << "requests " << i << " and " << j << " overlap";
    }
  }
  EXPECT_LE(plan.livePeak, plan.size);
}

TEST(MemoryPlannerTest, ReusesFreedSpace) {
  // A chain a -> b -> c: a and c never live together and share space.
  std::vector<MemoryRequest> requests = {{1000, 0, 1}, {1000, 1, 2},
                                         {1000, 2, 3}};
  MemoryPlan plan = planMemory(requests, 64);
  expectValid(requests, plan, 64);
  EXPECT_EQ(plan.offsets[0], plan.offsets[2]);
  EXPECT_EQ(plan.size, 2 * 1024u);
  EXPECT_EQ(plan.livePeak, 2 * 1024u);
}

TEST(MemoryPlannerTest, PicksTheBestFittingGap) {
  // Largest first: blocks live throughout sit at 0, 2048 and 3328; blocks
  // of step 0 leave holes [1024, 2048) and [2816, 3328). A small block of
  // steps 5-6 takes the smaller hole that fits, not the first one.
  std::vector<MemoryRequest> requests = {{1000, 0, 10}, {800, 0, 0},
                                         {700, 0, 10},  {500, 0, 0},
                                         {300, 0, 10},  {200, 5, 6}};
  MemoryPlan plan = planMemory(requests, 256);
  expectValid(requests, plan, 256);
  EXPECT_EQ(plan.offsets[1], 1024u);
  EXPECT_EQ(plan.offsets[3], 2816u);
  EXPECT_EQ(plan.offsets[5], 2816u);
  EXPECT_EQ(plan.size, 3840u);
}

TEST(MemoryPlannerTest, RandomPlansAreValidAndDeterministic) {
  std::mt19937 engine(5);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<MemoryRequest> requests;
    for (int i = 0; i < 60; ++i) {
      int64_t start = int64_t(engine() % 40) - 1;
      requests.push_back({engine() % 5000, start,
                          start + int64_t(engine() % 10)});
    }
    MemoryPlan plan = planMemory(requests, 64);
    expectValid(requests, plan, 64);
    EXPECT_EQ(planMemory(requests, 64).offsets, plan.offsets);
    // Greedy by size stays close to the lower bound on such mixes.
    EXPECT_LE(plan.size, plan.livePeak * 2);
  }
}

} // namespace
