//===- ProgramEmitter.h - Write program files from IR -----------*- C++ -*-===//

#ifndef GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H
#define GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H

#include "galvatron/Conversion/Passes.h"
#include "galvatron/Runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::galvatron {

/// The program of `module`: its grt.executable, or, for a module still in
/// the galvatron dialect, the result of the runtime pipeline (which rewrites
/// `module`). Validated with the runtime's own checks; problems are emitted
/// as diagnostics.
FailureOr<::galvatron::runtime::Program>
buildProgram(ModuleOp module, const RuntimePipelineOptions &options = {});

/// One program holding every rank of `ranks` (each the program of one or
/// more ranks of the same job): device groups are merged and renumbered.
/// Validated as a whole, so every send has its receive and the members of
/// a group issue the same collectives; problems are emitted at `loc`.
FailureOr<::galvatron::runtime::Program>
linkRankPrograms(Location loc, ArrayRef<::galvatron::runtime::Program> ranks);

/// Builds the program of `module` and writes it to `path`.
LogicalResult emitProgramFile(ModuleOp module, StringRef path,
                              const RuntimePipelineOptions &options = {});

} // namespace mlir::galvatron

#endif // GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H
