//===- galvatron-translate.cpp - Model presets and translations -----------===//
//
// Produces galvatron IR from outside the IR world:
//   galvatron-translate --model=NAME [--seq-len=N] [--batch=N] [-o out.mlir]
//   galvatron-translate --model=gpt|llama|bert|t5|vit --layers N --hidden N
//       --heads N [--kv-heads N] [--ffn N] [--vocab N] [--positions N] ...
//   galvatron-translate --config config.json [--seq-len=N] [--batch=N] ...
//   galvatron-translate --list-models
//   galvatron-translate --emit-program in.mlir -o m.gxp
//   galvatron-translate --import-onnx model.onnx [--batch=N] [--seq-len=N]
//       [--dim NAME=N]... [--input-shape NAME=D0xD1...]... [--no-cleanup]
//       [-o out.mlir]
//   galvatron-translate --list-onnx-ops
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/InitAll.h"
#include "galvatron/Models/ModelOptions.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Support/Debug.h"
#include "galvatron/Support/ToolSupport.h"
#include "galvatron/Target/ONNX/ImportONNX.h"
#include "galvatron/Target/Program/ProgramEmitter.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Support/Timing.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
using namespace mlir::galvatron;
namespace cl = llvm::cl;

static cl::OptionCategory category("galvatron-translate options");

static ModelOptions modelOptions(category);
static cl::opt<bool> listModels("list-models",
                                cl::desc("List the preset models"),
                                cl::cat(category));
static cl::opt<int64_t>
    seqLen("seq-len", cl::desc("Sequence length (default: the model's)"),
           cl::init(0), cl::cat(category));
static cl::opt<int64_t> batch("batch", cl::desc("Batch size"), cl::init(1),
                              cl::cat(category));
static cl::opt<bool> importONNXFlag(
    "import-onnx",
    cl::desc("Import the ONNX model given as the positional argument"),
    cl::cat(category));
static cl::opt<std::string> inputFilename(cl::Positional,
                                          cl::desc("<model.onnx | in.mlir>"),
                                          cl::init(""), cl::cat(category));
static cl::opt<bool> listONNXOps(
    "list-onnx-ops",
    cl::desc("List the ONNX op types the importer supports ('constant' marks "
             "ops folded at import only)"),
    cl::cat(category));
static cl::opt<bool> noCleanup(
    "no-cleanup",
    cl::desc("Print the raw import: no fused-op raising, no layer discovery"),
    cl::cat(category));
static cl::list<std::string>
    dimSizes("dim", cl::desc("Size of a symbolic ONNX dimension"),
             cl::value_desc("name=N"), cl::cat(category));
static cl::list<std::string>
    inputShapes("input-shape", cl::desc("Shape of a graph input"),
                cl::value_desc("name=D0xD1x..."), cl::cat(category));
static cl::opt<bool> emitProgram(
    "emit-program",
    cl::desc("Write the program file of the input IR (galvatron IR is "
             "lowered with the runtime pipeline first; no input: stdin)"),
    cl::cat(category));
static cl::opt<std::string> outputFilename("o", cl::desc("Output file"),
                                           cl::value_desc("filename"),
                                           cl::init("-"), cl::cat(category));

static int error(const Twine &message) {
  return mlir::galvatron::printToolError("galvatron-translate", message);
}

static void printModelList(llvm::raw_ostream &os) {
  os << llvm::format("%-12s %-6s %6s %7s %6s %5s %7s %7s %6s %16s\n", "name",
                     "family", "layers", "hidden", "heads", "kv", "ffn",
                     "vocab", "seq", "parameters");
  for (const ModelConfig &config : getModelPresets())
    os << llvm::format(
        "%-12s %-6s %6lld %7lld %6lld %5lld %7lld %7lld %6lld "
        "%16lld\n",
        config.name.c_str(), stringifyModelFamily(config.family).str().c_str(),
        (long long)config.layers, (long long)config.hidden,
        (long long)config.heads, (long long)config.kvHeads,
        (long long)config.ffnHidden, (long long)config.vocab,
        (long long)config.seqLen, (long long)countPresetParameters(config));
  os << "families (--model=NAME with --layers, --hidden, --heads): gpt, "
        "llama, bert, t5, vit\n"
        "Hugging Face configs (--config): "
     << llvm::join(getHuggingFaceArchitectures(), ", ") << "\n";
}

static int writeModule(ModuleOp module) {
  std::string message;
  auto output = openOutputFile(outputFilename, &message);
  if (!output)
    return error(message);
  module->print(output->os());
  output->os() << "\n";
  if (llvm::Error failed = keepOutputFile(*output))
    return error(llvm::toString(std::move(failed)));
  return 0;
}

/// Splits "name=value" at the last '='.
static std::optional<std::pair<StringRef, StringRef>>
splitAssignment(StringRef text) {
  size_t equals = text.rfind('=');
  if (equals == StringRef::npos || equals == 0)
    return std::nullopt;
  return std::make_pair(text.take_front(equals), text.drop_front(equals + 1));
}

