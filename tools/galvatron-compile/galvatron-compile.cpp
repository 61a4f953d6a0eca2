//===- galvatron-compile.cpp - The Galvatron compiler driver --------------===//
//
//   galvatron-compile model.onnx [--batch=N] [--seq-len=N] -o m.gxp
//   galvatron-compile --model=NAME [--batch=N] [--seq-len=N] -o m.gxp
//   galvatron-compile model.mlir -o m.gxp
//   galvatron-compile --model=NAME --train="lr=3e-4 ..." -o train.gxp
//
// Runs the whole pipeline on an ONNX model (import and clean-up), a preset
// or galvatron IR, and writes the program file (or, with --emit=mlir, the
// lowered IR). With --train the program is one training step
// (--galvatron-build-train-step with the given options), its micro-batch
// schedule a loop; IR that already holds a galvatron.schedule is lowered
// the same way.
//
// A plan (--plan, --strategy or --search, or one already in the IR) over
// several devices gives one program per pipeline stage, shared by all the
// stage's ranks, all in one file: the forward is partitioned once, then
// each stage gets its part of the model (--galvatron-pipeline), its
// training step, and is lowered once (CompilePipelines.h); what differs
// between a stage's ranks is resolved by each rank at load.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/InitAll.h"
#include "galvatron/Models/ModelPresets.h"
#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/ProgramValidator.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Support/Debug.h"
#include "galvatron/Support/ToolSupport.h"
#include "galvatron/Target/ONNX/ImportONNX.h"
#include "galvatron/Target/Program/CompilePipelines.h"
#include "galvatron/Target/Program/ProgramEmitter.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Support/Timing.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
namespace cl = llvm::cl;
namespace rt = ::galvatron::runtime;

static cl::OptionCategory category("galvatron-compile options");

static cl::opt<std::string> inputFilename(
    cl::Positional, cl::desc("<model.onnx | galvatron IR (.mlir)>"),
    cl::init(""),
    cl::cat(category));
static cl::opt<std::string> modelName(
    "model", cl::desc("Compile a preset model (see galvatron-translate "
                      "--list-models)"),
    cl::value_desc("name"), cl::cat(category));
static cl::opt<int64_t>
    batch("batch",
          cl::desc("Batch size of a preset or an ONNX model's dynamic batch "
                   "(default: the plan's micro-batch, global batch / "
                   "micro-batches; 1 without a plan)"),
          cl::init(1), cl::cat(category));
static cl::opt<int64_t> seqLen(
    "seq-len",
    cl::desc("Sequence length of a preset (default: the preset's) or an ONNX "
             "model's dynamic sequence"),
    cl::init(0), cl::cat(category));
static cl::opt<std::string>
    modelDirectory("model-dir",
                   cl::desc("Directory that external parameter data is "
                            "relative to (default: the input's directory)"),
                   cl::init(""), cl::cat(category));
enum class EmitKind { program, mlir };
static cl::opt<EmitKind> emit(
    "emit", cl::desc("What to write"), cl::init(EmitKind::program),
    cl::values(clEnumValN(EmitKind::program, "program", "the program file"),
               clEnumValN(EmitKind::mlir, "mlir",
                          "the lowered grt IR, as text")),
    cl::cat(category));
static cl::opt<std::string> outputFilename("o", cl::desc("Output file"),
                                           cl::value_desc("filename"),
                                           cl::Required, cl::cat(category));
static cl::opt<bool> quiet("quiet", cl::desc("Print errors only"),
                           cl::cat(category));
static cl::opt<std::string> planOptions(
    "plan",
    cl::desc("Apply a hand-written plan: --galvatron-apply-strategy's "
             "options, e.g. \"devices=4 pp=4 precision=fp32\""),
    cl::value_desc("options"), cl::cat(category));
static cl::opt<std::string> strategyFile(
    "strategy", cl::desc("Apply a Galvatron strategy JSON file"),
    cl::value_desc("file.json"), cl::cat(category));
static cl::opt<std::string> searchOptions(
    "search",
    cl::desc("Search the plan: --galvatron-search's options, e.g. "
             "\"cluster=a100-80gb devices=4\""),
    cl::value_desc("options"), cl::cat(category));
static cl::opt<int64_t> layers(
    "layers",
    cl::desc("Transformer blocks of a preset (default: the preset's; T5: "
             "per stack)"),
    cl::init(0), cl::cat(category));
