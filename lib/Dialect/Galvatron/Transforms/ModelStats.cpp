//===- ModelStats.cpp - Print parameter and FLOP statistics ---------------===//

#include "galvatron/Analysis/ModelStatistics.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/Support/OutputFile.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_MODELSTATS
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

namespace {
struct ModelStatsPass : impl::ModelStatsBase<ModelStatsPass> {
  using ModelStatsBase::ModelStatsBase;

  void runOnOperation() override {
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(output, &error);
    if (!file) {
      getOperation().emitError() << "--galvatron-model-stats: " << error;
      return signalPassFailure();
    }
    llvm::raw_ostream &os = file->os();
    llvm::json::Array functions;
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.getOps<LayerOp>().empty())
        continue;
      ModelStatistics stats = ModelStatistics::compute(function);
      if (json)
        functions.push_back(stats.toJSON());
      else
        stats.print(os);
    }
    if (json)
      os << llvm::formatv("{0:2}", llvm::json::Value(std::move(functions)))
         << "\n";
    if (llvm::Error failed = keepOutputFile(*file)) {
      getOperation().emitError()
          << "--galvatron-model-stats: " << llvm::toString(std::move(failed));
      return signalPassFailure();
    }
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
