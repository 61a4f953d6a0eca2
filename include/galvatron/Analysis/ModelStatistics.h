//===- ModelStatistics.h - Parameter and FLOP counts ------------*- C++ -*-===//
//
// Per-layer parameter counts and forward FLOPs of a galvatron model function,
// derived from the IR alone.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_MODELSTATISTICS_H
#define GALVATRON_ANALYSIS_MODELSTATISTICS_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/Support/JSON.h"

#include <string>

namespace mlir::galvatron {

struct LayerStatistics {
  std::string name;
  LayerKind kind;
  /// Elements of the parameters this layer is the first to read.
  int64_t parameters = 0;
  /// Elements of parameters read here but owned by an earlier layer (tied
  /// weights such as a GPT-2 LM head sharing the token embedding).
  int64_t sharedParameters = 0;
  /// Forward FLOPs (multiply-add = 2, matrix work only).
  int64_t flops = 0;
};

struct ModelStatistics {
  std::string function;
  SmallVector<LayerStatistics> layers;
  /// Parameters and FLOPs of ops that sit outside every layer.
  LayerStatistics outsideLayers;
  int64_t totalParameters = 0;
  int64_t totalFlops = 0;

  /// Computes the statistics of `function`. Each parameter counts once, for
  /// the first layer (in program order) that reads it.
  static ModelStatistics compute(func::FuncOp function);

  llvm::json::Value toJSON() const;
  void print(llvm::raw_ostream &os) const;
};

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_MODELSTATISTICS_H
