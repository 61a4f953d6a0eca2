//===- TransformerKernels.cpp - attention, rotary, cross-entropy, ... -----===//

#include "CPUKernels.h"

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <limits>

namespace galvatron::runtime::cpu {
namespace {

//===----------------------------------------------------------------------===//
// Attention
//===----------------------------------------------------------------------===//

/// OpenBLAS runs single-threaded while this is alive: the caller
/// parallelizes over independent small GEMMs instead.
class SingleThreadedBlas {
public:
  SingleThreadedBlas() : saved(openblas_get_num_threads()) {
    openblas_set_num_threads(1);
  }
  ~SingleThreadedBlas() { openblas_set_num_threads(saved); }

private:
  int saved;
};

Status attention(const KernelContext &context) {
  const Tensor &query = context.input(0), &key = context.input(1),
               &value = context.input(2), &out = context.output();
  const AttentionShape shape(context, 0);
  const int64_t batch = shape.batch, heads = shape.heads, seq = shape.seq,
                headDim = shape.headDim, kvHeads = shape.kvHeads,
                keys = shape.keys, valueDim = shape.valueDim,
                group = shape.group;
  const bool causal = shape.causal;
  const float scale = shape.scale;
  const float *mask = shape.mask;
  const std::array<int64_t, 4> &maskStride = shape.maskStride;

  int64_t blocks = (seq + kQueryBlock - 1) / kQueryBlock;
  int64_t tasks = batch * heads * blocks;
  const float *q = query.as<float>(), *k = key.as<float>(),
              *v = value.as<float>();
  float *o = out.as<float>();
  bool failed = false;
  auto runTask = [&](int64_t task, std::vector<float> &scores) {
    int64_t b = task / (heads * blocks), h = task / blocks % heads;
    int64_t first = task % blocks * kQueryBlock;
    int64_t rows = std::min(kQueryBlock, seq - first);
    // Causal: query i sees keys 0..i, so the block needs keys < first+rows.
    int64_t width = causal ? std::min(keys, first + rows) : keys;
    const float *qBlock = q + ((b * heads + h) * seq + first) * headDim;
    const float *kHead = k + (b * kvHeads + h / group) * keys * headDim;
    const float *vHead = v + (b * kvHeads + h / group) * keys * valueDim;
    float *oBlock = o + ((b * heads + h) * seq + first) * valueDim;
    if (!gemm(false, true, rows, width, headDim, scale, qBlock, kHead, 0.0f,
              scores.data())
             .isOk())
      failed = true;
    for (int64_t r = 0; r < rows; ++r) {
      float *row = scores.data() + r * width;
      int64_t i = first + r;
      if (mask) {
        const float *maskRow =
            mask + b * maskStride[0] + h * maskStride[1] + i * maskStride[2];
        for (int64_t j = 0; j < width; ++j)
          row[j] += maskRow[j * maskStride[3]];
      }
      int64_t visible = causal ? i + 1 : width;
      softmaxLine(row, row, visible, 1);
      std::fill(row + visible, row + width, 0.0f);
    }
    if (!gemm(false, false, rows, valueDim, width, 1.0f, scores.data(), vHead,
              0.0f, oBlock)
             .isOk())
      failed = true;
  };

  if (threadCount() == 1 || tasks == 1) {
    std::vector<float> scores(kQueryBlock * keys);
    for (int64_t task = 0; task < tasks; ++task)
      runTask(task, scores);
  } else {
    SingleThreadedBlas singleThreaded;
#pragma omp parallel
    {
      std::vector<float> scores(kQueryBlock * keys);
#pragma omp for schedule(dynamic)
      for (int64_t task = 0; task < tasks; ++task)
        runTask(task, scores);
    }
  }
  if (failed)
    return error("attention dimensions exceed the BLAS interface's 32-bit "
                 "sizes");
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Rotary position embedding
//===----------------------------------------------------------------------===//

Status rotary(const KernelContext &context) {
  const Tensor &input = context.input(0), &out = context.output();
  const auto &shape = input.shape();
  int64_t seqAxis = *normalizeAxis(context.integer("seq_axis"), input.rank());
  int64_t width = shape.back(), seq = shape[seqAxis];
  int64_t rotaryDim = context.integer("rotary_dim"), half = rotaryDim / 2;
  bool interleaved = context.flag("interleaved");
  double theta = context.real("theta");
  // Rows of the last dimension between consecutive positions.
  int64_t rowsPerPosition = product(shape, seqAxis + 1, shape.size() - 1);
  int64_t rows = width ? input.numElements() / width : 0;

  // Angles in double: position · theta^(-2i / rotary_dim).
  std::vector<float> cosines(seq * half), sines(seq * half);
  for (int64_t p = 0; p < seq; ++p)
    for (int64_t i = 0; i < half; ++i) {
      double angle =
          double(p) * std::pow(theta, -2.0 * double(i) / double(rotaryDim));
      cosines[p * half + i] = float(std::cos(angle));
      sines[p * half + i] = float(std::sin(angle));
    }

  const float *x = input.as<float>();
  float *y = out.as<float>();
  parallelFor(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t position = row / rowsPerPosition % seq;
      const float *c = &cosines[position * half], *s = &sines[position * half];
      const float *in = x + row * width;
      float *res = y + row * width;
      for (int64_t i = 0; i < half; ++i) {
        int64_t a = interleaved ? 2 * i : i;
        int64_t b = interleaved ? 2 * i + 1 : i + half;
        float first = in[a], second = in[b];
        res[a] = first * c[i] - second * s[i];
        res[b] = second * c[i] + first * s[i];
      }
      if (res != in)
        std::memcpy(res + rotaryDim, in + rotaryDim,
                    (width - rotaryDim) * sizeof(float));
    }
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Cross-entropy
//===----------------------------------------------------------------------===//

template <typename Label> Status crossEntropy(const KernelContext &context) {
  const Tensor &logits = context.input(0), &labelTensor = context.input(1);
  int64_t vocab = logits.shape().back();
  int64_t rows = labelTensor.numElements();
  const Label *labels = labelTensor.as<Label>();
  int64_t ignore = context.integer("ignore_index", -100);
  Expected<int64_t> counted = countLabels(labels, rows, vocab, ignore);
  if (!counted)
    return counted.takeStatus();
  const float *x = logits.as<float>();
  double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t r = 0; r < rows; ++r) {
    if (int64_t(labels[r]) == ignore)
      continue;
    const float *row = x + r * vocab;
    float maximum = -std::numeric_limits<float>::infinity();
    for (int64_t j = 0; j < vocab; ++j)
      maximum = std::max(maximum, row[j]);
    double sum = 0.0;
    for (int64_t j = 0; j < vocab; ++j)
      sum += std::exp(double(row[j]) - maximum);
    total += std::log(sum) + maximum - row[labels[r]];
  }
  bool mean = context.integer("reduction") == 0;
  *context.output().as<float>() =
      float(mean ? total / double(*counted) : total);
  return Status::ok();
}

Status crossEntropy(const KernelContext &context) {
  if (context.input(1).elementType() == ElementType::i32)
    return crossEntropy<int32_t>(context);
  return crossEntropy<int64_t>(context);
}

/// logits, max, labels -> [rows, 2]: Σ exp(logit − max) over the rank's
/// columns and, where the rank holds the label's column, its logit − max.
template <typename Label>
Status vocabCrossEntropyStats(const KernelContext &context) {
  VocabLabels<Label> labels(context, 0, 2);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t local = labels.block.local, valid = labels.block.valid();
  const float *x = context.input(0).as<float>();
  const float *maximum = context.input(1).as<float>();
  float *out = context.output().as<float>();
  parallelFor(labels.rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const float *row = x + r * local;
      double sum = 0.0;
      for (int64_t j = 0; j < valid; ++j)
        sum += std::exp(double(row[j]) - maximum[r]);
      int64_t column = labels.column(r);
      out[2 * r] = float(sum);
      out[2 * r + 1] = column >= 0 ? row[column] - maximum[r] : 0.0f;
    }
  });
  return Status::ok();
}

Status vocabCrossEntropyStats(const KernelContext &context) {
  if (context.input(2).elementType() == ElementType::i32)
    return vocabCrossEntropyStats<int32_t>(context);
  return vocabCrossEntropyStats<int64_t>(context);
}

/// stats (summed over the group), logits, max, labels -> the mean (or sum)
/// over counted rows of log Σ exp − target.
template <typename Label>
Status vocabCrossEntropy(const KernelContext &context) {
  VocabLabels<Label> labels(context, 1, 3);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  const float *stats = context.input(0).as<float>();
  double total = 0.0;
  for (int64_t r = 0; r < labels.rows; ++r)
    if (!labels.ignored(r))
      total += std::log(double(stats[2 * r])) - stats[2 * r + 1];
  bool mean = context.integer("reduction") == 0;
  *context.output().as<float>() =
      float(mean ? total / double(*counted) : total);
  return Status::ok();
}

Status vocabCrossEntropy(const KernelContext &context) {
  if (context.input(3).elementType() == ElementType::i32)
    return vocabCrossEntropy<int32_t>(context);
  return vocabCrossEntropy<int64_t>(context);
}

//===----------------------------------------------------------------------===//
// T5 relative position buckets, ViT patches
//===----------------------------------------------------------------------===//

/// T5's bucket of `relative` = key position − query position, computed in
/// float like the reference implementation so boundaries agree.
int64_t relativeBucket(int64_t relative, bool bidirectional, int64_t buckets,
                       int64_t maxDistance) {
  int64_t bucket = 0;
  if (bidirectional) {
    buckets /= 2;
    if (relative > 0)
      bucket += buckets;
    relative = std::abs(relative);
  } else {
    relative = -std::min<int64_t>(relative, 0);
  }
  int64_t maxExact = buckets / 2;
  if (relative < maxExact)
    return bucket + relative;
  float logRatio = std::log(float(relative) / float(maxExact)) /
                   float(std::log(double(maxDistance) / double(maxExact)));
  int64_t large = maxExact + int64_t(logRatio * float(buckets - maxExact));
  return bucket + std::min(large, buckets - 1);
}

Status relativePositionBucket(const KernelContext &context) {
  const Tensor &out = context.output();
  int64_t queries = out.shape()[0], keys = out.shape()[1];
  bool bidirectional = context.flag("bidirectional");
  int64_t buckets = context.integer("num_buckets");
  int64_t maxDistance = context.integer("max_distance");
  int64_t *y = out.as<int64_t>();
  for (int64_t i = 0; i < queries; ++i)
    for (int64_t j = 0; j < keys; ++j)
      y[i * keys + j] = relativeBucket(j - i, bidirectional, buckets, maxDistance);
  return Status::ok();
}

Status extractPatches(const KernelContext &context) {
  const Tensor &input = context.input(0);
  int64_t batch = input.shape()[0], channels = input.shape()[1],
          height = input.shape()[2], width = input.shape()[3];
  int64_t patch = context.integer("patch_size");
  // The result [B, H/P, W/P, C, P, P] is a strided view of the image.
  std::vector<int64_t> shape = {batch,    height / patch, width / patch,
                                channels, patch,          patch};
  std::vector<int64_t> strides = {channels * height * width,
                                  patch * width,
                                  patch,
                                  height * width,
                                  width,
                                  1};
  stridedCopy(input.data, 0, strides, context.output().data, shape,
              sizeof(float));
  return Status::ok();
}

/// result[..., i, j] = (j - i <= diagonal), the same rows × cols mask
/// repeated over the leading dimensions.
Status trilMask(const KernelContext &context) {
  const Tensor &out = context.output();
  const auto &shape = out.shape();
  int64_t rows = shape[shape.size() - 2], cols = shape.back();
  int64_t diagonal = context.integer("diagonal");
  uint8_t *mask = out.as<uint8_t>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      mask[i * cols + j] = j - i <= diagonal;
  int64_t matrix = rows * cols, copies = matrix ? out.numElements() / matrix : 0;
  for (int64_t copy = 1; copy < copies; ++copy)
    std::memcpy(mask + copy * matrix, mask, matrix);
  return Status::ok();
}

} // namespace

void registerTransformerKernels(CPUKernelTable &table) {
  table.add(Opcode::Rotary, rotary);
  table.add(Opcode::Attention, attention);
  table.add(Opcode::CrossEntropy, crossEntropy);
  table.add(Opcode::VocabCrossEntropyStats, vocabCrossEntropyStats);
  table.add(Opcode::VocabCrossEntropy, vocabCrossEntropy);
  table.add(Opcode::RelativePositionBucket, relativePositionBucket);
  table.add(Opcode::ExtractPatches, extractPatches);
  table.add(Opcode::TrilMask, trilMask);
}

} // namespace galvatron::runtime::cpu
