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

/// Converts a block of `rows` x `columns` values, `stride` apart between
/// rows, into contiguous floats.
template <typename Format>
static void widenBlock(const typename Format::Storage *block, int64_t stride,
                       int64_t rows, int64_t columns, std::vector<float> &out) {
  out.resize(size_t(rows * columns));
  parallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(columns, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t r = begin; r < end; ++r)
                  widen<Format>(block + r * stride, out.data() + r * columns,
                                columns);
              });
}

/// Elements of a converted tile (op(A) row block, op(B) column block, or
/// C block) kept under about 4 MiB of floats, but at least 256 rows or
/// columns, so OpenBLAS still sees large GEMMs.
static int64_t tileExtent(int64_t whole, int64_t other) {
  constexpr int64_t kTileElements = int64_t(1) << 20;
  return std::min(whole, std::max<int64_t>(256, kTileElements /
                                                    std::max<int64_t>(other, 1)));
}

// Debian 12's OpenBLAS (0.3.21) is built without bf16 GEMM; newer builds
// export cblas_sbgemm, which a weak reference finds when present.
#pragma weak cblas_sbgemm

/// Whether bf16 GEMMs use OpenBLAS's `cblas_sbgemm` (the library this
/// process loaded exports it) rather than converted tiles.
static bool hasBF16Gemm() { return &cblas_sbgemm != nullptr; }

template <typename Format>
Status gemm(bool transposeA, bool transposeB, int64_t m, int64_t n, int64_t k,
            float alpha, const typename Format::Storage *a,
            const typename Format::Storage *b, float beta,
            typename Format::Storage *c) {
  if constexpr (kIsF32<Format>) {
    return gemm(transposeA, transposeB, m, n, k, alpha, a, b, beta, c);
  } else {
    if (m == 0 || n == 0)
      return Status::ok();
    constexpr int64_t kLimit = INT32_MAX;
    if (m > kLimit || n > kLimit || k > kLimit)
      return error("matrix dimensions ", m, "x", n, "x", k,
                   " exceed the BLAS interface's 32-bit sizes");
    // A block of rows of C is op(A)'s block of rows times op(B); C's block
    // of columns is op(A) times op(B)'s block of columns. Row blocks of
    // op(A) are columns of A when A is transposed.
    int64_t rowsPerTile = tileExtent(m, std::max(k, n));
    int64_t columnsPerTile = tileExtent(n, k);
    bool direct = std::is_same_v<Format, BF16> && hasBF16Gemm();
    std::vector<float> aTile, bTile, cTile;
    for (int64_t j0 = 0; j0 < n; j0 += columnsPerTile) {
      int64_t columns = std::min(columnsPerTile, n - j0);
      // op(B)[:, j0:j0+columns]: B's columns, or its rows when transposed.
      if (!direct)
        widenBlock<Format>(transposeB ? b + j0 * k : b + j0, transposeB ? k : n,
                           transposeB ? columns : k, transposeB ? k : columns,
                           bTile);
      for (int64_t i0 = 0; i0 < m; i0 += rowsPerTile) {
        int64_t rows = std::min(rowsPerTile, m - i0);
        // op(A)[i0:i0+rows, :]: A's rows, or its columns when transposed
        // (converted once when one block holds them all).
        if (!direct && (j0 == 0 || rowsPerTile < m))
          widenBlock<Format>(transposeA ? a + i0 : a + i0 * k,
                             transposeA ? m : k, transposeA ? k : rows,
                             transposeA ? rows : k, aTile);
        if (beta == 0.0f)
          cTile.assign(size_t(rows * columns), 0.0f);
        else
          widenBlock<Format>(c + i0 * n + j0, n, rows, columns, cTile);
        if (k > 0 && direct) {
          cblas_sbgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                       transposeB ? CblasTrans : CblasNoTrans, int(rows),
                       int(columns), int(k), alpha,
                       a + (transposeA ? i0 : i0 * k), transposeA ? int(m) : int(k),
                       b + (transposeB ? j0 * k : j0), transposeB ? int(k) : int(n),
                       beta, cTile.data(), int(columns));
        } else if (k > 0) {
          cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans,
                      transposeB ? CblasTrans : CblasNoTrans, int(rows),
                      int(columns), int(k), alpha, aTile.data(),
                      transposeA ? int(rows) : int(k), bTile.data(),
                      transposeB ? int(k) : int(columns), beta, cTile.data(),
                      int(columns));
        } else if (beta != 1.0f) {
          for (float &value : cTile)
            value *= beta;
        }
        parallelFor(rows, std::max<int64_t>(1, 16384 / columns),
                    [&](int64_t begin, int64_t end) {
                      for (int64_t r = begin; r < end; ++r)
                        narrow<Format>(cTile.data() + r * columns,
                                       c + (i0 + r) * n + j0, columns);
                    });
      }
    }
    return Status::ok();
  }
}

