//===- ProgramEmitter.cpp - Write program files from IR -------------------===//

#include "galvatron/Target/Program/ProgramEmitter.h"

#include "galvatron/Runtime/InputFiles.h"
#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/ProgramValidator.h"

#include "mlir/Pass/PassManager.h"

#include <map>

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
  // External data resolves now, as the runtime will resolve it, when the
  // driver read the model from its folder (an executable given as IR may
  // name a folder of another machine).
  if (!options.modelDirectory.empty())
    for (const rt::RankProgram &rank : program->ranks)
      for (const rt::Parameter &parameter : rank.parameters) {
        if (!parameter.external)
          continue;
        const rt::TensorType &type = rank.buffers[parameter.buffer].type;
        rt::TensorType source{type.elementType, parameter.isSlice()
                                                    ? parameter.fullShape
                                                    : type.shape};
        rt::Expected<std::string> path = rt::resolveParameterData(
            *parameter.external, source, options.modelDirectory);
        if (!path)
          return (*executables.begin()).emitError()
                 << "parameter '" << parameter.name
                 << "': " << path.status().message();
      }
  return program;
}

FailureOr<rt::Program>
mlir::galvatron::linkRankPrograms(Location loc, ArrayRef<rt::Program> ranks) {
  if (ranks.empty())
    return emitError(loc) << "no rank programs to link";
  rt::Program linked;
  linked.worldSize = ranks.front().worldSize;
  linked.alignment = ranks.front().alignment;
  linked.model = ranks.front().model;
  linked.modelDirectory = ranks.front().modelDirectory;
  // A training step's model FLOPs are the work of every rank together.
  linked.training = ranks.front().training;
  if (linked.training) {
    linked.training->modelFlops = 0;
    for (const rt::Program &part : ranks)
      if (part.training)
        linked.training->modelFlops += part.training->modelFlops;
  }
  std::map<std::vector<uint32_t>, uint32_t> groupIndex;
  for (const rt::Program &part : ranks) {
    if (part.worldSize != linked.worldSize ||
        part.alignment != linked.alignment)
      return emitError(loc) << "rank programs disagree on the world size or "
                               "alignment";
    std::vector<uint32_t> renumbered;
    for (const std::vector<uint32_t> &group : part.groups) {
      auto [it, inserted] = groupIndex.try_emplace(group, linked.groups.size());
      if (inserted)
        linked.groups.push_back(group);
      renumbered.push_back(it->second);
    }
    for (rt::RankProgram rank : part.ranks) {
      if (linked.findRank(rank.rank))
        return emitError(loc) << "rank " << rank.rank << " is linked twice";
      for (rt::Instruction &instruction : rank.instructions)
        if (instruction.kind != rt::InstructionKind::kernel &&
            instruction.kind != rt::InstructionKind::send &&
            instruction.kind != rt::InstructionKind::recv)
          instruction.group = renumbered[instruction.group];
      linked.ranks.push_back(std::move(rank));
    }
  }
  llvm::sort(linked.ranks, [](const rt::RankProgram &a,
                              const rt::RankProgram &b) {
    return a.rank < b.rank;
  });
  rt::Status status = rt::validateProgram(linked);
  if (!status.isOk())
    return emitError(loc) << status.message();
  return linked;
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
