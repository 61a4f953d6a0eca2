//===- KernelsTest.cpp - CPU kernels against naive references -------------===//
//
// Every kernel runs through a one-instruction program (validation, backend,
// executor) and is compared with a direct, loop-by-loop reference written
// from the op's definition.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestUtils.h"

#include "galvatron/Runtime/HalfFloat.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include "gtest/gtest.h"

#include <array>
#include <cmath>
#include <functional>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

using Shape = std::vector<int64_t>;

int64_t count(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Shape unravel(int64_t index, const Shape &shape) {
  Shape position(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    position[d] = index % shape[d];
    index /= shape[d];
  }
  return position;
}

int64_t ravel(const Shape &position, const Shape &shape) {
  int64_t index = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    index = index * shape[d] + position[d];
  return index;
}

/// Index into `shape` of the element a broadcast to `result` reads at
/// `position` (of `result`).
int64_t broadcastIndex(const Shape &position, const Shape &shape) {
  Shape source(shape.size());
  size_t skip = position.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    source[d] = shape[d] == 1 ? 0 : position[d + skip];
  return ravel(source, shape);
}

std::vector<float> run1(const std::string &kernel,
                        const std::vector<HostTensor> &inputs,
                        const TensorType &output,
                        std::vector<Attribute> attributes = {},
                        int threads = 2) {
  auto results = runKernel(kernel, inputs, {output}, std::move(attributes),
                           threads);
  EXPECT_TRUE(results.isOk())
      << kernel << ": " << (results ? "" : results.status().message());
  if (!results)
    return {};
  return valuesOf<float>((*results)[0]);
}

void expectClose(const std::vector<float> &actual,
                 const std::vector<double> &expected, double tolerance = 1e-5) {
  ASSERT_EQ(actual.size(), expected.size());
  for (size_t i = 0; i < actual.size(); ++i)
    ASSERT_NEAR(actual[i], expected[i],
                tolerance * std::max(1.0, std::fabs(expected[i])))
        << "at element " << i;
}

TensorType f32(Shape shape) { return TensorType{ElementType::f32, shape}; }

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

TEST(KernelsTest, UnaryKernelsFollowTheirFormulas) {
  HostTensor x = randomFloats({3, 7}, 1);
  HostTensor positive = floats({3}, {0.25f, 1.5f, 9.0f});
  std::vector<float> v = valuesOf<float>(x);
  std::vector<std::pair<std::string, std::function<double(double)>>> cases = {
      {"neg", [](double a) { return -a; }},
      {"abs", [](double a) { return std::fabs(a); }},
      {"exp", [](double a) { return std::exp(a); }},
      {"tanh", [](double a) { return std::tanh(a); }},
      {"erf", [](double a) { return std::erf(a); }},
      {"sigmoid", [](double a) { return 1 / (1 + std::exp(-a)); }},
      {"relu", [](double a) { return a > 0 ? a : 0; }},
      {"silu", [](double a) { return a / (1 + std::exp(-a)); }},
      {"reciprocal", [](double a) { return 1 / a; }},
  };
  for (auto &[name, formula] : cases) {
    std::vector<double> expected;
    for (float a : v)
      expected.push_back(formula(a));
    SCOPED_TRACE(name);
    expectClose(run1(name, {x}, x.type), expected);
  }
  std::vector<float> p = valuesOf<float>(positive);
  for (auto &[name, formula] :
       std::vector<std::pair<std::string, std::function<double(double)>>>{
           {"log", [](double a) { return std::log(a); }},
           {"sqrt", [](double a) { return std::sqrt(a); }},
           {"rsqrt", [](double a) { return 1 / std::sqrt(a); }}}) {
    std::vector<double> expected;
    for (float a : p)
      expected.push_back(formula(a));
    expectClose(run1(name, {positive}, positive.type), expected);
  }
}

TEST(KernelsTest, GeluExactAndTanh) {
  HostTensor x = randomFloats({64}, 2);
  std::vector<double> exact, approximate;
  for (float a : valuesOf<float>(x)) {
    exact.push_back(0.5 * a * (1 + std::erf(a / std::sqrt(2.0))));
    approximate.push_back(
        0.5 * a *
        (1 + std::tanh(std::sqrt(2 / M_PI) * (a + 0.044715 * a * a * a))));
  }
  expectClose(run1("gelu", {x}, x.type), exact);
  expectClose(run1("gelu", {x}, x.type,
                   {Attribute::makeInteger("approximate", 1)}),
              approximate);
}

TEST(KernelsTest, BinaryKernelsBroadcast) {
  Shape a = {2, 1, 3}, b = {4, 1}, out = {2, 4, 3};
  HostTensor x = randomFloats(a, 3), y = randomFloats(b, 4);
  std::vector<float> xv = valuesOf<float>(x), yv = valuesOf<float>(y);
  std::vector<std::pair<std::string, std::function<double(double, double)>>>
      cases = {{"add", std::plus<double>()},
               {"sub", std::minus<double>()},
               {"mul", std::multiplies<double>()},
               {"div", std::divides<double>()},
               {"max", [](double p, double q) { return std::max(p, q); }},
               {"min", [](double p, double q) { return std::min(p, q); }},
               {"pow", [](double p, double q) { return std::pow(std::fabs(p), q); }}};
  for (auto &[name, formula] : cases) {
    // pow reads a positive base.
    HostTensor lhs = x;
    std::vector<float> lv = xv;
    if (name == "pow") {
      for (float &value : lv)
        value = std::fabs(value);
      lhs = floats(a, lv);
    }
    std::vector<double> expected;
    for (int64_t i = 0; i < count(out); ++i) {
      Shape position = unravel(i, out);
      expected.push_back(formula(lv[broadcastIndex(position, a)],
                                 yv[broadcastIndex(position, b)]));
    }
    SCOPED_TRACE(name);
    expectClose(run1(name, {lhs, y}, f32(out)), expected);
  }
}

TEST(KernelsTest, IntegerArithmetic) {
  HostTensor a = integers<int64_t>(ElementType::i64, {4}, {7, -7, 9, 1});
  HostTensor b = integers<int64_t>(ElementType::i64, {1}, {2});
  auto results = runKernel("div", {a, b}, {a.type});
  ASSERT_TRUE(results.isOk());
  EXPECT_EQ(valuesOf<int64_t>((*results)[0]),
            (std::vector<int64_t>{3, -3, 4, 0}));
  HostTensor c = integers<int32_t>(ElementType::i32, {2}, {5, 6});
  results = runKernel("mul", {c, c}, {c.type});
  ASSERT_TRUE(results.isOk());
  EXPECT_EQ(valuesOf<int32_t>((*results)[0]), (std::vector<int32_t>{25, 36}));
}

TEST(KernelsTest, SixteenBitFloatsComputeInFloat) {
  std::vector<float> a = {1.5f, -2.0f, 0.25f}, b = {1.0f, -3.0f, 0.5f};
  std::vector<uint16_t> ha, hb, ba;
  for (size_t i = 0; i < a.size(); ++i) {
    ha.push_back(floatToHalf(a[i]));
    hb.push_back(floatToHalf(b[i]));
    ba.push_back(floatToBfloat16(a[i]));
  }
  auto maximum = runKernel("max", {integers(ElementType::f16, {3}, ha),
                                   integers(ElementType::f16, {3}, hb)},
                           {TensorType{ElementType::f16, {3}}});
  ASSERT_TRUE(maximum.isOk());
  std::vector<uint16_t> m = valuesOf<uint16_t>((*maximum)[0]);
  EXPECT_EQ(halfToFloat(m[0]), 1.5f);
  EXPECT_EQ(halfToFloat(m[1]), -2.0f);
  EXPECT_EQ(halfToFloat(m[2]), 0.5f);
  auto negated = runKernel("neg", {integers(ElementType::bf16, {3}, ba)},
                           {TensorType{ElementType::bf16, {3}}});
  ASSERT_TRUE(negated.isOk());
  EXPECT_EQ(bfloat16ToFloat(valuesOf<uint16_t>((*negated)[0])[1]), 2.0f);
}

TEST(KernelsTest, IntegerDivisionByZeroIsAnError) {
  HostTensor a = integers<int64_t>(ElementType::i64, {2}, {1, 2});
  HostTensor zero = integers<int64_t>(ElementType::i64, {2}, {1, 0});
  auto results = runKernel("div", {a, zero}, {a.type});
  ASSERT_FALSE(results.isOk());
  EXPECT_EQ(results.status().message(),
            "instruction 0 (kernel 'div'): integer division by zero");
}

TEST(KernelsTest, SelectBroadcastsItsCondition) {
  HostTensor condition =
      integers<uint8_t>(ElementType::i1, {2, 1}, {1, 0});
  HostTensor x = randomFloats({2, 3}, 5), y = randomFloats({3}, 6);
  std::vector<float> xv = valuesOf<float>(x), yv = valuesOf<float>(y);
  std::vector<double> expected;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c)
      expected.push_back(r == 0 ? xv[r * 3 + c] : yv[c]);
  expectClose(run1("select", {condition, x, y}, f32({2, 3})), expected);
}

