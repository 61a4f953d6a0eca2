//===- FastMath.h - Vectorizable float exponentials -------------*- C++ -*-===//
//
// expf without branches or library calls, so that loops applying it
// vectorize (std::exp is a call per element). Softmax, GELU, SiLU and
// sigmoid spend most of their time here.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_CPU_FASTMATH_H
#define GALVATRON_RUNTIME_CPU_FASTMATH_H

#include <cstdint>
#include <cstring>

namespace galvatron::runtime::cpu {

/// e^x within 2 ulp of expf for x in [-87.3, 88.37]; below, a value under
/// 1.2e-38 (as good as 0 next to any normal float); above, 2.4e38.
inline float fastExp(float x) {
  x = x < -87.3f ? -87.3f : x;
  x = x > 88.37f ? 88.37f : x;
  // x = n·ln2 + r with |r| <= ln2/2; n rounded by the 1.5·2^23 trick.
  constexpr float kRound = 12582912.0f;
  float n = (x * 1.44269504088896341f + kRound) - kRound;
  float r = x - n * 0.693359375f;  // ln2, high part (exact product)
  r = r - n * -2.12194440e-4f;      // ln2, low part
  // e^r by its Taylor polynomial to degree 7 (error < 2e-9 on |r| <= 0.35).
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // Scale by 2^n through the exponent bits.
  int32_t bits = (int32_t(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return p * scale;
}

/// 1 / (1 + e^-x).
inline float fastSigmoid(float x) { return 1.0f / (1.0f + fastExp(-x)); }

} // namespace galvatron::runtime::cpu

#endif // GALVATRON_RUNTIME_CPU_FASTMATH_H
