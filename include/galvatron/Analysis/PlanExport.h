//===- PlanExport.h - Plans in the terms of other trainers ------*- C++ -*-===//
//
// Writes a plan for the trainer a user already runs: Galvatron's strategy
// JSON (galvatron), Megatron-LM arguments (megatron), a torchtitan TOML
// job section (torchtitan) or a DeepSpeed JSON config (deepspeed). Each
// format is one exporter in the registry (lib/Analysis/Export, one file per
// format).
//
// Megatron-LM, torchtitan and DeepSpeed give every layer the same TP
// degree, data-parallel type and sequence parallelism, with fixed rules
// for the stage split and for which blocks recompute. A plan they cannot
// express exports as the closest plan they can: the TP degree, sequence
// parallelism and data-parallel type of most transformer blocks (a type the
// trainer lacks becomes the nearest one that shards at least as much), the
// nearest stage split it allows, and at least as many recomputed blocks per
// stage as the plan has (so the exported plan needs no more activation
// memory). The export lists the layers that changed; the cost model prices
// both plans (describePlanExport).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_PLANEXPORT_H
#define GALVATRON_ANALYSIS_PLANEXPORT_H

#include "galvatron/Analysis/CostModel.h"

#include <string>

namespace mlir::galvatron {

struct PlanExport {
  /// The trainer's arguments, config section or file.
  std::string text;
  /// The plan `text` describes: the original one, or the closest plan the
  /// trainer can express.
  ParallelPlan plan;
  /// How `plan` differs from the original: runs of layers and what changed
  /// ("transformer.h.0 .. transformer.h.5 (6): tp 2 -> 4"), and why.
  SmallVector<std::string> changes;
  /// What the format cannot carry but the trainer needs (settings made in
  /// code).
  SmallVector<std::string> notes;
};

struct PlanExporter {
  /// The format's name (format=NAME).
  llvm::StringRef name;
  /// The trainer, for messages ("Megatron-LM").
  llvm::StringRef trainer;
  /// Exports `plan` (which passes plan.check(model)); fails naming what
  /// the format cannot express at all.
  llvm::Expected<PlanExport> (*exportPlan)(const ParallelPlan &plan,
                                           const ModelProfile &model);
};

/// Every format, galvatron first.
llvm::ArrayRef<PlanExporter> getPlanExporters();
/// The exporter named `name`, or null.
const PlanExporter *findPlanExporter(llvm::StringRef name);
/// "galvatron, megatron, torchtitan, deepspeed".
std::string getPlanExportFormatList();

/// The changes of `exported` and the cost model's prediction of the
/// original plan beside the exported one, as lines for a report.
SmallVector<std::string> describePlanExport(const PlanExporter &exporter,
                                            const PlanExport &exported,
                                            const PlanEvaluation &original,
                                            const PlanEvaluation &evaluation);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_PLANEXPORT_H
