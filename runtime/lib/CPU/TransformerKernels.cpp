//===- TransformerKernels.cpp - attention, rotary, cross-entropy, ... -----===//

#include "CPUKernels.h"

#include "galvatron/Runtime/Parameters.h"

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

/// Per-thread buffers of attention: the scores of a block, and for 16-bit
/// tensors the block's query, key, value and output rows in f32.
struct AttentionScratch {
  explicit AttentionScratch(int64_t keys) : scores(kQueryBlock * keys) {}
  std::vector<float> scores, query, key, value, output;
};

template <typename Format>
Status attention(const KernelArgs &args, const AttentionAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &query = args.input(0), &key = args.input(1),
               &value = args.input(2), &out = args.output();
  const AttentionShape shape(args, attributes, 0);
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

  int64_t blocks = (seq + kQueryBlock - 1) / kQueryBlock;
  int64_t tasks = batch * heads * blocks;
  const Storage *q = query.as<Storage>(), *k = key.as<Storage>(),
                *v = value.as<Storage>();
  Storage *o = out.as<Storage>();
  bool failed = false;
  auto runTask = [&](int64_t task, AttentionScratch &scratch) {
    int64_t b = task / (heads * blocks), h = task / blocks % heads;
    int64_t first = task % blocks * kQueryBlock;
    int64_t rows = std::min(kQueryBlock, seq - first);
    // Causal: query i sees keys 0..i, so the block needs keys < first+rows.
    int64_t width = causal ? std::min(keys, first + rows) : keys;
    const float *qBlock =
        floatsOf<Format>(q + ((b * heads + h) * seq + first) * headDim,
                         rows * headDim, scratch.query);
    const float *kHead =
        floatsOf<Format>(k + (b * kvHeads + h / group) * keys * headDim,
                         width * headDim, scratch.key);
    const float *vHead =
        floatsOf<Format>(v + (b * kvHeads + h / group) * keys * valueDim,
                         width * valueDim, scratch.value);
    Storage *oStored = o + ((b * heads + h) * seq + first) * valueDim;
    float *oBlock = floatTarget<Format>(oStored, rows * valueDim, scratch.output);
    float *scores = scratch.scores.data();
    if (!gemm(false, true, rows, width, headDim, scale, qBlock, kHead, 0.0f,
              scores)
             .isOk())
      failed = true;
    for (int64_t r = 0; r < rows; ++r) {
      float *row = scores + r * width;
      int64_t i = first + r;
      if (mask) {
        const Storage *maskRow = mask + shape.maskRow(b, h, i);
        for (int64_t j = 0; j < width; ++j)
          row[j] += Format::load(maskRow[j * maskStride[3]]);
      }
      int64_t visible = causal ? i + 1 : width;
      softmaxLine(row, row, visible, 1);
      std::fill(row + visible, row + width, 0.0f);
      if (dropout.active()) {
        uint64_t start = dropout.rowStart((b * heads + h) * seq + i);
        for (int64_t j = 0; j < visible; ++j)
          row[j] = dropout.keeps(start + uint64_t(j)) ? row[j] * dropout.scale()
                                                     : 0.0f;
      }
    }
    if (!gemm(false, false, rows, valueDim, width, 1.0f, scores, vHead, 0.0f,
              oBlock)
             .isOk())
      failed = true;
    storeFloats<Format>(oBlock, oStored, rows * valueDim);
  };

  if (threadCount() == 1 || tasks == 1) {
    AttentionScratch scratch(keys);
    for (int64_t task = 0; task < tasks; ++task)
      runTask(task, scratch);
  } else {
    SingleThreadedBlas singleThreaded;
#pragma omp parallel
    {
      AttentionScratch scratch(keys);
#pragma omp for schedule(dynamic)
      for (int64_t task = 0; task < tasks; ++task)
        runTask(task, scratch);
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

template <typename Format>
Status rotary(const KernelArgs &args, const RotaryAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0), &out = args.output();
  const auto &shape = input.shape();
  int64_t seqAxis = attributes.seqAxis;
  int64_t width = shape.back(), seq = shape[seqAxis];
  int64_t rotaryDim = attributes.rotaryDim, half = rotaryDim / 2;
  bool interleaved = attributes.interleaved;
  double theta = attributes.theta;
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

  const Storage *x = input.as<Storage>();
  Storage *y = out.as<Storage>();
  parallelFor(rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      int64_t position = row / rowsPerPosition % seq;
      const float *c = &cosines[position * half], *s = &sines[position * half];
      const Storage *in = x + row * width;
      Storage *res = y + row * width;
      for (int64_t i = 0; i < half; ++i) {
        int64_t a = interleaved ? 2 * i : i;
        int64_t b = interleaved ? 2 * i + 1 : i + half;
        float first = Format::load(in[a]), second = Format::load(in[b]);
        res[a] = Format::store(first * c[i] - second * s[i]);
        res[b] = Format::store(second * c[i] + first * s[i]);
      }
      if (res != in)
        std::memcpy(res + rotaryDim, in + rotaryDim,
                    (width - rotaryDim) * sizeof(Storage));
    }
  });
  return Status::ok();
}

