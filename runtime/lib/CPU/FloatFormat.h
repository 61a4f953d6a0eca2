//===- FloatFormat.h - Float storage formats of the CPU kernels -*- C++ -*-===//
//
// Float kernels are templates over a storage format: F32, F16 or BF16. A
// format loads its storage into a float and stores a float into it, rounding
// to nearest even; kernels compute in f32 (or double) between the two, so a
// 16-bit tensor is rounded once, when it is written. For F32 both are the
// identity and the code is exactly the f32 kernel's.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_CPU_FLOATFORMAT_H
#define GALVATRON_RUNTIME_CPU_FLOATFORMAT_H

#include "galvatron/Runtime/HalfFloat.h"
#include "galvatron/Runtime/Program.h"

#include <cstdint>
#include <type_traits>
#include <vector>

namespace galvatron::runtime::cpu {

struct F32 {
  using Storage = float;
  static constexpr ElementType type = ElementType::f32;
  static float load(float value) { return value; }
  static float store(float value) { return value; }
};
struct F16 {
  using Storage = uint16_t;
  static constexpr ElementType type = ElementType::f16;
  static float load(uint16_t bits) { return halfToFloat(bits); }
  static uint16_t store(float value) { return floatToHalf(value); }
};
struct BF16 {
  using Storage = uint16_t;
  static constexpr ElementType type = ElementType::bf16;
  static float load(uint16_t bits) { return bfloat16ToFloat(bits); }
  static uint16_t store(float value) { return floatToBfloat16(value); }
};

template <typename Format>
constexpr bool kIsF32 = std::is_same_v<Format, F32>;

/// Calls `body(Format())` with the format of a float element type.
template <typename Body> auto withFloatFormat(ElementType type, Body body) {
  switch (type) {
  case ElementType::f16:
    return body(F16());
  case ElementType::bf16:
    return body(BF16());
  default:
    return body(F32());
  }
}

/// Converts `count` values `stride` apart into contiguous floats.
template <typename Format>
void widen(const typename Format::Storage *in, float *out, int64_t count,
           int64_t stride = 1) {
  for (int64_t i = 0; i < count; ++i)
    out[i] = Format::load(in[i * stride]);
}

/// Stores `count` contiguous floats into values `stride` apart.
template <typename Format>
void narrow(const float *in, typename Format::Storage *out, int64_t count,
            int64_t stride = 1) {
  for (int64_t i = 0; i < count; ++i)
    out[i * stride] = Format::store(in[i]);
}

/// `count` contiguous values as floats: the values themselves for f32, else
/// converted into `scratch`.
template <typename Format>
const float *floatsOf(const typename Format::Storage *data, int64_t count,
                      std::vector<float> &scratch) {
  if constexpr (kIsF32<Format>) {
    return data;
  } else {
    scratch.resize(size_t(count));
    widen<Format>(data, scratch.data(), count);
    return scratch.data();
  }
}

/// Where a kernel writes `count` floats bound for `data`: `data` itself for
/// f32, else `scratch`, which `storeFloats` then rounds into `data`.
template <typename Format>
float *floatTarget(typename Format::Storage *data, int64_t count,
                   std::vector<float> &scratch) {
  if constexpr (kIsF32<Format>) {
    return data;
  } else {
    scratch.resize(size_t(count));
    return scratch.data();
  }
}

template <typename Format>
void storeFloats(const float *values, typename Format::Storage *data,
                 int64_t count) {
  if constexpr (!kIsF32<Format>)
    narrow<Format>(values, data, count);
}

} // namespace galvatron::runtime::cpu

#endif // GALVATRON_RUNTIME_CPU_FLOATFORMAT_H
