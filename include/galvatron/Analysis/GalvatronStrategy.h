//===- GalvatronStrategy.h - Galvatron's strategy JSON ----------*- C++ -*-===//
//
// Reads and writes the strategy files Galvatron's search produces and its
// runtime consumes:
//
//   pp_deg                pipeline degree
//   tp_sizes_enc          per transformer block: TP degree
//   tp_consecutive_flags  per block: 1 when TP ranks are adjacent devices
//   dp_types_enc          per block: 1 = ZeRO-3 (sdp), 0 = default_dp_type
//   use_sp                per block: the tp ranks run DeepSpeed-Ulysses
//                         sequence parallelism instead of TP
//   checkpoint            per block: activation checkpointing
//   global_bsz, chunks    global batch and micro-batch count
//   pp_division           transformer blocks per stage
//   pipeline_type         gpipe or pipedream_flush (1F1B)
//   default_dp_type       ddp, zero1, zero2 (zero3 is allowed as well)
//   vtp, vsp, embed_sdp   TP (or with vsp, Ulysses) degree and ZeRO-3 of
//                         the layers outside the blocks (embeddings, head)
//
// Megatron sequence parallelism is not in the file: Galvatron's runtime
// turns it on for every tensor-parallel layer with --sequence-parallel.
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
/// nodes of `devicesPerNode`, trained in `precision`, with Megatron
/// sequence parallelism in every tensor-parallel layer when
/// `megatronSequenceParallel` (Galvatron's --sequence-parallel). Errors name
/// the source, the key and the problem; the plan is checked against the
/// model.
llvm::Expected<ParallelPlan>
parseGalvatronStrategy(llvm::StringRef text, llvm::StringRef source,
                       const ModelProfile &model, int64_t devices,
                       int64_t devicesPerNode, Precision precision,
                       bool megatronSequenceParallel = false);

/// Writes `plan` in Galvatron's format, or fails naming what the format or
/// Galvatron's runtime cannot express (layers outside the blocks with
/// different strategies, blocks mixing data-parallel types other than
/// ZeRO-3, ZeRO-1, Megatron sequence parallelism in some layers, ...).
llvm::Expected<llvm::json::Object>
writeGalvatronStrategy(const ParallelPlan &plan, const ModelProfile &model);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_GALVATRONSTRATEGY_H
