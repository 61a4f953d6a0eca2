//===- RuntimePipeline.cpp - From galvatron IR to a runtime program -------===//

#include "galvatron/Conversion/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::galvatron::buildRuntimePipeline(
    OpPassManager &pm, const RuntimePipelineOptions &options) {
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
  LowerToRuntimeOptions lowering;
  lowering.modelDirectory = options.modelDirectory;
  lowering.entry = options.entry;
  lowering.worldSize = options.worldSize;
  lowering.overlap = options.overlap;
  lowering.bucketMb = options.bucketMb;
  pm.addPass(createLowerToRuntime(lowering));
}

void mlir::galvatron::registerRuntimePipeline() {
  PassPipelineRegistration<>(
      "galvatron-runtime-pipeline",
      "Canonicalize, CSE and lower a galvatron model to a runtime program",
      [](OpPassManager &pm) { buildRuntimePipeline(pm); });
}
