//===- DeepSpeedExport.cpp - Plans as a DeepSpeed config ------------------===//
//
// DeepSpeed (JSON config): data parallelism with ZeRO stage 0-3 (only 0
// and 1 with its pipeline engine), AutoTP tensor parallelism with adjacent
// ranks and no sequence parallelism, and batch sizes. Its pipeline
// (PipelineModule: stages, a uniform split of the blocks with the first
// stages taking the remainder, 1F1B, checkpointing all layers or none) and
// activation checkpointing without a pipeline are set in code: the export
// says how in its notes.
//
//===----------------------------------------------------------------------===//

#include "UniformPlan.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"

using namespace mlir;
using namespace mlir::galvatron;

static const TrainerRules &getDeepSpeedRules() {
  static const TrainerRules rules = [] {
    TrainerRules r;
    r.trainer = "DeepSpeed";
    r.sequenceParallel = TrainerRules::SequenceParallel::never;
    r.dpTypes = {true, true, true, true};
    r.pipelineDpTypes = {true, true, false, false};
    r.split = TrainerRules::Split::even;
    r.recompute = TrainerRules::Recompute::allOrNone;
    return r;
  }();
  return rules;
}

llvm::Expected<PlanExport>
mlir::galvatron::exportDeepSpeed(const ParallelPlan &plan,
                                 const ModelProfile &model) {
  auto uniform = makeUniformPlan(plan, model, getDeepSpeedRules());
  if (!uniform)
    return uniform.takeError();
  const ParallelPlan &exported = uniform->plan;
  llvm::json::Object config{
      {"train_batch_size", exported.globalBatch},
      {"train_micro_batch_size_per_gpu", uniform->replicaMicroBatch},
      {"gradient_accumulation_steps", exported.microBatches},
      {"zero_optimization",
       llvm::json::Object{
           {"stage", uniform->dp > 1 ? static_cast<int>(uniform->dpType) : 0}}},
  };
  if (exported.precision == Precision::bf16)
    config["bf16"] = llvm::json::Object{{"enabled", true}};
  else if (exported.precision == Precision::fp16)
    config["fp16"] = llvm::json::Object{{"enabled", true}};
  if (uniform->tp > 1)
    config["tensor_parallel"] = llvm::json::Object{{"autotp_size", uniform->tp}};
  PlanExport result;
  result.text =
      llvm::formatv("{0:2}", llvm::json::Value(std::move(config))).str() + "\n";
  if (exported.pp > 1)
    result.notes.push_back(llvm::formatv(
        "the pipeline is code: deepspeed.pipe.PipelineModule(..., "
        "num_stages={0}, partition_method=\"type:<block class>\", "
        "activation_checkpoint_interval={1}) splits the {2} blocks {3}",
        exported.pp, uniform->recomputeAll ? 1 : 0, uniform->blocks,
        [&] {
          std::string text;
          for (int64_t count : uniform->blocksPerStage)
            text += (text.empty() ? "" : "/") + std::to_string(count);
          return text;
        }()));
  else if (uniform->recomputeAll)
    result.notes.push_back(
        "activation checkpointing is code: checkpoint every transformer block "
        "(deepspeed.checkpointing.checkpoint, or the model's "
        "gradient_checkpointing_enable())");
  result.plan = std::move(uniform->plan);
  result.changes = std::move(uniform->changes);
  return result;
}
