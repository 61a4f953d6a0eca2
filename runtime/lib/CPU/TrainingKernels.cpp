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

Status copy(const KernelContext &context) {
  const Tensor &input = context.input(0);
  if (context.output().data != input.data)
    std::memcpy(context.output().data, input.data, input.type->byteSize());
  return Status::ok();
}

/// Every element `value` (a splat constant made where it is used).
Status fill(const KernelContext &context) {
  const Tensor &out = context.output();
  double value = context.real("value");
  int64_t count = out.numElements();
  if (out.elementType() == ElementType::f32) {
    std::fill_n(out.as<float>(), count, static_cast<float>(value));
    return Status::ok();
  }
  for (int64_t i = 0; i < count; ++i)
    storeElement(out.data, out.elementType(), i, value);
  return Status::ok();
}

Status compare(const KernelContext &context) {
  const Tensor &lhs = context.input(0), &rhs = context.input(1);
  const Tensor &out = context.output();
  int64_t predicate = context.integer("predicate");
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
                    case 0: value = x == y; break;
                    case 1: value = x != y; break;
                    case 2: value = x < y; break;
                    case 3: value = x <= y; break;
                    case 4: value = x > y; break;
                    default: value = x >= y; break;
                    }
                    result[row * length + i] = value;
                  }
                }
              });
  return Status::ok();
}

Status pad(const KernelContext &context) {
  const Tensor &input = context.input(0), &out = context.output();
  std::vector<int64_t> low = context.integers("low"),
                       interior = context.integers("interior");
  double value = context.real("value");
  for (int64_t i = 0; i < out.numElements(); ++i)
    storeElement(out.data, out.elementType(), i, value);
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

Status activationGrad(const KernelContext &context) {
  const float *grad = context.input(0).as<float>();
  const float *x = context.input(1).as<float>();
  float *out = context.output().as<float>();
  int64_t activation = context.integer("activation");
  parallelFor(context.output().numElements(), 4096,
              [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      double v = x[i], derivative = 0.0;
      switch (activation) {
      case 0: // relu
        derivative = v > 0.0 ? 1.0 : 0.0;
        break;
      case 1: { // silu
        double s = 1.0 / (1.0 + std::exp(-v));
        derivative = s * (1.0 + v * (1.0 - s));
        break;
      }
      case 2: // exact gelu
        derivative = 0.5 * (1.0 + std::erf(v * M_SQRT1_2)) +
                     v * std::exp(-0.5 * v * v) * 0.3989422804014327;
        break;
      default: { // tanh gelu
        constexpr double c = 0.7978845608028654; // √(2/π)
        double inner = c * (v + 0.044715 * v * v * v);
        double t = std::tanh(inner);
        derivative = 0.5 * (1.0 + t) +
                     0.5 * v * (1.0 - t * t) * c * (1.0 + 3 * 0.044715 * v * v);
        break;
      }
      }
      out[i] = float(grad[i] * derivative);
    }
  });
  return Status::ok();
}

/// Gradients of layer norm (`centered`) or RMS norm over the last dimension.
/// Weight and bias gradients are summed per chunk of rows in double, then
/// the chunks in order.
Status normGrad(const KernelContext &context, bool centered) {
  const Tensor &input = context.input(1);
  int64_t width = input.shape().back();
  int64_t rows = width ? input.numElements() / width : 0;
  const float *dy = context.input(0).as<float>();
  const float *x = input.as<float>();
  const float *w = context.input(2).as<float>();
  float *dx = context.output(0).as<float>();
  double epsilon = context.real("epsilon");
  int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(threadCount(), rows / 16));
  std::vector<double> partial(size_t(chunks) * 2 * width, 0.0);
