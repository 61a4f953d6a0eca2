//===- NormalizationKernels.cpp - layer_norm, rms_norm, softmax -----------===//
//
// Norm statistics accumulate in double: rows are thousands of features wide
// and results are compared against references at 1e-4 relative. Softmax
// sums in float over SIMD lanes (a pairwise-like order). Each kernel reads a
// row completely before writing it, so results may overwrite their operand
// in place.
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
Status normalize(const KernelContext &context, bool centered) {
  const Tensor &input = context.input(0);
  int64_t width = input.shape().back();
  int64_t rows = width ? input.numElements() / width : 0;
  const float *x = input.as<float>();
  const float *weight = context.input(1).as<float>();
  const float *bias = context.hasInput(2) ? context.input(2).as<float>() : nullptr;
  float *y = context.output().as<float>();
  double epsilon = context.real("epsilon");
  parallelFor(rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const float *in = x + row * width;
      float *out = y + row * width;
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
    }
  });
  return Status::ok();
}

Status layerNorm(const KernelContext &context) {
  return normalize(context, /*centered=*/true);
}

Status rmsNorm(const KernelContext &context) {
  return normalize(context, /*centered=*/false);
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

Status softmax(const KernelContext &context) {
  const Tensor &input = context.input(0);
  int64_t axis = *normalizeAxis(context.integer("axis"), input.rank());
  int64_t length = input.shape()[axis];
  int64_t inner = product(input.shape(), axis + 1, input.shape().size());
  int64_t outer = product(input.shape(), 0, axis);
  const float *x = input.as<float>();
  float *y = context.output().as<float>();
  parallelFor(outer * inner, std::max<int64_t>(1, 4096 / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t line = begin; line < end; ++line) {
                  int64_t base = (line / inner) * length * inner + line % inner;
                  softmaxLine(x + base, y + base, length, inner);
                }
              });
  return Status::ok();
}

} // namespace

void registerNormalizationKernels(CPUKernelTable &table) {
  table.add(Opcode::LayerNorm, layerNorm);
  table.add(Opcode::RMSNorm, rmsNorm);
  table.add(Opcode::Softmax, softmax);
}

} // namespace galvatron::runtime::cpu
