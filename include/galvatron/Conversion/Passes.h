//===- Passes.h - Conversions out of the galvatron dialect ------*- C++ -*-===//

#ifndef GALVATRON_CONVERSION_PASSES_H
#define GALVATRON_CONVERSION_PASSES_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"

#include "mlir/Pass/Pass.h"

namespace mlir::galvatron {

#define GEN_PASS_DECL
#include "galvatron/Conversion/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "galvatron/Conversion/Passes.h.inc"

/// Options of the pipeline from galvatron IR to a runtime program.
struct RuntimePipelineOptions {
  /// Passed to --galvatron-lower-to-runtime.
  std::string modelDirectory;
  /// The function or schedule to lower (empty: the schedule, else @main).
  std::string entry;
  /// The job's size (0: from the plan).
  int64_t worldSize = 0;
  /// Asynchronous communication and its gradient buckets (MiB).
  bool overlap = true;
  double bucketMb = 25.0;
};

/// Canonicalizes, removes common subexpressions, lowers to the runtime.
void buildRuntimePipeline(OpPassManager &pm,
                          const RuntimePipelineOptions &options = {});

/// Registers `galvatron-runtime-pipeline`.
void registerRuntimePipeline();

} // namespace mlir::galvatron

#endif // GALVATRON_CONVERSION_PASSES_H
