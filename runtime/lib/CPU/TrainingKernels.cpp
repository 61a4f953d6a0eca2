//===- TrainingKernels.cpp - Gradients, optimizer updates, copies ---------===//
//
// The kernels a training step adds: the fused backward kernels, the learning
// rate schedule, AdamW and SGD updates, and the data movement autodiff and
// state updates need (copy, compare, pad). Sums over many rows (weight and
// bias gradients of norms, embedding rows, attention keys) run in a fixed
// order for a fixed thread count, so a step is reproducible bit for bit.
// Updates read each element before writing it: their results may overwrite
// the parameter and its moments in place.
//
//===----------------------------------------------------------------------===//

#include "CPUKernels.h"
#include "FastMath.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace galvatron::runtime::cpu {
namespace {

//===----------------------------------------------------------------------===//
// copy, compare, pad
//===----------------------------------------------------------------------===//

Status copy(const KernelArgs &args, const NoAttributes &) {
  const Tensor &input = args.input(0);
  if (args.output().data != input.data)
    std::memcpy(args.output().data, input.data, input.type->byteSize());
  return Status::ok();
}

/// Every element `value` (a splat constant made where it is used): the
/// element's bytes once, then copies of them.
Status fill(const KernelArgs &args, const FillAttributes &attributes) {
  const Tensor &out = args.output();
  int64_t count = out.numElements();
  unsigned size = elementSize(out.elementType());
  if (count == 0)
    return Status::ok();
  storeElement(out.data, out.elementType(), 0, attributes.value);
  if (out.elementType() == ElementType::f32) {
    std::fill_n(out.as<float>(), count, *out.as<float>());
    return Status::ok();
  }
  for (int64_t i = 1; i < count; ++i)
    std::memcpy(out.data + i * size, out.data, size);
  return Status::ok();
}

Status compare(const KernelArgs &args, const CompareAttributes &attributes) {
  const Tensor &lhs = args.input(0), &rhs = args.input(1);
  const Tensor &out = args.output();
  ComparePredicate predicate = attributes.predicate;
  BroadcastLoop loop(out.shape(), {&lhs.shape(), &rhs.shape()});
  int64_t length = loop.rowLength();
  uint8_t *result = out.data;
  parallelFor(loop.rows(), std::max<int64_t>(1, 4096 / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  int64_t a = loop.rowOffset(0, row), b = loop.rowOffset(1, row);
                  for (int64_t i = 0; i < length; ++i) {
                    double x = loadElement(lhs.data, lhs.elementType(),
                                           a + i * loop.rowStride(0));
                    double y = loadElement(rhs.data, rhs.elementType(),
                                           b + i * loop.rowStride(1));
                    bool value = false;
                    switch (predicate) {
                    case ComparePredicate::eq: value = x == y; break;
                    case ComparePredicate::ne: value = x != y; break;
                    case ComparePredicate::lt: value = x < y; break;
                    case ComparePredicate::le: value = x <= y; break;
                    case ComparePredicate::gt: value = x > y; break;
                    case ComparePredicate::ge: value = x >= y; break;
                    }
                    result[row * length + i] = value;
                  }
                }
              });
  return Status::ok();
}

