//===- PlanReport.cpp - Human and machine readable plan reports -----------===//

#include "galvatron/Analysis/PlanReport.h"

#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::galvatron;

static constexpr double kGiB = double(1ull << 30);

static StringRef scheduleName(PipelineSchedule schedule) {
  return schedule == PipelineSchedule::gpipe ? "gpipe" : "1f1b";
}

namespace {
/// A run of consecutive layers with the same kind and strategy.
struct LayerRun {
  unsigned first, last;
};
} // namespace

static SmallVector<LayerRun> getRuns(const PlanReportInput &input) {
  SmallVector<LayerRun> runs;
  const ParallelPlan &plan = *input.plan;
  for (unsigned index = 0; index < plan.layers.size(); ++index) {
    if (!runs.empty()) {
      unsigned previous = runs.back().last;
      if (plan.layers[previous] == plan.layers[index] &&
          input.model->layers[previous].kind == input.model->layers[index].kind) {
        runs.back().last = index;
        continue;
      }
    }
    runs.push_back({index, index});
  }
  return runs;
}

/// The vocabulary `layer` splits and its padded size under `strategy`, when
/// padding it changes it.
static std::optional<std::pair<int64_t, int64_t>>
getPaddedVocabulary(const LayerProfile &layer, const LayerStrategy &strategy,
                    int64_t divisor) {
  for (const LayerProfile::Parameter &param : layer.parameters) {
    if (!param.vocabulary || param.segments.size() != 1)
      continue;
    int64_t size = param.segments.front();
    int64_t padded = padVocabulary(size, strategy.getWeightSplit(), divisor);
    if (padded != size)
      return std::make_pair(size, padded);
  }
  return std::nullopt;
}

/// "ddp" where data parallelism exists, "-" where it does not.
static std::string dpTypeName(const ParallelPlan &plan,
                              const LayerStrategy &strategy) {
  if (plan.getParamDp(strategy) == 1)
    return "-";
  return stringifyDataParallelType(strategy.dpType).str();
}

/// The layer's sequence parallelism: "megatron", "ulysses" or "-".
static StringRef sequenceParallelName(const LayerStrategy &strategy) {
  if (strategy.usesUlysses())
    return "ulysses";
  return strategy.sp && strategy.tp > 1 ? "megatron" : "-";
}

void mlir::galvatron::printPlanReport(llvm::raw_ostream &os,
                                      const PlanReportInput &input) {
  const ParallelPlan &plan = *input.plan;
  const PlanEvaluation &evaluation = *input.evaluation;
  const ClusterSpec &cluster = *input.cluster;
  const ModelProfile &model = *input.model;
  os << "plan for " << model.model << " on " << plan.devices << " devices ("
     << cluster.name << ", " << cluster.nodes << " x "
     << cluster.devicesPerNode << ", "
     << llvm::format("%.2f", evaluation.memoryBudget / kGiB)
     << " GiB per device)\n";
  os << "  pp " << plan.pp << ", " << plan.microBatches
     << " micro-batches of " << plan.getMicroBatchSize()
     << " sequences (global batch " << plan.globalBatch << "), schedule "
     << scheduleName(plan.schedule) << ", "
     << stringifyPrecision(plan.precision) << "\n";

  os << "layers\n";
  os << llvm::format("  %-44s %-10s %5s %4s %5s %-7s %-6s %-8s %-4s\n",
                     "layer", "kind", "stage", "tp", "dp", "dp-type",
                     "consec", "sp", "ckpt");
  for (const LayerRun &run : getRuns(input)) {
    const LayerStrategy &strategy = plan.layers[run.first];
    std::string name = model.layers[run.first].name;
    if (run.last > run.first)
      name += " .. " + model.layers[run.last].name + " (" +
              std::to_string(run.last - run.first + 1) + ")";
    bool consecutive = strategy.consecutive || strategy.tp == 1 ||
                       plan.getDp(strategy) == 1;
    os << llvm::format(
        "  %-44s %-10s %5lld %4lld %5lld %-7s %-6s %-8s %-4s\n", name.c_str(),
        stringifyLayerKind(model.layers[run.first].kind).str().c_str(),
        (long long)strategy.stage, (long long)strategy.tp,
        (long long)plan.getDp(strategy), dpTypeName(plan, strategy).c_str(),
        consecutive ? "yes" : "no",
        sequenceParallelName(strategy).str().c_str(),
        strategy.ckpt ? "yes" : "no");
  }
  for (auto [index, strategy] : llvm::enumerate(plan.layers))
    if (auto padded = getPaddedVocabulary(model.layers[index], strategy,
                                          plan.vocabDivisor))
      os << "  '" << model.layers[index].name << "' splits a vocabulary of "
         << padded->first << " padded to " << padded->second << " (a multiple of "
         << plan.vocabDivisor << " x tp " << strategy.tp << ")\n";

  os << "stages (memory in GiB per device; time in seconds per iteration)\n";
  os << llvm::format("  %5s %7s %7s %7s %9s %11s %8s %7s | %8s %8s %8s %8s "
                     "%8s\n",
                     "stage", "layers", "params", "grads", "optimizer",
                     "activations", "buffers", "total", "compute", "tp/sp",
                     "dp", "p2p", "bubble");
  for (auto [k, stage] : llvm::enumerate(evaluation.stages))
    os << llvm::format("  %5zu %7u %7.2f %7.2f %9.2f %11.2f %8.2f %7.2f | "
                       "%8.3f %8.3f %8.3f %8.3f %8.3f\n",
                       k, stage.endLayer - stage.firstLayer,
                       stage.params / kGiB, stage.grads / kGiB,
                       stage.optimizerStates / kGiB, stage.activations / kGiB,
                       stage.buffers / kGiB, stage.getMemory() / kGiB,
                       stage.compute, stage.tensorParallel,
                       stage.dataParallel, stage.pipeline, stage.bubble);

  os << "predicted\n";
  os << llvm::format("  iteration time       %.4f s\n", evaluation.iterationTime);
  os << llvm::format("  throughput           %.0f tokens/s\n",
                     evaluation.tokensPerSecond);
  os << llvm::format("  per device           %.1f TFLOP/s (recomputation "
                     "counted), MFU %.1f%%\n",
                     evaluation.tflopsPerDevice, 100.0 * evaluation.mfu);
  os << llvm::format("  peak memory          %.2f GiB of %.2f usable (budget "
                     "%.2f)%s\n",
                     evaluation.peakMemory / kGiB,
                     evaluation.usableMemory / kGiB,
                     evaluation.memoryBudget / kGiB,
                     evaluation.fits() ? "" : "  DOES NOT FIT");
  if (const SearchStatistics *statistics = input.statistics) {
    os << llvm::format("search: %lld strategies priced, %lld of %lld "
                       "configurations explored, %lld DP steps, %.3f s\n",
                       (long long)statistics->strategiesEvaluated,
                       (long long)statistics->configurationsExplored,
                       (long long)statistics->configurations,
                       (long long)statistics->dpSteps, statistics->seconds);
    if (statistics->batches > 0)
      os << "batch search: the configurations covered "
         << statistics->batches << " global batches; " << plan.globalBatch
         << " gives the most sequences per second\n";
  }
}

