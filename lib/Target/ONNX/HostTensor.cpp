//===- HostTensor.cpp - Tensors evaluated while importing ONNX ------------===//

#include "HostTensor.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Twine.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir::galvatron;
using namespace mlir::galvatron::onnx_import;
using llvm::ArrayRef;
using llvm::Expected;
using llvm::SmallVector;

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

std::string mlir::galvatron::onnx_import::dtypeName(int32_t code) {
  switch (static_cast<DType>(code)) {
  case DType::Undefined:
    return "undefined";
  case DType::Float:
    return "float";
  case DType::UInt8:
    return "uint8";
  case DType::Int8:
    return "int8";
  case DType::UInt16:
    return "uint16";
  case DType::Int16:
    return "int16";
  case DType::Int32:
    return "int32";
  case DType::Int64:
    return "int64";
  case DType::String:
    return "string";
  case DType::Bool:
    return "bool";
  case DType::Float16:
    return "float16";
  case DType::Double:
    return "double";
  case DType::UInt32:
    return "uint32";
  case DType::UInt64:
    return "uint64";
  case DType::Complex64:
    return "complex64";
  case DType::Complex128:
    return "complex128";
  case DType::BFloat16:
    return "bfloat16";
  }
  return ("type " + llvm::Twine(code)).str();
}

bool mlir::galvatron::onnx_import::isFloatType(DType type) {
  return type == DType::Float || type == DType::Float16 ||
         type == DType::BFloat16 || type == DType::Double;
}

bool mlir::galvatron::onnx_import::isIntegerType(DType type) {
  switch (type) {
  case DType::UInt8:
  case DType::Int8:
  case DType::UInt16:
  case DType::Int16:
  case DType::Int32:
  case DType::Int64:
  case DType::Bool:
  case DType::UInt32:
  case DType::UInt64:
    return true;
  default:
    return false;
  }
}

int64_t mlir::galvatron::onnx_import::dtypeSize(DType type) {
  switch (type) {
  case DType::UInt8:
  case DType::Int8:
  case DType::Bool:
    return 1;
  case DType::UInt16:
  case DType::Int16:
  case DType::Float16:
  case DType::BFloat16:
    return 2;
  case DType::Float:
  case DType::Int32:
  case DType::UInt32:
    return 4;
  case DType::Int64:
  case DType::UInt64:
  case DType::Double:
    return 8;
  default:
    return 0;
  }
}

bool mlir::galvatron::onnx_import::isHostType(int32_t code) {
  if (code < 0 || code > static_cast<int32_t>(DType::BFloat16))
    return false;
  auto type = static_cast<DType>(code);
  return isFloatType(type) || isIntegerType(type);
}

double mlir::galvatron::onnx_import::roundToType(DType type, double value) {
  switch (type) {
  case DType::Float:
    return static_cast<double>(static_cast<float>(value));
  case DType::Float16:
  case DType::BFloat16: {
    llvm::APFloat number(value);
    bool lost;
    number.convert(type == DType::Float16 ? llvm::APFloat::IEEEhalf()
                                          : llvm::APFloat::BFloat(),
                   llvm::APFloat::rmNearestTiesToEven, &lost);
    return number.convertToDouble();
  }
  default:
    return value;
  }
}

int64_t mlir::galvatron::onnx_import::wrapToType(DType type, int64_t value) {
  switch (type) {
  case DType::Bool:
    return value != 0;
  case DType::Int8:
    return static_cast<int8_t>(value);
  case DType::UInt8:
    return static_cast<uint8_t>(value);
  case DType::Int16:
    return static_cast<int16_t>(value);
  case DType::UInt16:
    return static_cast<uint16_t>(value);
  case DType::Int32:
    return static_cast<int32_t>(value);
  case DType::UInt32:
    return static_cast<uint32_t>(value);
  default:
    return value;
  }
}

int64_t mlir::galvatron::onnx_import::convertToInteger(DType type,
                                                       double value) {
  if (type == DType::Bool)
    return value != 0.0;
  if (std::isnan(value))
    return 0;
  double truncated = std::trunc(value);
  int64_t integer;
  if (truncated >= 9.2e18)
    integer = std::numeric_limits<int64_t>::max();
  else if (truncated <= -9.2e18)
    integer = std::numeric_limits<int64_t>::min();
  else
    integer = static_cast<int64_t>(truncated);
  return wrapToType(type, integer);
}

//===----------------------------------------------------------------------===//
// HostTensor
//===----------------------------------------------------------------------===//

static int64_t product(ArrayRef<int64_t> shape) {
  int64_t count = 1;
  for (int64_t dim : shape)
    count *= dim;
  return count;
}

int64_t HostTensor::numel() const { return product(shape); }

int64_t HostTensor::getInt(int64_t index) const {
  return isFloat() ? convertToInteger(DType::Int64, floats[index])
                   : ints[index];
}

bool HostTensor::isSplat() const {
  int64_t count = numel();
  for (int64_t i = 1; i < count; ++i)
    if (isFloat() ? floats[i] != floats[0] : ints[i] != ints[0])
      return false;
  return true;
}

HostTensor HostTensor::zeros(DType type, ArrayRef<int64_t> shape) {
  HostTensor tensor;
  tensor.type = type;
  tensor.shape.assign(shape.begin(), shape.end());
  if (isFloatType(type))
    tensor.floats.assign(product(shape), 0.0);
  else
    tensor.ints.assign(product(shape), 0);
  return tensor;
}

HostTensor HostTensor::fromInts(DType type, ArrayRef<int64_t> shape,
                                ArrayRef<int64_t> values) {
  HostTensor tensor = zeros(type, shape);
  for (auto [index, value] : llvm::enumerate(values)) {
    if (tensor.isFloat())
      tensor.floats[index] = roundToType(type, static_cast<double>(value));
    else
      tensor.ints[index] = wrapToType(type, value);
  }
  return tensor;
}

