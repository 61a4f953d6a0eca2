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

#define GET_OP_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.h.inc"

namespace mlir::galvatron::grt {

/// The runtime's element type for `type` (f32, f16, bf16, i64, i32, i1).
std::optional<::galvatron::runtime::ElementType> convertElementType(Type type);

/// The runtime's tensor type for a statically shaped memref or tensor.
FailureOr<::galvatron::runtime::TensorType> convertType(ShapedType type);

/// A kernel op's config as the runtime's typed attributes: integers and
/// booleans, floats, and array<i64> lists.
FailureOr<std::vector<::galvatron::runtime::Attribute>>
convertKernelConfig(KernelOp op);

/// The program-wide fields of `executable` and its group table (indices
/// recorded by name in `groupIndices`); no rank programs.
::galvatron::runtime::Program
exportProgramHeader(ExecutableOp executable,
                    llvm::StringMap<uint32_t> &groupIndices);

/// One rank's program; group symbols resolve through `groupIndices`.
FailureOr<::galvatron::runtime::RankProgram>
exportRankProgram(ProgramOp program,
                  const llvm::StringMap<uint32_t> &groupIndices);

/// Converts `executable` into the runtime's program model, one to one: the
/// program file is this model serialized. Conversion problems are emitted
/// on the offending op; the model is not validated here.
FailureOr<::galvatron::runtime::Program> exportExecutable(ExecutableOp executable);

} // namespace mlir::galvatron::grt

#endif // GALVATRON_DIALECT_RUNTIME_IR_RUNTIMEDIALECT_H
