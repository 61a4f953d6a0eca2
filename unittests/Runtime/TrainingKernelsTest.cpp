//===- TrainingKernelsTest.cpp - Optimizer and data-movement kernels ------===//
//
// The optimizer updates, the learning-rate schedule and the small kernels
// training adds, each through a one-instruction program against a
// loop-by-loop reference of its definition (the gradient kernels are
// checked end to end against PyTorch and finite differences by the lit
// tests under test/Training).
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestUtils.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

TensorType f32(std::vector<int64_t> shape) {
  return TensorType{ElementType::f32, std::move(shape)};
}

HostTensor scalar(float value) { return floats({}, {value}); }

HostTensor step(int64_t value) {
  return integers<int64_t>(ElementType::i64, {}, {value});
}

std::vector<HostTensor> run(const std::string &kernel,
                            const std::vector<HostTensor> &inputs,
                            const std::vector<TensorType> &outputs,
                            std::vector<Attribute> attributes) {
  auto results = runKernel(kernel, inputs, outputs, std::move(attributes));
  EXPECT_TRUE(results.isOk()) << (results ? "" : results.status().message());
  return results ? *results : std::vector<HostTensor>{};
}

TEST(TrainingKernelsTest, AdamWFollowsTorch) {
  HostTensor p = randomFloats({3, 5}, 1), g = randomFloats({3, 5}, 2),
             m = randomFloats({3, 5}, 3), v = randomFloats({3, 5}, 4);
  // v is a second moment: non-negative.
  std::vector<float> vs = valuesOf<float>(v);
  for (float &x : vs)
    x = x * x;
  v = floats({3, 5}, vs);
  double lr = 1e-2, b1 = 0.8, b2 = 0.95, eps = 1e-6, wd = 0.1, scale = 0.5;
  int64_t t = 3;
  auto out = run("adamw_update",
                 {p, g, m, v, scalar(float(lr)), step(t), scalar(float(scale))},
                 {f32({3, 5}), f32({3, 5}), f32({3, 5})},
                 {Attribute::makeReal("beta1", b1),
                  Attribute::makeReal("beta2", b2),
                  Attribute::makeReal("epsilon", eps),
                  Attribute::makeReal("weight_decay", wd)});
  ASSERT_EQ(out.size(), 3u);
  std::vector<float> P = valuesOf<float>(p), G = valuesOf<float>(g),
                     M = valuesOf<float>(m), V = vs;
  for (size_t i = 0; i < P.size(); ++i) {
    double grad = G[i] * scale;
    double mi = b1 * M[i] + (1 - b1) * grad;
    double vi = b2 * V[i] + (1 - b2) * grad * grad;
    double denominator = std::sqrt(vi) / std::sqrt(1 - std::pow(b2, t)) + eps;
    double pi = P[i] * (1 - lr * wd) - lr / (1 - std::pow(b1, t)) * mi / denominator;
    EXPECT_NEAR(valuesOf<float>(out[0])[i], pi, 1e-5 * std::max(1.0, std::fabs(pi)));
    EXPECT_NEAR(valuesOf<float>(out[1])[i], mi, 1e-6);
    EXPECT_NEAR(valuesOf<float>(out[2])[i], vi, 1e-6);
  }
  // A disabled step (fp16 overflow) leaves everything as it was.
  HostTensor off = integers<uint8_t>(ElementType::i1, {}, {0});
  auto kept = run("adamw_update",
                  {p, g, m, v, scalar(float(lr)), step(t), scalar(1.0f), off},
                  {f32({3, 5}), f32({3, 5}), f32({3, 5})},
                  {Attribute::makeReal("beta1", b1),
                   Attribute::makeReal("beta2", b2),
                   Attribute::makeReal("epsilon", eps),
                   Attribute::makeReal("weight_decay", wd)});
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept[0].data, p.data);
  EXPECT_EQ(kept[1].data, m.data);
  EXPECT_EQ(kept[2].data, v.data);
}

