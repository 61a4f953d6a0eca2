//===- PlanReport.cpp - Print the predicted cost of a plan ----------------===//

#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_PLANREPORT
#include "galvatron/Transforms/Passes.h.inc"

namespace {
struct PlanReportPass : impl::PlanReportBase<PlanReportPass> {
  using PlanReportBase::PlanReportBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    constexpr StringRef pass = "--galvatron-plan-report";
    auto fail = [&](const llvm::Twine &message) {
      emitPassError(module, pass, message);
      signalPassFailure();
    };
    auto input = getModelAndPlan(module, pass);
    if (failed(input))
      return signalPassFailure();
    ModelProfile *model = &input->first.model;
    const ParallelPlan *plan = &input->second;
    auto setup = makePlanCostModelSetup(
        {cluster, nodes, devices, memory, profiles}, *plan);
    if (!setup)
      return fail(llvm::toString(setup.takeError()));
    if (llvm::Error error = applyModelProfiles(*model, *setup, plan->precision))
      return fail(llvm::toString(std::move(error)));
    if (failed(checkPlanSuitsModel(module, pass, *plan, *model)))
      return signalPassFailure();
    PlanEvaluation evaluation =
        evaluatePlan(*model, *plan, setup->cluster, setup->memoryBudget);
    if (llvm::Error error =
            writePlanReport(format, output,
                            {&*model, &*plan, &evaluation, &setup->cluster,
                             nullptr}))
      return fail(llvm::toString(std::move(error)));
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