TEST(KernelsTest, CastConvertsBetweenTypes) {
  HostTensor x = floats({5}, {1.75f, -1.75f, 0.0f, 3.0e9f, 65504.0f});
  auto toI64 = runKernel("cast", {x}, {TensorType{ElementType::i64, {5}}});
  ASSERT_TRUE(toI64.isOk());
  EXPECT_EQ(valuesOf<int64_t>((*toI64)[0]),
            (std::vector<int64_t>{1, -1, 0, 3000000000, 65504}));
  auto toI1 = runKernel("cast", {x}, {TensorType{ElementType::i1, {5}}});
  ASSERT_TRUE(toI1.isOk());
  EXPECT_EQ(valuesOf<uint8_t>((*toI1)[0]),
            (std::vector<uint8_t>{1, 1, 0, 1, 1}));
  auto toHalf = runKernel("cast", {x}, {TensorType{ElementType::f16, {5}}});
  ASSERT_TRUE(toHalf.isOk());
  auto back = runKernel("cast", {(*toHalf)[0]}, {f32({5})});
  ASSERT_TRUE(back.isOk());
  std::vector<float> roundTrip = valuesOf<float>((*back)[0]);
  EXPECT_EQ(roundTrip[0], 1.75f);
  EXPECT_TRUE(std::isinf(roundTrip[3]));
  EXPECT_EQ(roundTrip[4], 65504.0f);
  HostTensor ids = integers<int64_t>(ElementType::i64, {2}, {7, -3});
  auto toF32 = runKernel("cast", {ids}, {f32({2})});
  ASSERT_TRUE(toF32.isOk());
  EXPECT_EQ(valuesOf<float>((*toF32)[0]), (std::vector<float>{7.0f, -3.0f}));
}

