//===- ProgramEmitter.cpp - Write program files from IR -------------------===//

#include "galvatron/Target/Program/ProgramEmitter.h"

#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/ProgramValidator.h"

#include "mlir/Pass/PassManager.h"

using namespace mlir;
namespace rt = ::galvatron::runtime;

FailureOr<rt::Program>
mlir::galvatron::buildProgram(ModuleOp module,
                              const RuntimePipelineOptions &options) {
  if (module.getOps<grt::ExecutableOp>().empty()) {
    PassManager pm(module.getContext());
    buildRuntimePipeline(pm, options);
    if (failed(pm.run(module)))
      return failure();
  }
  auto executables = module.getOps<grt::ExecutableOp>();
  if (!llvm::hasSingleElement(executables))
    return module.emitError() << "expected one grt.executable";
  FailureOr<rt::Program> program = grt::exportExecutable(*executables.begin());
  if (failed(program))
    return failure();
  rt::Status status = rt::validateProgram(*program);
  if (!status.isOk())
    return (*executables.begin()).emitOpError() << status.message();
  return program;
}

LogicalResult
mlir::galvatron::emitProgramFile(ModuleOp module, StringRef path,
                                 const RuntimePipelineOptions &options) {
  FailureOr<rt::Program> program = buildProgram(module, options);
  if (failed(program))
    return failure();
  rt::Status status = rt::writeProgramFile(*program, path.str());
  if (!status.isOk())
    return module.emitError() << status.message();
  return success();
}