TEST(TrainingKernelsTest, SGDWithMomentumAndNesterov) {
  HostTensor p = randomFloats({7}, 5), g = randomFloats({7}, 6),
             b = randomFloats({7}, 7);
  double lr = 0.1, mu = 0.9, wd = 0.01;
  for (bool nesterov : {false, true}) {
    auto out = run("sgd_update", {p, g, b, scalar(float(lr)), scalar(1.0f)},
                   {f32({7}), f32({7})},
                   {Attribute::makeReal("momentum", mu),
                    Attribute::makeReal("weight_decay", wd),
                    Attribute::makeInteger("nesterov", nesterov)});
    ASSERT_EQ(out.size(), 2u);
    std::vector<float> P = valuesOf<float>(p), G = valuesOf<float>(g),
                       B = valuesOf<float>(b);
    for (size_t i = 0; i < P.size(); ++i) {
      double grad = G[i] + wd * P[i];
      double buffer = mu * B[i] + grad;
      double update = nesterov ? grad + mu * buffer : buffer;
      EXPECT_NEAR(valuesOf<float>(out[0])[i], P[i] - lr * update, 1e-6);
      EXPECT_NEAR(valuesOf<float>(out[1])[i], buffer, 1e-6);
    }
  }
}

TEST(TrainingKernelsTest, WarmupThenCosine) {
  auto rate = [](int64_t t) {
    auto out = run("lr_schedule", {step(t)}, {f32({})},
                   {Attribute::makeReal("lr", 1.0),
                    Attribute::makeReal("min_lr", 0.1),
                    Attribute::makeInteger("warmup_steps", 4),
                    Attribute::makeInteger("decay_steps", 12)});
    return out.empty() ? -1.0f : valuesOf<float>(out[0])[0];
  };
  EXPECT_FLOAT_EQ(rate(1), 0.25f);
  EXPECT_FLOAT_EQ(rate(4), 1.0f);
  EXPECT_FLOAT_EQ(rate(8), float(0.1 + 0.45 * (1 + std::cos(M_PI / 2))));
  EXPECT_FLOAT_EQ(rate(12), 0.1f);
  EXPECT_FLOAT_EQ(rate(100), 0.1f);
}

TEST(TrainingKernelsTest, EmbeddingGradScatterAdds) {
  HostTensor grad = randomFloats({2, 3, 4}, 8);
  HostTensor ids = integers<int64_t>(ElementType::i64, {2, 3}, {1, 4, 1, 0, 1, 4});
  auto out = run("embedding_grad", {grad, ids}, {f32({5, 4})}, {});
  ASSERT_EQ(out.size(), 1u);
  std::vector<float> G = valuesOf<float>(grad), T = valuesOf<float>(out[0]);
  std::vector<int64_t> I = valuesOf<int64_t>(ids);
  std::vector<double> expected(20, 0.0);
  for (int p = 0; p < 6; ++p)
    for (int j = 0; j < 4; ++j)
      expected[I[p] * 4 + j] += G[p * 4 + j];
  for (int i = 0; i < 20; ++i)
    EXPECT_NEAR(T[i], expected[i], 1e-6);
  HostTensor bad = integers<int64_t>(ElementType::i64, {2, 3}, {1, 5, 1, 0, 1, 4});
  auto failed = runKernel("embedding_grad", {grad, bad}, {f32({5, 4})});
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().message(),
            "instruction 0 (kernel 'embedding_grad'): index 5 at position 1 "
            "is out of range [0, 5)");
}

TEST(TrainingKernelsTest, PadPlacesElementsWithInteriorPadding) {
  HostTensor x = floats({2, 2}, {1, 2, 3, 4});
  auto out = run("pad", {x}, {f32({3, 5})},
                 {Attribute::makeIntegers("low", {1, 0}),
                  Attribute::makeIntegers("high", {0, 2}),
                  Attribute::makeIntegers("interior", {0, 1}),
                  Attribute::makeReal("value", -1.0)});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(valuesOf<float>(out[0]),
            (std::vector<float>{-1, -1, -1, -1, -1, 1, -1, 2, -1, -1, 3, -1, 4,
                                -1, -1}));
}

TEST(TrainingKernelsTest, CompareBroadcastsAndCopyCopies) {
  HostTensor x = floats({2, 3}, {1, 2, 3, 4, 5, 6}), y = floats({3}, {2, 2, 7});
  auto out = run("compare", {x, y}, {TensorType{ElementType::i1, {2, 3}}},
                 {Attribute::makeInteger("predicate", 3)}); // le
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(valuesOf<uint8_t>(out[0]),
            (std::vector<uint8_t>{1, 1, 1, 0, 0, 1}));
  auto copied = run("copy", {x}, {f32({2, 3})}, {});
  ASSERT_EQ(copied.size(), 1u);
  EXPECT_EQ(copied[0].data, x.data);
}