TEST(KernelsTest, HalfPrecisionConversionsRoundTrip) {
  for (uint32_t bits = 0; bits < 0x10000; ++bits) {
    float value = halfToFloat(uint16_t(bits));
    if (std::isnan(value))
      continue;
    ASSERT_EQ(floatToHalf(value), bits) << "half bits " << bits;
  }
  EXPECT_EQ(floatToHalf(1.0f + 1.0f / 4096), floatToHalf(1.0f)); // ties to even
  EXPECT_EQ(bfloat16ToFloat(floatToBfloat16(3.0f)), 3.0f);
  EXPECT_EQ(floatToBfloat16(1.0f + 1.0f / 256), floatToBfloat16(1.0f));
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

/// Reference batched matmul with broadcasting and transposes.
std::vector<double> matmulReference(const HostTensor &l, const HostTensor &r,
                                    bool tl, bool tr, const Shape &out) {
  const Shape &ls = l.type.shape, &rs = r.type.shape;
  std::vector<float> a = valuesOf<float>(l), b = valuesOf<float>(r);
  int64_t m = out[out.size() - 2], n = out.back();
  int64_t k = tl ? ls[ls.size() - 2] : ls.back();
  Shape batch(out.begin(), out.end() - 2);
  Shape lb(ls.begin(), ls.end() - 2), rb(rs.begin(), rs.end() - 2);
  std::vector<double> result;
  for (int64_t i = 0; i < count(out); ++i) {
    Shape position = unravel(i, out);
    Shape bp(position.begin(), position.end() - 2);
    int64_t row = position[position.size() - 2], col = position.back();
    int64_t la = broadcastIndex(bp, lb) * m * k;
    int64_t rbase = broadcastIndex(bp, rb) * k * n;
    double sum = 0;
    for (int64_t p = 0; p < k; ++p)
      sum += double(a[la + (tl ? p * m + row : row * k + p)]) *
             b[rbase + (tr ? col * k + p : p * n + col)];
    result.push_back(sum);
  }
  return result;
}

TEST(KernelsTest, MatmulBroadcastsBatchesAndTransposes) {
  for (auto [tl, tr] : {std::pair(false, false), std::pair(true, false),
                        std::pair(false, true), std::pair(true, true)}) {
    HostTensor l = randomFloats(tl ? Shape{2, 1, 4, 3} : Shape{2, 1, 3, 4}, 7);
    HostTensor r = randomFloats(tr ? Shape{5, 6, 4} : Shape{5, 4, 6}, 8);
    Shape out = {2, 5, 3, 6};
    std::vector<Attribute> attributes = {
        Attribute::makeInteger("transpose_lhs", tl),
        Attribute::makeInteger("transpose_rhs", tr)};
    SCOPED_TRACE(std::to_string(tl) + std::to_string(tr));
    expectClose(run1("matmul", {l, r}, f32(out), attributes),
                matmulReference(l, r, tl, tr, out), 1e-4);
  }
  // A shared right operand folds the batch into one GEMM.
  HostTensor l = randomFloats({2, 3, 4}, 9), r = randomFloats({4, 5}, 10);
  expectClose(run1("matmul", {l, r}, f32({2, 3, 5})),
              matmulReference(l, r, false, false, {2, 3, 5}), 1e-4);
}

TEST(KernelsTest, LinearInBothWeightLayouts) {
  HostTensor x = randomFloats({2, 3, 4}, 11), bias = randomFloats({5}, 12);
  std::vector<float> xv = valuesOf<float>(x), bv = valuesOf<float>(bias);
  for (bool transposed : {false, true}) {
    HostTensor w = randomFloats(transposed ? Shape{5, 4} : Shape{4, 5}, 13);
    std::vector<float> wv = valuesOf<float>(w);
    std::vector<double> expected, unbiased;
    for (int64_t row = 0; row < 6; ++row)
      for (int64_t o = 0; o < 5; ++o) {
        double sum = 0;
        for (int64_t i = 0; i < 4; ++i)
          sum += double(xv[row * 4 + i]) * wv[transposed ? o * 4 + i : i * 5 + o];
        unbiased.push_back(sum);
        expected.push_back(sum + bv[o]);
      }
    std::vector<Attribute> attributes = {
        Attribute::makeInteger("transpose_weight", transposed)};
    expectClose(run1("linear", {x, w, bias}, f32({2, 3, 5}), attributes),
                expected, 1e-4);
    expectClose(run1("linear", {x, w}, f32({2, 3, 5}), attributes), unbiased,
                1e-4);
  }
}

TEST(KernelsTest, EmbeddingGathersRowsAndChecksIndices) {
  HostTensor table = randomFloats({5, 3}, 14);
  std::vector<float> t = valuesOf<float>(table);
  for (ElementType type : {ElementType::i64, ElementType::i32}) {
    HostTensor ids = type == ElementType::i64
                         ? integers<int64_t>(type, {2, 2}, {4, 0, 2, 4})
                         : integers<int32_t>(type, {2, 2}, {4, 0, 2, 4});
    std::vector<double> expected;
    for (int id : {4, 0, 2, 4})
      for (int c = 0; c < 3; ++c)
        expected.push_back(t[id * 3 + c]);
    expectClose(run1("embedding", {table, ids}, f32({2, 2, 3})), expected);
  }
  HostTensor bad = integers<int64_t>(ElementType::i64, {2}, {1, 5});
  auto results = runKernel("embedding", {table, bad}, {f32({2, 3})});
  ASSERT_FALSE(results.isOk());
  EXPECT_EQ(results.status().message(),
            "instruction 0 (kernel 'embedding'): index 5 at position 1 is out "
            "of range [0, 5)");
}

//===----------------------------------------------------------------------===//
// Normalization
//===----------------------------------------------------------------------===//

TEST(KernelsTest, LayerNormAndRMSNorm) {
  HostTensor x = randomFloats({3, 8}, 15), w = randomFloats({8}, 16),
             b = randomFloats({8}, 17);
  std::vector<float> xv = valuesOf<float>(x), wv = valuesOf<float>(w),
                     bv = valuesOf<float>(b);
  std::vector<double> layer, layerNoBias, rms;
  for (int r = 0; r < 3; ++r) {
    double mean = 0, variance = 0, squares = 0;
    for (int i = 0; i < 8; ++i)
      mean += xv[r * 8 + i] / 8.0;
    for (int i = 0; i < 8; ++i) {
      variance += std::pow(xv[r * 8 + i] - mean, 2) / 8.0;
      squares += std::pow(xv[r * 8 + i], 2) / 8.0;
    }
    for (int i = 0; i < 8; ++i) {
      double normalized = (xv[r * 8 + i] - mean) / std::sqrt(variance + 1e-5);
      layer.push_back(normalized * wv[i] + bv[i]);
      layerNoBias.push_back(normalized * wv[i]);
      rms.push_back(xv[r * 8 + i] / std::sqrt(squares + 1e-6) * wv[i]);
    }
  }
  expectClose(run1("layer_norm", {x, w, b}, x.type,
                   {Attribute::makeReal("epsilon", 1e-5)}),
              layer);
  expectClose(run1("layer_norm", {x, w}, x.type,
                   {Attribute::makeReal("epsilon", 1e-5)}),
              layerNoBias);
  expectClose(
      run1("rms_norm", {x, w}, x.type, {Attribute::makeReal("epsilon", 1e-6)}),
      rms);
}

TEST(KernelsTest, SoftmaxAlongEveryAxis) {
  Shape shape = {3, 4, 5};
  HostTensor x = randomFloats(shape, 18);
  std::vector<float> v = valuesOf<float>(x);
  for (int64_t axis : {0, 1, 2, -1}) {
    int64_t a = axis < 0 ? axis + 3 : axis;
    std::vector<double> expected(v.size());
    for (int64_t i = 0; i < count(shape); ++i) {
      Shape position = unravel(i, shape);
      double sum = 0;
      for (int64_t j = 0; j < shape[a]; ++j) {
        Shape other = position;
        other[a] = j;
        sum += std::exp(double(v[ravel(other, shape)]));
      }
      expected[i] = std::exp(double(v[i])) / sum;
    }
    SCOPED_TRACE(axis);
    expectClose(run1("softmax", {x}, x.type,
                     {Attribute::makeInteger("axis", axis)}),
                expected);
  }
}

//===----------------------------------------------------------------------===//
// Data movement and reductions
//===----------------------------------------------------------------------===//

TEST(KernelsTest, TransposeSliceBroadcast) {
  Shape shape = {2, 3, 4, 5};
  HostTensor x = randomFloats(shape, 19);
  std::vector<float> v = valuesOf<float>(x);
  for (Shape perm : {Shape{0, 2, 1, 3}, Shape{3, 2, 1, 0}, Shape{1, 0, 3, 2}}) {
    Shape out;
    for (int64_t d : perm)
      out.push_back(shape[d]);
    std::vector<double> expected;
    for (int64_t i = 0; i < count(out); ++i) {
      Shape position = unravel(i, out), source(4);
      for (int d = 0; d < 4; ++d)
        source[perm[d]] = position[d];
      expected.push_back(v[ravel(source, shape)]);
    }
    expectClose(run1("transpose", {x}, f32(out),
                     {Attribute::makeIntegers("perm", perm)}),
                expected);
  }
  Shape starts = {1, 0, 1, 0}, limits = {2, 3, 4, 5}, strides = {1, 2, 2, 3};
  Shape out = {1, 2, 2, 2};
  std::vector<double> sliced;
  for (int64_t i = 0; i < count(out); ++i) {
    Shape position = unravel(i, out), source(4);
    for (int d = 0; d < 4; ++d)
      source[d] = starts[d] + position[d] * strides[d];
    sliced.push_back(v[ravel(source, shape)]);
  }
  expectClose(run1("slice", {x}, f32(out),
                   {Attribute::makeIntegers("starts", starts),
                    Attribute::makeIntegers("limits", limits),
                    Attribute::makeIntegers("strides", strides)}),
              sliced);
  HostTensor small = randomFloats({3, 1}, 20);
  std::vector<float> s = valuesOf<float>(small);
  std::vector<double> broadcast;
  for (int64_t i = 0; i < 24; ++i)
    broadcast.push_back(s[unravel(i, {2, 3, 4})[1]]);
  expectClose(run1("broadcast", {small}, f32({2, 3, 4})), broadcast);
}

TEST(KernelsTest, ConcatAndSplitAreInverses) {
  HostTensor a = randomFloats({2, 1, 3}, 21), b = randomFloats({2, 2, 3}, 22),
             c = randomFloats({2, 3, 3}, 23);
  std::vector<Attribute> axis = {Attribute::makeInteger("axis", 1)};
  auto joined = runKernel("concat", {a, b, c}, {f32({2, 6, 3})}, axis);
  ASSERT_TRUE(joined.isOk());
  std::vector<float> j = valuesOf<float>((*joined)[0]);
  std::vector<float> av = valuesOf<float>(a), bv = valuesOf<float>(b),
                     cv = valuesOf<float>(c);
  EXPECT_EQ(j[0], av[0]);
  EXPECT_EQ(j[3], bv[0]);
  EXPECT_EQ(j[9], cv[0]);
  EXPECT_EQ(j[18], av[3]);
  auto parts = runKernel("split", {(*joined)[0]},
                         {a.type, b.type, c.type},
                         {Attribute::makeInteger("axis", -2)});
  ASSERT_TRUE(parts.isOk());
  EXPECT_EQ((*parts)[0].data, a.data);
  EXPECT_EQ((*parts)[1].data, b.data);
  EXPECT_EQ((*parts)[2].data, c.data);
}

TEST(KernelsTest, ReductionsOverAxes) {
  Shape shape = {2, 3, 4};
  HostTensor x = randomFloats(shape, 24);
  std::vector<float> v = valuesOf<float>(x);
  std::vector<double> sum(2 * 4, 0), mean(2 * 4), maximum(2 * 4, -1e30);
  for (int64_t i = 0; i < count(shape); ++i) {
    Shape p = unravel(i, shape);
    int64_t o = p[0] * 4 + p[2];
    sum[o] += v[i];
    maximum[o] = std::max<double>(maximum[o], v[i]);
  }
  for (size_t o = 0; o < sum.size(); ++o)
    mean[o] = sum[o] / 3;
  std::vector<Attribute> attributes = {Attribute::makeIntegers("axes", {1})};
  expectClose(run1("reduce_sum", {x}, f32({2, 4}), attributes), sum);
  expectClose(run1("reduce_mean", {x}, f32({2, 4}), attributes), mean);
  attributes.push_back(Attribute::makeInteger("keep_dims", 1));
  expectClose(run1("reduce_max", {x}, f32({2, 1, 4}), attributes), maximum);
  double total = 0;
  for (float value : v)
    total += value;
  expectClose(run1("reduce_sum", {x}, f32({}),
                   {Attribute::makeIntegers("axes", {0, -1, 1})}),
              {total});
}

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

TEST(KernelsTest, RotaryRotatesPairs) {
  for (bool interleaved : {false, true}) {
    for (int64_t seqAxis : {1, 2}) {
      Shape shape = seqAxis == 2 ? Shape{1, 2, 5, 8} : Shape{1, 5, 2, 8};
      HostTensor x = randomFloats(shape, 25);
      std::vector<float> v = valuesOf<float>(x);
      int64_t rotary = 6, half = 3;
      std::vector<double> expected(v.begin(), v.end());
      for (int64_t row = 0; row < count(shape) / 8; ++row) {
        int64_t position = unravel(row * 8, shape)[seqAxis];
        for (int64_t i = 0; i < half; ++i) {
          double angle = position * std::pow(10000.0, -2.0 * i / rotary);
          int64_t a = row * 8 + (interleaved ? 2 * i : i);
          int64_t b = row * 8 + (interleaved ? 2 * i + 1 : i + half);
          expected[a] = v[a] * std::cos(angle) - v[b] * std::sin(angle);
          expected[b] = v[b] * std::cos(angle) + v[a] * std::sin(angle);
        }
      }
      SCOPED_TRACE(std::to_string(interleaved) + std::to_string(seqAxis));
      expectClose(run1("rotary", {x}, x.type,
                       {Attribute::makeInteger("seq_axis", seqAxis),
                        Attribute::makeReal("theta", 10000.0),
                        Attribute::makeInteger("rotary_dim", rotary),
                        Attribute::makeInteger("interleaved", interleaved)}),
                  expected);
    }
  }
}

/// What attention's dropout multiplies probability (b, h, i, j) by.
using DropoutFactor = std::function<double(int64_t, int64_t, int64_t, int64_t)>;

/// softmax(scale·QKᵀ + mask)·V per head, with causal masking and grouped
/// key/value heads; with `dropout`, each probability is multiplied by its
/// factor first.
std::vector<double> attentionReference(const HostTensor &q, const HostTensor &k,
                                       const HostTensor &v,
                                       const HostTensor *mask, bool causal,
                                       double scale,
                                       const DropoutFactor &dropout = {}) {
  const Shape &qs = q.type.shape, &ks = k.type.shape, &vs = v.type.shape;
  int64_t batch = qs[0], heads = qs[1], seq = qs[2], dim = qs[3];
  int64_t kvHeads = ks[1], keys = ks[2], vdim = vs[3];
  std::vector<float> qv = valuesOf<float>(q), kv = valuesOf<float>(k),
                     vv = valuesOf<float>(v);
  std::vector<float> mv = mask ? valuesOf<float>(*mask) : std::vector<float>();
  std::vector<double> out;
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        int64_t g = h / (heads / kvHeads);
        std::vector<double> scores(keys);
        double maximum = -1e300;
        for (int64_t j = 0; j < keys; ++j) {
          double dot = 0;
          for (int64_t d = 0; d < dim; ++d)
            dot += double(qv[((b * heads + h) * seq + i) * dim + d]) *
                   kv[((b * kvHeads + g) * keys + j) * dim + d];
          scores[j] = dot * scale;
          if (mask)
            scores[j] += mv[broadcastIndex({b, h, i, j}, mask->type.shape)];
          if (causal && j > i)
            scores[j] = -1e300;
          maximum = std::max(maximum, scores[j]);
        }
        double sum = 0;
        for (double &s : scores)
          sum += (s = s <= -1e299 ? 0 : std::exp(s - maximum));
        for (int64_t j = 0; j < keys; ++j)
          scores[j] *= dropout ? dropout(b, h, i, j) : 1.0;
        for (int64_t d = 0; d < vdim; ++d) {
          double value = 0;
          for (int64_t j = 0; j < keys; ++j)
            value += scores[j] / sum * vv[((b * kvHeads + g) * keys + j) * vdim + d];
          out.push_back(value);
        }
      }
  return out;
}

