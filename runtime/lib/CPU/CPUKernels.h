//===- CPUKernels.h - The CPU backend's kernel table ------------*- C++ -*-===//
//
// CPU kernels receive their operands as host pointers into the arena and the
// instruction's attributes. Each kernel family registers its kernels in
// `CPUKernelTable` by opcode; the backend looks them up once at load.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_CPU_CPUKERNELS_H
#define GALVATRON_RUNTIME_CPU_CPUKERNELS_H

#include "galvatron/Runtime/KernelCatalog.h"

#include <array>
#include <cstdint>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace galvatron::runtime::cpu {

/// An operand: its type and its bytes in the arena.
struct Tensor {
  const TensorType *type;
  uint8_t *data;

  template <typename T> T *as() const { return reinterpret_cast<T *>(data); }
  const std::vector<int64_t> &shape() const { return type->shape; }
  int64_t rank() const { return type->rank(); }
  int64_t numElements() const { return type->numElements(); }
  ElementType elementType() const { return type->elementType; }
};

/// A validated kernel call: the signature in KernelCatalog.h holds.
class KernelContext : public AttributeList {
public:
  explicit KernelContext(const std::vector<Attribute> &attributes)
      : AttributeList(attributes) {}
  std::vector<Tensor> inputs, outputs;

  const Tensor &input(size_t i) const { return inputs[i]; }
  const Tensor &output(size_t i = 0) const { return outputs[i]; }
  bool hasInput(size_t i) const { return i < inputs.size(); }
};

using KernelFunction = Status (*)(const KernelContext &context);

class CPUKernelTable {
public:
  void add(Opcode opcode, KernelFunction function) {
    functions[unsigned(opcode)] = function;
  }
  KernelFunction find(Opcode opcode) const {
    return functions[unsigned(opcode)];
  }

private:
  std::array<KernelFunction, kNumOpcodes> functions{};
};

/// The kernel families.
void registerElementwiseKernels(CPUKernelTable &table);
void registerLinearAlgebraKernels(CPUKernelTable &table);
void registerNormalizationKernels(CPUKernelTable &table);
void registerDataMovementKernels(CPUKernelTable &table);
void registerReductionKernels(CPUKernelTable &table);
void registerTransformerKernels(CPUKernelTable &table);
void registerTrainingKernels(CPUKernelTable &table);

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// C[m×n] = alpha · op(A) · op(B) + beta · C, row-major, through OpenBLAS
/// (multi-threaded unless called inside a parallel region).
Status gemm(bool transposeA, bool transposeB, int64_t m, int64_t n, int64_t k,
            float alpha, const float *a, const float *b, float beta, float *c);

/// Softmax of `length` values `stride` apart; `out` may equal `in`.
void softmaxLine(const float *in, float *out, int64_t length, int64_t stride);

/// Copies the elements of a strided view into the contiguous `out` of
/// `shape`: element (i0, i1, ...) is read from `in` at byte offset
/// elementSize · (base + Σ i_d · strides[d]). Transposes, slices and
/// broadcasts are such views.
void stridedCopy(const uint8_t *in, int64_t base,
                 const std::vector<int64_t> &strides, uint8_t *out,
                 const std::vector<int64_t> &shape, unsigned elementSize);

/// Element `i` of `data` (of `type`) as a double, and back: floats round to
/// nearest even, integers truncate toward zero and saturate (NaN gives 0),
/// i1 is value != 0.
double loadElement(const uint8_t *data, ElementType type, int64_t i);
void storeElement(uint8_t *data, ElementType type, int64_t i, double value);

/// Row-major strides of `shape` (in elements).
std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape);

/// Product of shape[begin, end).
int64_t product(const std::vector<int64_t> &shape, size_t begin, size_t end);

/// The block of a vocabulary split among ranks that a kernel's table rows
/// (or logits columns) hold: ids [start, start + local) of [0, size)
/// (attributes `vocab_start` and `vocab_size`; the whole vocabulary when
/// absent). A block may extend past `size` (a padded vocabulary): its rows
/// or columns from `valid()` on are padding.
struct VocabBlock {
  VocabBlock(const AttributeList &attributes, int64_t local)
      : start(attributes.integer("vocab_start", 0)), local(local),
        size(attributes.integer("vocab_size", local)) {}
  bool holds(int64_t id) const { return id >= start && id < start + local; }
  int64_t valid() const {
    return std::max<int64_t>(0, std::min(local, size - start));
  }
  int64_t start, local, size;
};

/// The labels of a cross-entropy that count (are not `ignore`), checked to
/// lie in [0, vocab).
template <typename Label>
Expected<int64_t> countLabels(const Label *labels, int64_t rows, int64_t vocab,
                              int64_t ignore) {
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (int64_t(labels[r]) == ignore)
      continue;
    if (labels[r] < 0 || int64_t(labels[r]) >= vocab)
      return error("label ", int64_t(labels[r]), " at position ", r,
                   " is out of range [0, ", vocab, ")");
    ++counted;
  }
  return counted;
}

