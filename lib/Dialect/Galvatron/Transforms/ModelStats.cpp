//===- ModelStats.cpp - Print parameter and FLOP statistics ---------------===//

#include "galvatron/Analysis/ModelStatistics.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"

#include "llvm/Support/FormatVariadic.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_MODELSTATS
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h.inc"

namespace {
struct ModelStatsPass : impl::ModelStatsBase<ModelStatsPass> {
  using ModelStatsBase::ModelStatsBase;

  void runOnOperation() override {
    llvm::json::Array functions;
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.getOps<LayerOp>().empty())
        continue;
      ModelStatistics stats = ModelStatistics::compute(function);
      if (json)
        functions.push_back(stats.toJSON());
      else
        stats.print(llvm::outs());
    }
    if (json)
      llvm::outs() << llvm::formatv("{0:2}",
                                    llvm::json::Value(std::move(functions)))
                   << "\n";
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