TEST(KernelsTest, AttentionCausalMaskedAndGrouped) {
  struct Case {
    Shape q, k, v;
    bool causal;
    bool masked;
  };
  // Sequences longer than one 64-row query block, GQA, S != T.
  for (const Case &c :
       {Case{{2, 4, 130, 8}, {2, 2, 130, 8}, {2, 2, 130, 6}, true, false},
        Case{{1, 2, 7, 4}, {1, 2, 9, 4}, {1, 2, 9, 4}, false, true},
        Case{{2, 4, 70, 8}, {2, 4, 70, 8}, {2, 4, 70, 8}, true, true}}) {
    HostTensor q = randomFloats(c.q, 26), k = randomFloats(c.k, 27),
               v = randomFloats(c.v, 28);
    HostTensor mask = randomFloats({c.q[0], 1, 1, c.k[2]}, 29);
    Shape out = {c.q[0], c.q[1], c.q[2], c.v[3]};
    std::vector<HostTensor> inputs = {q, k, v};
    if (c.masked)
      inputs.push_back(mask);
    double scale = 0.3;
    std::vector<double> expected = attentionReference(
        q, k, v, c.masked ? &mask : nullptr, c.causal, scale);
    for (int threads : {1, 2}) {
      SCOPED_TRACE(threads);
      expectClose(run1("attention", inputs, f32(out),
                       {Attribute::makeInteger("causal", c.causal),
                        Attribute::makeReal("scale", scale)},
                       threads),
                  expected, 1e-4);
    }
  }
}

