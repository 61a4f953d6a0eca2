//===- RuntimeDialect.h - The grt runtime-program dialect -------*- C++ -*-===//

#ifndef GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEDIALECT_H
#define GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEDIALECT_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Runtime/Program.h"

#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/SymbolTable.h"
#include "llvm/ADT/StringMap.h"

#include "galvatron/Dialect/Runtime/IR/RuntimeOpsDialect.h.inc"

#include "galvatron/Dialect/Runtime/IR/RuntimeEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeAttrs.h.inc"

#define GET_OP_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.h.inc"

namespace mlir::galvatron::grt {

/// The runtime's element type for `type` (f32, f16, bf16, i64, i32, i1).
std::optional<::galvatron::runtime::ElementType> convertElementType(Type type);

/// The runtime's tensor type for a statically shaped memref or tensor.
FailureOr<::galvatron::runtime::TensorType> convertType(ShapedType type);

/// A kernel op's config as the runtime's typed attributes: integers and
/// booleans, floats, and array<i64> lists, with their rank terms (groups
/// numbered by `groups`, the executable's family symbols in order).
FailureOr<std::vector<::galvatron::runtime::Attribute>>
convertKernelConfig(KernelOp op, const llvm::StringMap<uint32_t> &groups);

/// Converts `executable` into the runtime's program model, one to one: the
/// program file is this model serialized. Stages the executable does not
/// hold (one stage's lowering holds one) are left empty. Conversion
/// problems are emitted on the offending op; the model is not validated
/// here.
FailureOr<::galvatron::runtime::Program> exportExecutable(ExecutableOp executable);

/// Whether `executable` holds the program of every stage.
bool holdsEveryStage(ExecutableOp executable);

} // namespace mlir::galvatron::grt

#endif // GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEDIALECT_H
