//===- ReductionKernels.cpp - reduce_sum, reduce_mean, reduce_max ---------===//

#include "CPUKernels.h"

#include <algorithm>
#include <limits>

namespace galvatron::runtime::cpu {
namespace {

/// Reduces the input's `reduced` dimensions with `combine` starting from
/// `initial`, then applies `finish(accumulator, count)`. Sums accumulate in
/// double.
template <typename Format, typename Combine, typename Finish>
Status reduce(const KernelArgs &args, const ReduceAttributes &attributes,
              double initial, Combine combine, Finish finish) {
  using Storage = typename Format::Storage;
  const Tensor &input = args.input(0);
  const auto &shape = input.shape();
  const std::vector<bool> &reduced = attributes.reduced;
  // Walk kept dimensions (the output, row-major) outside and reduced ones
  // inside, both as strided views of the input.
  std::vector<int64_t> strides = stridesOf(shape);
  std::vector<int64_t> keptShape, keptStrides, reducedShape, reducedStrides;
  for (size_t d = 0; d < shape.size(); ++d) {
    (reduced[d] ? reducedShape : keptShape).push_back(shape[d]);
    (reduced[d] ? reducedStrides : keptStrides).push_back(strides[d]);
  }
  int64_t outputs = product(keptShape, 0, keptShape.size());
  int64_t count = product(reducedShape, 0, reducedShape.size());
  auto offsetOf = [](int64_t index, const std::vector<int64_t> &dims,
                     const std::vector<int64_t> &steps) {
    int64_t offset = 0;
    for (size_t d = dims.size(); d-- > 0;) {
      offset += (index % dims[d]) * steps[d];
      index /= dims[d];
    }
    return offset;
  };
  const Storage *x = input.as<Storage>();
  Storage *y = args.output().as<Storage>();
  // Fast paths where the reduced dimensions form one block: trailing (each
  // output reads a contiguous run) or leading (rows of the output's length
  // accumulate column-wise). Each output still adds its elements in order.
  size_t firstReduced = 0, lastReduced = 0, reducedCount = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    if (reduced[d]) {
      if (!reducedCount++)
        firstReduced = d;
      lastReduced = d;
    }
  bool block = reducedCount == lastReduced - firstReduced + 1;
  if (block && lastReduced + 1 == shape.size()) {
    parallelFor(outputs, std::max<int64_t>(1, 16384 / std::max<int64_t>(count, 1)),
                [&](int64_t begin, int64_t end) {
                  for (int64_t o = begin; o < end; ++o) {
                    const Storage *row = x + o * count;
                    double accumulator = initial;
                    for (int64_t r = 0; r < count; ++r)
                      accumulator = combine(accumulator, Format::load(row[r]));
                    y[o] = Format::store(float(finish(accumulator, count)));
                  }
                });
    return Status::ok();
  }
  if (block && firstReduced == 0) {
    parallelFor(outputs, std::max<int64_t>(16, 16384 / std::max<int64_t>(count, 1)),
                [&](int64_t begin, int64_t end) {
                  std::vector<double> accumulators(end - begin, initial);
                  for (int64_t r = 0; r < count; ++r) {
                    const Storage *row = x + r * outputs;
                    for (int64_t o = begin; o < end; ++o)
                      accumulators[o - begin] = combine(
                          accumulators[o - begin], Format::load(row[o]));
                  }
                  for (int64_t o = begin; o < end; ++o)
                    y[o] = Format::store(
                        float(finish(accumulators[o - begin], count)));
                });
    return Status::ok();
  }
  parallelFor(outputs, std::max<int64_t>(1, 16384 / std::max<int64_t>(count, 1)),
              [&](int64_t begin, int64_t end) {
                for (int64_t o = begin; o < end; ++o) {
                  const Storage *base =
                      x + offsetOf(o, keptShape, keptStrides);
                  double accumulator = initial;
                  for (int64_t r = 0; r < count; ++r)
                    accumulator = combine(
                        accumulator,
                        Format::load(
                            base[offsetOf(r, reducedShape, reducedStrides)]));
                  y[o] = Format::store(float(finish(accumulator, count)));
                }
              });
  return Status::ok();
}

template <typename Format>
Status reduceSum(const KernelArgs &args, const ReduceAttributes &attributes) {
  // Each square in f32, as `mul` then `reduce_sum` would compute it.
  if (attributes.square)
    return reduce<Format>(
        args, attributes, 0.0, [](double a, float x) { return a + x * x; },
        [](double a, int64_t) { return a; });
  return reduce<Format>(
      args, attributes, 0.0, [](double a, float x) { return a + x; },
      [](double a, int64_t) { return a; });
}

template <typename Format>
Status reduceMean(const KernelArgs &args, const ReduceAttributes &attributes) {
  return reduce<Format>(
      args, attributes, 0.0, [](double a, float x) { return a + x; },
      [](double a, int64_t count) { return a / double(count); });
}

template <typename Format>
Status reduceMax(const KernelArgs &args, const ReduceAttributes &attributes) {
  return reduce<Format>(
      args, attributes, -std::numeric_limits<double>::infinity(),
      [](double a, float x) {
        return x != x ? double(x) : std::max(a, double(x));
      },
      [](double a, int64_t) { return a; });
}

} // namespace

void registerReductionKernels(CPUKernelTable &table) {
  table.addFloat(Opcode::ReduceSum,
                 [](auto f) { return reduceSum<decltype(f)>; });
  table.addFloat(Opcode::ReduceMean,
                 [](auto f) { return reduceMean<decltype(f)>; });
  table.addFloat(Opcode::ReduceMax,
                 [](auto f) { return reduceMax<decltype(f)>; });
}

} // namespace galvatron::runtime::cpu