TEST(KernelsTest, CrossEntropyIgnoresAndReduces) {
  HostTensor logits = randomFloats({2, 3, 5}, 30);
  std::vector<float> x = valuesOf<float>(logits);
  HostTensor labels =
      integers<int64_t>(ElementType::i64, {2, 3}, {0, 4, -100, 2, 2, 1});
  double total = 0;
  int counted = 0;
  std::vector<int64_t> l = valuesOf<int64_t>(labels);
  for (int r = 0; r < 6; ++r) {
    if (l[r] == -100)
      continue;
    double sum = 0;
    for (int j = 0; j < 5; ++j)
      sum += std::exp(double(x[r * 5 + j]));
    total += std::log(sum) - x[r * 5 + l[r]];
    ++counted;
  }
  expectClose(run1("cross_entropy", {logits, labels}, f32({})),
              {total / counted});
  expectClose(run1("cross_entropy", {logits, labels}, f32({}),
                   {Attribute::makeInteger("reduction", 1)}),
              {total});
  HostTensor bad = integers<int64_t>(ElementType::i64, {2, 3}, {0, 5, 0, 0, 0, 0});
  auto results = runKernel("cross_entropy", {logits, bad}, {f32({})});
  ASSERT_FALSE(results.isOk());
  EXPECT_EQ(results.status().message(),
            "instruction 0 (kernel 'cross_entropy'): label 5 at position 1 is "
            "out of range [0, 5)");
}

