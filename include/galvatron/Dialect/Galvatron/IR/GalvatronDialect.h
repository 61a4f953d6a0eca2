//===- GalvatronDialect.h - Galvatron dialect -------------------*- C++ -*-===//
//
// Everything a client of the galvatron dialect needs: the dialect, its enums,
// attributes, interfaces and ops.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_H
#define GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "mlir/Interfaces/ControlFlowInterfaces.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include <cmath>

#include "galvatron/Dialect/Galvatron/IR/GalvatronOpsDialect.h.inc"

#include "galvatron/Dialect/Galvatron/IR/GalvatronEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "galvatron/Dialect/Galvatron/IR/GalvatronAttrs.h.inc"

#include "galvatron/Dialect/Galvatron/IR/ShardingRule.h"
#include "galvatron/Dialect/Galvatron/IR/VJPBuilder.h"

#include "galvatron/Dialect/Galvatron/IR/GalvatronInterfaces.h.inc"

#define GET_OP_CLASSES
#include "galvatron/Dialect/Galvatron/IR/GalvatronOps.h.inc"

namespace mlir::galvatron {

/// Checks that every layer of every function in `module` carries a strategy
/// consistent with `plan`: pp · tp · dp equals the device count, stages lie
/// in [0, pp), never decrease along the model and leave no stage empty, and
/// each micro-batch divides among the layer's data-parallel replicas.
/// Diagnostics are emitted on the offending layer.
LogicalResult verifyPlan(ModuleOp module, PlanAttr plan);

/// The plan attached to `module`, or null.
PlanAttr getPlan(ModuleOp module);

} // namespace mlir::galvatron

#endif // GALVATRON_DIALECT_GALVATRON_IR_GALVATRONDIALECT_H
