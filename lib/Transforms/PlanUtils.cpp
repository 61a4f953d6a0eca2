//===- PlanUtils.cpp - What the plan passes share -------------------------===//

#include "galvatron/Transforms/PlanUtils.h"
#include "galvatron/Support/Error.h"

#include "galvatron/Analysis/GalvatronProfiles.h"
#include "galvatron/Support/OutputFile.h"

#include "mlir/Support/FileUtilities.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/ToolOutputFile.h"

using namespace mlir;
using namespace mlir::galvatron;

FailureOr<func::FuncOp> mlir::galvatron::getModelFunction(ModuleOp module,
                                                          StringRef pass) {
  func::FuncOp found;
  for (auto function : module.getOps<func::FuncOp>()) {
    if (function.getOps<LayerOp>().empty())
      continue;
    if (found) {
      emitPassError(module, pass,
                    "the module has several functions with layers (@" +
                        found.getSymName() + ", @" + function.getSymName() +
                        "); a plan describes one model function");
      return failure();
    }
    found = function;
  }
  if (!found) {
    emitPassError(module, pass,
                  "the module has no function with galvatron.layer ops");
    return failure();
  }
  return found;
}

llvm::Expected<CostModelSetup>
mlir::galvatron::makeCostModelSetup(const CostModelOptions &options) {
  CostModelSetup setup;
  auto cluster = loadCluster(options.cluster, options.nodes);
  if (!cluster)
    return cluster.takeError();
  setup.cluster = std::move(*cluster);
  ClusterSpec &spec = setup.cluster;
  if (options.nodes < 0)
    return makeError("nodes must be positive (0: the cluster's), got " +
                     llvm::Twine(options.nodes));
  if (options.devices < 0)
    return makeError("devices must be positive (0: the cluster's), got " +
                     llvm::Twine(options.devices));
  if (options.devices > 0) {
    if (options.devices <= spec.devicesPerNode) {
      if (options.nodes > 1)
        return makeError(llvm::formatv(
            "devices = {0} fit in one node but nodes = {1}", options.devices,
            options.nodes));
      spec.nodes = 1;
      spec.devicesPerNode = options.devices;
    } else if (options.devices % spec.devicesPerNode != 0) {
      return makeError(llvm::formatv(
          "devices = {0} do not fill whole nodes of {1} ({2})",
          options.devices, spec.devicesPerNode, spec.name));
    } else {
      int64_t nodes = options.devices / spec.devicesPerNode;
      if (options.nodes > 0 && options.nodes != nodes)
        return makeError(llvm::formatv(
            "devices = {0} make {1} nodes of {2}, not nodes = {3}",
            options.devices, nodes, spec.devicesPerNode, options.nodes));
      spec.nodes = nodes;
    }
    if (llvm::Error error = spec.validate())
      return std::move(error);
  }
  for (const std::string &profile : options.profiles) {
    // Galvatron's model profiles are about the model, applied to it later.
    auto buffer = llvm::MemoryBuffer::getFile(profile, /*IsText=*/true);
    if (buffer) {
      auto root = parseJSONObject((*buffer)->getBuffer(), profile, "a profile");
      if (root && isGalvatronModelProfile(*root)) {
        setup.modelProfiles.emplace_back(profile, std::move(*root));
        continue;
      }
      if (!root)
        llvm::consumeError(root.takeError());
    }
    if (llvm::Error error = applyProfileFile(spec, profile))
      return std::move(error);
  }
  setup.memoryBudget = spec.memory;
  if (!options.memory.empty()) {
    auto budget = parseMemorySize(options.memory);
    if (!budget)
      return budget.takeError();
    setup.memoryBudget = *budget;
  }
  if (llvm::Error error = checkMemoryBudget(spec, setup.memoryBudget))
    return std::move(error);
  return setup;
}

llvm::Error mlir::galvatron::applyModelProfiles(ModelProfile &model,
                                               const CostModelSetup &setup,
                                               Precision precision) {
  for (const auto &[path, root] : setup.modelProfiles)
    if (llvm::Error error = applyGalvatronModelProfile(model, root, path,
                                                       setup.cluster, precision))
      return error;
  return llvm::Error::success();
}

llvm::Expected<CostModelSetup>
mlir::galvatron::makePlanCostModelSetup(CostModelOptions options,
                                        const ParallelPlan &plan) {
  if (options.nodes == 0 && options.devices == 0)
    options.devices = plan.devices;
  auto setup = makeCostModelSetup(options);
  if (!setup)
    return setup.takeError();
  if (setup->cluster.getDevices() != plan.devices)
    return makeError(llvm::formatv(
        "the plan is for {0} devices but the cluster has {1}", plan.devices,
        setup->cluster.getDevices()));
  return setup;
}

llvm::Expected<Precision> mlir::galvatron::parsePrecision(StringRef text) {
  if (std::optional<Precision> precision = symbolizePrecision(text))
    return *precision;
  return makeError("unknown precision '" + text +
                   "' (expected bf16, fp16 or fp32)");
}

