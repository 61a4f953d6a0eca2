//===- InitAll.h - Register Galvatron dialects and passes -------*- C++ -*-===//

#ifndef GALVATRON_INITALL_H
#define GALVATRON_INITALL_H

#include "mlir/IR/DialectRegistry.h"

namespace mlir::galvatron {

/// Adds the galvatron dialect and the upstream dialects it works with.
void registerAllDialects(DialectRegistry &registry);

/// Registers every Galvatron pass and pass pipeline with the global registry.
void registerAllPasses();

} // namespace mlir::galvatron

#endif // GALVATRON_INITALL_H