TEST(TrainingKernelsTest, FillWritesEveryElementInItsType) {
  auto floatsOut = run("fill", {}, {f32({2, 3})},
                       {Attribute::makeReal("value", -1.5)});
  ASSERT_EQ(floatsOut.size(), 1u);
  EXPECT_EQ(valuesOf<float>(floatsOut[0]), std::vector<float>(6, -1.5f));
  auto integers = run("fill", {}, {TensorType{ElementType::i64, {4}}},
                      {Attribute::makeReal("value", 7.0)});
  ASSERT_EQ(integers.size(), 1u);
  EXPECT_EQ(valuesOf<int64_t>(integers[0]), std::vector<int64_t>(4, 7));
}

/// `vocab_start` and `vocab_size` of block `block` of `blocks` of `local`.
std::vector<Attribute> vocabBlock(int64_t block, int64_t blocks,
                                  int64_t local) {
  return {Attribute::makeInteger("vocab_start", block * local),
          Attribute::makeInteger("vocab_size", blocks * local)};
}

TEST(TrainingKernelsTest, VocabularyBlocksAddUpToTheWholeTable) {
  // Two blocks of 3 rows of a 6-row table: each rank's lookup gives zero
  // rows for ids it does not hold, so the parts sum to the whole lookup;
  // each rank's table gradient is its rows of the whole one.
  HostTensor table = randomFloats({6, 2}, 21);
  std::vector<float> T = valuesOf<float>(table);
  HostTensor ids = integers<int64_t>(ElementType::i64, {2, 2}, {4, 0, 2, 5});
  HostTensor grad = randomFloats({2, 2, 2}, 22);
  auto wholeGrad = run("embedding_grad", {grad, ids}, {f32({6, 2})}, {});
  ASSERT_EQ(wholeGrad.size(), 1u);
  std::vector<float> W = valuesOf<float>(wholeGrad[0]);
  std::vector<double> sum(8, 0.0);
  for (int64_t block = 0; block < 2; ++block) {
    HostTensor rows =
        floats({3, 2}, std::vector<float>(T.begin() + block * 6,
                                          T.begin() + block * 6 + 6));
    auto part = run("embedding", {rows, ids}, {f32({2, 2, 2})},
                    vocabBlock(block, 2, 3));
    ASSERT_EQ(part.size(), 1u);
    std::vector<float> P = valuesOf<float>(part[0]);
    for (int i = 0; i < 8; ++i)
      sum[i] += P[i];
    // Id 0 (position 1) lies in block 0 only.
    EXPECT_EQ(P[2] == 0.0f && P[3] == 0.0f, block == 1);
    auto partGrad = run("embedding_grad", {grad, ids}, {f32({3, 2})},
                        vocabBlock(block, 2, 3));
    ASSERT_EQ(partGrad.size(), 1u);
    EXPECT_EQ(valuesOf<float>(partGrad[0]),
              std::vector<float>(W.begin() + block * 6,
                                 W.begin() + block * 6 + 6));
  }
  int order[] = {4, 0, 2, 5};
  for (int p = 0; p < 4; ++p)
    for (int c = 0; c < 2; ++c)
      EXPECT_EQ(sum[p * 2 + c], T[order[p] * 2 + c]);
  // Ids are checked against the whole vocabulary.
  HostTensor rows = floats({3, 2}, std::vector<float>(T.begin(), T.begin() + 6));
  HostTensor bad = integers<int64_t>(ElementType::i64, {2}, {1, 6});
  auto failed = runKernel("embedding", {rows, bad}, {f32({2, 2})},
                          vocabBlock(1, 2, 3));
  ASSERT_FALSE(failed.isOk());
  EXPECT_EQ(failed.status().message(),
            "instruction 0 (kernel 'embedding'): index 6 at position 1 is out "
            "of range [0, 6)");
}

