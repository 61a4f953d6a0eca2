//===- GalvatronStrategy.h - Galvatron's strategy JSON ----------*- C++ -*-===//
//
// Reads and writes the strategy files Galvatron's search produces and its
// runtime consumes:
//
//   pp_deg                pipeline degree
//   tp_sizes_enc          per transformer block: TP degree
//   tp_consecutive_flags  per block: 1 when TP ranks are adjacent devices
//   dp_types_enc          per block: 1 = ZeRO-3 (sdp), 0 = default_dp_type
//   use_sp                per block: sequence parallelism
//   checkpoint            per block: activation checkpointing
//   global_bsz, chunks    global batch and micro-batch count
//   pp_division           transformer blocks per stage
//   pipeline_type         gpipe or pipedream_flush (1F1B)
//   default_dp_type       ddp, zero1, zero2 (zero3 is allowed as well)
//   vtp, vsp, embed_sdp   TP degree, sequence parallelism and ZeRO-3 of the
//                         layers outside the blocks (embeddings, head)
//
// Per-block lists are comma-separated strings (as Galvatron writes them) or
// JSON arrays. Layers outside the blocks sit with the block before them
// (the embedding on the first stage, the head on the last).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_GALVATRONSTRATEGY_H
#define GALVATRON_ANALYSIS_GALVATRONSTRATEGY_H

#include "galvatron/Analysis/CostModel.h"

#include "llvm/Support/JSON.h"

namespace mlir::galvatron {

/// Parses a strategy file into a plan for `model` on `devices` devices in
/// nodes of `devicesPerNode`, trained in `precision`. Errors name the
/// source, the key and the problem; the plan is checked against the model.
llvm::Expected<ParallelPlan>
parseGalvatronStrategy(llvm::StringRef text, llvm::StringRef source,
                       const ModelProfile &model, int64_t devices,
                       int64_t devicesPerNode, Precision precision);

/// Writes `plan` in Galvatron's format, or fails naming what the format
/// cannot express (layers outside the blocks with different strategies,
/// blocks mixing data-parallel types other than ZeRO-3, ...).
llvm::Expected<llvm::json::Object>
writeGalvatronStrategy(const ParallelPlan &plan, const ModelProfile &model);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_GALVATRONSTRATEGY_H