#pragma omp parallel for schedule(static) if (chunks > 1)
  for (int64_t chunk = 0; chunk < chunks; ++chunk) {
    double *dw = &partial[size_t(chunk) * 2 * width], *db = dw + width;
    std::vector<double> normalized(width);
    for (int64_t row = rows * chunk / chunks; row < rows * (chunk + 1) / chunks;
         ++row) {
      const float *in = x + row * width, *g = dy + row * width;
      float *res = dx + row * width;
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
    }
  }
  float *weightGrad = context.output(1).as<float>();
  float *biasGrad = centered ? context.output(2).as<float>() : nullptr;
  for (int64_t i = 0; i < width; ++i) {
    double dw = 0.0, db = 0.0;
    for (int64_t chunk = 0; chunk < chunks; ++chunk) {
      dw += partial[size_t(chunk) * 2 * width + i];
      db += partial[size_t(chunk) * 2 * width + width + i];
    }
    weightGrad[i] = float(dw);
    if (biasGrad)
      biasGrad[i] = float(db);
  }
  return Status::ok();
}

Status layerNormGrad(const KernelContext &context) {
  return normGrad(context, /*centered=*/true);
}

Status rmsNormGrad(const KernelContext &context) {
  return normGrad(context, /*centered=*/false);
}

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// One task per (batch, key/value head): it owns that head's key and value
/// gradients and walks the query heads sharing it, block by block:
/// P = softmax(scale·Q·Kᵀ + mask) recomputed, dP = dO·Vᵀ,
/// dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale·dS·K, dK += scale·dSᵀ·Q,
/// dV += Pᵀ·dO.
Status attentionGrad(const KernelContext &context) {
  const Tensor &gradOut = context.input(0), &query = context.input(1),
               &key = context.input(2), &value = context.input(3);
  const AttentionShape shape(context, 1);
  const int64_t batch = shape.batch, heads = shape.heads, seq = shape.seq,
                headDim = shape.headDim, kvHeads = shape.kvHeads,
                keys = shape.keys, valueDim = shape.valueDim,
                group = shape.group;
  const bool causal = shape.causal;
  const float scale = shape.scale;
  const float *mask = shape.mask;
  const std::array<int64_t, 4> &maskStride = shape.maskStride;
  float *maskGrad = nullptr;
  if (context.outputs.size() == 4) {
    maskGrad = context.output(3).as<float>();
    std::memset(maskGrad, 0, context.output(3).type->byteSize());
  }

  const float *dO = gradOut.as<float>(), *q = query.as<float>(),
              *k = key.as<float>(), *v = value.as<float>();
  float *dQ = context.output(0).as<float>(), *dK = context.output(1).as<float>(),
        *dV = context.output(2).as<float>();
  int64_t blocks = (seq + kQueryBlock - 1) / kQueryBlock;
  int64_t tasks = batch * kvHeads;
  bool failed = false;

  auto runTask = [&](int64_t task, std::vector<float> &p, std::vector<float> &dp) {
    int64_t b = task / kvHeads, kvh = task % kvHeads;
    const float *kHead = k + (b * kvHeads + kvh) * keys * headDim;
    const float *vHead = v + (b * kvHeads + kvh) * keys * valueDim;
    float *dKHead = dK + (b * kvHeads + kvh) * keys * headDim;
    float *dVHead = dV + (b * kvHeads + kvh) * keys * valueDim;
    std::memset(dKHead, 0, sizeof(float) * keys * headDim);
    std::memset(dVHead, 0, sizeof(float) * keys * valueDim);
    for (int64_t h = kvh * group; h < (kvh + 1) * group; ++h) {
      for (int64_t block = 0; block < blocks; ++block) {
        int64_t first = block * kQueryBlock;
        int64_t rows = std::min(kQueryBlock, seq - first);
        int64_t width = causal ? std::min(keys, first + rows) : keys;
        size_t rowOffset = size_t((b * heads + h) * seq + first);
        const float *qBlock = q + rowOffset * headDim;
        const float *dOBlock = dO + rowOffset * valueDim;
        float *dQBlock = dQ + rowOffset * headDim;
        bool ok = gemm(false, true, rows, width, headDim, scale, qBlock, kHead,
                       0.0f, p.data())
                      .isOk();
        ok &= gemm(false, true, rows, width, valueDim, 1.0f, dOBlock, vHead,
                   0.0f, dp.data())
                  .isOk();
        for (int64_t r = 0; r < rows; ++r) {
          float *row = p.data() + r * width, *dRow = dp.data() + r * width;
          int64_t i = first + r;
          const float *maskRow =
              mask ? mask + b * maskStride[0] + h * maskStride[1] +
                         i * maskStride[2]
                   : nullptr;
          if (maskRow)
            for (int64_t j = 0; j < width; ++j)
              row[j] += maskRow[j * maskStride[3]];
          int64_t visible = causal ? i + 1 : width;
          softmaxLine(row, row, visible, 1);
          std::fill(row + visible, row + width, 0.0f);
          double dot = 0.0;
          for (int64_t j = 0; j < visible; ++j)
            dot += double(row[j]) * dRow[j];
          for (int64_t j = 0; j < width; ++j)
            dRow[j] = j < visible ? row[j] * (dRow[j] - float(dot)) : 0.0f;
          if (maskGrad) {
            float *gradRow = maskGrad + b * maskStride[0] + h * maskStride[1] +
                             i * maskStride[2];
            for (int64_t j = 0; j < width; ++j)
              gradRow[j * maskStride[3]] += dRow[j];
          }
        }
        // dp now holds dS.
        ok &= gemm(false, false, rows, headDim, width, scale, dp.data(), kHead,
                   0.0f, dQBlock)
                  .isOk();
        ok &= gemm(true, false, width, headDim, rows, scale, dp.data(), qBlock,
                   1.0f, dKHead)
                  .isOk();
        ok &= gemm(true, false, width, valueDim, rows, 1.0f, p.data(), dOBlock,
                   1.0f, dVHead)
                  .isOk();
        if (!ok)
          failed = true;
      }
    }
  };

  size_t scratch = size_t(kQueryBlock) * size_t(keys);
  // The mask gradient may be shared between tasks: accumulate it in order.
  if (threadCount() == 1 || tasks == 1 || maskGrad) {
    std::vector<float> p(scratch), dp(scratch);
    for (int64_t task = 0; task < tasks; ++task)
      runTask(task, p, dp);
  } else {
    int saved = openblas_get_num_threads();
    openblas_set_num_threads(1);
#pragma omp parallel
    {
      std::vector<float> p(scratch), dp(scratch);
#pragma omp for schedule(dynamic)
      for (int64_t task = 0; task < tasks; ++task)
        runTask(task, p, dp);
    }
    openblas_set_num_threads(saved);
  }
  if (failed)
    return error("attention dimensions exceed the BLAS interface's 32-bit "
                 "sizes");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Embedding and cross-entropy
//===----------------------------------------------------------------------===//

template <typename Index>
Status embeddingGrad(const KernelContext &context) {
  const Tensor &grad = context.input(0), &indexTensor = context.input(1);
  const Tensor &out = context.output();
  int64_t dim = out.shape()[1];
  VocabBlock block(context, out.shape()[0]);
  int64_t positions = indexTensor.numElements();
  const Index *indices = indexTensor.as<Index>();
  for (int64_t p = 0; p < positions; ++p)
    if (indices[p] < 0 || int64_t(indices[p]) >= block.size)
      return error("index ", int64_t(indices[p]), " at position ", p,
                   " is out of range [0, ", block.size, ")");
  const float *g = grad.as<float>();
  float *table = out.as<float>();
  std::memset(table, 0, out.type->byteSize());
  // Columns are split between threads; positions add in order; ids of
  // another rank's block add nothing here.
  parallelFor(dim, 16, [&](int64_t begin, int64_t end) {
    for (int64_t p = 0; p < positions; ++p) {
      if (!block.holds(int64_t(indices[p])))
        continue;
      float *row = table + (int64_t(indices[p]) - block.start) * dim;
      const float *source = g + p * dim;
      for (int64_t j = begin; j < end; ++j)
        row[j] += source[j];
    }
  });
  return Status::ok();
}

Status embeddingGrad(const KernelContext &context) {
  if (context.input(1).elementType() == ElementType::i32)
    return embeddingGrad<int32_t>(context);
  return embeddingGrad<int64_t>(context);
}

template <typename Label>
Status crossEntropyGrad(const KernelContext &context) {
  float seed = *context.input(0).as<float>();
  const Tensor &logits = context.input(1), &labelTensor = context.input(2);
  int64_t vocab = logits.shape().back();
  int64_t rows = labelTensor.numElements();
  const Label *labels = labelTensor.as<Label>();
  int64_t ignore = context.integer("ignore_index", -100);
  Expected<int64_t> counted = countLabels(labels, rows, vocab, ignore);
  if (!counted)
    return counted.takeStatus();
  bool mean = context.integer("reduction") == 0;
  float scale = *counted == 0 ? 0.0f
                              : float(seed / (mean ? double(*counted) : 1.0));
  const float *x = logits.as<float>();
  float *out = context.output().as<float>();
  parallelFor(rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *row = x + r * vocab;
      float *res = out + r * vocab;
      if (int64_t(labels[r]) == ignore) {
        std::fill(res, res + vocab, 0.0f);
        continue;
      }
      float maximum = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < vocab; ++j)
        maximum = std::max(maximum, row[j]);
      double sum = 0.0;
      for (int64_t j = 0; j < vocab; ++j)
        sum += std::exp(double(row[j]) - maximum);
      double inverse = 1.0 / sum;
      for (int64_t j = 0; j < vocab; ++j)
        res[j] = float(std::exp(double(row[j]) - maximum) * inverse * scale);
      res[labels[r]] -= scale;
    }
  });
  return Status::ok();
}