void mlir::galvatron::writePlan(ModuleOp module, func::FuncOp function,
                                const ParallelPlan &plan) {
  MLIRContext *context = module.getContext();
  unsigned index = 0;
  for (LayerOp layer : function.getOps<LayerOp>()) {
    const LayerStrategy &strategy = plan.layers[index++];
    int64_t dp = plan.getDp(strategy);
    bool consecutive = strategy.consecutive || strategy.tp == 1 || dp == 1;
    DataParallelType type = plan.getParamDp(strategy) > 1
                                ? strategy.dpType
                                : DataParallelType::ddp;
    bool ulysses = strategy.usesUlysses();
    layer.setStrategyAttr(StrategyAttr::get(
        context, strategy.stage, strategy.tp, dp, consecutive, type,
        strategy.sp && strategy.tp > 1 && !ulysses, strategy.ckpt, ulysses));
  }
  module->setAttr(GalvatronDialect::getPlanAttrName(),
                  PlanAttr::get(context, plan.devices, plan.devicesPerNode,
                                plan.pp, plan.microBatches, plan.globalBatch,
                                plan.schedule, plan.precision,
                                plan.vocabDivisor));
}

llvm::Expected<ParallelPlan> mlir::galvatron::readPlan(ModuleOp module,
                                                       func::FuncOp function) {
  PlanAttr attribute = getPlan(module);
  if (!attribute)
    return makeError("the module has no #galvatron.plan (run "
                     "--galvatron-search or --galvatron-apply-strategy first)");
  ParallelPlan plan;
  plan.devices = attribute.getDevices();
  plan.devicesPerNode = attribute.getDevicesPerNode();
  plan.pp = attribute.getPp();
  plan.microBatches = attribute.getMicroBatches();
  plan.globalBatch = attribute.getGlobalBatch();
  plan.schedule = attribute.getSchedule();
  plan.precision = attribute.getPrecision();
  plan.vocabDivisor = attribute.getVocabDivisor();
  for (LayerOp layer : function.getOps<LayerOp>()) {
    StrategyAttr strategy = layer.getStrategyAttr();
    if (!strategy)
      return makeError(layer, "layer '" + layer.getLayerName() +
                       "' has no #galvatron.strategy");
    plan.layers.push_back({strategy.getStage(), strategy.getTp(),
                           strategy.getTpConsecutive(), strategy.getDpType(),
                           strategy.getSp(), strategy.getCkpt(),
                           strategy.getUlysses()});
  }
  return plan;
}

llvm::Error mlir::galvatron::writePlanReport(StringRef format,
                                             StringRef output,
                                             const PlanReportInput &input) {
  if (format != "text" && format != "json")
    return makeError("unknown report format '" + format +
                     "' (expected text or json)");
  std::string error;
  std::unique_ptr<llvm::ToolOutputFile> file = openOutputFile(output, &error);
  if (!file)
    return makeError("cannot write the report: " + error);
  if (format == "json")
    file->os() << llvm::formatv(
                      "{0:2}", llvm::json::Value(getPlanReportJSON(input)))
               << "\n";
  else
    printPlanReport(file->os(), input);
  return keepOutputFile(*file);
}

void mlir::galvatron::emitPassError(ModuleOp module, StringRef pass,
                                    const llvm::Twine &message) {
  emitPassError(module, pass, makeError(message));
}

void mlir::galvatron::emitPassError(ModuleOp module, StringRef pass,
                                    llvm::Error error) {
  (void)emitError(std::move(error), module.getLoc(), pass + ": ");
}

LogicalResult mlir::galvatron::checkPlanSuitsModel(ModuleOp module,
                                                   StringRef pass,
                                                   const ParallelPlan &plan,
                                                   const ModelProfile &model) {
  llvm::Error error = plan.validate(model);
  if (!error)
    return success();
  emitPassError(
      module, pass,
      withContext(std::move(error), "the plan does not suit the model: "));
  return failure();
}

FailureOr<ModelInput> mlir::galvatron::getModelInput(ModuleOp module,
                                                     StringRef pass) {
  FailureOr<func::FuncOp> function = getModelFunction(module, pass);
  if (failed(function))
    return failure();
  auto model = ModelProfile::build(*function);
  if (!model) {
    emitPassError(module, pass, model.takeError());
    return failure();
  }
  return ModelInput{*function, std::move(*model)};
}

FailureOr<std::pair<ModelInput, ParallelPlan>>
mlir::galvatron::getModelAndPlan(ModuleOp module, StringRef pass) {
  FailureOr<ModelInput> input = getModelInput(module, pass);
  if (failed(input))
    return failure();
  auto plan = readPlan(module, input->function);
  if (!plan) {
    emitPassError(module, pass, plan.takeError());
    return failure();
  }
  return std::make_pair(std::move(*input), std::move(*plan));
}

FailureOr<PlanningInput>
mlir::galvatron::getPlanningInput(ModuleOp module, StringRef pass,
                                  const CostModelOptions &options,
                                  StringRef precision, int64_t globalBatch) {
  FailureOr<ModelInput> input = getModelInput(module, pass);
  if (failed(input))
    return failure();
  if (globalBatch < 0 || globalBatch > kMaxGlobalBatch) {
    emitPassError(module, pass,
                  llvm::formatv("global-batch must lie in [1, {0}] (0: the "
                                "model's batch), got {1}",
                                kMaxGlobalBatch, globalBatch));
    return failure();
  }
  auto setup = makeCostModelSetup(options);
  if (!setup) {
    emitPassError(module, pass, setup.takeError());
    return failure();
  }
  auto trainingPrecision = parsePrecision(precision);
  if (!trainingPrecision) {
    emitPassError(module, pass, trainingPrecision.takeError());
    return failure();
  }
  if (llvm::Error error =
          applyModelProfiles(input->model, *setup, *trainingPrecision)) {
    emitPassError(module, pass, std::move(error));
    return failure();
  }
  int64_t batch = globalBatch > 0 ? globalBatch : input->model.irBatch;
  return PlanningInput{std::move(*input), std::move(*setup), *trainingPrecision,
                       batch};
}