llvm::json::Object
mlir::galvatron::getPlanReportJSON(const PlanReportInput &input) {
  const ParallelPlan &plan = *input.plan;
  const PlanEvaluation &evaluation = *input.evaluation;
  const ModelProfile &model = *input.model;
  llvm::json::Array layers;
  for (auto [index, strategy] : llvm::enumerate(plan.layers)) {
    const LayerCost &cost = evaluation.layers[index];
    llvm::json::Object layer{
        {"name", model.layers[index].name},
        {"kind", stringifyLayerKind(model.layers[index].kind)},
        {"stage", strategy.stage},
        {"tp", strategy.tp},
        {"dp", plan.getDp(strategy)},
        {"dp_type", dpTypeName(plan, strategy)},
        {"tp_consecutive", strategy.consecutive || strategy.tp == 1 ||
                               plan.getDp(strategy) == 1},
        {"sp", strategy.sp && strategy.tp > 1 && !strategy.usesUlysses()},
        {"ulysses", strategy.usesUlysses()},
        {"ckpt", strategy.ckpt},
        {"micro_batch_seconds", cost.getMicroBatchTime(plan.microBatches)},
        {"state_bytes", cost.getStates()},
        {"activation_bytes", cost.activations},
    };
    if (auto padded = getPaddedVocabulary(model.layers[index], strategy,
                                          plan.vocabDivisor))
      layer["vocabulary"] = llvm::json::Object{{"size", padded->first},
                                               {"padded", padded->second}};
    layers.push_back(std::move(layer));
  }
  llvm::json::Array stages;
  for (const StageEvaluation &stage : evaluation.stages)
    stages.push_back(llvm::json::Object{
        {"first_layer", stage.firstLayer},
        {"layers", stage.endLayer - stage.firstLayer},
        {"in_flight", stage.inFlight},
        {"micro_batch_seconds", stage.microBatchTime},
        {"memory_bytes",
         llvm::json::Object{{"params", stage.params},
                            {"grads", stage.grads},
                            {"optimizer", stage.optimizerStates},
                            {"activations", stage.activations},
                            {"buffers", stage.buffers},
                            {"total", stage.getMemory()}}},
        {"seconds",
         llvm::json::Object{{"compute", stage.compute},
                            {"tensor_parallel", stage.tensorParallel},
                            {"data_parallel", stage.dataParallel},
                            {"pipeline", stage.pipeline},
                            {"bubble", stage.bubble}}},
    });
  llvm::json::Object result{
      {"model", model.model},
      {"cluster", input.cluster->name},
      {"devices", plan.devices},
      {"devices_per_node", plan.devicesPerNode},
      {"pp", plan.pp},
      {"micro_batches", plan.microBatches},
      {"global_batch", plan.globalBatch},
      {"schedule", scheduleName(plan.schedule)},
      {"precision", stringifyPrecision(plan.precision)},
      {"vocab_divisor", plan.vocabDivisor},
      {"layers", std::move(layers)},
      {"stages", std::move(stages)},
      {"iteration_seconds", evaluation.iterationTime},
      {"tokens_per_second", evaluation.tokensPerSecond},
      {"tflops_per_device", evaluation.tflopsPerDevice},
      {"mfu", evaluation.mfu},
      {"peak_memory_bytes", evaluation.peakMemory},
      {"usable_memory_bytes", evaluation.usableMemory},
      {"memory_budget_bytes", evaluation.memoryBudget},
      {"fits", evaluation.fits()},
  };
  if (const SearchStatistics *statistics = input.statistics)
    result["search"] = llvm::json::Object{
        {"strategies_priced", statistics->strategiesEvaluated},
        {"configurations", statistics->configurations},
        {"configurations_explored", statistics->configurationsExplored},
        {"dp_steps", statistics->dpSteps},
        {"seconds", statistics->seconds},
        {"batches", statistics->batches},
    };
  return result;
}
