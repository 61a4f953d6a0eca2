//===- ExportStrategy.cpp - Write Galvatron strategy JSON -----------------===//

#include "galvatron/Analysis/GalvatronStrategy.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_EXPORTSTRATEGY
#include "galvatron/Transforms/Passes.h.inc"

namespace {
struct ExportStrategyPass : impl::ExportStrategyBase<ExportStrategyPass> {
  using ExportStrategyBase::ExportStrategyBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    constexpr StringRef pass = "--galvatron-export-strategy";
    auto fail = [&](const llvm::Twine &message) {
      emitPassError(module, pass, message);
      signalPassFailure();
    };
    auto input = getModelAndPlan(module, pass);
    if (failed(input))
      return signalPassFailure();
    auto json = writeGalvatronStrategy(input->second, input->first.model);
    if (!json)
      return fail(llvm::toString(json.takeError()));
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(file, &error);
    if (!output)
      return fail(error);
    output->os() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*json)))
                 << "\n";
    if (llvm::Error failed = keepOutputFile(*output))
      return fail(llvm::toString(std::move(failed)));
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