HostTensor HostTensor::fromDoubles(DType type, ArrayRef<int64_t> shape,
                                   ArrayRef<double> values) {
  HostTensor tensor = zeros(type, shape);
  for (auto [index, value] : llvm::enumerate(values)) {
    if (tensor.isFloat())
      tensor.floats[index] = roundToType(type, value);
    else
      tensor.ints[index] = convertToInteger(type, value);
  }
  return tensor;
}

/// A tensor of `type` and `shape` after checking the element budget.
static Expected<HostTensor> allocate(DType type, ArrayRef<int64_t> shape) {
  Expected<int64_t> count = checkedNumel(shape);
  if (!count)
    return count.takeError();
  if (*count > kMaxHostElements)
    return makeError("a constant of " + llvm::Twine(*count) +
                     " elements exceeds the import limit of " +
                     llvm::Twine(kMaxHostElements));
  return HostTensor::zeros(type, shape);
}

/// Copies element `from` of `source` to element `to` of `target` (same type).
static void copyElement(const HostTensor &source, int64_t from,
                        HostTensor &target, int64_t to) {
  if (source.isFloat())
    target.floats[to] = source.floats[from];
  else
    target.ints[to] = source.ints[from];
}

//===----------------------------------------------------------------------===//
// Iteration
//===----------------------------------------------------------------------===//

static SmallVector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  SmallVector<int64_t> strides(shape.size(), 1);
  for (int64_t dim = static_cast<int64_t>(shape.size()) - 2; dim >= 0; --dim)
    strides[dim] = strides[dim + 1] * shape[dim + 1];
  return strides;
}

/// Strides that read a tensor of `shape` broadcast (right-aligned) to
/// `target`: dimensions of size 1 or missing get stride 0.
static SmallVector<int64_t> broadcastStrides(ArrayRef<int64_t> shape,
                                             ArrayRef<int64_t> target) {
  SmallVector<int64_t> own = stridesOf(shape);
  SmallVector<int64_t> strides(target.size(), 0);
  size_t lead = target.size() - shape.size();
  for (size_t dim = 0; dim < shape.size(); ++dim)
    strides[lead + dim] = shape[dim] == 1 ? 0 : own[dim];
  return strides;
}

/// Visits every index of `shape` in row-major order, calling
/// fn(outputIndex, offsets) where offsets[k] advances by strides[k][d] along
/// dimension d, starting from bases[k].
template <typename Fn>
static void forEachIndex(ArrayRef<int64_t> shape,
                         ArrayRef<SmallVector<int64_t>> strides,
                         SmallVector<int64_t> offsets, Fn &&fn) {
  int64_t count = product(shape);
  int64_t rank = shape.size();
  SmallVector<int64_t> counter(rank, 0);
  for (int64_t index = 0; index < count; ++index) {
    fn(index, ArrayRef<int64_t>(offsets));
    for (int64_t dim = rank - 1; dim >= 0; --dim) {
      ++counter[dim];
      for (size_t k = 0; k < strides.size(); ++k)
        offsets[k] += strides[k][dim];
      if (counter[dim] < shape[dim])
        break;
      for (size_t k = 0; k < strides.size(); ++k)
        offsets[k] -= strides[k][dim] * shape[dim];
      counter[dim] = 0;
    }
  }
}

//===----------------------------------------------------------------------===//
// Shape rules
//===----------------------------------------------------------------------===//

static std::string shapeText(ArrayRef<int64_t> shape) {
  std::string text = "[";
  for (auto [index, dim] : llvm::enumerate(shape))
    text += (index ? ", " : "") + std::to_string(dim);
  return text + "]";
}

Expected<int64_t>
mlir::galvatron::onnx_import::checkedNumel(ArrayRef<int64_t> shape) {
  // The nonzero dimensions must multiply within bounds too: an empty tensor
  // with huge other dimensions would overflow its strides.
  constexpr int64_t kLimit = int64_t(1) << 62;
  int64_t count = 1, extent = 1;
  for (int64_t dim : shape) {
    if (dim < 0)
      return makeError("negative dimension in shape " + shapeText(shape));
    if (__builtin_mul_overflow(extent, std::max<int64_t>(dim, 1), &extent) ||
        extent > kLimit)
      return makeError("shape " + shapeText(shape) +
                       (llvm::is_contained(shape, 0)
                            ? "'s dimensions multiply past 2^62"
                            : " has too many elements"));
    count *= dim;
  }
  return count;
}

Expected<int64_t> mlir::galvatron::onnx_import::normalizeAxis(int64_t axis,
                                                              int64_t rank) {
  if (axis < -rank || axis >= rank)
    return makeError("axis " + llvm::Twine(axis) +
                     " is out of range for rank " + llvm::Twine(rank));
  return axis < 0 ? axis + rank : axis;
}

Expected<SmallVector<int64_t>>
mlir::galvatron::onnx_import::broadcastShapes(ArrayRef<int64_t> a,
                                              ArrayRef<int64_t> b) {
  size_t rank = std::max(a.size(), b.size());
  SmallVector<int64_t> shape(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t x = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t y = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (x != y && x != 1 && y != 1)
      return makeError("shapes " + shapeText(a) + " and " + shapeText(b) +
                       " do not broadcast");
    shape[i] = x == 1 ? y : x;
  }
  return shape;
}

