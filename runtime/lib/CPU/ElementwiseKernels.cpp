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
// Unary float kernels
//===----------------------------------------------------------------------===//

template <typename Format, typename F>
Status unary(const KernelArgs &args, F f) {
  using Storage = typename Format::Storage;
  const Storage *in = args.input(0).as<Storage>();
  Storage *out = args.output().as<Storage>();
  parallelFor(args.output().numElements(), kGrain,
              [&](int64_t begin, int64_t end) {
#pragma omp simd
                for (int64_t i = begin; i < end; ++i)
                  out[i] = Format::store(f(Format::load(in[i])));
              });
  return Status::ok();
}

#define GALVATRON_UNARY(NAME, EXPR)                                            \
  template <typename Format>                                                   \
  Status NAME(const KernelArgs &args, const NoAttributes &) {                  \
    return unary<Format>(args, [](float x) { return EXPR; });                  \
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

template <typename Format>
Status gelu(const KernelArgs &args, const GeluAttributes &attributes) {
  // 0.5·x·(1 + tanh(u)) is x·sigmoid(2u), which has no cancellation.
  if (attributes.approximate)
    return unary<Format>(args, [](float x) {
      constexpr float kTwoBeta = 1.5957691216057308f; // 2·sqrt(2/pi)
      return x * fastSigmoid(kTwoBeta * (x + 0.044715f * x * x * x));
    });
  return unary<Format>(args, [](float x) {
    return 0.5f * x * (1.0f + std::erf(x * 0.7071067811865476f));
  });
}

//===----------------------------------------------------------------------===//
// Binary kernels with broadcasting
//===----------------------------------------------------------------------===//

/// Applies `f` over the broadcast of inputs 0 and 1 into output 0.
template <typename T, typename F>
void broadcastBinary(const KernelArgs &args, F f) {
  const Tensor &lhs = args.input(0), &rhs = args.input(1);
  const Tensor &out = args.output();
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

/// Integer element types, and float formats computing in float.
template <typename T> struct IntegerFormat {
  using Storage = T;
  static T load(T value) { return value; }
  static T store(T value) { return value; }
};

/// A binary kernel over one element type: `f` applied to loaded values.
template <typename Format, typename F> Status binary(const KernelArgs &args, F f) {
  using Storage = typename Format::Storage;
  broadcastBinary<Storage>(args, [&](Storage a, Storage b) {
    return Format::store(f(Format::load(a), Format::load(b)));
  });
  return Status::ok();
}

#define GALVATRON_BINARY(NAME, EXPR)                                           \
  template <typename Format>                                                   \
  Status NAME(const KernelArgs &args, const NoAttributes &) {                  \
    return binary<Format>(args, [](auto a, auto b) { return EXPR; });          \
  }
GALVATRON_BINARY(sub, a - b)
GALVATRON_BINARY(mul, a * b)
GALVATRON_BINARY(maximum, a < b ? b : a)
GALVATRON_BINARY(minimum, b < a ? b : a)
#undef GALVATRON_BINARY

/// f32 + 16-bit: a 16-bit gradient added to its f32 accumulator.
template <typename Addend> void accumulate(const KernelArgs &args) {
  const Tensor &lhs = args.input(0), &rhs = args.input(1), &out = args.output();
  BroadcastLoop loop(out.shape(), {&lhs.shape(), &rhs.shape()});
  const float *a = lhs.as<float>();
  const typename Addend::Storage *b = rhs.as<typename Addend::Storage>();
  float *c = out.as<float>();
  int64_t length = loop.rowLength();
  int64_t sa = loop.rowStride(0), sb = loop.rowStride(1);
  parallelFor(loop.rows(), std::max<int64_t>(1, kGrain / std::max<int64_t>(length, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  const float *x = a + loop.rowOffset(0, row);
                  const typename Addend::Storage *y = b + loop.rowOffset(1, row);
                  float *z = c + row * length;
                  for (int64_t i = 0; i < length; ++i)
                    z[i] = x[i * sa] + Addend::load(y[i * sb]);
                }
              });
}

template <typename Format>
Status add(const KernelArgs &args, const NoAttributes &) {
  ElementType addend = args.input(1).elementType();
  if (std::is_same_v<Format, F32> && addend != ElementType::f32) {
    withFloatFormat(addend, [&](auto format) {
      accumulate<decltype(format)>(args);
      return 0;
    });
    return Status::ok();
  }
  return binary<Format>(args, [](auto a, auto b) { return a + b; });
}

/// Integer division truncates toward zero, as in C and ONNX; a zero divisor
/// (or the one overflowing quotient) is an error rather than a trap.
template <typename T>
Status integerDivide(const KernelArgs &args, const NoAttributes &) {
  const Tensor &rhs = args.input(1);
  const T *divisor = rhs.as<T>();
  for (int64_t i = 0; i < rhs.numElements(); ++i)
    if (divisor[i] == 0)
      return error("integer division by zero");
  bool overflow = false;
  broadcastBinary<T>(args, [&overflow](T a, T b) {
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

template <typename Format>
Status divide(const KernelArgs &args, const NoAttributes &) {
  return binary<Format>(args, [](float a, float b) { return a / b; });
}

template <typename Format>
Status power(const KernelArgs &args, const NoAttributes &) {
  return binary<Format>(args, [](auto a, auto b) {
    using T = decltype(a);
    return T(std::pow(double(a), double(b)));
  });
}

//===----------------------------------------------------------------------===//
// Select and cast
//===----------------------------------------------------------------------===//

template <typename T> void selectElements(const KernelArgs &args) {
  const Tensor &condition = args.input(0), &lhs = args.input(1),
               &rhs = args.input(2), &out = args.output();
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

/// Selection moves elements without looking at them: one implementation
/// per element size.
template <typename T> Status select(const KernelArgs &args, const NoAttributes &) {
  selectElements<T>(args);
  return Status::ok();
}

/// Float to float: through float, rounding once.
template <typename From, typename To> void castFloats(const Tensor &in, const Tensor &out) {
  const typename From::Storage *x = in.as<typename From::Storage>();
  typename To::Storage *y = out.as<typename To::Storage>();
  parallelFor(in.numElements(), kGrain, [&](int64_t begin, int64_t end) {
#pragma omp simd
    for (int64_t i = begin; i < end; ++i)
      y[i] = To::store(From::load(x[i]));
  });
}

Status cast(const KernelArgs &args, const NoAttributes &) {
  const Tensor &in = args.input(0), &out = args.output();
  ElementType from = in.elementType(), to = out.elementType();
  if (from == to) {
    if (in.data != out.data)
      std::memcpy(out.data, in.data, in.type->byteSize());
    return Status::ok();
  }
  // Master weights to their 16-bit copies and gradients back, every step.
  if (isFloat(from) && isFloat(to)) {
    withFloatFormat(from, [&](auto source) {
      return withFloatFormat(to, [&](auto target) {
        castFloats<decltype(source), decltype(target)>(in, out);
        return 0;
      });
    });
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
  using O = Opcode;
  table.addFloat(O::Neg, [](auto f) { return neg<decltype(f)>; });
  table.addFloat(O::Abs, [](auto f) { return absolute<decltype(f)>; });
  table.addFloat(O::Exp, [](auto f) { return exponential<decltype(f)>; });
  table.addFloat(O::Log, [](auto f) { return logarithm<decltype(f)>; });
  table.addFloat(O::Sqrt, [](auto f) { return squareRoot<decltype(f)>; });
  table.addFloat(O::Rsqrt,
                 [](auto f) { return reciprocalSquareRoot<decltype(f)>; });
  table.addFloat(O::Reciprocal, [](auto f) { return reciprocal<decltype(f)>; });
  table.addFloat(O::Tanh, [](auto f) { return hyperbolicTangent<decltype(f)>; });
  table.addFloat(O::Erf, [](auto f) { return errorFunction<decltype(f)>; });
  table.addFloat(O::Sigmoid, [](auto f) { return sigmoid<decltype(f)>; });
  table.addFloat(O::Relu, [](auto f) { return relu<decltype(f)>; });
  table.addFloat(O::Silu, [](auto f) { return silu<decltype(f)>; });
  table.addFloat(O::Gelu, [](auto f) { return gelu<decltype(f)>; });
  // Arithmetic on floats and integers; integer division checks its divisor.
  auto numeric = [&](Opcode opcode, auto make) {
    table.addFloat(opcode, make);
    table.add(opcode, ElementType::i32, make(IntegerFormat<int32_t>()));
    table.add(opcode, ElementType::i64, make(IntegerFormat<int64_t>()));
  };
  numeric(O::Add, [](auto f) { return add<decltype(f)>; });
  numeric(O::Sub, [](auto f) { return sub<decltype(f)>; });
  numeric(O::Mul, [](auto f) { return mul<decltype(f)>; });
  numeric(O::Max, [](auto f) { return maximum<decltype(f)>; });
  numeric(O::Min, [](auto f) { return minimum<decltype(f)>; });
  numeric(O::Pow, [](auto f) { return power<decltype(f)>; });
  table.addFloat(O::Div, [](auto f) { return divide<decltype(f)>; });
  table.add(O::Div, ElementType::i32, integerDivide<int32_t>);
  table.add(O::Div, ElementType::i64, integerDivide<int64_t>);
  for (unsigned type = 0; type < kNumElementTypes; ++type) {
    ElementType element = ElementType(type);
    switch (elementSize(element)) {
    case 1:
      table.add(O::Select, element, select<uint8_t>);
      break;
    case 2:
      table.add(O::Select, element, select<uint16_t>);
      break;
    case 4:
      table.add(O::Select, element, select<uint32_t>);
      break;
    default:
      table.add(O::Select, element, select<uint64_t>);
      break;
    }
  }
  table.addAnyType(O::Cast, cast);
}

} // namespace galvatron::runtime::cpu
