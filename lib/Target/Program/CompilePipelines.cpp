//===- CompilePipelines.cpp - What galvatron-compile runs -----------------===//

#include "galvatron/Target/Program/CompilePipelines.h"

#include "galvatron/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::galvatron;

/// Adds `pass` configured by `options`, the pass's own option syntax.
static LogicalResult addConfigured(OpPassManager &pm,
                                   std::unique_ptr<Pass> pass,
                                   StringRef options,
                                   PipelineErrorHandler errorHandler) {
  // A value the option's parser refuses is reported by LLVM's command-line
  // library on stderr, before this; the message is then empty.
  if (failed(pass->initializeOptions(options, [&](const Twine &message) {
        std::string cause = message.str();
        return errorHandler("invalid options '" + options + "' of --" +
                            pass->getArgument() +
                            (cause.empty() ? "" : ": " + cause));
      })))
    return failure();
  pm.addPass(std::move(pass));
  return success();
}

LogicalResult
mlir::galvatron::buildPlanPipeline(OpPassManager &pm,
                                   const PlanPipelineOptions &options,
                                   PipelineErrorHandler errorHandler) {
  using Source = PlanPipelineOptions::Source;
  switch (options.source) {
  case Source::none:
    return success();
  case Source::manual:
    return addConfigured(pm, createApplyStrategy(), options.value,
                         errorHandler);
  case Source::strategyFile: {
    // Through the pass's parser, which records that only `json` was given
    // (the pass refuses other plan options beside a file); quoted, so that
    // any file name parses.
    char quote = StringRef(options.value).contains('"') ? '\'' : '"';
    if (StringRef(options.value).contains(quote))
      return errorHandler("the strategy file name '" + options.value +
                          "' holds both kinds of quotes");
    return addConfigured(pm, createApplyStrategy(),
                         "json=" + std::string(1, quote) + options.value +
                             quote,
                         errorHandler);
  }
  case Source::search:
    return addConfigured(pm, createPlanSearch(), options.value, errorHandler);
  }
  llvm_unreachable("unknown plan source");
}

LogicalResult
mlir::galvatron::buildStagePipeline(OpPassManager &pm,
                                    const StagePipelineOptions &options,
                                    PipelineErrorHandler errorHandler) {
  if (options.stage) {
    PipelineSplitOptions split;
    split.stage = *options.stage;
    pm.addPass(createPipelineSplit(split));
  }
  if (options.trainStep &&
      failed(addConfigured(pm, createBuildTrainStep(), *options.trainStep,
                           errorHandler)))
    return failure();
  buildRuntimePipeline(pm, options.runtime);
  return success();
}
