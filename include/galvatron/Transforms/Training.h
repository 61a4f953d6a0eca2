//===- Training.h - Pieces shared by the training-step passes ---*- C++ -*-===//
//
// Declaring training state, accumulating parameter gradients into it,
// choosing which layers recompute, and rewriting a forward graph to 16-bit
// compute with 32-bit master weights.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_TRANSFORMS_TRAINING_H
#define GALVATRON_TRANSFORMS_TRAINING_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/ADT/MapVector.h"

#include <optional>

namespace mlir::galvatron {

/// Declares `galvatron.state` ops in a module, before its first function,
/// refusing names that are already taken.
class StateDeclarer {
public:
  explicit StateDeclarer(ModuleOp module) : module(module) {}

  /// Declares state `name` starting at `init` (zeros when null); fails with
  /// a diagnostic when the name exists.
  FailureOr<StateOp> declare(StringRef name, StateKind kind,
                             RankedTensorType type, ParameterOp parameter = {},
                             InitAttr init = {});

private:
  ModuleOp module;
};

/// On a parameter read by several pipeline stages (a tied embedding and LM
/// head): the stages, increasing. Their gradients are summed over those
/// stages once per step.
constexpr llvm::StringLiteral kPipelineStagesAttrName = "galvatron.stages";

/// What a parameter's gradient accumulator holds over a step.
enum class AccumulatedGradient {
  /// The gradient, summed over the data-parallel group in every
  /// micro-batch's backward (autodiff's sync).
  synced,
  /// The rank's own gradient (a `galvatron.data_parallel` weight trained by
  /// an optimizer): the optimizer step syncs it once (DDP's all-reduce,
  /// ZeRO-1's reduce-scatter).
  local,
  /// The rank's slice of the synced gradient, reduce-scattered in every
  /// micro-batch's backward (ZeRO-2).
  slice,
};

/// The autodiff engine's parameter-gradient sink for training: adds each
/// gradient to the parameter's accumulator `<parameter>.grad`, declared on
/// first use with the parameter's type (a ZeRO-2 weight's: its slice).
class GradientAccumulators {
public:
  /// `deferSync`: an optimizer step follows that can sync local gradients.
  GradientAccumulators(StateDeclarer &states, bool deferSync)
      : states(states), deferSync(deferSync) {}

  LogicalResult accumulate(OpBuilder &builder, Location loc,
                           ParameterOp parameter, Value gradient);

  /// Trained parameters and their accumulators, in order of first gradient.
  const llvm::MapVector<ParameterOp, StateOp> &get() const {
    return accumulators;
  }
  AccumulatedGradient kindOf(ParameterOp parameter) const {
    return kinds.lookup(parameter);
  }
  /// Erases the per-micro-batch syncs that accumulation bypassed.
  void eraseBypassedSyncs();

private:
  StateDeclarer &states;
  bool deferSync;
  llvm::MapVector<ParameterOp, StateOp> accumulators;
  llvm::DenseMap<ParameterOp, AccumulatedGradient> kinds;
  SmallVector<Operation *> bypassed;
};

/// Which layers recompute their forward in the backward pass.
enum class CheckpointPolicy {
  /// Those whose #galvatron.strategy has ckpt.
  plan,
  none,
  /// The transformer blocks (encoder and decoder layers).
  blocks,
  all
};

std::optional<CheckpointPolicy> parseCheckpointPolicy(StringRef text);
bool shouldRecompute(CheckpointPolicy policy, LayerOp layer);

/// Makes the layers of `function` compute in `lowType` (bf16 or f16): every
/// f32 value in them becomes `lowType` except parameter reads, which keep the
/// f32 master weights and are cast right after, and results whose type an op
/// fixes (a loss stays f32). f32 arguments of the function become `lowType`.
void convertToLowPrecision(func::FuncOp function, FloatType lowType);

} // namespace mlir::galvatron

#endif // GALVATRON_TRANSFORMS_TRAINING_H