Expected<SmallVector<int64_t>> mlir::galvatron::onnx_import::resolveReshape(
    ArrayRef<int64_t> input, ArrayRef<int64_t> requested, bool allowZero) {
  Expected<int64_t> total = checkedNumel(input);
  if (!total)
    return total.takeError();
  SmallVector<int64_t> shape;
  int64_t inferred = -1, known = 1;
  for (auto [index, given] : llvm::enumerate(requested)) {
    int64_t dim = given;
    if (dim == 0 && !allowZero) {
      if (index >= input.size())
        return makeError("reshape copies dimension " + llvm::Twine(index) +
                         " that the input " + shapeText(input) +
                         " does not have");
      dim = input[index];
    }
    if (dim == -1) {
      if (inferred >= 0)
        return makeError("reshape to " + shapeText(requested) +
                         " infers more than one dimension");
      inferred = index;
      shape.push_back(1);
      continue;
    }
    if (dim < 0)
      return makeError("reshape to " + shapeText(requested) +
                       " has a negative dimension");
    if (__builtin_mul_overflow(known, dim, &known))
      return makeError("reshape to " + shapeText(requested) + " overflows");
    shape.push_back(dim);
  }
  if (inferred >= 0) {
    if (known == 0 || *total % known != 0)
      return makeError("cannot reshape " + shapeText(input) + " to " +
                       shapeText(requested));
    shape[inferred] = *total / known;
  } else if (known != *total) {
    return makeError("cannot reshape " + shapeText(input) + " (" +
                     llvm::Twine(*total) + " elements) to " +
                     shapeText(requested));
  }
  return shape;
}

Expected<SmallVector<int64_t>>
mlir::galvatron::onnx_import::resolveUnsqueeze(ArrayRef<int64_t> input,
                                               ArrayRef<int64_t> axes) {
  int64_t rank = input.size() + axes.size();
  SmallVector<bool> inserted(rank, false);
  for (int64_t axis : axes) {
    Expected<int64_t> normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return normalized.takeError();
    if (inserted[*normalized])
      return makeError("unsqueeze axis " + llvm::Twine(axis) + " is repeated");
    inserted[*normalized] = true;
  }
  SmallVector<int64_t> shape;
  size_t next = 0;
  for (int64_t dim = 0; dim < rank; ++dim)
    shape.push_back(inserted[dim] ? 1 : input[next++]);
  return shape;
}

Expected<SmallVector<int64_t>>
mlir::galvatron::onnx_import::resolveSqueeze(ArrayRef<int64_t> input,
                                             ArrayRef<int64_t> axes) {
  int64_t rank = input.size();
  SmallVector<bool> removed(rank, false);
  if (axes.empty()) {
    for (int64_t dim = 0; dim < rank; ++dim)
      removed[dim] = input[dim] == 1;
  }
  for (int64_t axis : axes) {
    Expected<int64_t> normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return normalized.takeError();
    if (input[*normalized] != 1)
      return makeError("cannot squeeze dimension " + llvm::Twine(axis) +
                       " of size " + llvm::Twine(input[*normalized]));
    removed[*normalized] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t dim = 0; dim < rank; ++dim)
    if (!removed[dim])
      shape.push_back(input[dim]);
  return shape;
}

Expected<SmallVector<int64_t>>
mlir::galvatron::onnx_import::resolvePermutation(int64_t rank,
                                                 ArrayRef<int64_t> perm) {
  SmallVector<int64_t> result;
  if (perm.empty()) {
    for (int64_t dim = rank - 1; dim >= 0; --dim)
      result.push_back(dim);
    return result;
  }
  if (static_cast<int64_t>(perm.size()) != rank)
    return makeError("permutation " + shapeText(perm) +
                     " does not match rank " + llvm::Twine(rank));
  SmallVector<bool> seen(rank, false);
  for (int64_t dim : perm) {
    if (dim < 0 || dim >= rank || seen[dim])
      return makeError("invalid permutation " + shapeText(perm));
    seen[dim] = true;
    result.push_back(dim);
  }
  return result;
}

Expected<SmallVector<int64_t>>
mlir::galvatron::onnx_import::resolveAxes(int64_t rank,
                                          ArrayRef<int64_t> axes) {
  SmallVector<int64_t> result;
  if (axes.empty()) {
    for (int64_t dim = 0; dim < rank; ++dim)
      result.push_back(dim);
    return result;
  }
  SmallVector<bool> seen(rank, false);
  for (int64_t axis : axes) {
    Expected<int64_t> normalized = normalizeAxis(axis, rank);
    if (!normalized)
      return normalized.takeError();
    if (seen[*normalized])
      return makeError("axis " + llvm::Twine(axis) + " is repeated");
    seen[*normalized] = true;
    result.push_back(*normalized);
  }
  llvm::sort(result);
  return result;
}

Expected<SliceSpec> mlir::galvatron::onnx_import::resolveSlice(
    ArrayRef<int64_t> shape, ArrayRef<int64_t> starts, ArrayRef<int64_t> ends,
    ArrayRef<int64_t> axes, ArrayRef<int64_t> steps) {
  int64_t rank = shape.size();
  if (starts.size() != ends.size() ||
      (!axes.empty() && axes.size() != starts.size()) ||
      (!steps.empty() && steps.size() != starts.size()))
    return makeError("slice starts, ends, axes and steps differ in length");
  SliceSpec spec;
  spec.starts.assign(rank, 0);
  spec.steps.assign(rank, 1);
  spec.sizes.assign(shape.begin(), shape.end());
  SmallVector<bool> seen(rank, false);
  for (size_t i = 0; i < starts.size(); ++i) {
    int64_t axis = axes.empty() ? static_cast<int64_t>(i) : axes[i];
    Expected<int64_t> dim = normalizeAxis(axis, rank);
    if (!dim)
      return dim.takeError();
    if (seen[*dim])
      return makeError("slice axis " + llvm::Twine(axis) + " is repeated");
    seen[*dim] = true;
    int64_t size = shape[*dim];
    int64_t step = steps.empty() ? 1 : steps[i];
    if (step == 0)
      return makeError("slice step must not be zero");
    // Negative indices count from the end; then clamp as ONNX specifies.
    int64_t start = starts[i] < 0 ? starts[i] + size : starts[i];
    int64_t end = ends[i] < 0 ? ends[i] + size : ends[i];
    int64_t count;
    if (size == 0) {
      start = 0;
      count = 0;
    } else if (step > 0) {
      start = std::clamp<int64_t>(start, 0, size);
      end = std::clamp<int64_t>(end, 0, size);
      count = end > start ? (end - start - 1) / step + 1 : 0;
    } else {
      start = std::clamp<int64_t>(start, 0, size - 1);
      end = std::clamp<int64_t>(end, -1, size - 1);
      // -step overflows for INT64_MIN; such a step takes one element.
      count = start <= end ? 0
              : step == std::numeric_limits<int64_t>::min()
                  ? 1
                  : (start - end - 1) / (-step) + 1;
    }
    spec.starts[*dim] = count ? start : 0;
    spec.steps[*dim] = step;
    spec.sizes[*dim] = count;
  }
  return spec;
}

