//===- ApplyStrategy.cpp - Write a hand-written plan ----------------------===//

#include "galvatron/Analysis/GalvatronStrategy.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/PlanUtils.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_APPLYSTRATEGY
#include "galvatron/Transforms/Passes.h.inc"

namespace {
struct ApplyStrategyPass : impl::ApplyStrategyBase<ApplyStrategyPass> {
  using ApplyStrategyBase::ApplyStrategyBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    constexpr StringRef pass = "--galvatron-apply-strategy";
    auto fail = [&](const llvm::Twine &message) {
      emitPassError(module, pass, message);
      signalPassFailure();
    };
    FailureOr<PlanningInput> input = getPlanningInput(
        module, pass, {cluster, nodes, devices, memory, profiles}, precision,
        globalBatch);
    if (failed(input))
      return signalPassFailure();
    const ModelProfile *model = &input->input.model;
    const CostModelSetup *setup = &input->setup;
    const ClusterSpec &spec = setup->cluster;
    Precision *trainingPrecision = &input->precision;

    ParallelPlan plan;
    if (!json.empty()) {
      SmallVector<StringRef> given;
      for (auto [name, set] :
           {std::pair<StringRef, bool>{"pp", pp.hasValue()},
            {"tp", tp.hasValue()},
            {"fsdp", fsdp.hasValue()},
            {"dp-type", dpType.hasValue()},
            {"ulysses", ulysses.hasValue()},
            {"ckpt", ckpt.hasValue()},
            {"chunks", chunks.hasValue()},
            {"schedule", schedule.hasValue()},
            {"tp-consecutive", tpConsecutive.hasValue()},
            {"vtp", vtp.hasValue()},
            {"vsp", vsp.hasValue()},
            {"embed-sdp", embedSdp.hasValue()},
            {"pp-division", ppDivision.hasValue()},
            {"global-batch", globalBatch.hasValue()}})
        if (set)
          given.push_back(name);
      if (!given.empty())
        return fail("json=" + json + " gives the whole plan; drop " +
                    llvm::join(given, ", "));
      auto buffer = llvm::MemoryBuffer::getFile(json, /*IsText=*/true);
      if (!buffer)
        return fail("cannot read '" + json +
                    "': " + buffer.getError().message());
      // sp: Galvatron's runtime flag --sequence-parallel.
      auto parsed = parseGalvatronStrategy(
          (*buffer)->getBuffer(), json, *model, spec.getDevices(),
          spec.devicesPerNode, *trainingPrecision, sp);
      if (!parsed) {
        emitPassError(module, pass, parsed.takeError());
        return signalPassFailure();
      }
      plan = std::move(*parsed);
      plan.vocabDivisor = vocabDivisor;
    } else {
      plan.devices = spec.getDevices();
      plan.devicesPerNode = spec.devicesPerNode;
      plan.pp = pp;
      plan.microBatches = chunks;
      plan.globalBatch = input->globalBatch;
      plan.precision = *trainingPrecision;
      plan.vocabDivisor = vocabDivisor;
      if (schedule == "gpipe")
        plan.schedule = PipelineSchedule::gpipe;
      else if (schedule == "1f1b" || schedule == "pipedream_flush")
        plan.schedule = PipelineSchedule::pipedream_flush;
      else
        return fail("unknown schedule '" + schedule +
                    "' (expected gpipe, 1f1b or pipedream_flush)");
      std::optional<DataParallelType> type = symbolizeDataParallelType(dpType);
      if (!type)
        return fail("unknown dp-type '" + dpType +
                    "' (expected ddp, zero1, zero2 or zero3)");
      if (pp < 1 || tp < 1 || chunks < 1 || vtp < 0)
        return fail("pp, tp and chunks must be positive");
      if (plan.devices % pp != 0)
        return fail(llvm::formatv("pp = {0} does not divide the {1} devices",
                                  pp, plan.devices)
                        .str());
      SmallVector<int64_t> division(ppDivision.begin(), ppDivision.end());
      if (std::string error = assignStages(plan, *model, division);
          !error.empty())
        return fail("pp-division: " + error);
      for (auto [index, strategy] : llvm::enumerate(plan.layers)) {
        bool block = model->layers[index].isTransformerBlock();
        strategy.tp = block ? tp : (vtp > 0 ? vtp : tp);
        strategy.consecutive = tpConsecutive;
        bool sharded = fsdp || (!block && embedSdp);
        strategy.dpType = sharded ? DataParallelType::zero3 : *type;
        strategy.ulysses = ulysses && strategy.tp > 1;
        strategy.sp = (block ? sp : vsp) && strategy.tp > 1 && !ulysses;
        strategy.ckpt = block && ckpt;
      }
    }
    if (vocabDivisor < 1)
      return fail("vocab-divisor must be positive");
    if (failed(checkPlanSuitsModel(module, pass, plan, *model)))
      return signalPassFailure();
    PlanEvaluation evaluation =
        evaluatePlan(*model, plan, spec, setup->memoryBudget);
    if (checkMemory && !evaluation.fits()) {
      unsigned worst = 0;
      for (auto [k, stage] : llvm::enumerate(evaluation.stages))
        if (stage.getMemory() >=
            evaluation.stages[worst].getMemory())
          worst = k;
      return fail(
          llvm::formatv("the plan needs {0} per device (stage {1}) but only "
                        "{2} of the {3} budget are usable",
                        formatBytes(evaluation.peakMemory), worst,
                        formatBytes(evaluation.usableMemory),
                        formatBytes(evaluation.memoryBudget))
              .str());
    }
    writePlan(module, input->input.function, plan);
    if (!report.empty())
      if (llvm::Error error =
              writePlanReport(report, reportFile,
                              {&*model, &plan, &evaluation, &spec, nullptr}))
        return fail(llvm::toString(std::move(error)));
  }
};
} // namespace
} // namespace mlir::galvatron