Status pad(const KernelArgs &args, const PadAttributes &attributes) {
  const Tensor &input = args.input(0), &out = args.output();
  const std::vector<int64_t> &low = attributes.low,
                             &interior = attributes.interior;
  GALVATRON_RETURN_IF_ERROR(
      fill(KernelArgs{{}, {out}}, FillAttributes{attributes.value}));
  // Input element (i0, i1, ...) lands at Σ (low_d + i_d·(interior_d + 1))
  // · outStride_d.
  std::vector<int64_t> outStrides = stridesOf(out.shape());
  std::vector<int64_t> strides(input.rank());
  int64_t base = 0;
  for (int64_t d = 0; d < input.rank(); ++d) {
    strides[d] = outStrides[d] * (interior[d] + 1);
    base += low[d] * outStrides[d];
  }
  unsigned size = elementSize(input.elementType());
  std::vector<int64_t> index(input.rank(), 0);
  for (int64_t i = 0; i < input.numElements(); ++i) {
    int64_t at = base;
    for (int64_t d = 0; d < input.rank(); ++d)
      at += index[d] * strides[d];
    std::memcpy(out.data + at * size, input.data + i * size, size);
    for (int64_t d = input.rank(); d-- > 0;) {
      if (++index[d] < input.shape()[d])
        break;
      index[d] = 0;
    }
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Activations and norms
//===----------------------------------------------------------------------===//

template <typename Format>
Status activationGrad(const KernelArgs &args,
                      const ActivationGradAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Storage *grad = args.input(0).as<Storage>();
  const Storage *x = args.input(1).as<Storage>();
  Storage *out = args.output().as<Storage>();
  Activation activation = attributes.activation;
  parallelFor(args.output().numElements(), 4096,
              [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double v = Format::load(x[i]), derivative = 0.0;
      switch (activation) {
      case Activation::relu:
        derivative = v > 0.0 ? 1.0 : 0.0;
        break;
      case Activation::silu: {
        double s = 1.0 / (1.0 + std::exp(-v));
        derivative = s * (1.0 + v * (1.0 - s));
        break;
      }
      case Activation::gelu:
        derivative = 0.5 * (1.0 + std::erf(v * M_SQRT1_2)) +
                     v * std::exp(-0.5 * v * v) * 0.3989422804014327;
        break;
      case Activation::geluTanh: {
        constexpr double c = 0.7978845608028654; // √(2/π)
        double inner = c * (v + 0.044715 * v * v * v);
        double t = std::tanh(inner);
        derivative = 0.5 * (1.0 + t) +
                     0.5 * v * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * v * v);
        break;
      }
      }
      out[i] = Format::store(float(Format::load(grad[i]) * derivative));
    }
  });
  return Status::ok();
}