//===----------------------------------------------------------------------===//
// Elementwise evaluation
//===----------------------------------------------------------------------===//

bool mlir::galvatron::onnx_import::isComparison(BinaryKind kind) {
  switch (kind) {
  case BinaryKind::Equal:
  case BinaryKind::Less:
  case BinaryKind::Greater:
  case BinaryKind::LessOrEqual:
  case BinaryKind::GreaterOrEqual:
    return true;
  default:
    return false;
  }
}

static uint64_t bits(int64_t value) { return static_cast<uint64_t>(value); }

static Expected<int64_t> binaryInt(BinaryKind kind, int64_t a, int64_t b) {
  switch (kind) {
  case BinaryKind::Add:
    return static_cast<int64_t>(bits(a) + bits(b));
  case BinaryKind::Sub:
    return static_cast<int64_t>(bits(a) - bits(b));
  case BinaryKind::Mul:
    return static_cast<int64_t>(bits(a) * bits(b));
  case BinaryKind::Div:
  case BinaryKind::Mod:
  case BinaryKind::FMod: {
    if (b == 0)
      return makeError("integer division by zero");
    if (b == -1) // avoids INT64_MIN / -1
      return kind == BinaryKind::Div ? static_cast<int64_t>(-bits(a)) : 0;
    if (kind == BinaryKind::Div)
      return a / b;
    int64_t remainder = a % b;
    if (kind == BinaryKind::Mod && remainder != 0 && (remainder < 0) != (b < 0))
      remainder += b;
    return remainder;
  }
  case BinaryKind::Pow: {
    if (b < 0)
      return a == 1 ? 1 : a == -1 ? (b % 2 ? -1 : 1) : 0;
    uint64_t result = 1, base = bits(a);
    for (uint64_t exponent = b; exponent; exponent >>= 1) {
      if (exponent & 1)
        result *= base;
      base *= base;
    }
    return static_cast<int64_t>(result);
  }
  case BinaryKind::Max:
    return std::max(a, b);
  case BinaryKind::Min:
    return std::min(a, b);
  case BinaryKind::Equal:
    return a == b;
  case BinaryKind::Less:
    return a < b;
  case BinaryKind::Greater:
    return a > b;
  case BinaryKind::LessOrEqual:
    return a <= b;
  case BinaryKind::GreaterOrEqual:
    return a >= b;
  case BinaryKind::And:
    return a && b;
  case BinaryKind::Or:
    return a || b;
  case BinaryKind::Xor:
    return (a != 0) != (b != 0);
  }
  return 0;
}

static Expected<double> binaryFloat(BinaryKind kind, double a, double b) {
  switch (kind) {
  case BinaryKind::Add:
    return a + b;
  case BinaryKind::Sub:
    return a - b;
  case BinaryKind::Mul:
    return a * b;
  case BinaryKind::Div:
    return a / b;
  case BinaryKind::Pow:
    return std::pow(a, b);
  case BinaryKind::Max:
    return std::isnan(a) || std::isnan(b) ? NAN : std::max(a, b);
  case BinaryKind::Min:
    return std::isnan(a) || std::isnan(b) ? NAN : std::min(a, b);
  case BinaryKind::FMod:
    return std::fmod(a, b);
  case BinaryKind::Mod: {
    double remainder = std::fmod(a, b);
    if (remainder != 0 && (remainder < 0) != (b < 0))
      remainder += b;
    return remainder;
  }
  case BinaryKind::Equal:
    return a == b;
  case BinaryKind::Less:
    return a < b;
  case BinaryKind::Greater:
    return a > b;
  case BinaryKind::LessOrEqual:
    return a <= b;
  case BinaryKind::GreaterOrEqual:
    return a >= b;
  case BinaryKind::And:
  case BinaryKind::Or:
  case BinaryKind::Xor:
    return makeError("logical operators need bool operands");
  }
  return 0.0;
}

HostResult mlir::galvatron::onnx_import::evaluateBinary(BinaryKind kind,
                                                        const HostTensor &lhs,
                                                        const HostTensor &rhs) {
  // Pow may raise to an exponent of another type; every other op needs
  // operands of one type.
  if (lhs.type != rhs.type && kind != BinaryKind::Pow)
    return makeError("operands have different element types " +
                     dtypeName(lhs.type) + " and " + dtypeName(rhs.type));
  bool logical = kind == BinaryKind::And || kind == BinaryKind::Or ||
                 kind == BinaryKind::Xor;
  if (logical && lhs.type != DType::Bool)
    return makeError("logical operators need bool operands");
  Expected<SmallVector<int64_t>> shape = broadcastShapes(lhs.shape, rhs.shape);
  if (!shape)
    return shape.takeError();
  DType resultType = isComparison(kind) ? DType::Bool : lhs.type;
  HostResult result = allocate(resultType, *shape);
  if (!result)
    return result.takeError();
  llvm::Error error = llvm::Error::success();
  SmallVector<SmallVector<int64_t>> strides = {
      broadcastStrides(lhs.shape, *shape), broadcastStrides(rhs.shape, *shape)};
  bool floatMath = lhs.isFloat() || rhs.isFloat();
  forEachIndex(*shape, strides, {0, 0}, [&](int64_t out, ArrayRef<int64_t> in) {
    if (error)
      return;
    if (floatMath) {
      Expected<double> value =
          binaryFloat(kind, lhs.getDouble(in[0]), rhs.getDouble(in[1]));
      if (!value) {
        error = value.takeError();
        return;
      }
      if (result->isFloat())
        result->floats[out] = roundToType(resultType, *value);
      else
        result->ints[out] = convertToInteger(resultType, *value);
      return;
    }
    Expected<int64_t> value = binaryInt(kind, lhs.ints[in[0]], rhs.ints[in[1]]);
    if (!value) {
      error = value.takeError();
      return;
    }
    result->ints[out] = wrapToType(resultType, *value);
  });
  if (error)
    return std::move(error);
  return result;
}