TEST(KernelsTest, RelativePositionBucketsOfT5) {
  // Buckets of key - query from T5's scheme (32 buckets, max distance 128):
  // bidirectional splits by sign, half of each side exact, the rest
  // logarithmic and capped.
  auto results = runKernel(
      "relative_position_bucket", {}, {TensorType{ElementType::i64, {1, 201}}},
      {Attribute::makeInteger("num_buckets", 32),
       Attribute::makeInteger("max_distance", 128),
       Attribute::makeInteger("bidirectional", 1)});
  ASSERT_TRUE(results.isOk());
  std::vector<int64_t> b = valuesOf<int64_t>((*results)[0]);
  // The query is position 0, so key j is at relative position +j.
  EXPECT_EQ(b[0], 0);   // 0
  EXPECT_EQ(b[1], 17);  // +1
  EXPECT_EQ(b[7], 23);  // +7, last exact bucket
  EXPECT_EQ(b[8], 24);  // +8, first logarithmic one
  EXPECT_EQ(b[20], 26); // 8 + floor(log(2.5) / log(16) * 8) = 10
  EXPECT_EQ(b[200], 31); // capped at 15
  results = runKernel("relative_position_bucket", {},
                      {TensorType{ElementType::i64, {3, 1}}},
                      {Attribute::makeInteger("num_buckets", 32),
                       Attribute::makeInteger("max_distance", 128),
                       Attribute::makeInteger("bidirectional", 0)});
  ASSERT_TRUE(results.isOk());
  // Unidirectional: only keys before the query get buckets beyond 0.
  EXPECT_EQ(valuesOf<int64_t>((*results)[0]), (std::vector<int64_t>{0, 1, 2}));
}

TEST(KernelsTest, TrilMaskRepeatsOverLeadingDimensions) {
  for (int64_t diagonal : {-1, 0, 2}) {
    auto results = runKernel("tril_mask", {},
                             {TensorType{ElementType::i1, {2, 3, 4}}},
                             {Attribute::makeInteger("diagonal", diagonal)});
    ASSERT_TRUE(results.isOk());
    std::vector<uint8_t> mask = valuesOf<uint8_t>((*results)[0]);
    for (int64_t k = 0; k < 24; ++k) {
      int64_t i = k / 4 % 3, j = k % 4;
      EXPECT_EQ(mask[k], j - i <= diagonal) << k;
    }
  }
}

