//===- Passes.h - Galvatron dialect passes ----------------------*- C++ -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H
#define GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace mlir::galvatron {

#define GEN_PASS_DECL
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

/// The clean-up after ONNX import: canonicalize (folds identity reshapes,
/// transposes, casts), raise fused ops, discover layers, then canonicalize
/// and CSE within the layers.
void buildONNXCleanupPipeline(OpPassManager &pm);

/// Registers `galvatron-onnx-cleanup` (buildONNXCleanupPipeline).
void registerGalvatronPipelines();

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H
