//===- ONNXImportFuzzer.cpp - libFuzzer target of the ONNX importer -------===//
//
// Feeds arbitrary bytes to the importer as an ONNX model. A bad model must
// give an error; a model that imports must survive the clean-up pipeline and
// verify. Anything else (a crash, a sanitizer report, a failed pipeline) is a
// bug; a failed pipeline prints its diagnostics before aborting. External
// data resolves in $GALVATRON_FUZZ_DIR (refused when unset).
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/Target/ONNX/ImportONNX.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

#include <cstdlib>
#include <string>

using namespace mlir;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *directory = std::getenv("GALVATRON_FUZZ_DIR");
  DialectRegistry registry;
  registry.insert<galvatron::GalvatronDialect, func::FuncDialect>();
  MLIRContext context(registry, MLIRContext::Threading::DISABLED);
  ScopedDiagnosticHandler quiet(&context,
                                [](Diagnostic &) { return success(); });

  galvatron::ONNXImportOptions options;
  options.batch = 2;
  options.seqLen = 4;
  llvm::StringRef bytes(reinterpret_cast<const char *>(data), size);
  auto module = galvatron::importONNX(&context, bytes, "fuzz.onnx",
                                      directory ? directory : "", options);
  if (!module) {
    llvm::consumeError(module.takeError());
    return 0;
  }
  PassManager pm(&context);
  galvatron::buildONNXCleanupPipeline(pm);
  // A model that imported must go through: its diagnostics explain the bug.
  std::string diagnostics;
  ScopedDiagnosticHandler keep(&context, [&](Diagnostic &diagnostic) {
    llvm::raw_string_ostream os(diagnostics);
    os << diagnostic.getLocation() << ": " << diagnostic << "\n";
    return success();
  });
  if (failed(pm.run(**module)) || failed(verify(**module))) {
    llvm::errs() << "galvatron-onnx-fuzzer: an imported model failed the "
                    "clean-up pipeline or the verifier:\n"
                 << diagnostics;
    std::abort();
  }
  return 0;
}
