//===- PrintTensorParallel.cpp - Print the tensor-parallel analysis -------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Transforms/Passes.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/ToolOutputFile.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_PRINTTENSORPARALLEL
#include "galvatron/Transforms/Passes.h.inc"

namespace {
struct PrintTensorParallelPass
    : impl::PrintTensorParallelBase<PrintTensorParallelPass> {
  using PrintTensorParallelBase::PrintTensorParallelBase;

  void runOnOperation() override {
    std::string error;
    std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(output, &error);
    if (!file) {
      emitError(getOperation().getLoc())
          << "--galvatron-print-tensor-parallel: " << error;
      return signalPassFailure();
    }
    for (auto function : getOperation().getOps<func::FuncOp>()) {
      if (function.getOps<LayerOp>().empty())
        continue;
      file->os() << "tensor parallelism of @" << function.getSymName()
                 << "\n";
      for (const TensorParallelAnalysis &analysis :
           TensorParallelAnalysis::analyzeFunction(function)) {
        analysis.print(file->os());
        UlyssesAnalysis(analysis).print(file->os());
      }
    }
    file->keep();
    markAllAnalysesPreserved();
  }
};
} // namespace
} // namespace mlir::galvatron