/// Gradients of layer norm (`centered`) or RMS norm over the last dimension.
/// Weight and bias gradients are summed per chunk of rows in double, then
/// the chunks in order.
template <typename Format, bool centered>
Status normGrad(const KernelArgs &args, const NormAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(1);
  int64_t width = input.shape().back();
  int64_t rows = width ? input.numElements() / width : 0;
  const Storage *dy = args.input(0).as<Storage>();
  const Storage *x = input.as<Storage>();
  std::vector<float> weightScratch;
  const float *w =
      floatsOf<Format>(args.input(2).as<Storage>(), width, weightScratch);
  Storage *dx = args.output(0).as<Storage>();
  double epsilon = attributes.epsilon;
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threadCount(), rows / 16));
  std::vector<double> partial(size_t(chunks) * 2 * width, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    double *dw = &partial[size_t(chunk) * 2 * width], *db = dw + width;
    std::vector<double> normalized(width);
    std::vector<float> inScratch, gradScratch, resScratch;
    for (int64_t row = rows * chunk / chunks; row < rows * (chunk + 1) / chunks;
         ++row) {
      const float *in = floatsOf<Format>(x + row * width, width, inScratch);
      const float *g = floatsOf<Format>(dy + row * width, width, gradScratch);
      float *res = floatTarget<Format>(dx + row * width, width, resScratch);
      double mean = 0.0, squares = 0.0;
      if (centered) {
        for (int64_t i = 0; i < width; ++i)
          mean += in[i];
        mean /= double(width);
      }
      for (int64_t i = 0; i < width; ++i)
        squares += (in[i] - mean) * (in[i] - mean);
      double r = 1.0 / std::sqrt(squares / double(width) + epsilon);
      // x̂ = (x − μ)·r; ĝ = grad·w.
      double meanG = 0.0, meanGX = 0.0;
      for (int64_t i = 0; i < width; ++i) {
        normalized[i] = (in[i] - mean) * r;
        double gw = double(g[i]) * w[i];
        meanG += gw;
        meanGX += gw * normalized[i];
        dw[i] += double(g[i]) * normalized[i];
        db[i] += g[i];
      }
      meanG /= double(width);
      meanGX /= double(width);
      for (int64_t i = 0; i < width; ++i) {
        double gw = double(g[i]) * w[i];
        res[i] = float(r * (gw - (centered ? meanG : 0.0) -
                            normalized[i] * meanGX));
      }
      storeFloats<Format>(res, dx + row * width, width);
    }
  }
  Storage *weightGrad = args.output(1).as<Storage>();
  Storage *biasGrad = centered ? args.output(2).as<Storage>() : nullptr;
  for (int64_t i = 0; i < width; ++i) {
    double dw = 0.0, db = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      dw += partial[size_t(chunk) * 2 * width + i];
      db += partial[size_t(chunk) * 2 * width + width + i];
    }
    weightGrad[i] = Format::store(float(dw));
    if (biasGrad)
      biasGrad[i] = Format::store(float(db));
  }
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// One task per (batch, key/value head): it owns that head's key and value
/// gradients and walks the query heads sharing it, block by block:
/// P = softmax(scale·Q·Kᵀ + mask) recomputed, dP = dO·Vᵀ,
/// dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale·dS·K, dK += scale·dSᵀ·Q,
/// dV += Pᵀ·dO. With dropout the forward's mask M (kept elements scaled)
/// is drawn again: dP = (dO·Vᵀ) ∘ M and dV += (P ∘ M)ᵀ·dO.
template <typename Format>
Status attentionGrad(const KernelArgs &args,
                     const AttentionAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &gradOut = args.input(0), &query = args.input(1),
               &key = args.input(2), &value = args.input(3);
  const AttentionShape shape(args, attributes, 1);
  const int64_t batch = shape.batch, heads = shape.heads, seq = shape.seq,
                headDim = shape.headDim, kvHeads = shape.kvHeads,
                keys = shape.keys, valueDim = shape.valueDim,
                group = shape.group;
  const bool causal = shape.causal;
  const float scale = shape.scale;
  const Storage *mask = reinterpret_cast<const Storage *>(shape.mask);
  const std::array<int64_t, 4> &maskStride = shape.maskStride;
  const DropoutMask dropout(args.context(), attributes.dropout,
                            {batch, heads, seq, keys});
  // The mask gradient sums over whatever the mask broadcasts along: in f32,
  // stored once at the end.
  Storage *maskGradStored = nullptr;
  float *maskGrad = nullptr;
  std::vector<float> maskGradScratch;
  int64_t maskElements = 0;
  if (args.outputs.size() == 4) {
    maskElements = args.output(3).numElements();
    maskGradStored = args.output(3).as<Storage>();
    maskGrad =
        floatTarget<Format>(maskGradStored, maskElements, maskGradScratch);
    std::fill_n(maskGrad, maskElements, 0.0f);
  }

  const Storage *dO = gradOut.as<Storage>(), *q = query.as<Storage>(),
                *k = key.as<Storage>(), *v = value.as<Storage>();
  Storage *dQ = args.output(0).as<Storage>(),
          *dK = args.output(1).as<Storage>(),
          *dV = args.output(2).as<Storage>();
  int64_t blocks = (seq + kQueryBlock - 1) / kQueryBlock;
  int64_t tasks = batch * kvHeads;
  bool failed = false;

  // Per thread: probabilities and their gradients for a block, and for
  // 16-bit tensors the f32 rows of the task's operands and results.
  struct Scratch {
    explicit Scratch(size_t size, size_t keys)
        : p(size), dp(size), dropped(keys) {}
    std::vector<float> p, dp, dropped, key, value, dKey, dValue, query,
        gradOut, dQuery;
  };
  auto runTask = [&](int64_t task, Scratch &scratch) {
    int64_t b = task / kvHeads, kvh = task % kvHeads;
    size_t headOffset = size_t(b * kvHeads + kvh) * size_t(keys);
    const float *kHead =
        floatsOf<Format>(k + headOffset * headDim, keys * headDim, scratch.key);
    const float *vHead = floatsOf<Format>(v + headOffset * valueDim,
                                          keys * valueDim, scratch.value);
    float *dKHead = floatTarget<Format>(dK + headOffset * headDim,
                                        keys * headDim, scratch.dKey);
    float *dVHead = floatTarget<Format>(dV + headOffset * valueDim,
                                        keys * valueDim, scratch.dValue);
    std::fill_n(dKHead, keys * headDim, 0.0f);
    std::fill_n(dVHead, keys * valueDim, 0.0f);
    float *p = scratch.p.data(), *dp = scratch.dp.data();
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t block = 0; block < blocks; ++block) {
        int64_t first = block * kQueryBlock;
        int64_t rows = std::min(kQueryBlock, seq - first);
        int64_t width = causal ? std::min(keys, first + rows) : keys;
        size_t rowOffset = size_t((b * heads + h) * seq + first);
        const float *qBlock = floatsOf<Format>(
            q + rowOffset * headDim, rows * headDim, scratch.query);
        const float *dOBlock = floatsOf<Format>(
            dO + rowOffset * valueDim, rows * valueDim, scratch.gradOut);
        float *dQBlock = floatTarget<Format>(dQ + rowOffset * headDim,
                                             rows * headDim, scratch.dQuery);
        bool ok = gemm(false, true, rows, width, headDim, scale, qBlock, kHead,
                       0.0f, p)
                      .isOk();
        ok &= gemm(false, true, rows, width, valueDim, 1.0f, dOBlock, vHead,
                   0.0f, dp)
                  .isOk();
        for (int64_t r = 0; r < rows; ++r) {
          float *row = p + r * width, *dRow = dp + r * width;
          int64_t i = first + r;
          if (mask) {
            const Storage *maskRow = mask + shape.maskRow(b, h, i);
            for (int64_t j = 0; j < width; ++j)
              row[j] += Format::load(maskRow[j * maskStride[3]]);
          }
          int64_t visible = causal ? i + 1 : width;
          softmaxLine(row, row, visible, 1);
          std::fill(row + visible, row + width, 0.0f);
          float *factor = scratch.dropped.data();
          if (dropout.active()) {
            dropout.factors(dropout.rowStart((b * heads + h) * seq + i),
                            visible, factor);
            for (int64_t j = 0; j < visible; ++j)
              dRow[j] *= factor[j];
          }
          double dot = 0.0;
          for (int64_t j = 0; j < visible; ++j)
            dot += double(row[j]) * dRow[j];
          for (int64_t j = 0; j < width; ++j)
            dRow[j] = j < visible ? row[j] * (dRow[j] - float(dot)) : 0.0f;
          if (maskGrad) {
            float *gradRow = maskGrad + shape.maskRow(b, h, i);
            for (int64_t j = 0; j < width; ++j)
              gradRow[j * maskStride[3]] += dRow[j];
          }
          // The value gradient reads the dropped probabilities.
          if (dropout.active())
            for (int64_t j = 0; j < visible; ++j)
              row[j] *= factor[j];
        }
        // dp now holds dS.
        ok &= gemm(false, false, rows, headDim, width, scale, dp, kHead, 0.0f,
                   dQBlock)
                  .isOk();
        ok &= gemm(true, false, width, headDim, rows, scale, dp, qBlock, 1.0f,
                   dKHead)
                  .isOk();
        ok &= gemm(true, false, width, valueDim, rows, 1.0f, p, dOBlock, 1.0f,
                   dVHead)
                  .isOk();
        storeFloats<Format>(dQBlock, dQ + rowOffset * headDim, rows * headDim);
        if (!ok)
          failed = true;
      }
    }
    storeFloats<Format>(dKHead, dK + headOffset * headDim, keys * headDim);
    storeFloats<Format>(dVHead, dV + headOffset * valueDim, keys * valueDim);
  };

  size_t scratch = size_t(kQueryBlock) * size_t(keys);
  // The mask gradient may be shared between tasks: accumulate it in order.
  if (threadCount() == 1 || tasks == 1 || maskGrad) {
    Scratch buffers(scratch, size_t(keys));
    for (int64_t task = 0; task < tasks; ++task)
      runTask(task, buffers);
  } else {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel
    {
      Scratch buffers(scratch, size_t(keys));
#pragma omp for schedule(dynamic)
      for (int64_t task = 0; task < tasks; ++task)
        runTask(task, buffers);
    }
    openblas_set_num_threads(saved);
  }
  if (maskGrad)
    storeFloats<Format>(maskGrad, maskGradStored, maskElements);
  if (failed)
    return error("attention dimensions exceed the BLAS interface's 32-bit "
                 "sizes");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Embedding and cross-entropy