/// The documented dropout generator, written out independently: element e
/// of the whole tensor is kept when uniform(key, e) > p.
bool keptByContract(uint64_t stream, int64_t element, double probability) {
  auto mix = [](uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
  };
  // Seed 0 and step 0: a program run without setRandomKey.
  uint64_t key = mix(mix(mix(0x64726F706F7574ull) ^ 0) ^ stream);
  uint64_t bits = mix(mix(uint64_t(element)) ^ key);
  double uniform = double((bits >> 11) + 1) / 9007199254740992.0;
  return uniform > probability;
}

TEST(KernelsTest, DropoutKeepsByTheGeneratorAndScales) {
  Shape shape = {4, 6, 8};
  HostTensor x = randomFloats(shape, 17);
  std::vector<float> v = valuesOf<float>(x);
  double p = 0.25;
  auto results = runKernel(
      "dropout", {x}, {x.type, TensorType{ElementType::i1, shape}},
      {Attribute::makeReal("probability", p),
       Attribute::makeInteger("stream", 5)});
  ASSERT_TRUE(results.isOk()) << results.status().message();
  std::vector<float> y = valuesOf<float>((*results)[0]);
  std::vector<uint8_t> keep = valuesOf<uint8_t>((*results)[1]);
  int64_t kept = 0;
  for (int64_t i = 0; i < count(shape); ++i) {
    ASSERT_EQ(bool(keep[i]), keptByContract(5, i, p)) << i;
    ASSERT_NEAR(y[i], keep[i] ? v[i] / (1 - p) : 0.0, 1e-6) << i;
    kept += keep[i];
  }
  // 192 draws of probability 0.75: the mean is 144, the standard
  // deviation 6 (the draws are fixed, so the verdict is too).
  EXPECT_GT(kept, 120);
  EXPECT_LT(kept, 170);
}

TEST(KernelsTest, DropoutPartsDrawTheirPlaceInTheWhole) {
  // Rows 2..3 and columns 4..7 of a [4, 6, 8] tensor, as a rank of a
  // data- and tensor-parallel plan holds them.
  Shape whole = {4, 6, 8}, part = {2, 6, 4};
  HostTensor x = randomFloats(part, 19);
  auto dropoutAt = [&](Shape offsets) {
    return runKernel(
        "dropout", {x}, {x.type, TensorType{ElementType::i1, part}},
        {Attribute::makeReal("probability", 0.5),
         Attribute::makeInteger("stream", 2),
         Attribute::makeIntegers("whole_shape", whole),
         Attribute::makeIntegers("offsets", offsets)});
  };
  auto results = dropoutAt({2, 0, 4});
  ASSERT_TRUE(results.isOk()) << results.status().message();
  std::vector<uint8_t> keep = valuesOf<uint8_t>((*results)[1]);
  for (int64_t i = 0; i < count(part); ++i) {
    Shape position = unravel(i, part);
    position[0] += 2;
    position[2] += 4;
    ASSERT_EQ(bool(keep[i]), keptByContract(2, ravel(position, whole), 0.5))
        << i;
  }
  auto outside = dropoutAt({3, 0, 4});
  ASSERT_FALSE(outside.isOk());
  EXPECT_NE(outside.status().message().find(
                "part f32[2,6,4] at offsets [3,0,4] does not lie in the "
                "whole [4,6,8]"),
            std::string::npos)
      << outside.status().message();
}

/// The gradients of causal attention (no mask, one key/value head per
/// query head) with dropout factors `dropout`, in double, loop by loop:
/// D = P ∘ F, O = D·V; dV = Dᵀ·dO, dP = (dO·Vᵀ) ∘ F,
/// dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale·dS·K, dK = scale·dSᵀ·Q.
std::array<std::vector<double>, 3>
attentionGradReference(const HostTensor &dO, const HostTensor &q,
                       const HostTensor &k, const HostTensor &v, double scale,
                       const DropoutFactor &dropout) {
  const Shape &qs = q.type.shape;
  int64_t batch = qs[0], heads = qs[1], seq = qs[2], dim = qs[3];
  std::vector<float> g = valuesOf<float>(dO), qv = valuesOf<float>(q),
                     kv = valuesOf<float>(k), vv = valuesOf<float>(v);
  std::array<std::vector<double>, 3> grads;
  for (auto &grad : grads)
    grad.assign(qv.size(), 0.0);
  auto at = [&](int64_t b, int64_t h, int64_t i, int64_t d) {
    return ((b * heads + h) * seq + i) * dim + d;
  };
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < seq; ++i) {
        std::vector<double> p(seq, 0.0), dp(seq, 0.0);
        double maximum = -1e300, sum = 0, rowDot = 0;
        for (int64_t j = 0; j <= i; ++j) {
          for (int64_t d = 0; d < dim; ++d)
            p[j] += double(qv[at(b, h, i, d)]) * kv[at(b, h, j, d)] * scale;
          maximum = std::max(maximum, p[j]);
        }
        for (int64_t j = 0; j <= i; ++j)
          sum += (p[j] = std::exp(p[j] - maximum));
        for (int64_t j = 0; j <= i; ++j) {
          p[j] /= sum;
          double factor = dropout(b, h, i, j);
          for (int64_t d = 0; d < dim; ++d) {
            grads[2][at(b, h, j, d)] += p[j] * factor * g[at(b, h, i, d)];
            dp[j] += double(g[at(b, h, i, d)]) * vv[at(b, h, j, d)];
          }
          dp[j] *= factor;
          rowDot += p[j] * dp[j];
        }
        for (int64_t j = 0; j <= i; ++j) {
          double ds = p[j] * (dp[j] - rowDot);
          for (int64_t d = 0; d < dim; ++d) {
            grads[0][at(b, h, i, d)] += scale * ds * kv[at(b, h, j, d)];
            grads[1][at(b, h, j, d)] += scale * ds * qv[at(b, h, i, d)];
          }
        }
      }
  return grads;
}