Status crossEntropyGrad(const KernelContext &context) {
  if (context.input(2).elementType() == ElementType::i32)
    return crossEntropyGrad<int32_t>(context);
  return crossEntropyGrad<int64_t>(context);
}

/// grad, stats, logits, max, labels -> the rank's logits gradient.
template <typename Label>
Status vocabCrossEntropyGrad(const KernelContext &context) {
  float seed = *context.input(0).as<float>();
  VocabLabels<Label> labels(context, 2, 4);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t local = labels.block.local;
  bool mean = context.integer("reduction") == 0;
  float scale = *counted == 0 ? 0.0f
                              : float(seed / (mean ? double(*counted) : 1.0));
  const float *stats = context.input(1).as<float>();
  const float *x = context.input(2).as<float>();
  const float *maximum = context.input(3).as<float>();
  float *out = context.output().as<float>();
  parallelFor(labels.rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *row = x + r * local;
      float *res = out + r * local;
      if (labels.ignored(r)) {
        std::fill(res, res + local, 0.0f);
        continue;
      }
      double inverse = 1.0 / double(stats[2 * r]);
      int64_t valid = labels.block.valid();
      for (int64_t j = 0; j < valid; ++j)
        res[j] = float(std::exp(double(row[j]) - maximum[r]) * inverse * scale);
      std::fill(res + valid, res + local, 0.0f);
      if (int64_t column = labels.column(r); column >= 0)
        res[column] -= scale;
    }
  });
  return Status::ok();
}

