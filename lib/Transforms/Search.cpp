//===- Search.cpp - Find the fastest plan that fits memory ----------------===//

#include "galvatron/Analysis/PlanSearch.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "llvm/Support/MathExtras.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_PLANSEARCH
#include "galvatron/Transforms/Passes.h.inc"

namespace {
struct PlanSearchPass : impl::PlanSearchBase<PlanSearchPass> {
  using PlanSearchBase::PlanSearchBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    constexpr StringRef pass = "--galvatron-search";
    auto fail = [&](const llvm::Twine &message) {
      emitPassError(module, pass, message);
      signalPassFailure();
    };
    FailureOr<PlanningInput> input = getPlanningInput(
        module, pass, {cluster, nodes, devices, memory, profiles}, precision,
        globalBatch);
    if (failed(input))
      return signalPassFailure();
    const ModelProfile &model = input->input.model;
    const CostModelSetup &setup = input->setup;

    SearchOptions options;
    options.globalBatch = input->globalBatch;
    if (maxBatch > 0) {
      if (globalBatch > 0 || microBatch > 0)
        return fail("a batch search (max-batch) chooses the global batch; "
                    "drop global-batch and micro-batch");
      options.batchRange = BatchRange{minBatch, maxBatch, batchStep};
    } else if (minBatch > 1 || batchStep > 1) {
      return fail("min-batch and batch-step need max-batch");
    }
    options.precision = input->precision;
    options.vocabDivisor = vocabDivisor;
    options.memoryBudget = setup.memoryBudget;
    options.memoryBins = memoryBins;
    SearchSpace &space = options.space;
    if (maxTp < 0 || (maxTp > 0 && !llvm::isPowerOf2_64(maxTp)))
      return fail("max-tp must be a power of two, got " + llvm::Twine(maxTp));
    if (minTp < 1 || !llvm::isPowerOf2_64(minTp))
      return fail("min-tp must be a power of two, got " + llvm::Twine(minTp));
    if (maxPp < 0 || pp < 0 || chunks < 0 || microBatch < 0)
      return fail("max-pp, pp, chunks and micro-batch must not be negative");
    int64_t fixedChunks = chunks;
    if (microBatch > 0) {
      if (options.globalBatch % microBatch != 0)
        return fail("micro-batch = " + llvm::Twine(microBatch) +
                    " does not divide the global batch of " +
                    llvm::Twine(options.globalBatch));
      int64_t implied = options.globalBatch / microBatch;
      if (chunks > 0 && chunks != implied)
        return fail("micro-batch = " + llvm::Twine(microBatch) + " makes " +
                    llvm::Twine(implied) + " micro-batches, not chunks = " +
                    llvm::Twine(chunks));
      fixedChunks = implied;
    }
    space.maxTp = maxTp;
    space.minTp = minTp;
    space.maxPp = maxPp;
    space.fixedPp = pp;
    space.fixedMicroBatches = fixedChunks;
    if (schedule == "gpipe")
      space.schedule = PipelineSchedule::gpipe;
    else if (schedule == "1f1b" || schedule == "pipedream_flush")
      space.schedule = PipelineSchedule::pipedream_flush;
    else if (schedule != "any")
      return fail("unknown schedule '" + schedule +
                  "' (expected any, gpipe or 1f1b)");
    for (const std::string &dimension : disable) {
      if (dimension == "tp")
        space.maxTp = 1;
      else if (dimension == "pp")
        space.maxPp = 1;
      else if (dimension == "sp")
        space.sequenceParallel = false;
      else if (dimension == "ulysses")
        space.ulysses = false;
      else if (dimension == "ckpt")
        space.checkpointing = false;
      else if (dimension == "tp-nonconsecutive")
        space.nonConsecutiveTp = false;
      else if (auto type = symbolizeDataParallelType(dimension))
        space.dpTypes[static_cast<int>(*type)] = false;
      else
        return fail("cannot disable '" + dimension +
                    "' (expected tp, pp, sp, ulysses, ckpt, ddp, zero1, "
                    "zero2, zero3 or tp-nonconsecutive)");
    }
    if (llvm::none_of(space.dpTypes, [](bool allowed) { return allowed; }))
      return fail("every data-parallel type is disabled");
    if (space.maxTp > 0 && space.minTp > space.maxTp)
      return fail("min-tp exceeds max-tp");

    std::optional<PlanTarget> planTarget = parsePlanTarget(target);
    if (!planTarget)
      return fail("unknown target '" + target +
                  "' (expected any, galvatron or megatron)");
    auto result = searchPlanFor(model, setup.cluster, options, *planTarget);
    if (!result)
      return fail(llvm::toString(result.takeError()));
    writePlan(module, input->input.function, result->plan);
    if (!report.empty())
      if (llvm::Error error = writePlanReport(
              report, reportFile,
              {&model, &result->plan, &result->evaluation, &setup.cluster,
               &result->statistics}))
        return fail(llvm::toString(std::move(error)));
  }
};
} // namespace
} // namespace mlir::galvatron
