//===- Pipelines.cpp - Named Galvatron pass pipelines ---------------------===//

#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;

void mlir::galvatron::buildONNXCleanupPipeline(OpPassManager &pm) {
  OpPassManager &function = pm.nest<func::FuncOp>();
  function.addPass(createCanonicalizerPass());
  function.addPass(createRaiseFusedOps());
  // Fold what raising left behind (transposes of transposes, dead ops)
  // before layers are cut, and clean up inside layers afterwards.
  function.addPass(createCanonicalizerPass());
  function.addPass(createDiscoverLayers());
  function.addPass(createCanonicalizerPass());
  function.addPass(createCSEPass());
}

void mlir::galvatron::registerGalvatronPipelines() {
  PassPipelineRegistration<>(
      "galvatron-onnx-cleanup",
      "Clean up an imported ONNX model: canonicalize, raise fused ops, "
      "discover layers",
      buildONNXCleanupPipeline);
}