static cl::opt<double> dropout(
    "dropout",
    cl::desc("Dropout probability of every dropout site of a preset "
             "while training (default: the preset's)"),
    cl::value_desc("P"), cl::cat(category));
static cl::opt<std::string> train(
    "train",
    cl::desc("Compile a training step; the value holds the options of "
             "--galvatron-build-train-step (e.g. \"lr=3e-4 warmup-steps=10\")"),
    cl::value_desc("options"), cl::ValueOptional, cl::cat(category));
static cl::opt<bool> overlap(
    "overlap",
    cl::desc("Asynchronous communication (format 2.1): collectives and "
             "messages started early and waited for late, the data-parallel "
             "gradient sync in buckets of the last backward (default: on; "
             "--overlap=false emits synchronous communication)"),
    cl::init(true), cl::cat(category));
static cl::opt<double> bucketMb(
    "bucket-mb",
    cl::desc("Size of a data-parallel gradient bucket in MiB (default 25, "
             "PyTorch DDP's)"),
    cl::init(25.0), cl::cat(category));

static int error(const Twine &message) {
  return mlir::galvatron::printToolError("galvatron-compile", message);
}

/// The model to compile: a preset or a parsed file; a preset or an ONNX
/// model is built for `batchOverride` when given.
static FailureOr<OwningOpRef<ModuleOp>>
loadModel(MLIRContext &context, llvm::SourceMgr &sourceMgr,
          std::string &description,
          std::optional<int64_t> batchOverride = std::nullopt) {
  if (!modelName.empty() == !inputFilename.empty()) {
    error("give either --model=NAME or an input file");
    return failure();
  }
  if (!modelName.empty()) {
    const mlir::galvatron::ModelConfig *config =
        mlir::galvatron::findModelPreset(modelName);
    if (!config) {
      error("unknown model '" + modelName +
            "'; galvatron-translate --list-models lists the presets");
      return failure();
    }
    mlir::galvatron::ModelConfig resized = *config;
    if (layers.getNumOccurrences()) {
      if (layers < 1) {
        error("--layers must be positive, got " + Twine(layers.getValue()));
        return failure();
      }
      resized.layers = layers;
    }
    if (dropout.getNumOccurrences())
      if (llvm::Error problem = mlir::galvatron::setDropout(resized, dropout)) {
        error(llvm::toString(std::move(problem)));
        return failure();
      }
    auto module = mlir::galvatron::buildModel(
        &context, resized,
        mlir::galvatron::ModelShape{batchOverride.value_or(batch), seqLen});
    if (!module) {
      error(llvm::toString(module.takeError()));
      return failure();
    }
    description = modelName;
    return std::move(*module);
  }
  if (llvm::StringRef(inputFilename).ends_with(".onnx")) {
    mlir::galvatron::ONNXImportOptions options;
    if (batchOverride)
      options.batch = batchOverride;
    else if (batch.getNumOccurrences())
      options.batch = batch;
    if (seqLen.getNumOccurrences())
      options.seqLen = seqLen;
    auto module =
        mlir::galvatron::importONNXFile(&context, inputFilename, options);
    if (!module) {
      error(llvm::toString(module.takeError()));
      return failure();
    }
    PassManager pm(&context);
    mlir::galvatron::buildONNXCleanupPipeline(pm);
    if (failed(pm.run(**module)))
      return failure();
    description = inputFilename;
    return std::move(*module);
  }
  std::string message;
  auto input = openInputFile(inputFilename, &message);
  if (!input) {
    error(message);
    return failure();
  }
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module)
    return failure();
  description = inputFilename;
  return std::move(module);
}

/// Applies the pass manager's command-line options (--mlir-timing,
/// --mlir-print-ir-after-all, ...).
static LogicalResult configurePassManager(PassManager &pm) {
  applyDefaultTimingPassManagerCLOptions(pm);
  return applyPassManagerCLOptions(pm);
}

/// Reports a pipeline's option errors.
static LogicalResult reportError(const Twine &message) {
  error(message);
  return failure();
}