HostResult
mlir::galvatron::onnx_import::evaluateUnary(UnaryKind kind,
                                            const HostTensor &input) {
  HostResult result = allocate(input.type, input.shape);
  if (!result)
    return result.takeError();
  if (kind == UnaryKind::Not && input.type != DType::Bool)
    return makeError("Not needs a bool tensor");
  int64_t count = input.numel();
  if (!input.isFloat()) {
    for (int64_t i = 0; i < count; ++i) {
      int64_t value = input.ints[i];
      int64_t out;
      switch (kind) {
      case UnaryKind::Neg:
        out = static_cast<int64_t>(-bits(value));
        break;
      case UnaryKind::Abs:
        out = value < 0 ? static_cast<int64_t>(-bits(value)) : value;
        break;
      case UnaryKind::Relu:
        out = std::max<int64_t>(value, 0);
        break;
      case UnaryKind::Sign:
        out = (value > 0) - (value < 0);
        break;
      case UnaryKind::Not:
        out = !value;
        break;
      case UnaryKind::Floor:
      case UnaryKind::Ceil:
      case UnaryKind::Round:
        out = value;
        break;
      default:
        return makeError("this operation needs a floating-point tensor, "
                         "got " +
                         dtypeName(input.type));
      }
      result->ints[i] = wrapToType(input.type, out);
    }
    return result;
  }
  for (int64_t i = 0; i < count; ++i) {
    double x = input.floats[i], y = 0;
    switch (kind) {
    case UnaryKind::Neg:
      y = -x;
      break;
    case UnaryKind::Abs:
      y = std::fabs(x);
      break;
    case UnaryKind::Exp:
      y = std::exp(x);
      break;
    case UnaryKind::Log:
      y = std::log(x);
      break;
    case UnaryKind::Sqrt:
      y = std::sqrt(x);
      break;
    case UnaryKind::Reciprocal:
      y = 1.0 / x;
      break;
    case UnaryKind::Tanh:
      y = std::tanh(x);
      break;
    case UnaryKind::Erf:
      y = std::erf(x);
      break;
    case UnaryKind::Sigmoid:
      y = 1.0 / (1.0 + std::exp(-x));
      break;
    case UnaryKind::Relu:
      y = x > 0 ? x : 0.0;
      break;
    case UnaryKind::Floor:
      y = std::floor(x);
      break;
    case UnaryKind::Ceil:
      y = std::ceil(x);
      break;
    case UnaryKind::Round:
      y = std::nearbyint(x);
      break;
    case UnaryKind::Sin:
      y = std::sin(x);
      break;
    case UnaryKind::Cos:
      y = std::cos(x);
      break;
    case UnaryKind::Sign:
      y = (x > 0) - (x < 0);
      break;
    case UnaryKind::Not:
      break;
    }
    result->floats[i] = roundToType(input.type, y);
  }
  return result;
}

HostResult mlir::galvatron::onnx_import::evaluateWhere(
    const HostTensor &condition, const HostTensor &lhs, const HostTensor &rhs) {
  if (condition.type != DType::Bool)
    return makeError("Where needs a bool condition, got " +
                     dtypeName(condition.type));
  if (lhs.type != rhs.type)
    return makeError("Where operands have different element types " +
                     dtypeName(lhs.type) + " and " + dtypeName(rhs.type));
  Expected<SmallVector<int64_t>> partial =
      broadcastShapes(condition.shape, lhs.shape);
  if (!partial)
    return partial.takeError();
  Expected<SmallVector<int64_t>> shape = broadcastShapes(*partial, rhs.shape);
  if (!shape)
    return shape.takeError();
  HostResult result = allocate(lhs.type, *shape);
  if (!result)
    return result.takeError();
  SmallVector<SmallVector<int64_t>> strides = {
      broadcastStrides(condition.shape, *shape),
      broadcastStrides(lhs.shape, *shape), broadcastStrides(rhs.shape, *shape)};
  forEachIndex(*shape, strides, {0, 0, 0},
               [&](int64_t out, ArrayRef<int64_t> in) {
                 if (condition.ints[in[0]])
                   copyElement(lhs, in[1], *result, out);
                 else
                   copyElement(rhs, in[2], *result, out);
               });
  return result;
}

