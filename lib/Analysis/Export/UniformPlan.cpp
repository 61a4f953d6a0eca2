//===- UniformPlan.cpp - The closest plan a trainer can express -----------===//

#include "UniformPlan.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>

using namespace mlir;
using namespace mlir::galvatron;

/// The data-parallel type a layer effectively has ("-" without data
/// parallelism is reported as ddp).
static DataParallelType effectiveType(const ParallelPlan &plan,
                                      const LayerStrategy &strategy) {
  return plan.getDp(strategy) > 1 ? strategy.dpType : DataParallelType::ddp;
}

/// The value most blocks have; ties go to the largest.
template <typename T>
static T mostCommon(ArrayRef<T> values) {
  std::map<T, int64_t> counts;
  for (T value : values)
    ++counts[value];
  T best = values.front();
  int64_t bestCount = 0;
  for (auto [value, count] : counts)
    if (count >= bestCount) {
      best = value;
      bestCount = count;
    }
  return best;
}

/// The allowed type nearest to `type`: the first that shards at least as
/// much, else the most sharding one below it.
static DataParallelType closestType(DataParallelType type,
                                    const std::array<bool, 4> &allowed) {
  int wanted = static_cast<int>(type);
  for (int index = wanted; index < 4; ++index)
    if (allowed[index])
      return static_cast<DataParallelType>(index);
  for (int index = wanted - 1; index >= 0; --index)
    if (allowed[index])
      return static_cast<DataParallelType>(index);
  return DataParallelType::ddp;
}

/// The split `rules` allow nearest to `blocks` (blocks per stage); empty
/// when there is none.
static SmallVector<int64_t> closestSplit(ArrayRef<int64_t> blocks,
                                         TrainerRules::Split split) {
  SmallVector<int64_t> result(blocks.begin(), blocks.end());
  int64_t pp = blocks.size(), total = 0;
  for (int64_t count : blocks)
    total += count;
  if (split == TrainerRules::Split::any || pp == 1)
    return result;
  if (split == TrainerRules::Split::even) {
    for (int64_t k = 0; k < pp; ++k)
      result[k] = total / pp + (k < total % pp ? 1 : 0);
    return result;
  }
  // First and last free, the middle equal, every stage at least one block:
  // the candidate with the fewest blocks moved (ties: the first found).
  if (total < pp)
    return {};
  int64_t bestDistance = std::numeric_limits<int64_t>::max();
  for (int64_t middle = 1; middle * (pp - 2) <= total - 2 || pp == 2;
       ++middle) {
    int64_t inner = pp == 2 ? 0 : middle * (pp - 2);
    for (int64_t first = 1; first <= total - inner - 1; ++first) {
      int64_t last = total - inner - first;
      SmallVector<int64_t> candidate(pp, middle);
      candidate.front() = first;
      candidate.back() = last;
      int64_t distance = 0;
      for (int64_t k = 0; k < pp; ++k)
        distance += std::abs(candidate[k] - blocks[k]);
      if (distance < bestDistance) {
        bestDistance = distance;
        result = candidate;
      }
    }
    if (pp == 2)
      break;
  }
  return result;
}

