//===- Parameters.h - Where parameter values come from ----------*- C++ -*-===//
//
// A parameter's values come from safetensors files (by the source model's
// name: a file, a Hugging Face index, a checkpoint), from the external data
// its program records (an ONNX initializer's bytes), or from its
// initializer; a rank reads only its slice of a tensor. Initialization is
// counter-based: value i of parameter P depends only on the seed, P's name
// and i's index in P's full tensor, never on the order of parameters or on
// how P is sliced across ranks, so a shard initializes to exactly the slice
// of the whole.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_PARAMETERS_H
#define GALVATRON_RUNTIME_PARAMETERS_H

#include "galvatron/Runtime/Executor.h"
#include "galvatron/Runtime/TensorFiles.h"

#include <string>

namespace galvatron::runtime {

struct ParameterOptions {
  uint64_t seed = 0;
  /// Safetensors files holding every parameter, whole (TensorStore::open:
  /// a file, an index, a directory); empty: none.
  std::string checkpoint;
  /// Overrides the program's model directory for external data.
  std::string modelDirectory;
  /// Ignore external data and use the initializers.
  bool initializersOnly = false;
};

/// How many parameters (and values) came from where.
struct ParameterReport {
  int64_t fromCheckpoint = 0, fromExternalData = 0, initialized = 0;
  int64_t values = 0;
};

/// Writes every parameter of the executor's rank into its buffer; training
/// state starts from its initializer.
Expected<ParameterReport> loadParameters(Executor &executor,
                                         const ParameterOptions &options);

/// SplitMix64's finalizer, and a uniform value in (0, 1] of stream `key` at
/// `counter`: the counter-based generator behind initializers, synthetic
/// data and masking.
uint64_t mixBits(uint64_t x);
double counterUniform(uint64_t key, uint64_t counter);
/// The stream of dropout site `stream` at training step `step`:
/// mixBits(mixBits(mixBits(seed ^ kDropoutDomain) ^ step) ^ stream). Its
/// counter is the element's index in the whole tensor of the global batch.
uint64_t dropoutKey(uint64_t seed, int64_t step, uint64_t stream);

/// The part of a (padded) slice's buffer `bytes` of `type` that lies inside
/// the source tensor, packed; and back: `part` into a buffer of `type`
/// whose padding is zeroed. `parameter` is a rank's (RankProgram).
std::vector<uint8_t> packValidPart(const Parameter &parameter,
                                   const TensorType &type,
                                   const uint8_t *bytes);
void unpackValidPart(const Parameter &parameter, const TensorType &type,
                     const uint8_t *part, uint8_t *bytes);

/// The box of the whole tensor that a rank's parameter of `type` holds,
/// without the padding of a padded slice.
TensorBox parameterBox(const Parameter &parameter, const TensorType &type);

/// Fills `out` (of `type`, the parameter's buffer type) from the
/// parameter's initializer with `seed`; padding is zero.
void initializeParameter(const Parameter &parameter, const TensorType &type,
                         uint64_t seed, uint8_t *out);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PARAMETERS_H
