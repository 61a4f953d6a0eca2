//===- CPUHelpers.cpp - Helpers shared by the CPU kernels -----------------===//

#include "CPUKernels.h"

#include "galvatron/Runtime/HalfFloat.h"

#include <cmath>
#include <limits>

namespace galvatron::runtime::cpu {

std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t i = shape.size(); i-- > 1;)
    strides[i - 1] = strides[i] * shape[i];
  return strides;
}

int64_t product(const std::vector<int64_t> &shape, size_t begin, size_t end) {
  int64_t result = 1;
  for (size_t i = begin; i < end; ++i)
    result *= shape[i];
  return result;
}

BroadcastLoop::BroadcastLoop(
    const std::vector<int64_t> &result,
    const std::vector<const std::vector<int64_t> *> &operands) {
  size_t rank = result.size();
  strides.resize(operands.size());
  for (size_t d = 0; d < rank; ++d) {
    if (result[d] == 1)
      continue;
    // Merge with the previous kept dimension when every operand walks both
    // alike (contiguously, or not at all).
    std::vector<int64_t> column(operands.size());
    for (size_t o = 0; o < operands.size(); ++o) {
      const std::vector<int64_t> &shape = *operands[o];
      size_t skip = rank - shape.size();
      bool present = d >= skip && shape[d - skip] != 1;
      column[o] = present ? product(shape, d - skip + 1, shape.size()) : 0;
    }
    bool merge = !shape.empty();
    for (size_t o = 0; merge && o < operands.size(); ++o)
      merge = strides[o].back() == column[o] * result[d];
    if (merge) {
      shape.back() *= result[d];
      for (size_t o = 0; o < operands.size(); ++o)
        strides[o].back() = column[o];
      continue;
    }
    shape.push_back(result[d]);
    for (size_t o = 0; o < operands.size(); ++o)
      strides[o].push_back(column[o]);
  }
  rowCount = shape.empty() ? 1 : product(shape, 0, shape.size() - 1);
  if (product(result, 0, rank) == 0)
    rowCount = 0;
}

int64_t BroadcastLoop::rowOffset(size_t o, int64_t row) const {
  int64_t offset = 0;
  if (shape.size() < 2)
    return 0;
  for (size_t d = shape.size() - 1; d-- > 0;) {
    offset += (row % shape[d]) * strides[o][d];
    row /= shape[d];
  }
  return offset;
}

/// Element `i` of `data` (of `type`) as a double.
double loadElement(const uint8_t *data, ElementType type, int64_t i) {
  switch (type) {
  case ElementType::f32:
    return reinterpret_cast<const float *>(data)[i];
  case ElementType::f16:
    return halfToFloat(reinterpret_cast<const uint16_t *>(data)[i]);
  case ElementType::bf16:
    return bfloat16ToFloat(reinterpret_cast<const uint16_t *>(data)[i]);
  case ElementType::i64:
    return double(reinterpret_cast<const int64_t *>(data)[i]);
  case ElementType::i32:
    return reinterpret_cast<const int32_t *>(data)[i];
  case ElementType::i1:
    return data[i] ? 1.0 : 0.0;
  }
  return 0.0;
}

/// Converts a double to an integer type: truncation toward zero, saturated
/// at the type's range, NaN as 0.
template <typename T> static T toInteger(double value) {
  if (std::isnan(value))
    return 0;
  if (value <= double(std::numeric_limits<T>::min()))
    return std::numeric_limits<T>::min();
  if (value >= double(std::numeric_limits<T>::max()))
    return std::numeric_limits<T>::max();
  return T(value);
}

void storeElement(uint8_t *data, ElementType type, int64_t i, double value) {
  switch (type) {
  case ElementType::f32:
    reinterpret_cast<float *>(data)[i] = float(value);
    break;
  case ElementType::f16:
    reinterpret_cast<uint16_t *>(data)[i] = floatToHalf(float(value));
    break;
  case ElementType::bf16:
    reinterpret_cast<uint16_t *>(data)[i] = floatToBfloat16(float(value));
    break;
  case ElementType::i64:
    reinterpret_cast<int64_t *>(data)[i] = toInteger<int64_t>(value);
    break;
  case ElementType::i32:
    reinterpret_cast<int32_t *>(data)[i] = toInteger<int32_t>(value);
    break;
  case ElementType::i1:
    data[i] = value != 0.0;
    break;
  }
}

DropoutMask::DropoutMask(const RunContext &context,
                         const DropoutAttributes &attributes,
                         const std::vector<int64_t> &part)
    : key(dropoutKey(context.seed, context.step, attributes.stream)),
      probability(attributes.probability),
      keptScale(float(1.0 / (1.0 - attributes.probability))), part(part),
      offsets(attributes.offsets), strides(part.size(), 1) {
  const std::vector<int64_t> &whole = attributes.wholeShape;
  for (int64_t d = int64_t(part.size()) - 2; d >= 0; --d)
    strides[d] = strides[d + 1] * whole[d + 1];
  int64_t wholeElements = part.empty() ? 1 : strides[0] * whole[0];
  first = uint64_t(context.microBatch) * uint64_t(wholeElements);
}

uint64_t DropoutMask::rowStart(int64_t row) const {
  int64_t rank = int64_t(part.size());
  if (rank == 0)
    return first;
  int64_t index = offsets[rank - 1], rest = row;
  for (int64_t d = rank - 2; d >= 0; --d) {
    index += (rest % part[d] + offsets[d]) * strides[d];
    rest /= part[d];
  }
  return first + uint64_t(index);
}

} // namespace galvatron::runtime::cpu