/// Splits `logits` [4, vocabulary] into two blocks of 3 columns and checks
/// the vocabulary-parallel loss against the whole one: each block's loss
/// equals the whole loss and its gradient (scaled by `seed`) the block's
/// columns of the whole gradient. A column past the vocabulary is padding,
/// set to 50 to show that it gets no share of the softmax and a zero
/// gradient.
void expectBlocksEqualTheWholeLoss(const HostTensor &logits,
                                   const HostTensor &labels, float seed) {
  int64_t vocabulary = logits.type.shape[1];
  std::vector<float> L = valuesOf<float>(logits);
  std::vector<Attribute> mean = {Attribute::makeInteger("reduction", 0)};
  auto loss = run("cross_entropy", {logits, labels}, {f32({})}, mean);
  auto grad = run("cross_entropy_grad", {scalar(seed), logits, labels},
                  {f32({4, vocabulary})}, mean);
  ASSERT_EQ(loss.size(), 1u);
  ASSERT_EQ(grad.size(), 1u);
  std::vector<float> maxima(4, -INFINITY);
  for (int r = 0; r < 4; ++r)
    for (int j = 0; j < vocabulary; ++j)
      maxima[r] = std::max(maxima[r], L[r * vocabulary + j]);
  HostTensor max = floats({4}, maxima);
  auto block = [&](int64_t index) {
    return std::vector<Attribute>{
        Attribute::makeInteger("vocab_start", index * 3),
        Attribute::makeInteger("vocab_size", vocabulary)};
  };
  std::vector<HostTensor> parts;
  std::vector<float> sums(8, 0.0f);
  for (int64_t index = 0; index < 2; ++index) {
    std::vector<float> columns;
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 3; ++j) {
        int64_t column = index * 3 + j;
        columns.push_back(column < vocabulary ? L[r * vocabulary + column]
                                              : 50.0f);
      }
    parts.push_back(floats({4, 3}, columns));
    auto stats = run("vocab_cross_entropy_stats", {parts.back(), max, labels},
                     {f32({4, 2})}, block(index));
    ASSERT_EQ(stats.size(), 1u);
    std::vector<float> S = valuesOf<float>(stats[0]);
    for (int i = 0; i < 8; ++i)
      sums[i] += S[i];
  }
  HostTensor summed = floats({4, 2}, sums);
  std::vector<float> G = valuesOf<float>(grad[0]);
  for (int64_t index = 0; index < 2; ++index) {
    std::vector<Attribute> attributes = block(index);
    attributes.push_back(Attribute::makeInteger("reduction", 0));
    auto partLoss = run("vocab_cross_entropy",
                        {summed, parts[index], max, labels}, {f32({})},
                        attributes);
    ASSERT_EQ(partLoss.size(), 1u);
    EXPECT_NEAR(valuesOf<float>(partLoss[0])[0], valuesOf<float>(loss[0])[0],
                1e-6);
    auto partGrad =
        run("vocab_cross_entropy_grad",
            {scalar(seed), summed, parts[index], max, labels}, {f32({4, 3})},
            attributes);
    ASSERT_EQ(partGrad.size(), 1u);
    std::vector<float> P = valuesOf<float>(partGrad[0]);
    for (int r = 0; r < 4; ++r)
      for (int j = 0; j < 3; ++j) {
        int64_t column = index * 3 + j;
        EXPECT_NEAR(P[r * 3 + j],
                    column < vocabulary ? G[r * vocabulary + column] : 0.0f,
                    1e-7);
      }
  }
}

TEST(TrainingKernelsTest, VocabParallelCrossEntropyEqualsTheWholeOne) {
  // Logits [4, 6] split into two blocks of 3 columns; row 2 is ignored.
  expectBlocksEqualTheWholeLoss(
      randomFloats({4, 6}, 23),
      integers<int64_t>(ElementType::i64, {4}, {1, 4, -100, 5}), 2.0f);
}

TEST(TrainingKernelsTest, PaddedVocabularyLeavesThePaddingOut) {
  // A vocabulary of 5 in two blocks of 3 columns: block 1 holds 3, 4 and a
  // padding column, which is left out; ids past 5 are refused.
  expectBlocksEqualTheWholeLoss(
      randomFloats({4, 5}, 24),
      integers<int64_t>(ElementType::i64, {4}, {1, 4, 3, 0}), 1.0f);
  HostTensor rows = randomFloats({3, 2}, 25);
  HostTensor padding = integers<int64_t>(ElementType::i64, {2}, {4, 5});
  auto refused =
      runKernel("embedding", {rows, padding}, {f32({2, 2})},
                {Attribute::makeInteger("vocab_start", 3),
                 Attribute::makeInteger("vocab_size", 5)});
  ASSERT_FALSE(refused.isOk());
  EXPECT_EQ(refused.status().message(),
            "instruction 0 (kernel 'embedding'): index 5 at position 1 is out "
            "of range [0, 5)");
}

} // namespace
