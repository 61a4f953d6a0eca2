//===- CompilePipelines.h - What galvatron-compile runs ---------*- C++ -*-===//
//
// The compiler's pipelines, built from typed options (as IREE builds its
// phases): the plan, the partitioning of the forward, and per pipeline
// stage the stage's split, its training step and its runtime lowering.
// Option strings a user gives for one pass (a manual plan, the search's
// cluster, the training step's knobs) go to that pass's own parser; no
// pipeline text is assembled.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TARGET_PROGRAM_COMPILEPIPELINES_H
#define GALVATRON_TARGET_PROGRAM_COMPILEPIPELINES_H

#include "galvatron/Conversion/Passes.h"

#include "mlir/Pass/PassManager.h"

#include <optional>

namespace mlir::galvatron {

/// Reports a problem with the options of a pipeline.
using PipelineErrorHandler = function_ref<LogicalResult(const Twine &)>;

/// Where the plan comes from.
struct PlanPipelineOptions {
  enum class Source { none, manual, strategyFile, search };
  Source source = Source::none;
  /// --galvatron-apply-strategy's options (manual), the Galvatron strategy
  /// file (strategyFile) or --galvatron-search's options (search).
  std::string value;
};

/// Writes the plan onto the module (nothing for `Source::none`).
LogicalResult buildPlanPipeline(OpPassManager &pm,
                                const PlanPipelineOptions &options,
                                PipelineErrorHandler errorHandler);

/// One pipeline stage's compilation.
struct StagePipelineOptions {
  /// The stage to split out of a plan of several stages.
  std::optional<int64_t> stage;
  /// --galvatron-build-train-step's options when compiling a training step.
  std::optional<std::string> trainStep;
  RuntimePipelineOptions runtime;
};

/// The stage's forward (--galvatron-pipeline), its training step
/// (--galvatron-build-train-step) and the runtime pipeline.
LogicalResult buildStagePipeline(OpPassManager &pm,
                                 const StagePipelineOptions &options,
                                 PipelineErrorHandler errorHandler);

} // namespace mlir::galvatron

#endif // GALVATRON_TARGET_PROGRAM_COMPILEPIPELINES_H
