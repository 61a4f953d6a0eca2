//===- BF16GemmTest.cpp - bf16 GEMMs through cblas_sbgemm -----------------===//
//
// Where the loaded OpenBLAS exports cblas_sbgemm, bf16 GEMMs call it on the
// bf16 operands in place (Debian 12's does not: there they are f32 GEMMs on
// converted tiles, which the other runtime tests check). This binary links a
// loop-by-loop cblas_sbgemm of OpenBLAS's contract (row-major, bf16 A and B,
// f32 C and accumulation) in its place, so the runtime's weak reference finds
// it: the bf16 matmul and linear kernels, tiled and transposed, must then
// equal the f32 kernels on the same values, rounded once.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestUtils.h"

#include "galvatron/Runtime/HalfFloat.h"

#include "gtest/gtest.h"

#include <cblas.h>

#include <cmath>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {
int calls = 0;
} // namespace

extern "C" void cblas_sbgemm(const enum CBLAS_ORDER order,
                             const enum CBLAS_TRANSPOSE transA,
                             const enum CBLAS_TRANSPOSE transB, const blasint m,
                             const blasint n, const blasint k,
                             const float alpha, const bfloat16 *a,
                             const blasint lda, const bfloat16 *b,
                             const blasint ldb, const float beta, float *c,
                             const blasint ldc) {
  ++calls;
  EXPECT_EQ(order, CblasRowMajor);
  for (blasint i = 0; i < m; ++i)
    for (blasint j = 0; j < n; ++j) {
      double sum = 0.0;
      for (blasint p = 0; p < k; ++p) {
        float x = bfloat16ToFloat(transA == CblasTrans ? a[p * lda + i]
                                                       : a[i * lda + p]);
        float y = bfloat16ToFloat(transB == CblasTrans ? b[j * ldb + p]
                                                       : b[p * ldb + j]);
        sum += double(x) * y;
      }
      c[i * ldc + j] = float(alpha * sum + (beta == 0.0f ? 0.0 : beta * c[i * ldc + j]));
    }
}

namespace {

HostTensor bf16(const HostTensor &tensor, std::vector<float> *widened) {
  std::vector<uint16_t> bits;
  for (float value : valuesOf<float>(tensor)) {
    bits.push_back(floatToBfloat16(value));
    widened->push_back(bfloat16ToFloat(bits.back()));
  }
  return integers<uint16_t>(ElementType::bf16, tensor.type.shape, bits);
}

/// `kernel` in bf16 (through cblas_sbgemm) against the f32 kernel on the
/// same values: equal after rounding, up to one bf16 unit where the f32
/// sums differ in their last bits (2^-20 of the largest result).
void check(const std::string &kernel, const std::vector<HostTensor> &inputs,
           std::vector<int64_t> shape, std::vector<Attribute> attributes) {
  std::vector<HostTensor> low, wide;
  for (const HostTensor &input : inputs) {
    std::vector<float> values;
    low.push_back(bf16(input, &values));
    wide.push_back(floats(input.type.shape, values));
  }
  int before = calls;
  auto actual = runKernel(kernel, low, {TensorType{ElementType::bf16, shape}},
                          attributes);
  auto expected = runKernel(kernel, wide, {TensorType{ElementType::f32, shape}},
                            attributes);
  ASSERT_TRUE(actual.isOk()) << actual.status().message();
  ASSERT_TRUE(expected.isOk()) << expected.status().message();
  EXPECT_GT(calls, before) << kernel << " did not call cblas_sbgemm";
  std::vector<uint16_t> got = valuesOf<uint16_t>((*actual)[0]);
  std::vector<float> want = valuesOf<float>((*expected)[0]);
  double largest = 0.0;
  for (float value : want)
    largest = std::max(largest, double(std::fabs(value)));
  for (size_t i = 0; i < got.size(); ++i) {
    float rounded = bfloat16ToFloat(floatToBfloat16(want[i]));
    ASSERT_LE(std::fabs(bfloat16ToFloat(got[i]) - rounded),
              std::ldexp(std::fabs(rounded), -7) + std::ldexp(largest, -20))
        << kernel << " element " << i;
  }
}

TEST(BF16GemmTest, KernelsCallSbgemmOnTheirOperands) {
  for (auto [tl, tr] : {std::pair(false, false), std::pair(true, false),
                        std::pair(false, true), std::pair(true, true)}) {
    HostTensor l = randomFloats(tl ? std::vector<int64_t>{2, 9, 7}
                                   : std::vector<int64_t>{2, 7, 9},
                                1);
    HostTensor r = randomFloats(tr ? std::vector<int64_t>{6, 9}
                                   : std::vector<int64_t>{9, 6},
                                2);
    check("matmul", {l, r}, {2, 7, 6},
          {Attribute::makeInteger("transpose_lhs", tl),
           Attribute::makeInteger("transpose_rhs", tr)});
  }
  // Several row blocks of C (with a bias), then several column blocks of a
  // transposed weight.
  HostTensor x = randomFloats({600, 16}, 3), w = randomFloats({2500, 16}, 4),
             bias = randomFloats({2500}, 5);
  check("linear", {x, w, bias}, {600, 2500},
        {Attribute::makeInteger("transpose_weight", 1)});
  HostTensor wide = randomFloats({3, 5000}, 6),
             tall = randomFloats({600, 5000}, 7);
  check("linear", {wide, tall}, {3, 600},
        {Attribute::makeInteger("transpose_weight", 1)});
}

} // namespace