template Status gemm<F32>(bool, bool, int64_t, int64_t, int64_t, float,
                          const float *, const float *, float, float *);
template Status gemm<F16>(bool, bool, int64_t, int64_t, int64_t, float,
                          const uint16_t *, const uint16_t *, float,
                          uint16_t *);
template Status gemm<BF16>(bool, bool, int64_t, int64_t, int64_t, float,
                           const uint16_t *, const uint16_t *, float,
                           uint16_t *);

namespace {

template <typename Format>
Status matmul(const KernelArgs &args, const MatmulAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &lhs = args.input(0), &rhs = args.input(1);
  const Tensor &out = args.output();
  bool tl = attributes.transposeLhs, tr = attributes.transposeRhs;
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
    return gemm<Format>(false, tr, batches * m, n, k, 1.0f, lhs.as<Storage>(),
                        rhs.as<Storage>(), 0.0f, out.as<Storage>());
  }
  BroadcastLoop lhsLoop(batch, {&lhsBatch}), rhsLoop(batch, {&rhsBatch});
  for (int64_t index = 0; index < batches; ++index) {
    // The loops iterate the batch as rows of their merged shape.
    auto offsetIn = [&](const BroadcastLoop &loop) {
      int64_t length = loop.rowLength();
      return loop.rowOffset(0, index / length) +
             (index % length) * loop.rowStride(0);
    };
    GALVATRON_RETURN_IF_ERROR(gemm<Format>(
        tl, tr, m, n, k, 1.0f,
        lhs.as<Storage>() + offsetIn(lhsLoop) * lhsMatrix,
        rhs.as<Storage>() + offsetIn(rhsLoop) * rhsMatrix, 0.0f,
        out.as<Storage>() + index * outMatrix));
  }
  return Status::ok();
}

template <typename Format>
Status linear(const KernelArgs &args, const LinearAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0), &weight = args.input(1);
  const Tensor &out = args.output();
  int64_t k = input.shape().back(), n = out.shape().back();
  int64_t rows = k ? input.numElements() / k
                   : out.numElements() / std::max<int64_t>(n, 1);
  Storage *c = out.as<Storage>();
  float beta = 0.0f;
  if (args.hasInput(2)) {
    const Storage *bias = args.input(2).as<Storage>();
    parallelFor(rows, 256, [&](int64_t begin, int64_t end) {
      for (int64_t row = begin; row < end; ++row)
        std::memcpy(c + row * n, bias, n * sizeof(Storage));
    });
    beta = 1.0f;
  }
  return gemm<Format>(false, attributes.transposeWeight, rows, n, k, 1.0f,
                      input.as<Storage>(), weight.as<Storage>(), beta, c);
}

/// Rows of the table (of any element type: rows are copied as bytes).
template <typename Index>
Status gatherRows(const KernelArgs &args, const VocabBlock &block) {
  const Tensor &table = args.input(0), &indices = args.input(1);
  const Tensor &out = args.output();
  size_t rowBytes = size_t(table.shape()[1]) * elementSize(table.elementType());
  const Index *ids = indices.as<Index>();
  int64_t count = indices.numElements();
  for (int64_t i = 0; i < count; ++i)
    if (ids[i] < 0 || int64_t(ids[i]) >= block.size)
      return error("index ", int64_t(ids[i]), " at position ", i,
                   " is out of range [0, ", block.size, ")");
  const uint8_t *rowsIn = table.data;
  uint8_t *rowsOut = out.data;
  // Ids another rank's block holds give zero rows.
  parallelFor(count, 64, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      int64_t id = int64_t(ids[i]);
      if (block.holds(id))
        std::memcpy(rowsOut + i * rowBytes,
                    rowsIn + (id - block.start) * rowBytes, rowBytes);
      else
        std::memset(rowsOut + i * rowBytes, 0, rowBytes);
    }
  });
  return Status::ok();
}

Status embedding(const KernelArgs &args,
                 const EmbeddingAttributes &attributes) {
  return withIndexType(args.input(1), [&](auto index) {
    return gatherRows<decltype(index)>(args, attributes.vocab);
  });
}

} // namespace

void registerLinearAlgebraKernels(CPUKernelTable &table) {
  table.addFloat(Opcode::Matmul, [](auto f) { return matmul<decltype(f)>; });
  table.addFloat(Opcode::Linear, [](auto f) { return linear<decltype(f)>; });
  table.addFloat(Opcode::Embedding, [](auto) { return embedding; });
}

} // namespace galvatron::runtime::cpu
