//===- HalfFloat.h - IEEE half and bfloat16 conversions ---------*- C++ -*-===//
//
// 16-bit float formats are stored as raw bits; these convert them to and
// from float (rounding to nearest even). Used wherever values cross element
// types: casts, checkpoint and .npy loading, parameter initialization.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_HALFFLOAT_H
#define GALVATRON_RUNTIME_HALFFLOAT_H

#include <cstdint>
#include <cstring>

namespace galvatron::runtime {

inline uint32_t floatBits(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, 4);
  return bits;
}

inline float bitsToFloat(uint32_t bits) {
  float value;
  std::memcpy(&value, &bits, 4);
  return value;
}

inline float bfloat16ToFloat(uint16_t bits) {
  return bitsToFloat(uint32_t(bits) << 16);
}

inline uint16_t floatToBfloat16(float value) {
  uint32_t bits = floatBits(value);
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) // NaN: keep it quiet
    return uint16_t((bits >> 16) | 0x40);
  bits += 0x7FFFu + ((bits >> 16) & 1);
  return uint16_t(bits >> 16);
}

inline float halfToFloat(uint16_t half) {
  uint32_t sign = uint32_t(half & 0x8000u) << 16;
  uint32_t exponent = (half >> 10) & 0x1F;
  uint32_t mantissa = half & 0x3FFu;
  if (exponent == 0x1F) // infinity or NaN
    return bitsToFloat(sign | 0x7F800000u | (mantissa << 13));
  if (exponent == 0) {
    // Zero or subnormal: mantissa · 2^-24.
    float magnitude = float(mantissa) * (1.0f / 16777216.0f);
    return sign ? -magnitude : magnitude;
  }
  return bitsToFloat(sign | ((exponent + 112) << 23) | (mantissa << 13));
}

inline uint16_t floatToHalf(float value) {
  uint32_t bits = floatBits(value);
  uint16_t sign = uint16_t((bits >> 16) & 0x8000u);
  uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) // NaN
    return uint16_t(sign | 0x7E00u);
  if (magnitude >= 0x477FF000u) // rounds to or beyond 65520: infinity
    return uint16_t(sign | 0x7C00u);
  if (magnitude < 0x38800000u) {
    // Below the smallest normal half: a subnormal (or zero), rounded to
    // nearest even in units of 2^-24.
    float scaled = bitsToFloat(magnitude) * 16777216.0f;
    uint32_t units = uint32_t(scaled);
    float rest = scaled - float(units);
    if (rest > 0.5f || (rest == 0.5f && (units & 1)))
      ++units;
    return uint16_t(sign | units);
  }
  // Normal: rebias the exponent and round the mantissa to 10 bits.
  uint32_t rounded = magnitude + 0xFFFu + ((magnitude >> 13) & 1);
  return uint16_t(sign | ((rounded - 0x38000000u) >> 13));
}

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_HALFFLOAT_H
