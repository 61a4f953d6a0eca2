//===- LayerUtils.h - Rewriting galvatron.layer ops -------------*- C++ -*-===//
//
// A layer's inputs and results are fixed when it is created; these helpers
// rebuild a layer around its body when passes add or drop either.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TRANSFORMS_LAYERUTILS_H
#define GALVATRON_TRANSFORMS_LAYERUTILS_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

namespace mlir::galvatron {

/// The terminator of `layer`'s body.
YieldOp getLayerYield(LayerOp layer);

/// Replaces `layer` by a layer with the same inputs, body and attributes that
/// yields `values`; old result i becomes new result `newIndex[i]`, or must be
/// unused when that is -1.
LayerOp rebuildLayerResults(LayerOp layer, ArrayRef<Value> values,
                            ArrayRef<int> newIndex);

/// Replaces `layer` by one that also takes `inputs`, bound to new block
/// arguments at the end of its body's argument list.
LayerOp appendLayerInputs(LayerOp layer, ValueRange inputs);

/// Drops the layer results nothing uses and the ops that only fed them, so
/// a function keeps computing only what its results and side effects need.
void pruneUnusedLayerResults(func::FuncOp function);

} // namespace mlir::galvatron

#endif // GALVATRON_TRANSFORMS_LAYERUTILS_H
