//===- TrainingDataTest.cpp - Batches of the data contract ----------------===//

#include "galvatron/Runtime/Training.h"

#include "gtest/gtest.h"

using namespace galvatron::runtime;

namespace {

/// Rows [first, first + count) of a [rows, seq] batch input.
std::vector<int64_t> rows(const std::vector<int64_t> &values, int64_t seq,
                          int64_t first, int64_t count) {
  return std::vector<int64_t>(values.begin() + first * seq,
                              values.begin() + (first + count) * seq);
}

TEST(TrainingDataTest, ShardsOfAGlobalBatchEqualTheWholeBatch) {
  TokenData data = TokenData::synthetic(50, 3);
  for (LossKind loss : {LossKind::nextToken, LossKind::maskedToken}) {
    TrainingInfo info{loss, 1, 50};
    BatchMaker whole{data, info, 4, 8, 49, 11, 0, 1};
    int64_t wholePosition = 0;
    std::vector<int64_t> shardPositions(2, 0);
    for (int64_t step = 1; step <= 3; ++step) {
      Expected<Batch> expected = whole.make(step, wholePosition);
      ASSERT_TRUE(expected.isOk());
      for (int64_t shard = 0; shard < 2; ++shard) {
        BatchMaker part{data, info, 2, 8, 49, 11, shard, 2};
        Expected<Batch> actual = part.make(step, shardPositions[shard]);
        ASSERT_TRUE(actual.isOk());
        for (const char *name : {"input_ids", "labels"})
          EXPECT_EQ((*actual)[name],
                    rows((*expected)[name], 8, 2 * shard, 2))
              << name << " of shard " << shard << " at step " << step;
        EXPECT_EQ(shardPositions[shard], wholePosition);
      }
    }
  }
}

TEST(TrainingDataTest, MaskedTokensFollowTheContract) {
  TokenData data = TokenData::synthetic(1000, 5);
  TrainingInfo info{LossKind::maskedToken, 1, 1000};
  BatchMaker maker{data, info, 64, 32, 999, 0, 0, 1};
  int64_t position = 0;
  Expected<Batch> batch = maker.make(1, position);
  ASSERT_TRUE(batch.isOk());
  const std::vector<int64_t> &inputs = (*batch)["input_ids"],
                             &labels = (*batch)["labels"];
  int64_t masked = 0, maskTokens = 0, kept = 0;
  for (int64_t b = 0; b < 64; ++b) {
    int64_t inSequence = 0;
    for (int64_t s = 0; s < 32; ++s) {
      int64_t i = b * 32 + s;
      if (labels[i] == -100) {
        EXPECT_EQ(inputs[i], data.at(i)) << "unmasked positions keep tokens";
        continue;
      }
      EXPECT_EQ(labels[i], data.at(i));
      ++inSequence;
      maskTokens += inputs[i] == 999;
      kept += inputs[i] == labels[i];
    }
    EXPECT_GE(inSequence, 1) << "every sequence masks a position";
    masked += inSequence;
  }
  // 15% of 2048 positions, 80% of them the mask token, ~10% kept.
  EXPECT_NEAR(double(masked) / 2048, 0.15, 0.03);
  EXPECT_NEAR(double(maskTokens) / double(masked), 0.8, 0.06);
  EXPECT_NEAR(double(kept) / double(masked), 0.1, 0.05);
  EXPECT_EQ((*batch)["attention_mask"], std::vector<int64_t>(2048, 1));
  EXPECT_EQ(position, 2048);
}

} // namespace