/// The labels (input `labels`) of a vocabulary-parallel cross-entropy
/// kernel, whose logits (input `logits`) hold a block of the vocabulary's
/// columns.
template <typename Label> struct VocabLabels {
  VocabLabels(const KernelContext &context, unsigned logits, unsigned labels)
      : block(context, context.input(logits).shape().back()),
        rows(context.input(labels).numElements()),
        ignore(context.integer("ignore_index", -100)),
        values(context.input(labels).as<Label>()) {}
  /// The rows that count, or the error naming a label out of range.
  Expected<int64_t> count() const {
    return countLabels(values, rows, block.size, ignore);
  }
  bool ignored(int64_t r) const { return int64_t(values[r]) == ignore; }
  /// The column of row `r`'s label in the block, or -1 when the row is
  /// ignored or another rank holds the label.
  int64_t column(int64_t r) const {
    int64_t label = int64_t(values[r]);
    return !ignored(r) && block.holds(label) ? label - block.start : -1;
  }

  VocabBlock block;
  int64_t rows, ignore;
  const Label *values;
};

/// Element strides of a tensor of `shape` (rank <= 4) read as broadcast to
/// four dimensions: 0 along dimensions of size 1 or missing in front.
inline std::array<int64_t, 4> broadcastStrides4(std::vector<int64_t> shape) {
  shape.insert(shape.begin(), 4 - shape.size(), 1);
  std::array<int64_t, 4> strides{};
  int64_t stride = 1;
  for (int d = 3; d >= 0; --d) {
    strides[d] = shape[d] == 1 ? 0 : stride;
    stride *= shape[d];
  }
  return strides;
}

/// Query rows per attention task, forward and backward: a task's scores
/// are a block of kQueryBlock × keys, so memory stays linear in the
/// sequence length.
constexpr int64_t kQueryBlock = 64;

/// An attention call whose query is operand `first` (key, value and the
/// optional additive mask follow): query [batch, heads, seq, headDim], key
/// and value [batch, kvHeads, keys, ...], the mask read as broadcast to
/// [batch, heads, seq, keys].
struct AttentionShape {
  AttentionShape(const KernelContext &context, size_t first)
      : batch(context.input(first).shape()[0]),
        heads(context.input(first).shape()[1]),
        seq(context.input(first).shape()[2]),
        headDim(context.input(first).shape()[3]),
        kvHeads(context.input(first + 1).shape()[1]),
        keys(context.input(first + 1).shape()[2]),
        valueDim(context.input(first + 2).shape()[3]),
        group(heads / kvHeads), causal(context.flag("causal")),
        scale(float(context.real("scale"))),
        mask(context.hasInput(first + 3)
                 ? context.input(first + 3).as<float>()
                 : nullptr),
        maskStride(mask ? broadcastStrides4(context.input(first + 3).shape())
                        : std::array<int64_t, 4>{}) {}

  int64_t batch, heads, seq, headDim, kvHeads, keys, valueDim, group;
  bool causal;
  float scale;
  const float *mask;
  std::array<int64_t, 4> maskStride;
};

inline int threadCount() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls `body(begin, end)` on disjoint chunks covering [0, count), in
/// parallel when there is at least `grain` work per thread.
template <typename Body>
void parallelFor(int64_t count, int64_t grain, Body &&body) {
  int64_t chunks = std::min<int64_t>(threadCount(), count / std::max<int64_t>(grain, 1));
  if (chunks <= 1) {
    if (count > 0)
      body(int64_t(0), count);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t chunk = 0; chunk < chunks; ++chunk)
    body(count * chunk / chunks, count * (chunk + 1) / chunks);
}

/// An iteration over the elements of a broadcast result: `operands` shapes
/// broadcast to `result`. Adjacent dimensions that every operand walks alike
/// are merged, so the innermost loop is as long as possible.
class BroadcastLoop {
public:
  BroadcastLoop(const std::vector<int64_t> &result,
                const std::vector<const std::vector<int64_t> *> &operands);

  /// Number of innermost rows and their length.
  int64_t rows() const { return rowCount; }
  int64_t rowLength() const { return shape.empty() ? 1 : shape.back(); }
  /// Element stride of operand `o` along the row (0 or 1 after merging, or
  /// any value for a general layout).
  int64_t rowStride(size_t o) const {
    return shape.empty() ? 0 : strides[o].back();
  }
  /// Element offset of row `row`'s first element in operand `o`.
  int64_t rowOffset(size_t o, int64_t row) const;

private:
  std::vector<int64_t> shape;
  std::vector<std::vector<int64_t>> strides;
  int64_t rowCount;
};

} // namespace galvatron::runtime::cpu

#endif // GALVATRON_RUNTIME_CPU_CPUKERNELS_H
