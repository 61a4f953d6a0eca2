//===- CPUKernels.h - The CPU backend's kernel table ------------*- C++ -*-===//
//
// CPU kernels receive their operands as host pointers into the arena and
// their attributes decoded into the kernel's typed structure
// (KernelAttributes.h). Each kernel family registers its implementations in
// `CPUKernelTable` by (opcode, element type of the catalog's dispatch
// operand); the backend binds every instruction to one of them once, at
// load. Float kernels are templates over the storage format (FloatFormat.h):
// 16-bit tensors are computed in f32 and rounded to nearest even on store.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_CPU_CPUKERNELS_H
#define GALVATRON_RUNTIME_CPU_CPUKERNELS_H

#include "FloatFormat.h"

#include "galvatron/Runtime/Backend.h"
#include "galvatron/Runtime/KernelCatalog.h"
#include "galvatron/Runtime/Parameters.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <variant>
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

/// The operands of a validated kernel call: the signature in
/// KernelCatalog.h holds.
struct KernelArgs {
  std::vector<Tensor> inputs, outputs;
  /// The call's run (set by the backend for every call).
  const RunContext *run = nullptr;

  const Tensor &input(size_t i) const { return inputs[i]; }
  const Tensor &output(size_t i = 0) const { return outputs[i]; }
  bool hasInput(size_t i) const { return i < inputs.size(); }
  const RunContext &context() const { return *run; }
};

template <typename Attributes>
using KernelFunction = Status (*)(const KernelArgs &, const Attributes &);

/// Index of `T` among the alternatives of `KernelAttributes`.
template <typename T, typename Variant = KernelAttributes>
struct AttributesIndex;
template <typename T, typename... Alternatives>
struct AttributesIndex<T, std::variant<Alternatives...>> {
  static constexpr size_t value = [] {
    constexpr bool matches[] = {std::is_same_v<T, Alternatives>...};
    for (size_t i = 0; i < sizeof...(Alternatives); ++i)
      if (matches[i])
        return i;
    return sizeof...(Alternatives);
  }();
};

/// A kernel implementation with its attribute structure erased: `invoke`
/// calls `function` with the attributes cast back to the structure whose
/// index in `KernelAttributes` is `attributes`.
struct KernelEntry {
  Status (*invoke)(void (*function)(), const KernelArgs &args,
                   const void *attributes) = nullptr;
  void (*function)() = nullptr;
  size_t attributes = 0;
};

class CPUKernelTable {
public:
  template <typename Attributes>
  void add(Opcode opcode, ElementType type,
           KernelFunction<Attributes> function) {
    static_assert(AttributesIndex<Attributes>::value <
                  std::variant_size_v<KernelAttributes>);
    entries[unsigned(opcode)][unsigned(type)] = KernelEntry{
        [](void (*erased)(), const KernelArgs &args, const void *attributes) {
          return reinterpret_cast<KernelFunction<Attributes>>(erased)(
              args, *static_cast<const Attributes *>(attributes));
        },
        reinterpret_cast<void (*)()>(function),
        AttributesIndex<Attributes>::value};
  }
  /// One implementation for every element type (kernels that move bytes).
  template <typename Attributes>
  void addAnyType(Opcode opcode, KernelFunction<Attributes> function) {
    for (unsigned type = 0; type < kNumElementTypes; ++type)
      add(opcode, ElementType(type), function);
  }
  /// `make(Format())` gives the implementation for each float format.
  template <typename Make> void addFloat(Opcode opcode, Make make) {
    add(opcode, ElementType::f32, make(F32()));
    add(opcode, ElementType::f16, make(F16()));
    add(opcode, ElementType::bf16, make(BF16()));
  }
  /// The implementation for (opcode, type), or null.
  const KernelEntry *find(Opcode opcode, ElementType type) const {
    const KernelEntry &entry = entries[unsigned(opcode)][unsigned(type)];
    return entry.invoke ? &entry : nullptr;
  }

private:
  std::array<std::array<KernelEntry, kNumElementTypes>, kNumOpcodes>
      entries{};
};

/// Every kernel of the CPU backend, registered once.
const CPUKernelTable &kernelTable();

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

/// The same on matrices stored in `Format`, accumulated in f32: f32 calls
/// `gemm`; 16-bit formats go through OpenBLAS's bf16 GEMM where it has one
/// (`cblas_sbgemm`, bf16 only), else through f32 tiles converted from them,
/// and round C on store.
template <typename Format>
Status gemm(bool transposeA, bool transposeB, int64_t m, int64_t n, int64_t k,
            float alpha, const typename Format::Storage *a,
            const typename Format::Storage *b, float beta,
            typename Format::Storage *c);

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