static std::optional<int64_t> parseSize(StringRef text) {
  int64_t value;
  if (text.getAsInteger(10, value) || value < 1)
    return std::nullopt;
  return value;
}

static int importONNX() {
  if (inputFilename.empty())
    return error("--import-onnx needs a model file");
  ONNXImportOptions options;
  auto sizeOption = [&](const cl::opt<int64_t> &option)
      -> std::optional<int64_t> {
    if (!option.getNumOccurrences())
      return std::nullopt;
    return option.getValue();
  };
  options.batch = sizeOption(batch);
  options.seqLen = sizeOption(seqLen);
  if ((options.batch && *options.batch < 1) ||
      (options.seqLen && *options.seqLen < 1))
    return error("--batch and --seq-len must be positive");
  for (StringRef text : dimSizes) {
    auto assignment = splitAssignment(text);
    std::optional<int64_t> size =
        assignment ? parseSize(assignment->second) : std::nullopt;
    if (!size)
      return error("--dim expects name=N with a positive N, got '" + text +
                   "'");
    options.dimSizes[assignment->first] = *size;
  }
  for (StringRef text : inputShapes) {
    auto assignment = splitAssignment(text);
    SmallVector<StringRef> parts;
    if (assignment)
      assignment->second.split(parts, 'x');
    SmallVector<int64_t> shape;
    for (StringRef part : parts) {
      int64_t dim;
      if (part.getAsInteger(10, dim) || dim < 0)
        break;
      shape.push_back(dim);
    }
    if (!assignment || shape.size() != parts.size())
      return error("--input-shape expects name=D0xD1x..., got '" + text + "'");
    options.inputShapes[assignment->first] = shape;
  }

  DialectRegistry registry;
  registry.insert<GalvatronDialect, func::FuncDialect>();
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  ToolDiagnosticHandler handler(&context, sourceMgr, "galvatron-translate");
  handler.setSubject(inputFilename);
  // --mlir-timing reports the import and each clean-up pass.
  DefaultTimingManager timing;
  applyDefaultTimingManagerCLOptions(timing);
  TimingScope rootTimer = timing.getRootScope();
  TimingScope importTimer = rootTimer.nest("ONNX import");
  auto module = importONNXFile(&context, inputFilename, options);
  importTimer.stop();
  if (!module)
    return error(llvm::toString(module.takeError()));
  if (!noCleanup) {
    PassManager pm(&context);
    if (failed(applyPassManagerCLOptions(pm)))
      return error("invalid pass manager options");
    TimingScope cleanupTimer = rootTimer.nest("Clean-up");
    pm.enableTiming(cleanupTimer);
    buildONNXCleanupPipeline(pm);
    if (failed(pm.run(**module)))
      return error(inputFilename + ": the clean-up after import failed");
  }
  TimingScope outputTimer = rootTimer.nest("Output");
  return writeModule(**module);
}

static int emitModel() {
  if (seqLen < 0)
    return error("--seq-len must be positive, got " +
                 Twine(seqLen.getValue()));
  auto model = modelOptions.getModel(seqLen);
  if (!model)
    return error(llvm::toString(model.takeError()));
  MLIRContext context;
  auto module = buildModel(&context, model->config, ModelShape{batch, seqLen});
  if (!module)
    return error(llvm::toString(module.takeError()));
  return writeModule(**module);
}

static int writeProgram() {
  if (outputFilename == "-")
    return error("--emit-program writes a binary file: give -o FILE");
  DialectRegistry registry;
  registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  std::string message;
  auto input = openInputFile(inputFilename.empty() ? std::string("-")
                                                   : inputFilename.getValue(),
                             &message);
  if (!input)
    return error(message);
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  ToolDiagnosticHandler handler(&context, sourceMgr, "galvatron-translate");
  handler.setSubject(inputFilename.empty() ? std::string("<stdin>")
                                           : inputFilename.getValue());
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module || failed(mlir::galvatron::emitProgramFile(*module, outputFilename)))
    return 1;
  return 0;
}

static int run() {
  if (listModels) {
    printModelList(llvm::outs());
    return 0;
  }
  if (listONNXOps) {
    for (const SupportedONNXOp &op : getSupportedONNXOps())
      llvm::outs() << op.opType << (op.constantOnly ? " constant" : "")
                   << "\n";
    return 0;
  }
  if (importONNXFlag)
    return importONNX();
  if (modelOptions.hasModel())
    return emitModel();
  if (emitProgram)
    return writeProgram();
  return error("nothing to do: give --model=NAME, --config FILE, "
               "--list-models, --import-onnx FILE, --list-onnx-ops or "
               "--emit-program");
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  hideLibraryOptions({&category});
  registerDebugOptions();
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  registerPassManagerCLOptions();
  registerDefaultTimingManagerCLOptions();
  cl::ParseCommandLineOptions(argc, argv,
                              "Galvatron model presets and translations\n");
  int status = run();
  if (llvm::Error failed = flushStandardOutput())
    return error(llvm::toString(std::move(failed)));
  return status;
}