/// Writes the plan the options ask for onto the module.
static LogicalResult applyPlan(ModuleOp module) {
  int given = !planOptions.empty() + !strategyFile.empty() +
              !searchOptions.empty();
  if (given > 1) {
    error("give at most one of --plan, --strategy and --search");
    return failure();
  }
  using Source = mlir::galvatron::PlanPipelineOptions::Source;
  mlir::galvatron::PlanPipelineOptions options;
  if (!planOptions.empty())
    options = {Source::manual, planOptions};
  else if (!strategyFile.empty())
    options = {Source::strategyFile, strategyFile};
  else if (!searchOptions.empty())
    options = {Source::search, searchOptions};
  PassManager pm(module.getContext(), ModuleOp::getOperationName());
  if (failed(configurePassManager(pm)) ||
      failed(mlir::galvatron::buildPlanPipeline(pm, options, reportError)))
    return failure();
  return pm.run(module);
}

/// Makes the model's batch the plan's micro-batch (global batch /
/// micro-batches), which its training step takes per call: without
/// --batch, a preset or an ONNX model is built again for it and the plan
/// carried over; a --batch or an IR file that disagrees is an error.
static LogicalResult fitBatchToPlan(MLIRContext &context,
                                    llvm::SourceMgr &sourceMgr,
                                    OwningOpRef<ModuleOp> &module) {
  mlir::galvatron::PlanAttr plan = mlir::galvatron::getPlan(*module);
  if (!plan)
    return success();
  FailureOr<mlir::galvatron::ModelInput> input =
      mlir::galvatron::getModelInput(*module, "galvatron-compile");
  if (failed(input))
    return failure();
  int64_t microBatch = plan.getGlobalBatch() / plan.getMicroBatches();
  int64_t modelBatch = input->model.irBatch;
  if (modelBatch == microBatch)
    return success();
  std::string planBatch = "the plan's micro-batch is global batch " +
                          std::to_string(plan.getGlobalBatch()) + " / " +
                          std::to_string(plan.getMicroBatches()) +
                          " micro-batches = " + std::to_string(microBatch);
  if (batch.getNumOccurrences()) {
    error("--batch=" + Twine(batch.getValue()) + " does not fit the plan: " +
          planBatch + " (leave --batch out to take it from the plan)");
    return failure();
  }
  if (modelName.empty() && !StringRef(inputFilename).ends_with(".onnx")) {
    error(inputFilename + " has batch " + Twine(modelBatch) + " but " +
          planBatch);
    return failure();
  }
  llvm::Expected<mlir::galvatron::ParallelPlan> parallelPlan =
      mlir::galvatron::readPlan(*module, input->function);
  if (!parallelPlan) {
    error(llvm::toString(parallelPlan.takeError()));
    return failure();
  }
  std::string description;
  FailureOr<OwningOpRef<ModuleOp>> rebuilt =
      loadModel(context, sourceMgr, description, microBatch);
  if (failed(rebuilt))
    return failure();
  FailureOr<func::FuncOp> function =
      mlir::galvatron::getModelFunction(**rebuilt, "galvatron-compile");
  if (failed(function))
    return failure();
  mlir::galvatron::writePlan(**rebuilt, *function, *parallelPlan);
  module = std::move(*rebuilt);
  return success();
}

/// Compiles every pipeline stage of `module`'s plan once and links the
/// stages' programs into the first stage's module, which is returned.
static FailureOr<OwningOpRef<ModuleOp>>
compileStages(OwningOpRef<ModuleOp> module,
              const mlir::galvatron::RuntimePipelineOptions &runtime) {
  mlir::galvatron::PlanAttr plan = mlir::galvatron::getPlan(*module);
  int64_t stages = plan ? plan.getPp() : 1;
  // Several ranks per stage: the forward becomes the SPMD program of each
  // stage's ranks before it is split into stages and differentiated.
  if (plan && plan.getDevices() != stages) {
    PassManager pm(module->getContext(), ModuleOp::getOperationName());
    pm.addPass(mlir::galvatron::createPartition());
    if (failed(configurePassManager(pm)) || failed(pm.run(*module)))
      return failure();
  }
  SmallVector<OwningOpRef<ModuleOp>> parts;
  for (int64_t stage = 0; stage < stages; ++stage) {
    OwningOpRef<ModuleOp> part =
        stage + 1 < stages ? OwningOpRef<ModuleOp>(module->clone())
                           : std::move(module);
    mlir::galvatron::StagePipelineOptions options;
    if (stages > 1)
      options.stage = stage;
    if (train.getNumOccurrences())
      options.trainStep = train;
    options.runtime = runtime;
    PassManager pm(part->getContext(), ModuleOp::getOperationName());
    if (failed(configurePassManager(pm)) ||
        failed(mlir::galvatron::buildStagePipeline(pm, options,
                                                   reportError)) ||
        failed(pm.run(*part)))
      return failure();
    parts.push_back(std::move(part));
  }
  SmallVector<mlir::galvatron::grt::ExecutableOp> executables;
  for (OwningOpRef<ModuleOp> &part : parts)
    executables.push_back(
        *(*part).getOps<mlir::galvatron::grt::ExecutableOp>().begin());
  if (failed(mlir::galvatron::linkExecutables(executables)))
    return failure();
  return std::move(parts.front());
}