HostResult mlir::galvatron::onnx_import::castTensor(const HostTensor &input,
                                                    DType type) {
  if (!isFloatType(type) && !isIntegerType(type))
    return makeError("cannot cast to " + dtypeName(type));
  HostResult result = allocate(type, input.shape);
  if (!result)
    return result.takeError();
  int64_t count = input.numel();
  for (int64_t i = 0; i < count; ++i) {
    if (result->isFloat())
      result->floats[i] = roundToType(type, input.getDouble(i));
    else if (input.isFloat())
      result->ints[i] = convertToInteger(type, input.floats[i]);
    else
      result->ints[i] = wrapToType(type, input.ints[i]);
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

HostResult
mlir::galvatron::onnx_import::reshapeTensor(const HostTensor &input,
                                            ArrayRef<int64_t> shape) {
  Expected<int64_t> count = checkedNumel(shape);
  if (!count)
    return count.takeError();
  if (*count != input.numel())
    return makeError("cannot reshape " + shapeText(input.shape) + " to " +
                     shapeText(shape));
  HostTensor result = input;
  result.shape.assign(shape.begin(), shape.end());
  return result;
}

HostResult
mlir::galvatron::onnx_import::transposeTensor(const HostTensor &input,
                                              ArrayRef<int64_t> perm) {
  SmallVector<int64_t> shape, strides;
  SmallVector<int64_t> own = stridesOf(input.shape);
  for (int64_t dim : perm) {
    shape.push_back(input.shape[dim]);
    strides.push_back(own[dim]);
  }
  HostResult result = allocate(input.type, shape);
  if (!result)
    return result.takeError();
  forEachIndex(shape, {strides}, {0}, [&](int64_t out, ArrayRef<int64_t> in) {
    copyElement(input, in[0], *result, out);
  });
  return result;
}

HostResult mlir::galvatron::onnx_import::sliceTensor(const HostTensor &input,
                                                     const SliceSpec &spec) {
  SmallVector<int64_t> own = stridesOf(input.shape), strides;
  int64_t base = 0;
  for (size_t dim = 0; dim < own.size(); ++dim) {
    // A step only matters (and cannot overflow) when it is taken.
    strides.push_back(spec.sizes[dim] > 1 ? own[dim] * spec.steps[dim] : 0);
    base += spec.starts[dim] * own[dim];
  }
  HostResult result = allocate(input.type, spec.sizes);
  if (!result)
    return result.takeError();
  forEachIndex(spec.sizes, {strides}, {base},
               [&](int64_t out, ArrayRef<int64_t> in) {
                 copyElement(input, in[0], *result, out);
               });
  return result;
}

HostResult mlir::galvatron::onnx_import::gatherTensor(const HostTensor &data,
                                                      const HostTensor &indices,
                                                      int64_t axis) {
  if (isFloatType(indices.type))
    return makeError("Gather indices must be integers");
  Expected<int64_t> dim = normalizeAxis(axis, data.rank());
  if (!dim)
    return dim.takeError();
  int64_t size = data.shape[*dim];
  SmallVector<int64_t> shape(data.shape.begin(), data.shape.begin() + *dim);
  shape.append(indices.shape.begin(), indices.shape.end());
  shape.append(data.shape.begin() + *dim + 1, data.shape.end());
  HostResult result = allocate(data.type, shape);
  if (!result)
    return result.takeError();
  int64_t outer = product(ArrayRef<int64_t>(data.shape).take_front(*dim));
  int64_t inner = product(ArrayRef<int64_t>(data.shape).drop_front(*dim + 1));
  int64_t count = indices.numel();
  for (int64_t i = 0; i < count; ++i) {
    int64_t index = indices.ints[i];
    if (index < -size || index >= size)
      return makeError("Gather index " + llvm::Twine(index) +
                       " is out of range for a dimension of size " +
                       llvm::Twine(size));
    if (index < 0)
      index += size;
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < inner; ++j)
        copyElement(data, (o * size + index) * inner + j, *result,
                    (o * count + i) * inner + j);
  }
  return result;
}

HostResult
mlir::galvatron::onnx_import::concatTensors(ArrayRef<const HostTensor *> inputs,
                                            int64_t axis) {
  if (inputs.empty())
    return makeError("Concat needs at least one input");
  const HostTensor &first = *inputs.front();
  Expected<int64_t> dim = normalizeAxis(axis, first.rank());
  if (!dim)
    return dim.takeError();
  SmallVector<int64_t> shape(first.shape);
  shape[*dim] = 0;
  for (const HostTensor *input : inputs) {
    if (input->type != first.type || input->rank() != first.rank())
      return makeError("Concat inputs differ in element type or rank");
    for (int64_t d = 0; d < first.rank(); ++d)
      if (d != *dim && input->shape[d] != first.shape[d])
        return makeError("Concat inputs differ in dimension " + llvm::Twine(d));
    shape[*dim] += input->shape[*dim];
  }
  HostResult result = allocate(first.type, shape);
  if (!result)
    return result.takeError();
  int64_t outer = product(ArrayRef<int64_t>(shape).take_front(*dim));
  int64_t inner = product(ArrayRef<int64_t>(shape).drop_front(*dim + 1));
  int64_t out = 0;
  for (int64_t o = 0; o < outer; ++o)
    for (const HostTensor *input : inputs) {
      int64_t chunk = input->shape[*dim] * inner;
      for (int64_t j = 0; j < chunk; ++j)
        copyElement(*input, o * chunk + j, *result, out++);
    }
  return result;
}

HostResult mlir::galvatron::onnx_import::expandTensor(const HostTensor &input,
                                                      ArrayRef<int64_t> shape) {
  Expected<SmallVector<int64_t>> target = broadcastShapes(input.shape, shape);
  if (!target)
    return target.takeError();
  HostResult result = allocate(input.type, *target);
  if (!result)
    return result.takeError();
  forEachIndex(*target, {broadcastStrides(input.shape, *target)}, {0},
               [&](int64_t out, ArrayRef<int64_t> in) {
                 copyElement(input, in[0], *result, out);
               });
  return result;
}

HostResult mlir::galvatron::onnx_import::tileTensor(const HostTensor &input,
                                                    ArrayRef<int64_t> repeats) {
  if (static_cast<int64_t>(repeats.size()) != input.rank())
    return makeError("Tile needs one repeat count per dimension");
  // tile(x) = reshape(expand(reshape(x, [1, d0, 1, d1, ...]),
  //                          [r0, d0, r1, d1, ...]), [r0·d0, r1·d1, ...])
  SmallVector<int64_t> interleaved, expanded, tiled;
  for (auto [dim, repeat] : llvm::zip(input.shape, repeats)) {
    if (repeat < 0)
      return makeError("Tile repeat counts must not be negative");
    interleaved.append({1, dim});
    expanded.append({repeat, dim});
    tiled.push_back(repeat * dim);
  }
  HostResult spread = reshapeTensor(input, interleaved);
  if (!spread)
    return spread.takeError();
  HostResult copies = expandTensor(*spread, expanded);
  if (!copies)
    return copies.takeError();
  return reshapeTensor(*copies, tiled);
}

HostResult mlir::galvatron::onnx_import::rangeTensor(const HostTensor &start,
                                                     const HostTensor &limit,
                                                     const HostTensor &delta) {
  if (start.numel() != 1 || limit.numel() != 1 || delta.numel() != 1)
    return makeError("Range needs scalar start, limit and delta");
  if (start.type != limit.type || start.type != delta.type)
    return makeError("Range operands differ in element type");
  int64_t count;
  if (start.isFloat()) {
    double step = delta.floats[0];
    if (step == 0 || std::isnan(step))
      return makeError("Range delta must not be zero");
    double span = std::ceil((limit.floats[0] - start.floats[0]) / step);
    if (!(span < static_cast<double>(kMaxHostElements + 1)))
      span = static_cast<double>(kMaxHostElements + 1);
    count = std::max<int64_t>(0, static_cast<int64_t>(std::max(span, 0.0)));
  } else {
    __int128 step = delta.ints[0];
    if (step == 0)
      return makeError("Range delta must not be zero");
    __int128 span = static_cast<__int128>(limit.ints[0]) - start.ints[0];
    __int128 steps = (span > 0) == (step > 0) && span != 0
                         ? (span + step - (step > 0 ? 1 : -1)) / step
                         : 0;
    count = steps > kMaxHostElements ? kMaxHostElements + 1
                                     : static_cast<int64_t>(steps);
  }
  HostResult result = allocate(start.type, {count});
  if (!result)
    return result.takeError();
  for (int64_t i = 0; i < count; ++i) {
    if (start.isFloat())
      result->floats[i] =
          roundToType(start.type, start.floats[0] + i * delta.floats[0]);
    else
      result->ints[i] = wrapToType(
          start.type, static_cast<int64_t>(bits(start.ints[0]) +
                                           bits(delta.ints[0]) * bits(i)));
  }
  return result;
}

HostResult mlir::galvatron::onnx_import::triluTensor(const HostTensor &input,
                                                     int64_t diagonal,
                                                     bool upper) {
  if (input.rank() < 2)
    return makeError("Trilu needs a tensor of rank >= 2");
  HostTensor result = input;
  int64_t rows = input.shape[input.rank() - 2];
  int64_t cols = input.shape[input.rank() - 1];
  int64_t matrices = rows * cols != 0 ? input.numel() / (rows * cols) : 0;
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        // j - i compared without overflow for extreme diagonals.
        __int128 offset = static_cast<__int128>(j) - i;
        bool keep = upper ? offset >= diagonal : offset <= diagonal;
        if (keep)
          continue;
        int64_t index = (m * rows + i) * cols + j;
        if (result.isFloat())
          result.floats[index] = 0.0;
        else
          result.ints[index] = 0;
      }
  return result;
}

