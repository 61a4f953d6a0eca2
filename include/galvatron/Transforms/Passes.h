//===- Passes.h - Galvatron cross-cutting passes ----------------*- C++ -*-===//
//
// Passes that work on whole models: the plan search, manual plans, Galvatron
// strategy JSON export, the plan report and the tensor-parallel printer.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TRANSFORMS_PASSES_H
#define GALVATRON_TRANSFORMS_PASSES_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir::galvatron {

#define GEN_PASS_DECL
#include "galvatron/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "galvatron/Transforms/Passes.h.inc"

} // namespace mlir::galvatron

#endif // GALVATRON_TRANSFORMS_PASSES_H