/// One line per stage: what every rank of the stage runs and holds.
static void printSummary(const std::string &description,
                         const rt::Program &program) {
  llvm::outs() << "galvatron-compile: " << description << " -> "
               << outputFilename << ": " << program.worldSize << " rank(s) in "
               << program.stages.size() << " stage(s), format "
               << rt::kFormatMajorVersion << "." << rt::kFormatMinorVersion
               << "\n";
  uint32_t perStage = program.ranksPerStage();
  for (const rt::StageProgram &stage : program.stages) {
    rt::MemoryUsage usage = rt::analyzeMemory(stage);
    uint32_t first = stage.stage * perStage;
    llvm::outs() << "galvatron-compile: stage " << stage.stage << " (rank";
    if (perStage > 1)
      llvm::outs() << "s " << first << "-" << first + perStage - 1;
    else
      llvm::outs() << " " << first;
    llvm::outs() << "): " << stage.instructions.size() << " instructions, "
                 << stage.buffers.size() << " buffers, "
                 << stage.parameters.size() << " parameters, "
                 << stage.schedule.microBatches << " micro-batch(es) in "
                 << stage.schedule.slots << " slot(s); arena (plan peak) "
                 << usage.arenaBytes << " bytes, live peak "
                 << usage.peakLiveBytes << " bytes, parameters "
                 << usage.parameterBytes << " bytes";
    if (usage.stateBytes)
      llvm::outs() << ", training state " << usage.stateBytes << " bytes";
    llvm::outs() << "\n";
  }
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::galvatron::hideLibraryOptions({&category});
  mlir::galvatron::registerDebugOptions();
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  mlir::galvatron::registerAllPasses();
  cl::ParseCommandLineOptions(argc, argv, "Galvatron compiler driver\n");

  DialectRegistry registry;
  mlir::galvatron::registerAllDialects(registry);
  MLIRContext context(registry);
  // Diagnostics name the cause; a dump of the whole module would bury it.
  context.printOpOnDiagnostic(false);
  llvm::SourceMgr sourceMgr;
  mlir::galvatron::ToolDiagnosticHandler handler(&context, sourceMgr,
                                                 "galvatron-compile");
  handler.setSubject(modelName.empty() ? inputFilename : modelName);
  std::string description;
  FailureOr<OwningOpRef<ModuleOp>> module =
      loadModel(context, sourceMgr, description);
  if (failed(module))
    return 1;

  if (failed(applyPlan(**module)) ||
      failed(fitBatchToPlan(context, sourceMgr, *module)))
    return 1;
  mlir::galvatron::RuntimePipelineOptions options;
  options.modelDirectory = modelDirectory;
  options.overlap = overlap;
  options.bucketMb = bucketMb;
  if (options.modelDirectory.empty() && !inputFilename.empty()) {
    llvm::SmallString<256> directory(inputFilename);
    llvm::sys::fs::make_absolute(directory);
    llvm::sys::path::remove_filename(directory);
    options.modelDirectory = directory.str().str();
  }
  FailureOr<OwningOpRef<ModuleOp>> linked =
      compileStages(std::move(*module), options);
  if (failed(linked))
    return 1;
  FailureOr<rt::Program> program =
      mlir::galvatron::buildProgram(**linked, options);
  if (failed(program))
    return 1;

  if (emit == EmitKind::mlir) {
    std::string message;
    auto output = openOutputFile(outputFilename, &message);
    if (!output)
      return error(message);
    (**linked)->print(output->os());
    output->os() << "\n";
    if (llvm::Error failed = mlir::galvatron::keepOutputFile(*output))
      return error(llvm::toString(std::move(failed)));
  } else {
    rt::Status status = rt::writeProgramFile(*program, outputFilename);
    if (!status.isOk())
      return error(status.message());
  }
  if (!quiet)
    printSummary(description, *program);
  if (llvm::Error failed = mlir::galvatron::flushStandardOutput())
    return error(llvm::toString(std::move(failed)));
  return 0;
}
