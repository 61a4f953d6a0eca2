//===- PlanExport.cpp - The exporter registry and export reports ----------===//

#include "UniformPlan.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::galvatron;

ArrayRef<PlanExporter> mlir::galvatron::getPlanExporters() {
  static const PlanExporter exporters[] = {
      {"galvatron", "Galvatron", exportGalvatron},
      {"megatron", "Megatron-LM", exportMegatron},
      {"torchtitan", "torchtitan", exportTorchTitan},
      {"deepspeed", "DeepSpeed", exportDeepSpeed},
  };
  return exporters;
}

const PlanExporter *mlir::galvatron::findPlanExporter(StringRef name) {
  for (const PlanExporter &exporter : getPlanExporters())
    if (exporter.name == name)
      return &exporter;
  return nullptr;
}

std::string mlir::galvatron::getPlanExportFormatList() {
  SmallVector<StringRef> names;
  for (const PlanExporter &exporter : getPlanExporters())
    names.push_back(exporter.name);
  return llvm::join(names, ", ");
}

/// Time, throughput and memory; with `baseline`, the time's change.
static std::string summarize(const PlanEvaluation &evaluation,
                             const PlanEvaluation *baseline = nullptr) {
  constexpr double kGiB = double(1ull << 30);
  std::string change;
  if (baseline) {
    double slower = evaluation.iterationTime / baseline->iterationTime - 1.0;
    change = llvm::formatv(" ({0}{1:F1}%)", slower >= 0 ? "+" : "",
                           100.0 * slower);
  }
  return llvm::formatv("{0:F4} s per iteration{1}, {2:F0} tokens/s, MFU "
                       "{3:F1}%, peak memory {4:F2} GiB of {5:F2} usable ({6})",
                       evaluation.iterationTime, change,
                       evaluation.tokensPerSecond, 100.0 * evaluation.mfu,
                       evaluation.peakMemory / kGiB,
                       evaluation.usableMemory / kGiB,
                       evaluation.fits() ? "fits" : "DOES NOT FIT")
      .str();
}

SmallVector<std::string>
mlir::galvatron::describePlanExport(const PlanExporter &exporter,
                                    const PlanExport &exported,
                                    const PlanEvaluation &original,
                                    const PlanEvaluation &evaluation) {
  SmallVector<std::string> lines;
  if (exported.changes.empty()) {
    lines.push_back(exporter.trainer.str() + " expresses the plan exactly: " +
                    summarize(original));
  } else {
    lines.push_back(exporter.trainer.str() +
                    " cannot express the plan; exported the closest plan "
                    "it can, which changes:");
    for (const std::string &change : exported.changes)
      lines.push_back("  " + change);
    lines.push_back("predicted, original: " + summarize(original));
    lines.push_back("predicted, exported: " + summarize(evaluation, &original));
  }
  for (const std::string &note : exported.notes)
    lines.push_back("note: " + note);
  return lines;
}
