//===- Autodiff.h - Reverse-mode differentiation of layered functions
//------===//
//
// The autodiff engine: differentiates a function made of `galvatron.layer`
// ops, layer by layer in reverse, into a backward function of backward
// layers. Every op's rule comes from `VJPOpInterface`, so new ops (issue 7's
// collectives, send/recv) plug in by implementing it. The engine decides
// which forward values each backward layer needs (saved activations, or the
// layer's inputs when it recomputes), accumulates gradients of values used
// several times, and hands parameter gradients to its client.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TRANSFORMS_AUTODIFF_H
#define GALVATRON_TRANSFORMS_AUTODIFF_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include <functional>
#include <string>

namespace mlir::galvatron {

/// A gradient the backward pass starts from: the gradient of a result of a
/// layer in the forward function.
struct GradientSeed {
  Value value;
  /// Builds the seed inside the backward layer of `value`'s producer (a loss
  /// scaled by 1 / micro-batches). When null, the backward function takes
  /// the seed as an argument instead (a pipeline stage receiving the
  /// gradient of its output).
  std::function<Value(OpBuilder &, Location)> build;
};

struct AutodiffOptions {
  /// Name of the backward function, inserted after the forward one.
  std::string backwardName;
  /// Whether the backward of `layer` recomputes the layer from its inputs
  /// (activation checkpointing) instead of receiving saved activations.
  std::function<bool(LayerOp)> recompute;
  /// Receives a gradient of `parameter` inside the backward layer, right
  /// where a rule produced it (once per read of the parameter). The client
  /// accumulates it (into gradient state) or fails with a diagnostic.
  std::function<LogicalResult(OpBuilder &, Location, ParameterOp, Value)>
      parameterGradient;
  /// Arguments of the forward function whose gradients the backward function
  /// returns (those not reaching a seed get none).
  SmallVector<unsigned> gradientArguments;
};

struct BackwardFunction {
  func::FuncOp function;
  /// Forward values the backward function takes after its seed arguments,
  /// in argument order: the saved activations. The client makes the forward
  /// function produce them (return them, or hand them to the next stage).
  SmallVector<Value> savedValues;
  /// The seeds without a builder that depend on a parameter or a
  /// differentiated argument, in argument order (the others have a zero
  /// gradient and get no argument).
  SmallVector<Value> seedArguments;
  /// For each result of the backward function, the forward argument whose
  /// gradient it is.
  SmallVector<unsigned> argumentGradients;
};

/// Differentiates `forward`, a function whose ops all live in layers, from
/// `seeds`. Adds results to forward layers for the activations the backward
/// needs (the seed values and forward results stay valid) and creates the
/// backward function. Fails with a diagnostic on ops outside layers, ops
/// without a rule, or recomputation that would re-read changing state.
FailureOr<BackwardFunction> buildBackward(func::FuncOp forward,
                                          ArrayRef<GradientSeed> seeds,
                                          const AutodiffOptions &options);

} // namespace mlir::galvatron

#endif // GALVATRON_TRANSFORMS_AUTODIFF_H
