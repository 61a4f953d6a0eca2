//===- ExportStrategy.cpp - Write the plan in a trainer's terms -----------===//

#include "galvatron/Analysis/PlanExport.h"
#include "galvatron/Support/OutputFile.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "mlir/Support/FileUtilities.h"
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
    const PlanExporter *exporter = findPlanExporter(format);
    if (!exporter)
      return fail("unknown format '" + format +
                  "' (expected " + getPlanExportFormatList() + ")");
    auto input = getModelAndPlan(module, pass);
    if (failed(input))
      return signalPassFailure();
    const ModelProfile &model = input->first.model;
    const ParallelPlan &plan = input->second;
    if (failed(checkPlanSuitsModel(module, pass, plan, model)))
      return signalPassFailure();
    auto exported = exporter->exportPlan(plan, model);
    if (!exported)
      return fail(llvm::toString(exported.takeError()));
    // Changes are priced on the cluster: the original beside the export.
    if (!exported->changes.empty() || !exported->notes.empty()) {
      auto setup = makePlanCostModelSetup(
          {cluster, nodes, devices, memory, profiles}, plan);
      if (!setup)
        return fail(llvm::toString(setup.takeError()));
      // Galvatron's model profiles, when given, override the IR's costs.
      ModelProfile priced = model;
      if (llvm::Error error =
              applyModelProfiles(priced, *setup, plan.precision))
        return fail(llvm::toString(std::move(error)));
      PlanEvaluation original = evaluatePlan(priced, plan, setup->cluster,
                                             setup->memoryBudget);
      PlanEvaluation evaluation = evaluatePlan(
          priced, exported->plan, setup->cluster, setup->memoryBudget);
      InFlightDiagnostic remark = emitRemark(module.getLoc());
      remark << pass << ": format=" << format;
      for (const std::string &line :
           describePlanExport(*exporter, *exported, original, evaluation))
        remark << "\n" << line;
    }
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> output = openOutputFile(file, &error);
    if (!output)
      return fail(error);
    output->os() << exported->text;
    if (llvm::Error failed = keepOutputFile(*output))
      return fail(llvm::toString(std::move(failed)));
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