/// "tp 2 -> 4"-style differences of one layer, empty when none.
static std::string describeDifference(const ParallelPlan &from,
                                      const LayerStrategy &a,
                                      const ParallelPlan &to,
                                      const LayerStrategy &b) {
  SmallVector<std::string> parts;
  auto onOff = [](bool flag) { return flag ? "on" : "off"; };
  if (a.stage != b.stage)
    parts.push_back(llvm::formatv("stage {0} -> {1}", a.stage, b.stage));
  if (a.tp != b.tp)
    parts.push_back(llvm::formatv("tp {0} -> {1}", a.tp, b.tp));
  bool aConsecutive = a.consecutive || a.tp == 1 || from.getDp(a) == 1;
  bool bConsecutive = b.consecutive || b.tp == 1 || to.getDp(b) == 1;
  if (aConsecutive != bConsecutive)
    parts.push_back("tp ranks strided -> adjacent");
  DataParallelType aType = effectiveType(from, a), bType = effectiveType(to, b);
  if (aType != bType && (from.getDp(a) > 1 || to.getDp(b) > 1))
    parts.push_back(llvm::formatv("dp-type {0} -> {1}",
                                  stringifyDataParallelType(aType),
                                  stringifyDataParallelType(bType)));
  bool aSp = a.sp && a.tp > 1, bSp = b.sp && b.tp > 1;
  if (aSp != bSp)
    parts.push_back(llvm::formatv("sp {0} -> {1}", onOff(aSp), onOff(bSp)));
  if (a.usesUlysses() != b.usesUlysses())
    parts.push_back(llvm::formatv("ulysses {0} -> {1}", onOff(a.usesUlysses()),
                                  onOff(b.usesUlysses())));
  if (a.ckpt != b.ckpt)
    parts.push_back(
        llvm::formatv("ckpt {0} -> {1}", onOff(a.ckpt), onOff(b.ckpt)));
  return llvm::join(parts, ", ");
}

/// Runs of consecutive layers with the same difference.
static SmallVector<std::string> describeChanges(const ParallelPlan &from,
                                                const ParallelPlan &to,
                                                const ModelProfile &model) {
  SmallVector<std::string> lines;
  size_t count = model.layers.size();
  for (size_t first = 0; first < count;) {
    std::string difference =
        describeDifference(from, from.layers[first], to, to.layers[first]);
    size_t last = first;
    while (last + 1 < count &&
           describeDifference(from, from.layers[last + 1], to,
                              to.layers[last + 1]) == difference)
      ++last;
    if (!difference.empty()) {
      std::string name = model.layers[first].name;
      if (last > first)
        name += " .. " + model.layers[last].name + " (" +
                std::to_string(last - first + 1) + ")";
      lines.push_back(name + ": " + difference);
    }
    first = last + 1;
  }
  return lines;
}