//===----------------------------------------------------------------------===//

/// Each row of the table is the sum of the gradient rows of the positions
/// whose id it holds, added in position order in f32 (positions are first
/// grouped by id); rows of ids no position has are zero, and ids of another
/// rank's block add nothing here.
template <typename Format, typename Index>
Status embeddingGradOf(const KernelArgs &args, const VocabBlock &block) {
  using Storage = typename Format::Storage;
  const Tensor &grad = args.input(0), &indexTensor = args.input(1);
  const Tensor &out = args.output();
  int64_t dim = out.shape()[1];
  int64_t positions = indexTensor.numElements();
  const Index *indices = indexTensor.as<Index>();
  for (int64_t p = 0; p < positions; ++p)
    if (indices[p] < 0 || int64_t(indices[p]) >= block.size)
      return error("index ", int64_t(indices[p]), " at position ", p,
                   " is out of range [0, ", block.size, ")");
  // first[r] .. first[r + 1]: where row r's positions lie in `byRow`.
  std::vector<int64_t> first(size_t(block.local) + 1, 0), byRow;
  for (int64_t p = 0; p < positions; ++p)
    if (block.holds(int64_t(indices[p])))
      ++first[size_t(int64_t(indices[p]) - block.start) + 1];
  for (int64_t r = 0; r < block.local; ++r)
    first[r + 1] += first[r];
  byRow.resize(size_t(first[block.local]));
  std::vector<int64_t> next(first.begin(), first.end() - 1);
  for (int64_t p = 0; p < positions; ++p)
    if (block.holds(int64_t(indices[p])))
      byRow[next[int64_t(indices[p]) - block.start]++] = p;
  const Storage *g = grad.as<Storage>();
  Storage *table = out.as<Storage>();
  parallelFor(block.local, std::max<int64_t>(1, 4096 / std::max<int64_t>(dim, 1)),
              [&](int64_t begin, int64_t end) {
                std::vector<float> sum(static_cast<size_t>(dim));
                for (int64_t r = begin; r < end; ++r) {
                  std::fill(sum.begin(), sum.end(), 0.0f);
                  for (int64_t e = first[r]; e < first[r + 1]; ++e) {
                    const Storage *source = g + byRow[e] * dim;
                    for (int64_t j = 0; j < dim; ++j)
                      sum[j] += Format::load(source[j]);
                  }
                  narrow<Format>(sum.data(), table + r * dim, dim);
                }
              });
  return Status::ok();
}