TEST(KernelsTest, AttentionDropsProbabilitiesByTheGenerator) {
  // Batch rows 1..2 and heads 2..3 of a [3, 4, 70, 70] probability tensor
  // (two query blocks), as a rank of a data- and tensor-parallel plan
  // holds them, and the whole; forward and backward against the
  // references with the contract's mask.
  double p = 0.3, scale = 0.35;
  Shape part = {2, 2, 70, 8};
  HostTensor q = randomFloats(part, 41), k = randomFloats(part, 42),
             v = randomFloats(part, 43), dO = randomFloats(part, 44);
  for (bool partitioned : {false, true}) {
    SCOPED_TRACE(partitioned);
    Shape whole = partitioned ? Shape{3, 4, 70, 70} : Shape{2, 2, 70, 70};
    Shape offsets = partitioned ? Shape{1, 2, 0, 0} : Shape{0, 0, 0, 0};
    DropoutFactor factor = [&](int64_t b, int64_t h, int64_t i, int64_t j) {
      int64_t element =
          ravel({b + offsets[0], h + offsets[1], i, j}, whole);
      return keptByContract(7, element, p) ? 1.0 / (1.0 - p) : 0.0;
    };
    std::vector<Attribute> attributes = {
        Attribute::makeInteger("causal", 1), Attribute::makeReal("scale", scale),
        Attribute::makeReal("dropout", p), Attribute::makeInteger("stream", 7)};
    if (partitioned) {
      attributes.push_back(Attribute::makeIntegers("whole_shape", whole));
      attributes.push_back(Attribute::makeIntegers("offsets", offsets));
    }
    for (int threads : {1, 2}) {
      SCOPED_TRACE(threads);
      expectClose(run1("attention", {q, k, v}, q.type, attributes, threads),
                  attentionReference(q, k, v, nullptr, true, scale, factor),
                  1e-4);
      auto results = runKernel("attention_grad", {dO, q, k, v},
                               {q.type, k.type, v.type}, attributes, threads);
      ASSERT_TRUE(results.isOk()) << results.status().message();
      auto expected = attentionGradReference(dO, q, k, v, scale, factor);
      for (size_t i = 0; i < 3; ++i) {
        SCOPED_TRACE(i);
        expectClose(valuesOf<float>((*results)[i]), expected[i], 1e-4);
      }
    }
  }
  // Without dropout the reference differs: the mask drops something.
  std::vector<float> dropped = run1(
      "attention", {q, k, v}, q.type,
      {Attribute::makeInteger("causal", 1), Attribute::makeReal("scale", scale),
       Attribute::makeReal("dropout", p), Attribute::makeInteger("stream", 7)});
  std::vector<double> plain =
      attentionReference(q, k, v, nullptr, true, scale);
  double largest = 0;
  for (size_t i = 0; i < plain.size(); ++i)
    largest = std::max(largest, std::fabs(dropped[i] - plain[i]));
  EXPECT_GT(largest, 0.1);
}

TEST(KernelsTest, AttentionDropoutOutsideItsRangeOrWholeIsAnError) {
  HostTensor q = randomFloats({1, 2, 4, 8}, 45);
  auto run = [&](std::vector<Attribute> attributes) {
    attributes.push_back(Attribute::makeReal("scale", 0.5));
    return runKernel("attention", {q, q, q}, {q.type}, attributes);
  };
  auto negative = run({Attribute::makeReal("dropout", -0.1)});
  ASSERT_FALSE(negative.isOk());
  EXPECT_NE(negative.status().message().find(
                "dropout must lie in [0, 1), got -0.1"),
            std::string::npos)
      << negative.status().message();
  auto outside = run({Attribute::makeReal("dropout", 0.1),
                      Attribute::makeIntegers("whole_shape", {1, 2, 4, 4}),
                      Attribute::makeIntegers("offsets", {0, 1, 0, 0})});
  ASSERT_FALSE(outside.isOk());
  EXPECT_NE(outside.status().message().find(
                "part f32[1,2,4,4] at offsets [0,1,0,0] does not lie in the "
                "whole [1,2,4,4]"),
            std::string::npos)
      << outside.status().message();
}

TEST(KernelsTest, ExtractPatchesOrdersChannelsThenPixels) {
  Shape shape = {2, 3, 4, 6};
  HostTensor x = randomFloats(shape, 31);
  std::vector<float> v = valuesOf<float>(x);
  int64_t p = 2;
  Shape out = {2, 6, 12};
  std::vector<double> expected;
  for (int64_t i = 0; i < count(out); ++i) {
    Shape position = unravel(i, out);
    int64_t py = position[1] / 3, px = position[1] % 3;
    int64_t c = position[2] / 4, y = position[2] / 2 % 2, xx = position[2] % 2;
    expected.push_back(v[ravel({position[0], c, py * p + y, px * p + xx}, shape)]);
  }
  expectClose(run1("extract_patches", {x}, f32(out),
                   {Attribute::makeInteger("patch_size", p)}),
              expected);
}

} // namespace