/// The labels (input `labels`) of a cross-entropy kernel, whose logits'
/// columns hold the block `attributes.vocab` of the vocabulary.
template <typename Label> struct VocabLabels {
  VocabLabels(const KernelArgs &args, const CrossEntropyAttributes &attributes,
              unsigned labels)
      : block(attributes.vocab), rows(args.input(labels).numElements()),
        ignore(attributes.ignoreIndex),
        values(args.input(labels).as<Label>()) {}
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

/// The maximum of a row of logits and Σ exp(logit − maximum), in double.
template <typename Format>
std::pair<float, double> softmaxStatistics(const typename Format::Storage *row,
                                           int64_t width) {
  float maximum = -std::numeric_limits<float>::infinity();
  for (int64_t j = 0; j < width; ++j)
    maximum = std::max(maximum, Format::load(row[j]));
  double sum = 0.0;
  for (int64_t j = 0; j < width; ++j)
    sum += std::exp(double(Format::load(row[j])) - maximum);
  return {maximum, sum};
}

/// The factor of a cross-entropy gradient: the seed over the counted rows
/// (mean) or the seed (sum); 0 when no row counts.
inline float crossEntropyGradScale(float seed, int64_t counted, bool mean) {
  return counted == 0 ? 0.0f : float(seed / (mean ? double(counted) : 1.0));
}

/// Calls `body(Label())` with the integer type of a kernel's labels or
/// indices.
template <typename Body> auto withIndexType(const Tensor &indices, Body body) {
  if (indices.elementType() == ElementType::i32)
    return body(int32_t());
  return body(int64_t());
}

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

/// The dropout mask of a call (`dropout`, attention's probabilities):
/// element e of the whole masked tensor of the step's global batch is kept
/// when the counter-based uniform of (seed, step, stream) at e exceeds the
/// probability. The call's part starts at `offsets` in the whole tensor of
/// one micro-batch, and micro-batch m's whole tensor is the m-th block of
/// the global batch's. Kernels walk the part by rows of its last
/// dimension: `rowStart(row)` is the whole index of the row's first
/// element, consecutive along the row.
class DropoutMask {
public:
  DropoutMask(const RunContext &context, const DropoutAttributes &attributes,
              const std::vector<int64_t> &part);

  bool active() const { return probability > 0.0; }
  uint64_t rowStart(int64_t row) const;
  bool keeps(uint64_t index) const {
    return counterUniform(key, index) > probability;
  }
  /// What a kept element is multiplied by: 1 / (1 - probability).
  float scale() const { return keptScale; }
  /// The factor of each of `count` elements from `index` on: the scale
  /// where kept, 0 where dropped.
  void factors(uint64_t index, int64_t count, float *out) const {
    for (int64_t j = 0; j < count; ++j)
      out[j] = keeps(index + uint64_t(j)) ? keptScale : 0.0f;
  }

private:
  uint64_t key, first;
  double probability;
  float keptScale;
  std::vector<int64_t> part, offsets, strides;
};

/// Query rows per attention task, forward and backward: a task's scores
/// are a block of kQueryBlock × keys, so memory stays linear in the
/// sequence length.
constexpr int64_t kQueryBlock = 64;

/// An attention call whose query is operand `first` (key, value and the
/// optional additive mask follow): query [batch, heads, seq, headDim], key
/// and value [batch, kvHeads, keys, ...], the mask (of the query's type)
/// read as broadcast to [batch, heads, seq, keys].
struct AttentionShape {
  AttentionShape(const KernelArgs &args, const AttentionAttributes &attributes,
                 size_t first)
      : batch(args.input(first).shape()[0]),
        heads(args.input(first).shape()[1]),
        seq(args.input(first).shape()[2]),
        headDim(args.input(first).shape()[3]),
        kvHeads(args.input(first + 1).shape()[1]),
        keys(args.input(first + 1).shape()[2]),
        valueDim(args.input(first + 2).shape()[3]), group(heads / kvHeads),
        causal(attributes.causal), scale(attributes.scale),
        mask(args.hasInput(first + 3) ? args.input(first + 3).data : nullptr),
        maskStride(mask ? broadcastStrides4(args.input(first + 3).shape())
                        : std::array<int64_t, 4>{}) {}

  /// Element offset of the mask's row (b, h, i).
  int64_t maskRow(int64_t b, int64_t h, int64_t i) const {
    return b * maskStride[0] + h * maskStride[1] + i * maskStride[2];
  }

  int64_t batch, heads, seq, headDim, kvHeads, keys, valueDim, group;
  bool causal;
  float scale;
  const uint8_t *mask;
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
