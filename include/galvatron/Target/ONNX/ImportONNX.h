//===- ImportONNX.h - Import ONNX models into galvatron IR ------*- C++ -*-===//
//
// Translates an ONNX model (opsets 13 to 17) into a module with one flat
// `@main` function of galvatron ops and a `galvatron.parameter` per weight
// that references where the weight's bytes lie (inside the .onnx file or in
// an external data file); no weight value is copied into the IR. Dynamic
// dimensions are specialized from the options, and everything computable at
// import (shape arithmetic, masks, position ids) is folded. Raising to fused
// ops and layer discovery are separate passes (see
// `buildONNXCleanupPipeline`).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TARGET_ONNX_IMPORTONNX_H
#define GALVATRON_TARGET_ONNX_IMPORTONNX_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/Error.h"

#include <optional>

namespace mlir::galvatron {

/// How dynamic dimensions of graph inputs are made static.
struct ONNXImportOptions {
  /// Sizes of symbolic dimensions by their ONNX name (`dim_param`).
  llvm::StringMap<int64_t> dimSizes;
  /// Complete shapes of graph inputs by input name.
  llvm::StringMap<llvm::SmallVector<int64_t>> inputShapes;
  /// Size of any other unknown dimension 0 (the batch) of a graph input.
  std::optional<int64_t> batch;
  /// Size of any other unknown dimension 1 (the sequence) of a graph input.
  std::optional<int64_t> seqLen;
};

/// Imports the ONNX file at `path`; external data resolves in its folder.
/// Errors name the file, the node, and the cause.
llvm::Expected<OwningOpRef<ModuleOp>>
importONNXFile(MLIRContext *context, llvm::StringRef path,
               const ONNXImportOptions &options);

/// Imports an ONNX model held in memory. `fileName` is how parameters refer
/// to the model file, relative to `directory`, where external data
/// resolves; with an empty `directory` external data is refused.
llvm::Expected<OwningOpRef<ModuleOp>>
importONNX(MLIRContext *context, llvm::StringRef bytes,
           llvm::StringRef fileName, llvm::StringRef directory,
           const ONNXImportOptions &options);

/// An ONNX op type (default domain) the importer converts. `constantOnly`
/// ops are folded when their inputs are known at import and rejected when
/// they depend on run-time values (the dialect has no op for them).
struct SupportedONNXOp {
  llvm::StringRef opType;
  bool constantOnly;
};
/// The supported ops, sorted by name.
llvm::SmallVector<SupportedONNXOp> getSupportedONNXOps();

} // namespace mlir::galvatron

#endif // GALVATRON_TARGET_ONNX_IMPORTONNX_H