//===----------------------------------------------------------------------===//
// Cross-entropy
//===----------------------------------------------------------------------===//

/// The mean (or sum) over counted rows of log Σ exp(logits) − the label's
/// logit, in double.
template <typename Format, typename Label>
Status crossEntropyOf(const KernelArgs &args,
                    const CrossEntropyAttributes &attributes) {
  using Storage = typename Format::Storage;
  VocabLabels<Label> labels(args, attributes, 1);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t vocab = labels.block.local;
  const Storage *x = args.input(0).as<Storage>();
  double total = 0.0;
#pragma omp parallel for reduction(+ : total) schedule(static)
  for (int64_t r = 0; r < labels.rows; ++r) {
    if (labels.ignored(r))
      continue;
    const Storage *row = x + r * vocab;
    auto [maximum, sum] = softmaxStatistics<Format>(row, vocab);
    total += std::log(sum) + maximum - Format::load(row[labels.column(r)]);
  }
  *args.output().as<float>() =
      float(attributes.mean ? total / double(*counted) : total);
  return Status::ok();
}

/// logits, max, labels -> [rows, 2]: Σ exp(logit − max) over the rank's
/// columns and, where the rank holds the label's column, its logit − max.
template <typename Format, typename Label>
Status vocabCrossEntropyStatsOf(const KernelArgs &args,
                              const CrossEntropyAttributes &attributes) {
  using Storage = typename Format::Storage;
  VocabLabels<Label> labels(args, attributes, 2);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  int64_t local = labels.block.local, valid = labels.block.valid();
  const Storage *x = args.input(0).as<Storage>();
  const Storage *maximum = args.input(1).as<Storage>();
  float *out = args.output().as<float>();
  parallelFor(labels.rows, 4, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const Storage *row = x + r * local;
      float rowMax = Format::load(maximum[r]);
      double sum = 0.0;
      for (int64_t j = 0; j < valid; ++j)
        sum += std::exp(double(Format::load(row[j])) - rowMax);
      int64_t column = labels.column(r);
      out[2 * r] = float(sum);
      out[2 * r + 1] = column >= 0 ? Format::load(row[column]) - rowMax : 0.0f;
    }
  });
  return Status::ok();
}

/// stats (summed over the group), logits, max, labels -> the mean (or sum)
/// over counted rows of log Σ exp − target. Reads only the f32 statistics.
template <typename Label>
Status vocabCrossEntropyOf(const KernelArgs &args,
                         const CrossEntropyAttributes &attributes) {
  VocabLabels<Label> labels(args, attributes, 3);
  Expected<int64_t> counted = labels.count();
  if (!counted)
    return counted.takeStatus();
  const float *stats = args.input(0).as<float>();
  double total = 0.0;
  for (int64_t r = 0; r < labels.rows; ++r)
    if (!labels.ignored(r))
      total += std::log(double(stats[2 * r])) - stats[2 * r + 1];
  *args.output().as<float>() =
      float(attributes.mean ? total / double(*counted) : total);
  return Status::ok();
}

// The kernels as registered: for the labels' index type (i32 or i64).
template <typename Format>
Status crossEntropy(const KernelArgs &args,
                    const CrossEntropyAttributes &attributes) {
  return withIndexType(args.input(1), [&](auto label) {
    return crossEntropyOf<Format, decltype(label)>(args, attributes);
  });
}

template <typename Format>
Status vocabCrossEntropyStats(const KernelArgs &args,
                              const CrossEntropyAttributes &attributes) {
  return withIndexType(args.input(2), [&](auto label) {
    return vocabCrossEntropyStatsOf<Format, decltype(label)>(args,
                                                               attributes);
  });
}

