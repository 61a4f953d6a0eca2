//===- ElementwiseKernels.cpp - Unary, binary, select and cast ------------===//

#include "CPUKernels.h"
#include "FastMath.h"

#include "galvatron/Runtime/HalfFloat.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace galvatron::runtime::cpu {
namespace {

/// Elements per thread below which a loop stays serial.
constexpr int64_t kGrain = 1 << 14;

//===----------------------------------------------------------------------===//
// Float formats: 16-bit floats are computed in float
//===----------------------------------------------------------------------===//

struct F32 {
  using Storage = float;
  static float load(float value) { return value; }
  static float store(float value) { return value; }
};
struct F16 {
  using Storage = uint16_t;
  static float load(uint16_t bits) { return halfToFloat(bits); }
  static uint16_t store(float value) { return floatToHalf(value); }
};
struct BF16 {
  using Storage = uint16_t;
  static float load(uint16_t bits) { return bfloat16ToFloat(bits); }
  static uint16_t store(float value) { return floatToBfloat16(value); }
};

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

//===----------------------------------------------------------------------===//
// Unary float kernels
//===----------------------------------------------------------------------===//

template <typename F> Status unary(const KernelContext &context, F f) {
  return withFloatFormat(context.input(0).elementType(), [&](auto format) {
    using Format = decltype(format);
    using Storage = typename Format::Storage;
    const Storage *in = context.input(0).as<Storage>();
    Storage *out = context.output().as<Storage>();
    parallelFor(context.output().numElements(), kGrain,
                [&](int64_t begin, int64_t end) {
#pragma omp simd
                  for (int64_t i = begin; i < end; ++i)
                    out[i] = Format::store(f(Format::load(in[i])));
                });
    return Status::ok();
  });
}

#define GALVATRON_UNARY(NAME, EXPR)                                            \
  Status NAME(const KernelContext &context) {                                  \
    return unary(context, [](float x) { return EXPR; });                       \
  }
GALVATRON_UNARY(neg, -x)
GALVATRON_UNARY(absolute, std::fabs(x))
GALVATRON_UNARY(exponential, fastExp(x))
GALVATRON_UNARY(logarithm, std::log(x))
GALVATRON_UNARY(squareRoot, std::sqrt(x))
GALVATRON_UNARY(reciprocalSquareRoot, 1.0f / std::sqrt(x))
GALVATRON_UNARY(reciprocal, 1.0f / x)
GALVATRON_UNARY(hyperbolicTangent, std::tanh(x))
GALVATRON_UNARY(errorFunction, std::erf(x))
GALVATRON_UNARY(sigmoid, fastSigmoid(x))
GALVATRON_UNARY(relu, x > 0.0f ? x : 0.0f)
GALVATRON_UNARY(silu, x * fastSigmoid(x))
#undef GALVATRON_UNARY

Status gelu(const KernelContext &context) {
  // 0.5·x·(1 + tanh(u)) is x·sigmoid(2u), which has no cancellation.
  if (context.flag("approximate"))
    return unary(context, [](float x) {
      constexpr float kTwoBeta = 1.5957691216057308f; // 2·sqrt(2/pi)
      return x * fastSigmoid(kTwoBeta * (x + 0.044715f * x * x * x));
    });
  return unary(context, [](float x) {
    return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
  });
}

//===----------------------------------------------------------------------===//
// Binary kernels with broadcasting
//===----------------------------------------------------------------------===//

/// Applies `f` over the broadcast of inputs 0 and 1 into output 0.
template <typename T, typename F>
void broadcastBinary(const KernelContext &context, F f) {
  const Tensor &lhs = context.input(0), &rhs = context.input(1);
  const Tensor &out = context.output();
  BroadcastLoop loop(out.shape(), {&lhs.shape(), &rhs.shape()});
  const T *a = lhs.as<T>(), *b = rhs.as<T>();
  T *c = out.as<T>();
  int64_t length = loop.rowLength();
  int64_t sa = loop.rowStride(0), sb = loop.rowStride(1);
  parallelFor(loop.rows(), std::max<int64_t>(1, kGrain / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  const T *x = a + loop.rowOffset(0, row);
                  const T *y = b + loop.rowOffset(1, row);
                  T *z = c + row * length;
                  if (sa == 1 && sb == 1)
                    for (int64_t i = 0; i < length; ++i)
                      z[i] = f(x[i], y[i]);
                  else if (sa == 1 && sb == 0)
                    for (int64_t i = 0; i < length; ++i)
                      z[i] = f(x[i], y[0]);
                  else if (sa == 0 && sb == 1)
                    for (int64_t i = 0; i < length; ++i)
                      z[i] = f(x[0], y[i]);
                  else
                    for (int64_t i = 0; i < length; ++i)
                      z[i] = f(x[i * sa], y[i * sb]);
                }
              });
}

/// Dispatches a binary kernel over the float types, i32 and i64 with one
/// generic functor.
template <typename F> Status binary(const KernelContext &context, F f) {
  switch (ElementType type = context.input(0).elementType()) {
  case ElementType::i32:
    broadcastBinary<int32_t>(context, f);
    break;
  case ElementType::i64:
    broadcastBinary<int64_t>(context, f);
    break;
  default:
    withFloatFormat(type, [&](auto format) {
      using Format = decltype(format);
      using Storage = typename Format::Storage;
      broadcastBinary<Storage>(context, [&](Storage a, Storage b) {
        return Format::store(f(Format::load(a), Format::load(b)));
      });
      return 0;
    });
    break;
  }
  return Status::ok();
}

