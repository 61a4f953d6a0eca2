//===- Passes.h - Galvatron dialect passes ----------------------*- C++ -*-===//

#ifndef GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H
#define GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "mlir/Pass/Pass.h"

namespace mlir::galvatron {

#define GEN_PASS_DECL
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_TRANSFORMS_PASSES_H
