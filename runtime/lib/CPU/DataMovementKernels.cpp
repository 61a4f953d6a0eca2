//===- DataMovementKernels.cpp - transpose, slice, concat, split, ... -----===//

#include "CPUKernels.h"

#include <cstring>

namespace galvatron::runtime::cpu {

void stridedCopy(const uint8_t *in, int64_t base,
                 const std::vector<int64_t> &strides, uint8_t *out,
                 const std::vector<int64_t> &shape, unsigned elementSize) {
  // Drop unit dimensions and merge neighbours the view walks contiguously.
  std::vector<int64_t> dims, steps;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0)
      return;
    if (shape[d] == 1)
      continue;
    if (!dims.empty() && steps.back() == strides[d] * shape[d]) {
      dims.back() *= shape[d];
      steps.back() = strides[d];
      continue;
    }
    dims.push_back(shape[d]);
    steps.push_back(strides[d]);
  }
  int64_t length = dims.empty() ? 1 : dims.back();
  int64_t step = dims.empty() ? 1 : steps.back();
  int64_t rows = dims.empty() ? 1 : product(dims, 0, dims.size() - 1);
  auto copyRow = [&](const uint8_t *from, uint8_t *to) {
    if (step == 1) {
      std::memcpy(to, from, length * elementSize);
      return;
    }
    for (int64_t i = 0; i < length; ++i)
      std::memcpy(to + i * elementSize, from + i * step * elementSize,
                  elementSize);
  };
  parallelFor(rows, std::max<int64_t>(1, 16384 / length),
              [&](int64_t begin, int64_t end) {
                for (int64_t row = begin; row < end; ++row) {
                  int64_t offset = base, rest = row;
                  for (size_t d = dims.empty() ? 0 : dims.size() - 1; d-- > 0;) {
                    offset += (rest % dims[d]) * steps[d];
                    rest /= dims[d];
                  }
                  copyRow(in + offset * elementSize,
                          out + row * length * elementSize);
                }
              });
}

namespace {

unsigned elementBytes(const Tensor &tensor) {
  return elementSize(tensor.elementType());
}

Status transpose(const KernelContext &context) {
  const Tensor &input = context.input(0), &out = context.output();
  std::vector<int64_t> inStrides = stridesOf(input.shape()), strides;
  for (int64_t dim : context.integers("perm"))
    strides.push_back(inStrides[dim]);
  stridedCopy(input.data, 0, strides, out.data, out.shape(),
              elementBytes(input));
  return Status::ok();
}

Status slice(const KernelContext &context) {
  const Tensor &input = context.input(0), &out = context.output();
  std::vector<int64_t> inStrides = stridesOf(input.shape());
  std::vector<int64_t> starts = context.integers("starts"),
                       steps = context.integers("strides"), strides;
  int64_t base = 0;
  for (size_t d = 0; d < inStrides.size(); ++d) {
    base += starts[d] * inStrides[d];
    strides.push_back(inStrides[d] * steps[d]);
  }
  stridedCopy(input.data, base, strides, out.data, out.shape(),
              elementBytes(input));
  return Status::ok();
}

Status broadcast(const KernelContext &context) {
  const Tensor &input = context.input(0), &out = context.output();
  const auto &in = input.shape(), &shape = out.shape();
  unsigned bytes = elementBytes(input);
  if (input.numElements() == 1) {
    // A fill (zeroing gradient accumulators, constant masks).
    parallelFor(out.numElements(), 65536, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i)
        std::memcpy(out.data + i * bytes, input.data, bytes);
    });
    return Status::ok();
  }
  std::vector<int64_t> inStrides = stridesOf(in);
  std::vector<int64_t> strides(shape.size(), 0);
  size_t skip = shape.size() - in.size();
  for (size_t d = 0; d < in.size(); ++d)
    if (in[d] != 1)
      strides[d + skip] = inStrides[d];
  stridedCopy(input.data, 0, strides, out.data, shape, bytes);
  return Status::ok();
}

/// Concatenation (or its inverse, a split) along `axis` of `whole`: part i
/// occupies the blocks of `parts[i]` at their offset along the axis.
void copyParts(const Tensor &whole, const std::vector<Tensor> &parts,
               int64_t axis, bool intoWhole) {
  unsigned bytes = elementBytes(whole);
  int64_t outer = product(whole.shape(), 0, axis);
  int64_t inner = product(whole.shape(), axis + 1, whole.shape().size());
  int64_t wholeBlock = whole.shape()[axis] * inner * bytes;
  int64_t offset = 0;
  for (const Tensor &part : parts) {
    int64_t block = part.shape()[axis] * inner * bytes;
    uint8_t *partData = part.data, *wholeData = whole.data + offset;
    parallelFor(outer, std::max<int64_t>(1, 65536 / std::max<int64_t>(block, 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t o = begin; o < end; ++o) {
                    uint8_t *a = wholeData + o * wholeBlock;
                    uint8_t *b = partData + o * block;
                    if (intoWhole)
                      std::memcpy(a, b, block);
                    else
                      std::memcpy(b, a, block);
                  }
                });
    offset += block;
  }
}

Status concat(const KernelContext &context) {
  const Tensor &out = context.output();
  int64_t axis = *normalizeAxis(context.integer("axis"), out.rank());
  copyParts(out, context.inputs, axis, /*intoWhole=*/true);
  return Status::ok();
}

Status split(const KernelContext &context) {
  const Tensor &input = context.input(0);
  int64_t axis = *normalizeAxis(context.integer("axis"), input.rank());
  copyParts(input, context.outputs, axis, /*intoWhole=*/false);
  return Status::ok();
}

} // namespace

void registerDataMovementKernels(CPUKernelTable &table) {
  table.add(Opcode::Transpose, transpose);
  table.add(Opcode::Slice, slice);
  table.add(Opcode::Concat, concat);
  table.add(Opcode::Split, split);
  table.add(Opcode::Broadcast, broadcast);
}

} // namespace galvatron::runtime::cpu