Status add(const KernelContext &context) {
  return binary(context, [](auto a, auto b) { return a + b; });
}
Status sub(const KernelContext &context) {
  return binary(context, [](auto a, auto b) { return a - b; });
}
Status mul(const KernelContext &context) {
  return binary(context, [](auto a, auto b) { return a * b; });
}
Status maximum(const KernelContext &context) {
  return binary(context, [](auto a, auto b) { return a < b ? b : a; });
}
Status minimum(const KernelContext &context) {
  return binary(context, [](auto a, auto b) { return b < a ? b : a; });
}

/// Integer division truncates toward zero, as in C and ONNX; a zero divisor
/// (or the one overflowing quotient) is an error rather than a trap.
template <typename T> Status integerDivide(const KernelContext &context) {
  const Tensor &rhs = context.input(1);
  const T *divisor = rhs.as<T>();
  for (int64_t i = 0; i < rhs.numElements(); ++i)
    if (divisor[i] == 0)
      return error("integer division by zero");
  bool overflow = false;
  broadcastBinary<T>(context, [&overflow](T a, T b) {
    if (b == -1 && a == std::numeric_limits<T>::min()) {
      overflow = true;
      return a;
    }
    return T(a / b);
  });
  if (overflow)
    return error("integer division overflows");
  return Status::ok();
}

Status divide(const KernelContext &context) {
  switch (context.input(0).elementType()) {
  case ElementType::i32:
    return integerDivide<int32_t>(context);
  case ElementType::i64:
    return integerDivide<int64_t>(context);
  default:
    return binary(context, [](float a, float b) { return a / b; });
  }
}

Status power(const KernelContext &context) {
  return binary(context, [](auto a, auto b) {
    using T = decltype(a);
    return T(std::pow(double(a), double(b)));
  });
}

//===----------------------------------------------------------------------===//
// Select and cast
//===----------------------------------------------------------------------===//

template <typename T> void selectElements(const KernelContext &context) {
  const Tensor &condition = context.input(0), &lhs = context.input(1),
               &rhs = context.input(2), &out = context.output();
  BroadcastLoop loop(out.shape(),
                     {&condition.shape(), &lhs.shape(), &rhs.shape()});
  const uint8_t *c = condition.as<uint8_t>();
  const T *a = lhs.as<T>(), *b = rhs.as<T>();
  T *z = out.as<T>();
  int64_t length = loop.rowLength();
  int64_t sc = loop.rowStride(0), sa = loop.rowStride(1),
          sb = loop.rowStride(2);
  parallelFor(loop.rows(), std::max<int64_t>(1, kGrain / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  const uint8_t *cr = c + loop.rowOffset(0, row);
                  const T *ar = a + loop.rowOffset(1, row);
                  const T *br = b + loop.rowOffset(2, row);
                  T *zr = z + row * length;
                  for (int64_t i = 0; i < length; ++i)
                    zr[i] = cr[i * sc] ? ar[i * sa] : br[i * sb];
                }
              });
}

Status select(const KernelContext &context) {
  // Selection moves elements without looking at them: dispatch on size.
  switch (elementSize(context.output().elementType())) {
  case 1:
    selectElements<uint8_t>(context);
    break;
  case 2:
    selectElements<uint16_t>(context);
    break;
  case 4:
    selectElements<uint32_t>(context);
    break;
  default:
    selectElements<uint64_t>(context);
    break;
  }
  return Status::ok();
}

Status cast(const KernelContext &context) {
  const Tensor &in = context.input(0), &out = context.output();
  ElementType from = in.elementType(), to = out.elementType();
  if (from == to) {
    if (in.data != out.data)
      std::memcpy(out.data, in.data, in.type->byteSize());
    return Status::ok();
  }
  // i64 values beyond 2^53 do not survive a trip through double.
  if (from == ElementType::i64 && to == ElementType::i32) {
    const int64_t *x = in.as<int64_t>();
    int32_t *y = out.as<int32_t>();
    for (int64_t i = 0; i < in.numElements(); ++i)
      y[i] = int32_t(x[i]);
    return Status::ok();
  }
  parallelFor(in.numElements(), kGrain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i)
      storeElement(out.data, to, i, loadElement(in.data, from, i));
  });
  return Status::ok();
}

} // namespace

void registerElementwiseKernels(CPUKernelTable &table) {
  table.add(Opcode::Neg, neg);
  table.add(Opcode::Abs, absolute);
  table.add(Opcode::Exp, exponential);
  table.add(Opcode::Log, logarithm);
  table.add(Opcode::Sqrt, squareRoot);
  table.add(Opcode::Rsqrt, reciprocalSquareRoot);
  table.add(Opcode::Reciprocal, reciprocal);
  table.add(Opcode::Tanh, hyperbolicTangent);
  table.add(Opcode::Erf, errorFunction);
  table.add(Opcode::Sigmoid, sigmoid);
  table.add(Opcode::Relu, relu);
  table.add(Opcode::Silu, silu);
  table.add(Opcode::Gelu, gelu);
  table.add(Opcode::Add, add);
  table.add(Opcode::Sub, sub);
  table.add(Opcode::Mul, mul);
  table.add(Opcode::Div, divide);
  table.add(Opcode::Pow, power);
  table.add(Opcode::Max, maximum);
  table.add(Opcode::Min, minimum);
  table.add(Opcode::Select, select);
  table.add(Opcode::Cast, cast);
}

} // namespace galvatron::runtime::cpu
