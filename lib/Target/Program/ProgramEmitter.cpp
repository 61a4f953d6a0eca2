//===- ProgramEmitter.cpp - Write program files from IR -------------------===//

#include "galvatron/Target/Program/ProgramEmitter.h"

#include "galvatron/Runtime/InputFiles.h"
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
  grt::ExecutableOp executable = *executables.begin();
  if (!grt::holdsEveryStage(executable))
    return executable.emitOpError()
           << "holds " << llvm::range_size(executable.getBody().getOps<grt::ProgramOp>())
           << " of the programs of its " << executable.getStages()
           << " stages; link the stages' executables first";
  FailureOr<rt::Program> program = grt::exportExecutable(executable);
  if (failed(program))
    return failure();
  rt::Status status = rt::validateProgram(*program);
  if (!status.isOk())
    return executable.emitOpError() << status.message();
  // External data resolves now, as the runtime will resolve it, when the
  // driver read the model from its folder (an executable given as IR may
  // name a folder of another machine).
  if (!options.modelDirectory.empty())
    for (const rt::StageProgram &stage : program->stages)
      for (const rt::Parameter &parameter : stage.parameters) {
        if (!parameter.external)
          continue;
        const rt::TensorType &type = stage.buffers[parameter.buffer].type;
        rt::TensorType source{type.elementType, parameter.isSlice()
                                                    ? parameter.fullShape
                                                    : type.shape};
        rt::Expected<std::string> path = rt::resolveParameterData(
            *parameter.external, source, options.modelDirectory);
        if (!path)
          return executable.emitError() << "parameter '" << parameter.name
                                        << "': " << path.status().message();
      }
  return program;
}

LogicalResult
mlir::galvatron::linkExecutables(ArrayRef<grt::ExecutableOp> parts) {
  grt::ExecutableOp linked = parts.front();
  MLIRContext *context = linked.getContext();
  Block &body = linked.getBody().front();
  SymbolTable symbols(linked);
  TrainingAttr training = linked.getTrainingAttr();
  for (grt::ExecutableOp part : parts.drop_front()) {
    if (part.getWorldSize() != linked.getWorldSize() ||
        part.getAlignment() != linked.getAlignment() ||
        part.getStages() != linked.getStages())
      return linked.emitOpError()
             << "cannot link stages that disagree on the world size, "
                "alignment or stage count";
    for (Operation &op :
         llvm::make_early_inc_range(part.getBody().front())) {
      auto group = dyn_cast<grt::GroupOp>(op);
      if (group && symbols.lookup(group.getSymName()))
        continue;
      // Families first, programs after them, stages in order.
      Operation *before = nullptr;
      if (group) {
        before = &*llvm::find_if(body, llvm::IsaPred<grt::ProgramOp>);
      } else if (auto program = dyn_cast<grt::ProgramOp>(op)) {
        for (grt::ProgramOp other : body.getOps<grt::ProgramOp>()) {
          if (other.getStage() == program.getStage())
            return linked.emitOpError()
                   << "cannot link stage " << program.getStage() << " twice";
          if (!before && other.getStage() > program.getStage())
            before = other;
        }
      }
      if (before)
        op.moveBefore(before);
      else
        op.moveBefore(&body, body.end());
      if (group)
        symbols.insert(group);
    }
    TrainingAttr other = part.getTrainingAttr();
    if (!training || !other)
      continue;
    training = TrainingAttr::get(
        context, training.getLoss(),
        training.getModelFlopsValue() + other.getModelFlopsValue(),
        std::max(training.getVocabSize(), other.getVocabSize()));
  }
  if (training)
    linked.setTrainingAttr(training);
  return success();
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
