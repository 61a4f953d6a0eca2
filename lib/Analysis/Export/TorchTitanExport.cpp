//===- TorchTitanExport.cpp - Plans as a torchtitan job config ------------===//
//
// torchtitan (TOML job config, [training], [parallelism] and
// [activation_checkpoint]): one TP degree with adjacent TP ranks and
// sequence parallelism always on with it, data parallelism replicated
// (ddp) or sharded by FSDP2 (data_parallel_shard_degree), resharding the
// weights after the forward (ZeRO-3) or not (ZeRO-2), any split of the
// blocks ("layers.N" split points), GPipe or 1F1B, bf16 or fp32, and full
// recomputation or every k-th block of every stage.
//
//===----------------------------------------------------------------------===//

#include "UniformPlan.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::galvatron;

static const TrainerRules &getTorchTitanRules() {
  static const TrainerRules rules = [] {
    TrainerRules r;
    r.trainer = "torchtitan";
    r.sequenceParallel = TrainerRules::SequenceParallel::withTensorParallel;
    r.dpTypes = r.pipelineDpTypes = {true, false, true, true};
    r.split = TrainerRules::Split::any;
    r.recompute = TrainerRules::Recompute::everyKthBlock;
    r.gpipe = true;
    r.fp16 = false;
    return r;
  }();
  return rules;
}

llvm::Expected<PlanExport>
mlir::galvatron::exportTorchTitan(const ParallelPlan &plan,
                                  const ModelProfile &model) {
  auto uniform = makeUniformPlan(plan, model, getTorchTitanRules());
  if (!uniform)
    return uniform.takeError();
  const ParallelPlan &exported = uniform->plan;
  PlanExport result;
  llvm::raw_string_ostream os(result.text);
  int64_t dp = uniform->dp;
  bool sharded = uniform->dpType != DataParallelType::ddp && dp > 1;
  // Sequences per data-parallel rank per iteration; with a pipeline they
  // split into micro-batches, without one they accumulate.
  int64_t local = exported.pp > 1 ? exported.globalBatch / dp
                                  : uniform->replicaMicroBatch;
  os << "[training]\n";
  os << "local_batch_size = " << local << "\n";
  os << "global_batch_size = " << exported.globalBatch << "\n";
  if (model.sequenceLength > 0)
    os << "seq_len = " << model.sequenceLength << "\n";
  os << "mixed_precision_param = \""
     << (exported.precision == Precision::fp32 ? "float32" : "bfloat16")
     << "\"\n\n";
  os << "[parallelism]\n";
  os << "data_parallel_replicate_degree = " << (sharded ? 1 : dp) << "\n";
  os << "data_parallel_shard_degree = " << (sharded ? dp : 1) << "\n";
  if (sharded)
    os << "fsdp_reshard_after_forward = \""
       << (uniform->dpType == DataParallelType::zero3 ? "always" : "never")
       << "\"\n";
  os << "tensor_parallel_degree = " << uniform->tp << "\n";
  os << "pipeline_parallel_degree = " << exported.pp << "\n";
  if (exported.pp > 1) {
    os << "pipeline_parallel_schedule = \""
       << (exported.schedule == PipelineSchedule::gpipe ? "GPipe" : "1F1B")
       << "\"\n";
    os << "pipeline_parallel_microbatch_size = " << uniform->replicaMicroBatch
       << "\n";
    SmallVector<std::string> points;
    int64_t first = 0;
    for (int64_t count : ArrayRef<int64_t>(uniform->blocksPerStage).drop_back()) {
      first += count;
      points.push_back("\"layers." + std::to_string(first) + "\"");
    }
    os << "pipeline_parallel_split_points = [" << llvm::join(points, ", ")
       << "]\n";
  }
  os << "\n[activation_checkpoint]\n";
  if (uniform->recompute == 0) {
    os << "mode = \"none\"\n";
  } else if (uniform->recomputeAll) {
    os << "mode = \"full\"\n";
  } else {
    os << "mode = \"selective\"\n";
    os << "selective_ac_option = \"" << uniform->recompute << "\"\n";
  }
  result.plan = std::move(uniform->plan);
  result.changes = std::move(uniform->changes);
  return result;
}