template <typename Format>
Status embeddingGrad(const KernelArgs &args,
                     const EmbeddingAttributes &attributes) {
  return withIndexType(args.input(1), [&](auto index) {
    return embeddingGradOf<Format, decltype(index)>(args, attributes.vocab);
  });
}

/// The softmax of a row of logits times `scale`, less `scale` at the
/// label's column (-1: none), stored in `out`.
template <typename Format>
void crossEntropyGradRow(const typename Format::Storage *row,
                         typename Format::Storage *out, int64_t width,
                         float maximum, double inverseSum, float scale,
                         int64_t column) {
  for (int64_t j = 0; j < width; ++j) {
    float value = float(std::exp(double(Format::load(row[j])) - maximum) *
                        inverseSum * scale);
    out[j] = Format::store(j == column ? value - scale : value);
  }
}

template <typename Format, typename Label>
Status crossEntropyGradOf(const KernelArgs &args,
                          const CrossEntropyAttributes &attributes) {
  using Storage = typename Format::Storage;
  float seed = *args.input(0).as<float>();
  VocabLabels<Label> labels(args, attributes, 2);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t vocab = labels.block.local;
  float scale = crossEntropyGradScale(seed, *counted, attributes.mean);
  const Storage *x = args.input(1).as<Storage>();
  Storage *out = args.output().as<Storage>();
  parallelFor(labels.rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const Storage *row = x + r * vocab;
      Storage *res = out + r * vocab;
      if (labels.ignored(r)) {
        std::fill(res, res + vocab, Format::store(0.0f));
        continue;
      }
      auto [maximum, sum] = softmaxStatistics<Format>(row, vocab);
      crossEntropyGradRow<Format>(row, res, vocab, maximum, 1.0 / sum, scale,
                                  labels.column(r));
    }
  });
  return Status::ok();
}

