//===- ExportStrategy.cpp - Write Galvatron strategy JSON -----------------===//

#include "galvatron/Analysis/GalvatronStrategy.h"
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
    auto fail = [&](const llvm::Twine &message) {
      emitError(module.getLoc()) << "--galvatron-export-strategy: " << message;
      signalPassFailure();
    };
    FailureOr<func::FuncOp> function =
        getModelFunction(module, "--galvatron-export-strategy");
    if (failed(function))
      return signalPassFailure();
    auto model = ModelProfile::build(*function);
    if (!model)
      return fail(llvm::toString(model.takeError()));
    auto plan = readPlan(module, *function);
    if (!plan)
      return fail(llvm::toString(plan.takeError()));
    auto json = writeGalvatronStrategy(*plan, *model);
    if (!json)
      return fail(llvm::toString(json.takeError()));
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(file, &error);
    if (!output)
      return fail(error);
    output->os() << llvm::formatv("{0:2}", llvm::json::Value(std::move(*json)))
                 << "\n";
    output->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
