//===- PlanUtils.h - What the plan passes share -----------------*- C++ -*-===//
//
// Finding the model function, turning pass options into a cluster and a
// budget, converting plans to and from #galvatron.strategy /
// #galvatron.plan attributes, and writing plan reports.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TRANSFORMS_PLANUTILS_H
#define GALVATRON_TRANSFORMS_PLANUTILS_H

#include "galvatron/Analysis/PlanReport.h"
#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include <string>

namespace mlir::galvatron {

/// The one function of `module` that contains layers; otherwise emits an
/// error prefixed with `pass` and fails.
FailureOr<func::FuncOp> getModelFunction(ModuleOp module, StringRef pass);

/// The options of passes that price plans.
struct CostModelOptions {
  std::string cluster;
  int64_t nodes = 0;
  int64_t devices = 0;
  std::string memory;
  ArrayRef<std::string> profiles;
};

struct CostModelSetup {
  ClusterSpec cluster;
  /// Bytes per device.
  double memoryBudget = 0;
  /// Galvatron's model profiles among the profiles (file, contents), for
  /// applyModelProfiles.
  std::vector<std::pair<std::string, llvm::json::Object>> modelProfiles;
};

/// The cluster (preset or file, resized to `nodes` or `devices`, with the
/// hardware and cost profiles applied) and the memory budget the options
/// describe.
llvm::Expected<CostModelSetup> makeCostModelSetup(const CostModelOptions &options);

/// Applies the setup's Galvatron model profiles to `model`, trained in
/// `precision` (see GalvatronProfiles.h).
llvm::Error applyModelProfiles(ModelProfile &model,
                               const CostModelSetup &setup,
                               Precision precision);

/// The cluster and budget the options describe for pricing `plan`: without
/// nodes or devices, the cluster takes the plan's device count; fails when
/// the counts differ.
llvm::Expected<CostModelSetup>
makePlanCostModelSetup(CostModelOptions options, const ParallelPlan &plan);

/// "bf16", "fp16" or "fp32".
llvm::Expected<Precision> parsePrecision(StringRef text);

/// Writes `plan` as #galvatron.strategy on each layer of `function` and
/// #galvatron.plan on `module`.
void writePlan(ModuleOp module, func::FuncOp function, const ParallelPlan &plan);

/// Reads the plan the attributes of `module` and `function` describe.
llvm::Expected<ParallelPlan> readPlan(ModuleOp module, func::FuncOp function);

/// Writes the report as `format` ("text" or "json") to `output` ('-' is
/// stdout).
llvm::Error writePlanReport(StringRef format, StringRef output,
                            const PlanReportInput &input);

/// Emits "`pass`: `message`" as an error at `module`.
/// With an llvm::Error: at the op it concerns, if it names one.
void emitPassError(ModuleOp module, StringRef pass, llvm::Error error);
void emitPassError(ModuleOp module, StringRef pass,
                   const llvm::Twine &message);

/// Checks that `plan` suits `model` (ParallelPlan::validate); otherwise
/// emits why, at the layer concerned, and fails.
LogicalResult checkPlanSuitsModel(ModuleOp module, StringRef pass,
                                  const ParallelPlan &plan,
                                  const ModelProfile &model);

/// The model function and its profile.
struct ModelInput {
  func::FuncOp function;
  ModelProfile model;
};

/// What a pass reading a model needs; emits the error and fails otherwise.
FailureOr<ModelInput> getModelInput(ModuleOp module, StringRef pass);

/// The model and the plan its attributes describe.
FailureOr<std::pair<ModelInput, ParallelPlan>>
getModelAndPlan(ModuleOp module, StringRef pass);

/// The model, the cluster and budget the options give, the precision and
/// the global batch (the option's, or the model's batch for 0).
struct PlanningInput {
  ModelInput input;
  CostModelSetup setup;
  Precision precision;
  int64_t globalBatch;
};
FailureOr<PlanningInput> getPlanningInput(ModuleOp module, StringRef pass,
                                          const CostModelOptions &options,
                                          StringRef precision,
                                          int64_t globalBatch);

} // namespace mlir::galvatron

#endif // GALVATRON_TRANSFORMS_PLANUTILS_H
