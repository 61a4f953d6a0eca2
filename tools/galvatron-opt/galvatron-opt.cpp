//===- galvatron-opt.cpp - Galvatron optimizer driver ---------------------===//
//
// mlir-opt for Galvatron: parses IR, runs passes, prints IR. Its --help
// lists Galvatron's passes and MLIR's driver options, not LLVM's code
// generator flags; a failed write of the output is an error naming the
// file.
//
//===----------------------------------------------------------------------===//

#include "galvatron/InitAll.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Support/Debug.h"
#include "galvatron/Support/ToolSupport.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Support/FileUtilities.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/InitLLVM.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"

static int error(const llvm::Twine &message) {
  return mlir::galvatron::printToolError("galvatron-opt", message);
}

int main(int argc, char **argv) {
  llvm::InitLLVM init(argc, argv);
  mlir::galvatron::hideLibraryOptions({});
  mlir::galvatron::registerDebugOptions();
  mlir::galvatron::registerAllPasses();
  mlir::DialectRegistry registry;
  mlir::galvatron::registerAllDialects(registry);
  std::string header =
      mlir::registerCLIOptions("Galvatron optimizer driver", registry);
  auto [inputFilename, outputFilename] =
      mlir::parseCLIOptions(argc, argv, header);
  mlir::MlirOptMainConfig config =
      mlir::MlirOptMainConfig::createFromCLOptions();

  std::string message;
  auto input = mlir::openInputFile(inputFilename, &message);
  if (!input)
    return error(message);
  auto output = mlir::openOutputFile(outputFilename, &message);
  if (!output)
    return error(message);
  if (failed(mlir::MlirOptMain(output->os(), std::move(input), registry,
                               config))) {
    // The diagnostics said why; an unwritable output must not abort too.
    output->os().flush();
    output->os().clear_error();
    return 1;
  }
  if (llvm::Error failed = mlir::galvatron::keepOutputFile(*output))
    return error(llvm::toString(std::move(failed)));
  return 0;
}