template <typename Format>
Status crossEntropyGrad(const KernelArgs &args,
                        const CrossEntropyAttributes &attributes) {
  return withIndexType(args.input(2), [&](auto label) {
    return crossEntropyGradOf<Format, decltype(label)>(args, attributes);
  });
}

/// grad, stats, logits, max, labels -> the rank's logits gradient.
template <typename Format, typename Label>
Status vocabCrossEntropyGradOf(const KernelArgs &args,
                               const CrossEntropyAttributes &attributes) {
  using Storage = typename Format::Storage;
  float seed = *args.input(0).as<float>();
  VocabLabels<Label> labels(args, attributes, 4);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t local = labels.block.local;
  float scale = crossEntropyGradScale(seed, *counted, attributes.mean);
  const float *stats = args.input(1).as<float>();
  const Storage *x = args.input(2).as<Storage>();
  const Storage *maximum = args.input(3).as<Storage>();
  Storage *out = args.output().as<Storage>();
  parallelFor(labels.rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      Storage *res = out + r * local;
      if (labels.ignored(r)) {
        std::fill(res, res + local, Format::store(0.0f));
        continue;
      }
      // A padded vocabulary's columns past the valid ones get no gradient.
      int64_t valid = labels.block.valid();
      crossEntropyGradRow<Format>(x + r * local, res, valid,
                                  Format::load(maximum[r]),
                                  1.0 / double(stats[2 * r]), scale,
                                  labels.column(r));
      std::fill(res + valid, res + local, Format::store(0.0f));
    }
  });
  return Status::ok();
}

template <typename Format>
Status vocabCrossEntropyGrad(const KernelArgs &args,
                             const CrossEntropyAttributes &attributes) {
  return withIndexType(args.input(4), [&](auto label) {
    return vocabCrossEntropyGradOf<Format, decltype(label)>(args, attributes);
  });
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

Status lrSchedule(const KernelArgs &args,
                  const LRScheduleAttributes &attributes) {
  double t = double(*args.input(0).as<int64_t>());
  double lr = attributes.lr, minLr = attributes.minLr;
  double warmup = double(attributes.warmupSteps);
  double decay = double(attributes.decaySteps);
  double rate = lr;
  // (Update 0 is an fp16 step skipped before any update: no warm-up.)
  if (warmup > 0 && t <= warmup)
    rate = lr * t / warmup;
  else if (decay > warmup && t <= decay)
    rate = minLr + 0.5 * (lr - minLr) *
                       (1.0 + std::cos(M_PI * (t - warmup) / (decay - warmup)));
  else if (decay > warmup)
    rate = minLr;
  *args.output().as<float>() = float(rate);
  return Status::ok();
}

/// Whether the optional `enable` operand at `index` allows the update.
bool updateEnabled(const KernelArgs &args, size_t index) {
  return !args.hasInput(index) || *args.input(index).as<uint8_t>() != 0;
}

/// Copies operand `input` to result `output` unless they share bytes.
void keep(const KernelArgs &args, size_t output, size_t input) {
  if (args.output(output).data != args.input(input).data)
    std::memcpy(args.output(output).data, args.input(input).data,
                args.input(input).type->byteSize());
}

/// torch.optim.AdamW (single-tensor path) element by element.
Status adamwUpdate(const KernelArgs &args, const AdamWAttributes &attributes) {
  if (!updateEnabled(args, 7)) {
    keep(args, 0, 0), keep(args, 1, 2), keep(args, 2, 3);
    return Status::ok();
  }
  const float *param = args.input(0).as<float>();
  const float *grad = args.input(1).as<float>();
  const float *m = args.input(2).as<float>();
  const float *v = args.input(3).as<float>();
  float lr = *args.input(4).as<float>();
  double step = double(*args.input(5).as<int64_t>());
  float gradScale = *args.input(6).as<float>();
  float *newParam = args.output(0).as<float>();
  float *newM = args.output(1).as<float>();
  float *newV = args.output(2).as<float>();
  double beta1 = attributes.beta1, beta2 = attributes.beta2;
  float epsilon = float(attributes.epsilon);
  float decay = float(1.0 - double(lr) * attributes.weightDecay);
  float stepSize = float(double(lr) / (1.0 - std::pow(beta1, step)));
  float correction2 = float(std::sqrt(1.0 - std::pow(beta2, step)));
  float b1 = float(beta1), b2 = float(beta2);
  float c1 = float(1.0 - beta1), c2 = float(1.0 - beta2);
  parallelFor(args.output().numElements(), 4096,
              [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float g = grad[i] * gradScale;
      float p = param[i] * decay;
      float mi = m[i] * b1 + g * c1;
      float vi = v[i] * b2 + g * g * c2;
      float denominator = std::sqrt(vi) / correction2 + epsilon;
      newParam[i] = p - stepSize * (mi / denominator);
      newM[i] = mi;
      newV[i] = vi;
    }
  });
  return Status::ok();
}

