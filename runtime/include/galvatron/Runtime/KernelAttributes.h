//===- KernelAttributes.h - Kernel attributes, decoded once -----*- C++ -*-===//
//
// A kernel call's attributes as typed values, decoded once when a backend
// binds a program (KernelCatalog.h's `decode`), so kernels read fields
// instead of looking attributes up by name on every call. Defaults are
// resolved and axes normalized here; the structures are what every backend
// (CPU today, CUDA next) passes to its implementations.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_KERNELATTRIBUTES_H
#define GALVATRON_RUNTIME_KERNELATTRIBUTES_H

#include <algorithm>
#include <cstdint>
#include <variant>
#include <vector>

namespace galvatron::runtime {

struct NoAttributes {};

struct GeluAttributes {
  bool approximate = false;
};

struct MatmulAttributes {
  bool transposeLhs = false, transposeRhs = false;
};

struct LinearAttributes {
  bool transposeWeight = false;
};

/// The block of a vocabulary split among ranks that a kernel's table rows
/// (or logits columns) hold: ids [start, start + local) of [0, size); the
/// whole vocabulary when the call has no `vocab_start` / `vocab_size`. A
/// block may extend past `size` (a padded vocabulary): its rows or columns
/// from `valid()` on are padding.
struct VocabBlock {
  int64_t start = 0, local = 0, size = 0;
  bool holds(int64_t id) const { return id >= start && id < start + local; }
  int64_t valid() const {
    return std::max<int64_t>(0, std::min(local, size - start));
  }
};

struct EmbeddingAttributes {
  VocabBlock vocab;
};

/// layer_norm, rms_norm and their gradients.
struct NormAttributes {
  double epsilon = 0.0;
};

/// softmax, concat, split: an axis in [0, rank).
struct AxisAttributes {
  int64_t axis = 0;
};

struct TransposeAttributes {
  std::vector<int64_t> perm;
};

struct SliceAttributes {
  std::vector<int64_t> starts, strides;
};

/// reduce_sum, reduce_mean, reduce_max: which input dimensions reduce;
/// reduce_sum may sum the squares of its input (a global norm's).
struct ReduceAttributes {
  std::vector<bool> reduced;
  bool square = false;
};

struct RotaryAttributes {
  int64_t seqAxis = 0;
  double theta = 0.0;
  int64_t rotaryDim = 0;
  bool interleaved = false;
};

/// dropout, and attention's of its [batch, heads, seq, keys] probabilities.
/// The part a call holds starts at `offsets` in `wholeShape`, the tensor of
/// one micro-batch before partitioning (the call's own shape and zeros
/// when it is whole).
struct DropoutAttributes {
  double probability = 0.0;
  uint64_t stream = 0;
  std::vector<int64_t> wholeShape, offsets;
};

/// attention, attention_grad.
struct AttentionAttributes {
  bool causal = false;
  float scale = 0.0f;
  DropoutAttributes dropout;
};

/// The cross-entropy kernels: `vocab` is the block of the vocabulary the
/// logits' columns hold (all of it outside vocabulary parallelism).
struct CrossEntropyAttributes {
  int64_t ignoreIndex = -100;
  bool mean = true;
  VocabBlock vocab;
};

struct RelativePositionBucketAttributes {
  int64_t buckets = 0, maxDistance = 0;
  bool bidirectional = false;
};

struct PatchAttributes {
  int64_t patchSize = 0;
};

struct TrilMaskAttributes {
  int64_t diagonal = 0;
};

/// fill, and pad's padding value.
struct FillAttributes {
  double value = 0.0;
};

enum class ComparePredicate : uint8_t { eq, ne, lt, le, gt, ge };
struct CompareAttributes {
  ComparePredicate predicate = ComparePredicate::eq;
};

struct PadAttributes {
  std::vector<int64_t> low, interior;
  double value = 0.0;
};

enum class Activation : uint8_t { relu, silu, gelu, geluTanh };
struct ActivationGradAttributes {
  Activation activation = Activation::relu;
};

struct LRScheduleAttributes {
  double lr = 0.0, minLr = 0.0;
  int64_t warmupSteps = 0, decaySteps = 0;
};

struct AdamWAttributes {
  double beta1 = 0.0, beta2 = 0.0, epsilon = 0.0, weightDecay = 0.0;
};

struct SGDAttributes {
  double momentum = 0.0, weightDecay = 0.0;
  bool nesterov = false;
};

using KernelAttributes =
    std::variant<NoAttributes, GeluAttributes, MatmulAttributes,
                 LinearAttributes, EmbeddingAttributes, NormAttributes,
                 AxisAttributes, TransposeAttributes, SliceAttributes,
                 ReduceAttributes, RotaryAttributes, AttentionAttributes,
                 CrossEntropyAttributes, RelativePositionBucketAttributes,
                 PatchAttributes, TrilMaskAttributes, DropoutAttributes, FillAttributes,
                 CompareAttributes, PadAttributes, ActivationGradAttributes,
                 LRScheduleAttributes, AdamWAttributes, SGDAttributes>;

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_KERNELATTRIBUTES_H