llvm::Expected<UniformPlan>
mlir::galvatron::makeUniformPlan(const ParallelPlan &plan,
                                 const ModelProfile &model,
                                 const TrainerRules &rules) {
  UniformPlan result;
  SmallVector<int64_t> tps;
  SmallVector<bool> sps;
  SmallVector<DataParallelType> types;
  SmallVector<int64_t> blocksPerStage(plan.pp, 0), recomputedPerStage(plan.pp, 0);
  for (auto [index, layer] : llvm::enumerate(model.layers)) {
    if (!layer.isTransformerBlock())
      continue;
    const LayerStrategy &strategy = plan.layers[index];
    // Ulysses ranks split no weight: the layer is not tensor-parallel.
    tps.push_back(strategy.getWeightSplit());
    if (strategy.tp > 1)
      sps.push_back(strategy.sp);
    if (plan.getDp(strategy) > 1)
      types.push_back(strategy.dpType);
    ++blocksPerStage[strategy.stage];
    if (strategy.ckpt)
      ++recomputedPerStage[strategy.stage];
  }
  if (tps.empty())
    return makeError(rules.trainer + " plans transformer blocks, and '" +
                     model.model + "' has none");
  result.blocks = tps.size();

  // One strategy for every layer: the blocks' most common one.
  result.tp = mostCommon<int64_t>(tps);
  switch (rules.sequenceParallel) {
  case TrainerRules::SequenceParallel::never:
    result.sp = false;
    break;
  case TrainerRules::SequenceParallel::optional:
    result.sp = result.tp > 1 && !sps.empty() && mostCommon<bool>(sps);
    break;
  case TrainerRules::SequenceParallel::withTensorParallel:
    result.sp = result.tp > 1;
    break;
  }
  DataParallelType wanted = types.empty()
                                ? DataParallelType::ddp
                                : mostCommon<DataParallelType>(types);
  result.dpType = closestType(
      wanted, plan.pp > 1 ? rules.pipelineDpTypes : rules.dpTypes);

  ParallelPlan &uniform = result.plan;
  uniform = plan;
  SmallVector<std::string> planChanges;
  if (!rules.gpipe && plan.schedule == PipelineSchedule::gpipe) {
    uniform.schedule = PipelineSchedule::pipedream_flush;
    if (plan.pp > 1)
      planChanges.push_back("schedule gpipe -> 1f1b (" + rules.trainer.str() +
                            " has no GPipe schedule)");
  }
  if (!rules.fp16 && plan.precision == Precision::fp16) {
    uniform.precision = Precision::bf16;
    planChanges.push_back("precision fp16 -> bf16 (" + rules.trainer.str() +
                          " trains in bf16 or fp32)");
  }
  result.blocksPerStage = closestSplit(blocksPerStage, rules.split);
  if (result.blocksPerStage.empty())
    return makeError(llvm::formatv("{0} puts a transformer block on every "
                                   "stage: pp = {1} exceeds the {2} blocks",
                                   rules.trainer, plan.pp, result.blocks));
  if (std::string error = assignStages(uniform, model, result.blocksPerStage);
      !error.empty())
    return makeError("cannot split the model as " + rules.trainer + " does: " +
                     error);

  // Recomputation: at least as many blocks per stage as the plan has.
  int64_t most = 0, largestStage = 0;
  bool any = false, overHalf = false;
  for (int64_t k = 0; k < plan.pp; ++k) {
    int64_t count = std::min(recomputedPerStage[k], result.blocksPerStage[k]);
    most = std::max(most, count);
    largestStage = std::max(largestStage, result.blocksPerStage[k]);
    any |= count > 0;
    overHalf |= 2 * count > result.blocksPerStage[k];
  }
  switch (rules.recompute) {
  case TrainerRules::Recompute::firstBlocksPerStage:
    result.recompute = most;
    result.recomputeAll = most >= largestStage;
    break;
  case TrainerRules::Recompute::everyKthBlock:
    if (any && overHalf) {
      result.recompute = 1;
    } else if (any) {
      // The longest period that still recomputes enough in every stage.
      result.recompute = 2;
      for (int64_t period = 3; period <= largestStage; ++period) {
        bool enough = true;
        for (int64_t k = 0; k < plan.pp; ++k)
          enough &= result.blocksPerStage[k] / period >=
                    std::min(recomputedPerStage[k], result.blocksPerStage[k]);
        if (!enough)
          break;
        result.recompute = period;
      }
    }
    result.recomputeAll = result.recompute == 1;
    break;
  case TrainerRules::Recompute::allOrNone:
    result.recompute = any ? 1 : 0;
    result.recomputeAll = any;
    break;
  }

  int64_t position = 0, stage = -1;
  for (auto [index, layer] : llvm::enumerate(model.layers)) {
    LayerStrategy &strategy = uniform.layers[index];
    // A layer TP cannot split stays whole, as it would in the trainer.
    strategy.tp = layer.supportsTP(result.tp) ? result.tp : 1;
    strategy.consecutive = true;
    strategy.ulysses = false;
    strategy.dpType = result.dpType;
    strategy.sp = result.sp && layer.sequenceParallel && strategy.tp > 1;
    strategy.ckpt = false;
    if (!layer.isTransformerBlock())
      continue;
    if (strategy.stage != stage) {
      stage = strategy.stage;
      position = 0;
    }
    switch (rules.recompute) {
    case TrainerRules::Recompute::firstBlocksPerStage:
      strategy.ckpt = position < result.recompute;
      break;
    case TrainerRules::Recompute::everyKthBlock:
      strategy.ckpt =
          result.recompute > 0 && (position + 1) % result.recompute == 0;
      break;
    case TrainerRules::Recompute::allOrNone:
      strategy.ckpt = result.recompute > 0;
      break;
    }
    ++position;
  }
  if (std::string error = uniform.check(model); !error.empty())
    return makeError(rules.trainer + " cannot run this plan: its closest "
                                     "uniform plan does not suit the "
                                     "model: " +
                     error);
  result.dp = uniform.getDevicesPerStage() / result.tp;
  result.replicaMicroBatch = uniform.getMicroBatchSize() / result.dp;
  result.changes = std::move(planChanges);
  for (std::string &line : describeChanges(plan, uniform, model))
    result.changes.push_back(std::move(line));
  return result;
}