/// torch.optim.SGD with momentum, no dampening.
Status sgdUpdate(const KernelArgs &args, const SGDAttributes &attributes) {
  if (!updateEnabled(args, 5)) {
    keep(args, 0, 0), keep(args, 1, 2);
    return Status::ok();
  }
  const float *param = args.input(0).as<float>();
  const float *grad = args.input(1).as<float>();
  const float *buffer = args.input(2).as<float>();
  float lr = *args.input(3).as<float>();
  float gradScale = *args.input(4).as<float>();
  float *newParam = args.output(0).as<float>();
  float *newBuffer = args.output(1).as<float>();
  float momentum = float(attributes.momentum);
  float decay = float(attributes.weightDecay);
  bool nesterov = attributes.nesterov;
  parallelFor(args.output().numElements(), 4096,
              [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      float g = grad[i] * gradScale + decay * param[i];
      float b = momentum * buffer[i] + g;
      newParam[i] = param[i] - lr * (nesterov ? g + momentum * b : b);
      newBuffer[i] = b;
    }
  });
  return Status::ok();
}

} // namespace

void registerTrainingKernels(CPUKernelTable &table) {
  using O = Opcode;
  table.addAnyType(O::Copy, copy);
  table.addAnyType(O::Fill, fill);
  for (ElementType type : {ElementType::f32, ElementType::f16,
                           ElementType::bf16, ElementType::i32,
                           ElementType::i64})
    table.add(O::Compare, type, compare);
  table.addFloat(O::Pad, [](auto) { return pad; });
  table.addFloat(O::ActivationGrad,
                 [](auto f) { return activationGrad<decltype(f)>; });
  table.addFloat(O::LayerNormGrad,
                 [](auto f) { return normGrad<decltype(f), true>; });
  table.addFloat(O::RMSNormGrad,
                 [](auto f) { return normGrad<decltype(f), false>; });
  table.addFloat(O::AttentionGrad,
                 [](auto f) { return attentionGrad<decltype(f)>; });
  table.addFloat(O::EmbeddingGrad,
                 [](auto f) { return embeddingGrad<decltype(f)>; });
  table.addFloat(O::CrossEntropyGrad,
                 [](auto f) { return crossEntropyGrad<decltype(f)>; });
  table.addFloat(O::VocabCrossEntropyGrad,
                 [](auto f) { return vocabCrossEntropyGrad<decltype(f)>; });
  // The optimizer updates f32 master weights and state.
  table.add(O::LRSchedule, ElementType::f32, lrSchedule);
  table.add(O::AdamWUpdate, ElementType::f32, adamwUpdate);
  table.add(O::SGDUpdate, ElementType::f32, sgdUpdate);
}

} // namespace galvatron::runtime::cpu
