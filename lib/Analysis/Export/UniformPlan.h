//===- UniformPlan.h - The closest plan a trainer can express ---*- C++ -*-===//
//
// What the Megatron-LM, torchtitan and DeepSpeed exporters share: each
// describes what its trainer can express (TrainerRules) and writes the
// uniform plan that makeUniformPlan derives from a plan.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_ANALYSIS_EXPORT_UNIFORMPLAN_H
#define GALVATRON_LIB_ANALYSIS_EXPORT_UNIFORMPLAN_H

#include "galvatron/Analysis/PlanExport.h"

#include <array>

namespace mlir::galvatron {

/// What a trainer that gives every layer the same strategy can express.
struct TrainerRules {
  llvm::StringRef trainer;
  enum class SequenceParallel {
    never,
    optional,
    /// Always on with tensor parallelism (torchtitan).
    withTensorParallel,
  };
  SequenceParallel sequenceParallel = SequenceParallel::never;
  /// The data-parallel types the trainer has (indexed by DataParallelType),
  /// without and with a pipeline.
  std::array<bool, 4> dpTypes = {true, true, true, true};
  std::array<bool, 4> pipelineDpTypes = {true, true, true, true};
  enum class Split {
    /// Any number of blocks per stage.
    any,
    /// First and last stages free, the middle ones equal (Megatron-LM's
    /// --decoder-first/last-pipeline-num-layers); every stage has a block.
    evenMiddle,
    /// As even as possible, the first stages taking the remainder
    /// (DeepSpeed's uniform partition).
    even,
  };
  Split split = Split::any;
  enum class Recompute {
    /// The first N blocks of every stage (Megatron-LM's block method).
    firstBlocksPerStage,
    /// Every k-th block of every stage (torchtitan's selective option).
    everyKthBlock,
    /// All blocks or none.
    allOrNone,
  };
  Recompute recompute = Recompute::allOrNone;
  bool gpipe = false;
  bool fp16 = true;
};

struct UniformPlan {
  ParallelPlan plan;
  SmallVector<std::string> changes;
  /// The strategy of the transformer blocks.
  int64_t tp = 1;
  bool sp = false;
  DataParallelType dpType = DataParallelType::ddp;
  /// Data-parallel degree and sequences per micro-batch of one replica.
  int64_t dp = 1, replicaMicroBatch = 1;
  SmallVector<int64_t> blocksPerStage;
  /// Recomputed blocks: for firstBlocksPerStage the count per stage, for
  /// everyKthBlock the period k (0: none), for allOrNone 0 or 1.
  int64_t recompute = 0;
  /// Every block recomputes.
  bool recomputeAll = false;
  int64_t blocks = 0;
};

/// The closest plan to `plan` that `rules` allow, with the changes listed;
/// fails when even that plan does not suit the model.
llvm::Expected<UniformPlan> makeUniformPlan(const ParallelPlan &plan,
                                            const ModelProfile &model,
                                            const TrainerRules &rules);

llvm::Expected<PlanExport> exportGalvatron(const ParallelPlan &plan,
                                           const ModelProfile &model);
llvm::Expected<PlanExport> exportMegatron(const ParallelPlan &plan,
                                          const ModelProfile &model);
llvm::Expected<PlanExport> exportTorchTitan(const ParallelPlan &plan,
                                            const ModelProfile &model);
llvm::Expected<PlanExport> exportDeepSpeed(const ParallelPlan &plan,
                                           const ModelProfile &model);

} // namespace mlir::galvatron

#endif // GALVATRON_LIB_ANALYSIS_EXPORT_UNIFORMPLAN_H
