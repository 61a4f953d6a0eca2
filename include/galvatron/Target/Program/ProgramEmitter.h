//===- ProgramEmitter.h - Write program files from IR -----------*- C++ -*-===//

#ifndef GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H
#define GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H

#include "galvatron/Conversion/Passes.h"
#include "galvatron/Runtime/Program.h"

#include "mlir/IR/BuiltinOps.h"

namespace mlir::galvatron {

/// The program of `module`: its grt.executable (holding every stage), or,
/// for a module still in the galvatron dialect, the result of the runtime
/// pipeline (which rewrites `module`). Validated with the runtime's own
/// checks; problems are emitted as diagnostics.
FailureOr<::galvatron::runtime::Program>
buildProgram(ModuleOp module, const RuntimePipelineOptions &options = {});

/// Moves the stage programs and group families of `parts` (executables of
/// one job, each holding some of its stages) into the first: families are
/// merged by name (their name is their mesh axes), the training step's
/// model FLOPs are summed and its vocabulary is the loss's. Fails, at the
/// first part, when the parts disagree on the job or repeat a stage.
LogicalResult linkExecutables(ArrayRef<grt::ExecutableOp> parts);

/// Builds the program of `module` and writes it to `path`.
LogicalResult emitProgramFile(ModuleOp module, StringRef path,
                              const RuntimePipelineOptions &options = {});

} // namespace mlir::galvatron

#endif // GALVATRON_TARGET_PROGRAM_PROGRAMEMITTER_H
