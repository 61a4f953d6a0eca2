//===- galvatron-translate.cpp - Model presets and translations -----------===//
//
// Produces galvatron IR from outside the IR world:
//   galvatron-translate --model=NAME [--seq-len=N] [--batch=N] [-o out.mlir]
//   galvatron-translate --list-models
//   galvatron-translate --emit-program in.mlir -o m.gxp
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/InitAll.h"
#include "galvatron/Models/ModelPresets.h"
#include "galvatron/Target/Program/ProgramEmitter.h"

#include "mlir/IR/AsmState.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::galvatron;
namespace cl = llvm::cl;

static cl::OptionCategory category("galvatron-translate options");

static cl::opt<std::string>
    modelName("model", cl::desc("Emit the forward graph of a preset model"),
              cl::value_desc("name"), cl::cat(category));
static cl::opt<bool> listModels("list-models",
                                cl::desc("List the preset models"),
                                cl::cat(category));
static cl::opt<int64_t>
    seqLen("seq-len", cl::desc("Sequence length (default: the preset's)"),
           cl::init(0), cl::cat(category));
static cl::opt<int64_t> batch("batch", cl::desc("Batch size"), cl::init(1),
                              cl::cat(category));
static cl::opt<bool> emitProgram(
    "emit-program",
    cl::desc("Write the program file of the input IR (galvatron IR is "
             "lowered with the runtime pipeline first)"),
    cl::cat(category));
static cl::opt<std::string> inputFilename(cl::Positional,
                                          cl::desc("<input file>"),
                                          cl::init("-"), cl::cat(category));
static cl::opt<std::string> outputFilename("o", cl::desc("Output file"),
                                           cl::value_desc("filename"),
                                           cl::init("-"), cl::cat(category));

static int error(const Twine &message) {
  llvm::WithColor::error(llvm::errs(), "galvatron-translate")
      << message << "\n";
  return 1;
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
}

static int emitModel() {
  const ModelConfig *config = findModelPreset(modelName);
  if (!config)
    return error("unknown model '" + modelName +
                 "'; --list-models lists the presets");
  MLIRContext context;
  auto module = buildModel(&context, *config, ModelShape{batch, seqLen});
  if (!module)
    return error(llvm::toString(module.takeError()));
  std::string message;
  auto output = openOutputFile(outputFilename, &message);
  if (!output)
    return error(message);
  (*module)->print(output->os());
  output->os() << "\n";
  output->keep();
  return 0;
}

static int writeProgram() {
  if (outputFilename == "-")
    return error("--emit-program writes a binary file: give -o FILE");
  DialectRegistry registry;
  registerAllDialects(registry);
  MLIRContext context(registry);
  llvm::SourceMgr sourceMgr;
  std::string message;
  auto input = openInputFile(inputFilename, &message);
  if (!input)
    return error(message);
  sourceMgr.AddNewSourceBuffer(std::move(input), llvm::SMLoc());
  SourceMgrDiagnosticHandler handler(sourceMgr, &context);
  OwningOpRef<ModuleOp> module = parseSourceFile<ModuleOp>(sourceMgr, &context);
  if (!module || failed(mlir::galvatron::emitProgramFile(*module, outputFilename)))
    return 1;
  return 0;
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  registerAsmPrinterCLOptions();
  registerMLIRContextCLOptions();
  cl::HideUnrelatedOptions({&category, &cl::getGeneralCategory()});
  cl::ParseCommandLineOptions(argc, argv,
                              "Galvatron model presets and translations\n");
  if (listModels) {
    printModelList(llvm::outs());
    return 0;
  }
  if (!modelName.empty())
    return emitModel();
  if (emitProgram)
    return writeProgram();
  return error("nothing to do: give --model=NAME, --list-models or "
               "--emit-program");
}