Status vocabCrossEntropy(const KernelArgs &args,
                         const CrossEntropyAttributes &attributes) {
  return withIndexType(args.input(3), [&](auto label) {
    return vocabCrossEntropyOf<decltype(label)>(args, attributes);
  });
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

Status relativePositionBucket(
    const KernelArgs &args, const RelativePositionBucketAttributes &attributes) {
  const Tensor &out = args.output();
  int64_t queries = out.shape()[0], keys = out.shape()[1];
  bool bidirectional = attributes.bidirectional;
  int64_t buckets = attributes.buckets;
  int64_t maxDistance = attributes.maxDistance;
  int64_t *y = out.as<int64_t>();
  for (int64_t i = 0; i < queries; ++i)
    for (int64_t j = 0; j < keys; ++j)
      y[i * keys + j] = relativeBucket(j - i, bidirectional, buckets, maxDistance);
  return Status::ok();
}

Status extractPatches(const KernelArgs &args,
                      const PatchAttributes &attributes) {
  const Tensor &input = args.input(0);
  int64_t batch = input.shape()[0], channels = input.shape()[1],
          height = input.shape()[2], width = input.shape()[3];
  int64_t patch = attributes.patchSize;
  // The result [B, H/P, W/P, C, P, P] is a strided view of the image.
  std::vector<int64_t> shape = {batch,    height / patch, width / patch,
                                channels, patch,          patch};
  std::vector<int64_t> strides = {channels * height * width,
                                  patch * width,
                                  patch,
                                  height * width,
                                  width,
                                  1};
  stridedCopy(input.data, 0, strides, args.output().data, shape,
              elementSize(input.elementType()));
  return Status::ok();
}

/// result[..., i, j] = (j - i <= diagonal), the same rows × cols mask
/// repeated over the leading dimensions.
Status trilMask(const KernelArgs &args, const TrilMaskAttributes &attributes) {
  const Tensor &out = args.output();
  const auto &shape = out.shape();
  int64_t rows = shape[shape.size() - 2], cols = shape.back();
  int64_t diagonal = attributes.diagonal;
  uint8_t *mask = out.as<uint8_t>();
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      mask[i * cols + j] = j - i <= diagonal;
  int64_t matrix = rows * cols, copies = matrix ? out.numElements() / matrix : 0;
  for (int64_t copy = 1; copy < copies; ++copy)
    std::memcpy(mask + copy * matrix, mask, matrix);
  return Status::ok();
}

/// Dropout: `DropoutMask` says which elements of the part are kept.
template <typename Format>
Status dropout(const KernelArgs &args, const DropoutAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0);
  const Storage *x = input.as<Storage>();
  Storage *y = args.output(0).as<Storage>();
  uint8_t *keep = args.output(1).as<uint8_t>();
  const DropoutMask mask(args.context(), attributes, input.shape());
  int64_t length = input.rank() ? input.shape().back() : 1;
  int64_t rows = length ? input.numElements() / length : 0;
  float scale = mask.scale();
  parallelFor(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      uint64_t first = mask.rowStart(row);
      for (int64_t j = 0; j < length; ++j) {
        int64_t i = row * length + j;
        bool kept = mask.keeps(first + uint64_t(j));
        keep[i] = kept;
        y[i] = Format::store(kept ? Format::load(x[i]) * scale : 0.0f);
      }
    }
  });
  return Status::ok();
}

} // namespace

void registerTransformerKernels(CPUKernelTable &table) {
  using O = Opcode;
  table.addFloat(O::Rotary, [](auto f) { return rotary<decltype(f)>; });
  table.addFloat(O::Attention, [](auto f) { return attention<decltype(f)>; });
  table.addFloat(O::CrossEntropy,
                 [](auto f) { return crossEntropy<decltype(f)>; });
  table.addFloat(O::VocabCrossEntropyStats,
                 [](auto f) { return vocabCrossEntropyStats<decltype(f)>; });
  table.addFloat(O::VocabCrossEntropy,
                 [](auto) { return vocabCrossEntropy; });
  table.add(O::RelativePositionBucket, ElementType::i64,
            relativePositionBucket);
  table.addFloat(O::ExtractPatches, [](auto) { return extractPatches; });
  table.add(O::TrilMask, ElementType::i1, trilMask);
  table.addFloat(O::Dropout, [](auto f) { return dropout<decltype(f)>; });
}

} // namespace galvatron::runtime::cpu
