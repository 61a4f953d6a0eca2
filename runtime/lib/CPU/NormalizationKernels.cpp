//===- NormalizationKernels.cpp - layer_norm, rms_norm, softmax -----------===//
//
// Norm statistics accumulate in double: rows are thousands of features wide
// and results are compared against references at 1e-4 relative. Softmax
// sums in float over SIMD lanes (a pairwise-like order). Each kernel reads a
// row completely before writing it, so results may overwrite their operand
// in place. 16-bit rows are widened to f32, computed, and rounded on store.
//
//===----------------------------------------------------------------------===//

#include "CPUKernels.h"
#include "FastMath.h"

#include <cmath>
#include <limits>

namespace galvatron::runtime::cpu {
namespace {

/// y = (x - mean(x)) / sqrt(var(x) + eps) · weight (+ bias) when `centered`
/// (layer norm), else y = x / sqrt(mean(x²) + eps) · weight (RMS norm), over
/// the last dimension.
template <typename Format, bool centered>
Status normalize(const KernelArgs &args, const NormAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0);
  int64_t width = input.shape().back();
  int64_t rows = width ? input.numElements() / width : 0;
  const Storage *x = input.as<Storage>();
  std::vector<float> weightScratch, biasScratch;
  const float *weight =
      floatsOf<Format>(args.input(1).as<Storage>(), width, weightScratch);
  const float *bias =
      args.hasInput(2)
          ? floatsOf<Format>(args.input(2).as<Storage>(), width, biasScratch)
          : nullptr;
  Storage *y = args.output().as<Storage>();
  double epsilon = attributes.epsilon;
  parallelFor(rows, 16, [&](int64_t begin, int64_t end) {
    std::vector<float> inScratch, outScratch;
    for (int64_t row = begin; row < end; ++row) {
      // The whole row is read before any of it is written (in place).
      const float *in = floatsOf<Format>(x + row * width, width, inScratch);
      float *out = floatTarget<Format>(y + row * width, width, outScratch);
      double mean = 0.0;
      if (centered) {
        for (int64_t i = 0; i < width; ++i)
          mean += in[i];
        mean /= double(width);
      }
      double squares = 0.0;
      for (int64_t i = 0; i < width; ++i) {
        double centeredValue = in[i] - mean;
        squares += centeredValue * centeredValue;
      }
      float scale = float(1.0 / std::sqrt(squares / double(width) + epsilon));
      float shift = float(mean);
      for (int64_t i = 0; i < width; ++i) {
        float value = (in[i] - shift) * scale * weight[i];
        out[i] = bias ? value + bias[i] : value;
      }
      storeFloats<Format>(out, y + row * width, width);
    }
  });
  return Status::ok();
}

} // namespace

void softmaxLine(const float *in, float *out, int64_t length, int64_t stride) {
  float maximum = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
  if (stride == 1) {
#pragma omp simd reduction(max : maximum)
    for (int64_t i = 0; i < length; ++i)
      maximum = std::max(maximum, in[i]);
#pragma omp simd reduction(+ : sum)
    for (int64_t i = 0; i < length; ++i) {
      out[i] = fastExp(in[i] - maximum);
      sum += out[i];
    }
    float scale = 1.0f / sum;
#pragma omp simd
    for (int64_t i = 0; i < length; ++i)
      out[i] *= scale;
    return;
  }
  for (int64_t i = 0; i < length; ++i)
    maximum = std::max(maximum, in[i * stride]);
  for (int64_t i = 0; i < length; ++i) {
    out[i * stride] = fastExp(in[i * stride] - maximum);
    sum += out[i * stride];
  }
  float scale = 1.0f / sum;
  for (int64_t i = 0; i < length; ++i)
    out[i * stride] *= scale;
}

namespace {

template <typename Format>
Status softmax(const KernelArgs &args, const AxisAttributes &attributes) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0);
  int64_t axis = attributes.axis;
  int64_t length = input.shape()[axis];
  int64_t inner = product(input.shape(), axis + 1, input.shape().size());
  int64_t outer = product(input.shape(), 0, axis);
  const Storage *x = input.as<Storage>();
  Storage *y = args.output().as<Storage>();
  parallelFor(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                std::vector<float> line;
                for (int64_t index = begin; index < end; ++index) {
                  int64_t base = (index / inner) * length * inner + index % inner;
                  if constexpr (kIsF32<Format>) {
                    softmaxLine(x + base, y + base, length, inner);
                  } else {
                    line.resize(size_t(length));
                    widen<Format>(x + base, line.data(), length, inner);
                    softmaxLine(line.data(), line.data(), length, 1);
                    narrow<Format>(line.data(), y + base, length, inner);
                  }
                }
              });
  return Status::ok();
}

} // namespace

void registerNormalizationKernels(CPUKernelTable &table) {
  table.addFloat(Opcode::LayerNorm,
                 [](auto f) { return normalize<decltype(f), true>; });
  table.addFloat(Opcode::RMSNorm,
                 [](auto f) { return normalize<decltype(f), false>; });
  table.addFloat(Opcode::Softmax, [](auto f) { return softmax<decltype(f)>; });
}

} // namespace galvatron::runtime::cpu