Status vocabCrossEntropyGrad(const KernelContext &context) {
  if (context.input(4).elementType() == ElementType::i32)
    return vocabCrossEntropyGrad<int32_t>(context);
  return vocabCrossEntropyGrad<int64_t>(context);
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

Status lrSchedule(const KernelContext &context) {
  double t = double(*context.input(0).as<int64_t>());
  double lr = context.real("lr"), minLr = context.real("min_lr");
  double warmup = double(context.integer("warmup_steps"));
  double decay = double(context.integer("decay_steps"));
  double rate = lr;
  if (t <= warmup)
    rate = lr * t / warmup;
  else if (decay > warmup && t <= decay)
    rate = minLr + 0.5 * (lr - minLr) *
                       (1.0 + std::cos(M_PI * (t - warmup) / (decay - warmup)));
  else if (decay > warmup)
    rate = minLr;
  *context.output().as<float>() = float(rate);
  return Status::ok();
}

/// Whether the optional `enable` operand at `index` allows the update.
bool updateEnabled(const KernelContext &context, size_t index) {
  return !context.hasInput(index) || *context.input(index).as<uint8_t>() != 0;
}

/// Copies operand `input` to result `output` unless they share bytes.
void keep(const KernelContext &context, size_t output, size_t input) {
  if (context.output(output).data != context.input(input).data)
    std::memcpy(context.output(output).data, context.input(input).data,
                context.input(input).type->byteSize());
}

/// torch.optim.AdamW (single-tensor path) element by element.
Status adamwUpdate(const KernelContext &context) {
  if (!updateEnabled(context, 7)) {
    keep(context, 0, 0), keep(context, 1, 2), keep(context, 2, 3);
    return Status::ok();
  }
  const float *param = context.input(0).as<float>();
  const float *grad = context.input(1).as<float>();
  const float *m = context.input(2).as<float>();
  const float *v = context.input(3).as<float>();
  float lr = *context.input(4).as<float>();
  double step = double(*context.input(5).as<int64_t>());
  float gradScale = *context.input(6).as<float>();
  float *newParam = context.output(0).as<float>();
  float *newM = context.output(1).as<float>();
  float *newV = context.output(2).as<float>();
  double beta1 = context.real("beta1"), beta2 = context.real("beta2");
  float epsilon = float(context.real("epsilon"));
  float decay = float(1.0 - double(lr) * context.real("weight_decay"));
  float stepSize = float(double(lr) / (1.0 - std::pow(beta1, step)));
  float correction2 = float(std::sqrt(1.0 - std::pow(beta2, step)));
  float b1 = float(beta1), b2 = float(beta2);
  float c1 = float(1.0 - beta1), c2 = float(1.0 - beta2);
  parallelFor(context.output().numElements(), 4096,
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
Status sgdUpdate(const KernelContext &context) {
  if (!updateEnabled(context, 5)) {
    keep(context, 0, 0), keep(context, 1, 2);
    return Status::ok();
  }
  const float *param = context.input(0).as<float>();
  const float *grad = context.input(1).as<float>();
  const float *buffer = context.input(2).as<float>();
  float lr = *context.input(3).as<float>();
  float gradScale = *context.input(4).as<float>();
  float *newParam = context.output(0).as<float>();
  float *newBuffer = context.output(1).as<float>();
  float momentum = float(context.real("momentum"));
  float decay = float(context.real("weight_decay"));
  bool nesterov = context.flag("nesterov");
  parallelFor(context.output().numElements(), 4096,
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
  table.add(Opcode::Copy, copy);
  table.add(Opcode::Fill, fill);
  table.add(Opcode::Compare, compare);
  table.add(Opcode::Pad, pad);
  table.add(Opcode::ActivationGrad, activationGrad);
  table.add(Opcode::LayerNormGrad, layerNormGrad);
  table.add(Opcode::RMSNormGrad, rmsNormGrad);
  table.add(Opcode::AttentionGrad, attentionGrad);
  table.add(Opcode::EmbeddingGrad, embeddingGrad);
  table.add(Opcode::CrossEntropyGrad, crossEntropyGrad);
  table.add(Opcode::VocabCrossEntropyGrad, vocabCrossEntropyGrad);
  table.add(Opcode::LRSchedule, lrSchedule);
  table.add(Opcode::AdamWUpdate, adamwUpdate);
  table.add(Opcode::SGDUpdate, sgdUpdate);
}

} // namespace galvatron::runtime::cpu
