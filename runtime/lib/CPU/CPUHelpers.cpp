//===- CPUHelpers.cpp - Helpers shared by the CPU kernels -----------------===//

#include "CPUKernels.h"

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

} // namespace galvatron::runtime::cpu
