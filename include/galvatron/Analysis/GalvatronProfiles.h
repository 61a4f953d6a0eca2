//===- GalvatronProfiles.h - Galvatron's model profiles ---------*- C++ -*-===//
//
// Reads the model profiles Galvatron's profiler writes and applies them as
// overrides of the IR-derived costs, so that a Galvatron user's measurements
// carry over:
//
//   computation_profiling_*.json
//     layertype_<t>_bsz<b>_seq<s>      forward milliseconds per sequence of
//                                      one block of type t (0: the first
//                                      kind of block, 1: the second, as T5's
//                                      decoder) in micro-batches of b on one
//                                      device
//     layertype_other_bsz<b>_seq<s>    the same for every layer outside the
//                                      blocks together
//     layernum[n]_bsz<b>_seq<s>        the raw measurements they come from:
//     (or layernum<n>_...)             forward milliseconds of a model of n
//                                      blocks (used when the layertype
//                                      entries are absent)
//   memory_profiling_*.json
//     layertype_<t>[_sp]               {seq: {parameter_size, tp_activation_
//                                      per_bsz_dict: {tp: MB per sequence,
//                                      checkpoint: MB}}} (_sp: with Megatron
//                                      sequence parallelism)
//     other_memory_pp_off[_sp],        {seq: {model_states: {tp: MB},
//     other_memory_pp_on_first[_sp],    activation: {tp: MB per sequence}}}
//     other_memory_pp_on_last[_sp]
//     model_config                     the model's shape (not checked)
//     <pp>_<tp>_<dp>[_sp]              raw measurements (not read)
//
// The computation profile scales each layer kind's IR-derived compute time
// by the factor that fits the measured times (least squares over the batch
// sizes of the model's sequence length); the memory profile replaces the
// blocks' activations per sequence by TP degree and scales those of the
// other layers. Parameter sizes and model states stay the IR's (exact).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_GALVATRONPROFILES_H
#define GALVATRON_ANALYSIS_GALVATRONPROFILES_H

#include "galvatron/Analysis/CostModel.h"

#include "llvm/Support/JSON.h"

namespace mlir::galvatron {

/// Whether `root` is one of Galvatron's model profiles (by its keys).
bool isGalvatronModelProfile(const llvm::json::Object &root);

/// Applies the model profile `root` (read from `source`) to `model`, priced
/// on `cluster` in `precision`. Errors name the source and the key.
llvm::Error applyGalvatronModelProfile(ModelProfile &model,
                                       const llvm::json::Object &root,
                                       llvm::StringRef source,
                                       const ClusterSpec &cluster,
                                       Precision precision);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_GALVATRONPROFILES_H
