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

Status transpose(const KernelArgs &args, const TransposeAttributes &attributes) {
  const Tensor &input = args.input(0), &out = args.output();
  std::vector<int64_t> inStrides = stridesOf(input.shape()), strides;
  for (int64_t dim : attributes.perm)
    strides.push_back(inStrides[dim]);
  stridedCopy(input.data, 0, strides, out.data, out.shape(),
              elementBytes(input));
  return Status::ok();
}

Status slice(const KernelArgs &args, const SliceAttributes &attributes) {
  const Tensor &input = args.input(0), &out = args.output();
  std::vector<int64_t> inStrides = stridesOf(input.shape());
  const std::vector<int64_t> &starts = attributes.starts,
                             &steps = attributes.strides;
  std::vector<int64_t> strides;
  int64_t base = 0;
  for (size_t d = 0; d < inStrides.size(); ++d) {
    base += starts[d] * inStrides[d];
    strides.push_back(inStrides[d] * steps[d]);
  }
  stridedCopy(input.data, base, strides, out.data, out.shape(),
              elementBytes(input));
  return Status::ok();
}

Status broadcast(const KernelArgs &args, const NoAttributes &) {
  const Tensor &input = args.input(0), &out = args.output();
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

Status concat(const KernelArgs &args, const AxisAttributes &attributes) {
  copyParts(args.output(), args.inputs, attributes.axis, /*intoWhole=*/true);
  return Status::ok();
}

Status split(const KernelArgs &args, const AxisAttributes &attributes) {
  copyParts(args.input(0), args.outputs, attributes.axis,
            /*intoWhole=*/false);
  return Status::ok();
}

} // namespace

void registerDataMovementKernels(CPUKernelTable &table) {
  // These move elements without looking at them: one implementation serves
  // every element type.
  table.addAnyType(Opcode::Transpose, transpose);
  table.addAnyType(Opcode::Slice, slice);
  table.addAnyType(Opcode::Concat, concat);
  table.addAnyType(Opcode::Split, split);
  table.addAnyType(Opcode::Broadcast, broadcast);
}

} // namespace galvatron::runtime::cpu
