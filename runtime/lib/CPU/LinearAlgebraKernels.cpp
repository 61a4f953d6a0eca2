//===- LinearAlgebraKernels.cpp - matmul, linear, embedding ---------------===//

#include "CPUKernels.h"

#include <cblas.h>

#include <cstring>

namespace galvatron::runtime::cpu {

Status gemm(bool transposeA, bool transposeB, int64_t m, int64_t n, int64_t k,
            float alpha, const float *a, const float *b, float beta,
            float *c) {
  if (m == 0 || n == 0)
    return Status::ok();
  if (k == 0) {
    for (int64_t i = 0; i < m * n; ++i)
      c[i] = beta == 0.0f ? 0.0f : beta * c[i];
    return Status::ok();
  }
  constexpr int64_t kLimit = INT32_MAX;
  if (m > kLimit || n > kLimit || k > kLimit)
    return error("matrix dimensions ", m, "x", n, "x", k,
                 " exceed the BLAS interface's 32-bit sizes");
  cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
              transposeB ? CblasTrans : CblasNoTrans, int(m), int(n), int(k),
              alpha, a, transposeA ? int(m) : int(k), b,
              transposeB ? int(k) : int(n), beta, c, int(n));
  return Status::ok();
}

namespace {

Status matmul(const KernelContext &context) {
  const Tensor &lhs = context.input(0), &rhs = context.input(1);
  const Tensor &out = context.output();
  bool tl = context.flag("transpose_lhs"), tr = context.flag("transpose_rhs");
  const auto &l = lhs.shape(), &r = rhs.shape(), &o = out.shape();
  size_t lr = l.size(), outRank = o.size();
  int64_t m = o[outRank - 2], n = o[outRank - 1];
  int64_t k = tl ? l[lr - 2] : l[lr - 1];
  int64_t lhsMatrix = m * k, rhsMatrix = k * n, outMatrix = m * n;
  std::vector<int64_t> batch(o.begin(), o.end() - 2);
  std::vector<int64_t> lhsBatch(l.begin(), l.end() - 2),
      rhsBatch(r.begin(), r.end() - 2);
  int64_t batches = product(batch, 0, batch.size());
  if (outMatrix == 0 || batches == 0)
    return Status::ok();

  // A shared right operand and a plain left one: one GEMM with M = batch·m.
  if (product(rhsBatch, 0, rhsBatch.size()) == 1 && !tl &&
      product(lhsBatch, 0, lhsBatch.size()) == batches) {
    return gemm(false, tr, batches * m, n, k, 1.0f, lhs.as<float>(),
                rhs.as<float>(), 0.0f, out.as<float>());
  }
  BroadcastLoop lhsLoop(batch, {&lhsBatch}), rhsLoop(batch, {&rhsBatch});
  for (int64_t index = 0; index < batches; ++index) {
    // The loops iterate the batch as rows of their merged shape.
    auto offsetIn = [&](const BroadcastLoop &loop) {
      int64_t length = loop.rowLength();
      return loop.rowOffset(0, index / length) +
             (index % length) * loop.rowStride(0);
    };
    GALVATRON_RETURN_IF_ERROR(
        gemm(tl, tr, m, n, k, 1.0f,
             lhs.as<float>() + offsetIn(lhsLoop) * lhsMatrix,
             rhs.as<float>() + offsetIn(rhsLoop) * rhsMatrix, 0.0f,
             out.as<float>() + index * outMatrix));
  }
  return Status::ok();
}

Status linear(const KernelContext &context) {
  const Tensor &input = context.input(0), &weight = context.input(1);
  const Tensor &out = context.output();
  bool transposed = context.flag("transpose_weight");
  int64_t k = input.shape().back(), n = out.shape().back();
  int64_t rows = k ? input.numElements() / k : out.numElements() / std::max<int64_t>(n, 1);
  float *c = out.as<float>();
  float beta = 0.0f;
  if (context.hasInput(2)) {
    const float *bias = context.input(2).as<float>();
    parallelFor(rows, 256, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row)
        std::memcpy(c + row * n, bias, n * sizeof(float));
    });
    beta = 1.0f;
  }
  return gemm(false, transposed, rows, n, k, 1.0f, input.as<float>(),
              weight.as<float>(), beta, c);
}

template <typename Index> Status gatherRows(const KernelContext &context) {
  const Tensor &table = context.input(0), &indices = context.input(1);
  const Tensor &out = context.output();
  int64_t width = table.shape()[1];
  VocabBlock block(context, table.shape()[0]);
  const Index *ids = indices.as<Index>();
  int64_t count = indices.numElements();
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || int64_t(ids[i]) >= block.size)
      return error("index ", int64_t(ids[i]), " at position ", i,
                   " is out of range [0, ", block.size, ")");
  const float *rowsIn = table.as<float>();
  float *rowsOut = out.as<float>();
  // Ids another rank's block holds give zero rows.
  parallelFor(count, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t id = int64_t(ids[i]);
      if (block.holds(id))
        std::memcpy(rowsOut + i * width, rowsIn + (id - block.start) * width,
                    width * sizeof(float));
      else
        std::memset(rowsOut + i * width, 0, width * sizeof(float));
    }
  });
  return Status::ok();
}

Status embedding(const KernelContext &context) {
  if (context.input(1).elementType() == ElementType::i32)
    return gatherRows<int32_t>(context);
  return gatherRows<int64_t>(context);
}

} // namespace

void registerLinearAlgebraKernels(CPUKernelTable &table) {
  table.add(Opcode::Matmul, matmul);
  table.add(Opcode::Linear, linear);
  table.add(Opcode::Embedding, embedding);
}

} // namespace galvatron::runtime::cpu