HostResult mlir::galvatron::onnx_import::reduceTensor(ReduceKind kind,
                                                      const HostTensor &input,
                                                      ArrayRef<int64_t> axes,
                                                      bool keepDims) {
  Expected<SmallVector<int64_t>> reduced = resolveAxes(input.rank(), axes);
  if (!reduced)
    return reduced.takeError();
  SmallVector<bool> isReduced(input.rank(), false);
  for (int64_t axis : *reduced)
    isReduced[axis] = true;
  SmallVector<int64_t> keptShape, resultShape;
  int64_t groupSize = 1;
  for (int64_t dim = 0; dim < input.rank(); ++dim) {
    keptShape.push_back(isReduced[dim] ? 1 : input.shape[dim]);
    if (isReduced[dim])
      groupSize *= input.shape[dim];
    if (!isReduced[dim] || keepDims)
      resultShape.push_back(keptShape.back());
  }
  if (groupSize == 0 && (kind == ReduceKind::Max || kind == ReduceKind::Min))
    return makeError("cannot take the maximum or minimum of no elements");
  HostResult result = allocate(input.type, resultShape);
  if (!result)
    return result.takeError();
  int64_t count = result->numel();
  std::vector<double> accumulator(count, kind == ReduceKind::Prod ? 1.0 : 0.0);
  std::vector<int64_t> intAccumulator(count, kind == ReduceKind::Prod ? 1 : 0);
  std::vector<bool> started(count, false);
  forEachIndex(input.shape, {broadcastStrides(keptShape, input.shape)}, {0},
               [&](int64_t in, ArrayRef<int64_t> outs) {
                 int64_t out = outs[0];
                 bool first = !started[out];
                 started[out] = true;
                 if (input.isFloat()) {
                   double x = input.floats[in], &acc = accumulator[out];
                   switch (kind) {
                   case ReduceKind::Sum:
                   case ReduceKind::Mean:
                     acc += x;
                     break;
                   case ReduceKind::Prod:
                     acc *= x;
                     break;
                   case ReduceKind::Max:
                     acc = first ? x : std::max(acc, x);
                     break;
                   case ReduceKind::Min:
                     acc = first ? x : std::min(acc, x);
                     break;
                   }
                   return;
                 }
                 int64_t x = input.ints[in], &acc = intAccumulator[out];
                 switch (kind) {
                 case ReduceKind::Sum:
                 case ReduceKind::Mean:
                   acc = static_cast<int64_t>(bits(acc) + bits(x));
                   break;
                 case ReduceKind::Prod:
                   acc = static_cast<int64_t>(bits(acc) * bits(x));
                   break;
                 case ReduceKind::Max:
                   acc = first ? x : std::max(acc, x);
                   break;
                 case ReduceKind::Min:
                   acc = first ? x : std::min(acc, x);
                   break;
                 }
               });
  for (int64_t i = 0; i < count; ++i) {
    if (input.isFloat()) {
      double value = accumulator[i];
      if (kind == ReduceKind::Mean)
        value /= static_cast<double>(groupSize);
      result->floats[i] = roundToType(input.type, value);
    } else {
      int64_t value = intAccumulator[i];
      if (kind == ReduceKind::Mean && groupSize)
        value /= groupSize;
      result->ints[i] = wrapToType(input.type, value);
    }
  }
  return result;
}

