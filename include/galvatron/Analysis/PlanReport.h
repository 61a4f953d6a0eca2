//===- PlanReport.h - Human and machine readable plan reports ---*- C++ -*-===//
//
// The report of an evaluated plan: per layer its stage, tp, dp, dp type,
// sp and checkpointing (runs of identical layers folded into one row); per
// stage the memory split (parameters, gradients, optimizer states,
// activations, buffers) and the time split over an iteration (compute,
// TP/SP, DP, pipeline transfers, bubble); and the predicted iteration time,
// tokens per second, TFLOP/s per device and MFU. As a text table or JSON.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_PLANREPORT_H
#define GALVATRON_ANALYSIS_PLANREPORT_H

#include "galvatron/Analysis/PlanSearch.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::galvatron {

struct PlanReportInput {
  const ModelProfile *model = nullptr;
  const ParallelPlan *plan = nullptr;
  const PlanEvaluation *evaluation = nullptr;
  const ClusterSpec *cluster = nullptr;
  /// Set when the plan comes from the search.
  const SearchStatistics *statistics = nullptr;
};

void printPlanReport(llvm::raw_ostream &os, const PlanReportInput &input);
llvm::json::Object getPlanReportJSON(const PlanReportInput &input);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_PLANREPORT_H
