//===- GalvatronExport.cpp - Plans as Galvatron strategy JSON -------------===//

#include "UniformPlan.h"

#include "galvatron/Analysis/GalvatronStrategy.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::galvatron;

/// Galvatron's format holds per-block strategies, so a plan either exports
/// exactly or not at all (writeGalvatronStrategy names why).
llvm::Expected<PlanExport>
mlir::galvatron::exportGalvatron(const ParallelPlan &plan,
                                 const ModelProfile &model) {
  auto json = writeGalvatronStrategy(plan, model);
  if (!json)
    return json.takeError();
  PlanExport result;
  result.text =
      llvm::formatv("{0:2}", llvm::json::Value(std::move(*json))).str() + "\n";
  result.plan = plan;
  return result;
}