HostResult mlir::galvatron::onnx_import::splitTensor(const HostTensor &input,
                                                     int64_t axis,
                                                     int64_t offset,
                                                     int64_t size) {
  SliceSpec spec;
  spec.starts.assign(input.rank(), 0);
  spec.steps.assign(input.rank(), 1);
  spec.sizes.assign(input.shape.begin(), input.shape.end());
  spec.starts[axis] = offset;
  spec.sizes[axis] = size;
  return sliceTensor(input, spec);
}

//===----------------------------------------------------------------------===//
// Structure detection
//===----------------------------------------------------------------------===//

std::optional<TriangularPattern>
mlir::galvatron::onnx_import::matchTriangular(const HostTensor &tensor) {
  if (tensor.rank() < 2)
    return std::nullopt;
  int64_t rows = tensor.shape[tensor.rank() - 2];
  int64_t cols = tensor.shape[tensor.rank() - 1];
  if (rows < 2 || cols < 2)
    return std::nullopt;
  int64_t matrix = rows * cols, count = tensor.numel();
  auto at = [&](int64_t index) { return tensor.getDouble(index); };
  // Bottom-left has the smallest column - row, top-right the largest.
  double lower = at((rows - 1) * cols), upper = at(cols - 1);
  if (lower == upper || std::isnan(lower) || std::isnan(upper))
    return std::nullopt;
  // The diagonal from the first row that holds a `lower` value.
  std::optional<int64_t> diagonal;
  for (int64_t i = 0; i < rows && !diagonal; ++i) {
    int64_t prefix = 0;
    while (prefix < cols && at(i * cols + prefix) == lower)
      ++prefix;
    if (prefix)
      diagonal = prefix - i - 1;
  }
  if (!diagonal)
    return std::nullopt;
  for (int64_t index = 0; index < count; ++index) {
    int64_t i = (index % matrix) / cols, j = index % cols;
    if (at(index) != (j - i <= *diagonal ? lower : upper))
      return std::nullopt;
  }
  return TriangularPattern{*diagonal, lower, upper};
}

std::optional<RotaryTablePattern>
mlir::galvatron::onnx_import::matchRotaryTable(const HostTensor &tensor) {
  if (!tensor.isFloat() || tensor.rank() < 2)
    return std::nullopt;
  int64_t rows = tensor.shape[tensor.rank() - 2];
  int64_t dim = tensor.shape[tensor.rank() - 1];
  if (rows < 2 || dim < 4 || dim % 2 ||
      llvm::any_of(ArrayRef<int64_t>(tensor.shape).drop_back(2),
                   [](int64_t size) { return size != 1; }))
    return std::nullopt;
  auto at = [&](int64_t row, int64_t column) {
    return tensor.floats[row * dim + column];
  };
  // Row 0 is cos(0) = 1 or sin(0) = 0 everywhere.
  bool sine = at(0, 0) == 0.0;
  for (int64_t j = 0; j < dim; ++j)
    if (at(0, j) != (sine ? 0.0 : 1.0))
      return std::nullopt;
  // Frequency 1 is theta^(-2/D); read it where its angle is well
  // conditioned (near 1 for sin, near pi/2 for cos).
  double value = at(1, 1);
  if (!(std::fabs(value) <= 1.0))
    return std::nullopt;
  double frequency = sine ? std::asin(value) : std::acos(value);
  if (!(frequency > 0.0 && frequency <= 1.0))
    return std::nullopt;
  // Clamp in double: a tiny frequency puts the row past any int64.
  double wellConditionedRow = std::clamp<double>(
      (sine ? 1.0 : M_PI / 2) / frequency, 1.0, static_cast<double>(rows - 1));
  int64_t row = static_cast<int64_t>(wellConditionedRow);
  double refined = sine ? std::asin(at(row, 1)) : std::acos(at(row, 1));
  if (refined > 0.0 && refined / row <= 1.0)
    frequency = refined / row;
  double estimate = std::pow(frequency, -dim / 2.0);
  if (!std::isfinite(estimate) || estimate <= 1.0)
    return std::nullopt;
  // The table was computed in float32: allow its rounding, which grows with
  // the angle.
  auto matches = [&](double theta) {
    for (int64_t j = 0; j < dim / 2; ++j) {
      double inverse = std::pow(theta, -2.0 * j / dim);
      for (int64_t s = 0; s < rows; ++s) {
        double angle = s * inverse;
        double expected = sine ? std::sin(angle) : std::cos(angle);
        double tolerance = 1e-5 + 1e-6 * angle;
        if (std::fabs(at(s, j) - expected) > tolerance ||
            std::fabs(at(s, j + dim / 2) - expected) > tolerance)
          return false;
      }
    }
    return true;
  };
  // Bases are round numbers (10000, 500000); try the estimate rounded to five
  // significant digits first.
  double magnitude = std::pow(10.0, std::floor(std::log10(estimate)) - 4);
  double rounded = std::round(estimate / magnitude) * magnitude;
  for (double theta : {rounded, estimate})
    if (matches(theta))
      return RotaryTablePattern{theta, sine};
  return std::nullopt;
}

SmallVector<bool>
mlir::galvatron::onnx_import::findBroadcastDims(const HostTensor &tensor) {
  SmallVector<bool> broadcast(tensor.rank(), false);
  SmallVector<int64_t> strides = stridesOf(tensor.shape);
  int64_t count = tensor.numel();
  for (int64_t dim = 0; dim < tensor.rank(); ++dim) {
    if (tensor.shape[dim] <= 1)
      continue;
    bool same = true;
    for (int64_t index = 0; index < count && same; ++index) {
      int64_t coordinate = (index / strides[dim]) % tensor.shape[dim];
      int64_t first = index - coordinate * strides[dim];
      same = tensor.isFloat() ? tensor.floats[index] == tensor.floats[first]
                              : tensor.ints[index] == tensor.ints[first];
    }
    broadcast[dim] = same;
  }
  return broadcast;
}
