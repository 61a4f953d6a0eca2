//===- PlanTargets.cpp - Searches restricted to what a trainer runs -------===//
//
// Galvatron's runtime gives the layers outside the transformer blocks one
// strategy (vtp, vsp, embed_sdp), the other layers one default
// data-parallel type besides ZeRO-3 (ddp or zero2; it has no ZeRO-1),
// Megatron sequence parallelism only as a flag for every layer, and
// places the embeddings and the head with the first and last block.
// Megatron-LM runs one TP degree (and sequence parallelism or not) and one
// data-parallel flavour (DDP, or its distributed optimizer: ZeRO-1) for
// every layer, without ZeRO-3 or Ulysses. Each target is searched as the
// best of restricted spaces, each bounded by the best plan so far.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/PlanSearch.h"
#include "galvatron/Support/Error.h"

#include "llvm/Support/FormatVariadic.h"

#include <chrono>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::galvatron;

std::optional<PlanTarget> mlir::galvatron::parsePlanTarget(StringRef name) {
  if (name == "any")
    return PlanTarget::any;
  if (name == "galvatron")
    return PlanTarget::galvatron;
  if (name == "megatron")
    return PlanTarget::megatron;
  return std::nullopt;
}

SmallVector<SearchSpace>
mlir::galvatron::getTargetSpaces(const SearchSpace &space, PlanTarget target,
                                 int64_t maxTp) {
  SmallVector<SearchSpace> spaces;
  auto allowed = [&](DataParallelType type) {
    return space.dpTypes[static_cast<int>(type)];
  };
  SmallVector<int64_t> degrees;
  for (int64_t tp = std::max<int64_t>(1, space.minTp); tp <= maxTp; tp *= 2)
    degrees.push_back(tp);
  if (target == PlanTarget::galvatron) {
    for (DataParallelType type :
         {DataParallelType::ddp, DataParallelType::zero2}) {
      if (!allowed(type))
        continue;
      for (int64_t tp : degrees)
        for (bool ulysses : {false, true})
          for (bool zero3 : {false, true}) {
            if ((ulysses && (tp == 1 || !space.ulysses)) ||
                (zero3 && !allowed(DataParallelType::zero3)))
              continue;
            SearchSpace restricted = space;
            std::fill(std::begin(restricted.dpTypes),
                      std::end(restricted.dpTypes), false);
            restricted.dpTypes[static_cast<int>(type)] = true;
            restricted.dpTypes[static_cast<int>(DataParallelType::zero3)] =
                allowed(DataParallelType::zero3);
            restricted.sequenceParallel = false;
            restricted.stagesStartAtBlocks = true;
            restricted.outside = UniformStrategy{tp, false, ulysses, zero3,
                                                 /*checkpointing=*/false};
            spaces.push_back(restricted);
          }
    }
    return spaces;
  }
  for (DataParallelType type :
       {DataParallelType::ddp, DataParallelType::zero1}) {
    if (!allowed(type))
      continue;
    for (int64_t tp : degrees)
      for (bool sp : {false, true}) {
        if (sp && (tp == 1 || !space.sequenceParallel))
          continue;
        SearchSpace restricted = space;
        std::fill(std::begin(restricted.dpTypes), std::end(restricted.dpTypes),
                  false);
        restricted.dpTypes[static_cast<int>(type)] = true;
        restricted.ulysses = false;
        restricted.stagesStartAtBlocks = true;
        restricted.blocks =
            UniformStrategy{tp, sp, false, false, space.checkpointing};
        restricted.outside = UniformStrategy{tp, sp, false, false, false};
        spaces.push_back(restricted);
      }
  }
  return spaces;
}

llvm::Expected<SearchResult>
mlir::galvatron::searchPlanFor(const ModelProfile &model,
                               const ClusterSpec &cluster,
                               const SearchOptions &options,
                               PlanTarget target) {
  if (target == PlanTarget::any)
    return searchPlan(model, cluster, options);
  auto started = std::chrono::steady_clock::now();
  int64_t maxTp = options.space.maxTp > 0 ? options.space.maxTp
                                          : cluster.devicesPerNode;
  maxTp = std::min(maxTp, cluster.getDevices());
  std::optional<SearchResult> best;
  double bound = std::numeric_limits<double>::infinity();
  SearchStatistics total;
  std::optional<std::string> firstError;
  for (const SearchSpace &space :
       getTargetSpaces(options.space, target, maxTp)) {
    SearchOptions restricted = options;
    restricted.space = space;
    auto result = searchPlanBelow(model, cluster, restricted, bound);
    if (!result) {
      std::string message = llvm::toString(result.takeError());
      if (!firstError)
        firstError = message;
      continue;
    }
    if (!*result)
      continue;
    SearchResult &found = **result;
    total.strategiesEvaluated += found.statistics.strategiesEvaluated;
    total.configurations += found.statistics.configurations;
    total.configurationsExplored += found.statistics.configurationsExplored;
    total.dpSteps += found.statistics.dpSteps;
    total.dpStates += found.statistics.dpStates;
    total.batches = std::max(total.batches, found.statistics.batches);
    bound = found.evaluation.iterationTime /
            static_cast<double>(found.plan.globalBatch);
    best = std::move(found);
  }
  StringRef name = target == PlanTarget::galvatron ? "Galvatron" : "Megatron-LM";
  if (!best)
    return makeError(llvm::formatv("no plan {0} can run fits: {1}", name,
                                   firstError.value_or("its space is empty")));
  total.seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
          .count();
  best->statistics = total;
  return std::move(*best);
}
