//===- MegatronExport.cpp - Plans as Megatron-LM arguments ----------------===//
//
// Megatron-LM (Megatron-Core's pretrain scripts): one TP degree with
// adjacent TP ranks, optional sequence parallelism, a data-parallel
// optimizer that is plain (ddp) or distributed (--use-distributed-optimizer:
// optimizer states sharded, gradients reduce-scattered, the gradient
// buffer whole: ZeRO-1 in our terms), 1F1B, an even split of the layers
// with free first and last stages, and full recomputation of all layers
// (uniform) or of the first N of every stage (block).
//
//===----------------------------------------------------------------------===//

#include "UniformPlan.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::galvatron;

static const TrainerRules &getMegatronRules() {
  static const TrainerRules rules = [] {
    TrainerRules r;
    r.trainer = "Megatron-LM";
    r.sequenceParallel = TrainerRules::SequenceParallel::optional;
    r.dpTypes = r.pipelineDpTypes = {true, true, false, false};
    r.split = TrainerRules::Split::evenMiddle;
    r.recompute = TrainerRules::Recompute::firstBlocksPerStage;
    return r;
  }();
  return rules;
}

llvm::Expected<PlanExport>
mlir::galvatron::exportMegatron(const ParallelPlan &plan,
                                const ModelProfile &model) {
  auto uniform = makeUniformPlan(plan, model, getMegatronRules());
  if (!uniform)
    return uniform.takeError();
  PlanExport result;
  llvm::raw_string_ostream os(result.text);
  const ParallelPlan &exported = uniform->plan;
  auto argument = [&](StringRef flag, const llvm::Twine &value) {
    os << "--" << flag << " " << value << "\n";
  };
  argument("tensor-model-parallel-size", llvm::Twine(uniform->tp));
  argument("pipeline-model-parallel-size", llvm::Twine(exported.pp));
  if (uniform->sp)
    os << "--sequence-parallel\n";
  // Encoder-decoder models count the stacks separately.
  int64_t encoders = llvm::count_if(model.layers, [](const LayerProfile &l) {
    return l.kind == LayerKind::encoder;
  });
  int64_t decoders = uniform->blocks - encoders;
  if (encoders > 0 && decoders > 0) {
    argument("encoder-num-layers", llvm::Twine(encoders));
    argument("decoder-num-layers", llvm::Twine(decoders));
  } else {
    argument("num-layers", llvm::Twine(uniform->blocks));
  }
  // Uneven splits name the first (and, past two stages, the last) stage's
  // layers; the rest divide evenly.
  ArrayRef<int64_t> split = uniform->blocksPerStage;
  if (llvm::any_of(split, [&](int64_t n) { return n != split.front(); })) {
    argument("decoder-first-pipeline-num-layers", llvm::Twine(split.front()));
    if (split.size() > 2)
      argument("decoder-last-pipeline-num-layers", llvm::Twine(split.back()));
  }
  if (model.sequenceLength > 0)
    argument("seq-length", llvm::Twine(model.sequenceLength));
  argument("micro-batch-size", llvm::Twine(uniform->replicaMicroBatch));
  argument("global-batch-size", llvm::Twine(exported.globalBatch));
  if (uniform->recompute > 0) {
    argument("recompute-granularity", "full");
    argument("recompute-method", uniform->recomputeAll ? "uniform" : "block");
    argument("recompute-num-layers",
             llvm::Twine(uniform->recomputeAll ? 1 : uniform->recompute));
  }
  if (uniform->dpType == DataParallelType::zero1 && uniform->dp > 1)
    os << "--use-distributed-optimizer\n";
  if (exported.precision == Precision::bf16)
    os << "--bf16\n";
  else if (exported.precision == Precision::fp16)
    os << "--fp16\n";
  result.plan = std::move(uniform->plan);
  result.changes = std::move(uniform->changes);
  return result;
}
