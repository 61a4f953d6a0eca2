//===- GalvatronDialect.cpp - Galvatron dialect ---------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::galvatron;

#include "galvatron/Dialect/Galvatron/IR/GalvatronOpsDialect.cpp.inc"

void GalvatronDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "galvatron/Dialect/Galvatron/IR/GalvatronOps.cpp.inc"
      >();
  registerAttributes();
}

Operation *GalvatronDialect::materializeConstant(OpBuilder &builder,
                                                 Attribute value, Type type,
                                                 Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements);
}

/// A shard description names a parameter's (or its ZeRO-sharded state's)
/// place in the whole tensor.
static LogicalResult verifyParameterShard(Operation *op, Attribute value) {
  auto parameter = dyn_cast<ParameterOp>(op);
  auto state = dyn_cast<StateOp>(op);
  if (!parameter && !state)
    return op->emitError() << "'" << ParameterShard::getAttrName()
                           << "' may only be attached to a galvatron.parameter "
                              "or galvatron.state";
  std::string error;
  FailureOr<ParameterShard> shard = ParameterShard::fromAttr(value, error);
  if (failed(shard))
    return op->emitError() << "'" << ParameterShard::getAttrName() << "' "
                           << error;
  RankedTensorType type =
      parameter ? parameter.getTensorType() : state.getTensorType();
  if (ArrayRef<int64_t>(shard->partShape()) != type.getShape())
    return op->emitError() << "declared type " << type
                           << " is not one part of the shard's full shape";
  return success();
}

static LogicalResult verifyDataParallelSync(Operation *op, Attribute value) {
  auto parameter = dyn_cast<ParameterOp>(op);
  if (!parameter)
    return op->emitError() << "'" << DataParallelSync::getAttrName()
                           << "' may only be attached to a galvatron.parameter";
  std::string error;
  if (failed(DataParallelSync::fromAttr(
          value, parameter.getTensorType().getShape(), error)))
    return op->emitError() << "'" << DataParallelSync::getAttrName() << "' "
                           << error;
  return success();
}

LogicalResult
GalvatronDialect::verifyOperationAttribute(Operation *op,
                                           NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  if (name == getPlanAttrName()) {
    auto plan = dyn_cast<PlanAttr>(attribute.getValue());
    if (!plan)
      return op->emitError()
             << "'" << name << "' must be a #galvatron.plan attribute";
    auto module = dyn_cast<ModuleOp>(op);
    if (!module)
      return op->emitError()
             << "'" << name << "' may only be attached to a module";
    return verifyPlan(module, plan);
  }
  if (name == getModelAttrName()) {
    if (!isa<StringAttr>(attribute.getValue()) || !isa<ModuleOp>(op))
      return op->emitError() << "'" << name << "' must be a string on a module";
    return success();
  }
  if (name == ParameterShard::getAttrName())
    return verifyParameterShard(op, attribute.getValue());
  if (name == DataParallelSync::getAttrName())
    return verifyDataParallelSync(op, attribute.getValue());
  // The pipeline stages reading a parameter (when several do).
  if (name == "galvatron.stages") {
    auto stages = dyn_cast<DenseI64ArrayAttr>(attribute.getValue());
    if (!stages || !isa<ParameterOp>(op))
      return op->emitError() << "'" << name
                             << "' must be an array<i64> on a parameter";
    ArrayRef<int64_t> values = stages.asArrayRef();
    for (auto [index, stage] : llvm::enumerate(values))
      if (stage < 0 || (index && stage <= values[index - 1]))
        return op->emitError() << "'" << name
                               << "' must list increasing stages";
    return success();
  }
  return op->emitError() << "unknown galvatron attribute '" << name << "'";
}

/// Function arguments and results may carry the source model's name for them.
static LogicalResult verifyValueNameAttribute(Operation *op,
                                              NamedAttribute attribute) {
  StringRef name = attribute.getName().getValue();
  if (name != GalvatronDialect::getNameAttrName())
    return op->emitError() << "unknown galvatron argument or result attribute '"
                           << name << "'";
  if (!isa<StringAttr>(attribute.getValue()))
    return op->emitError() << "'" << name << "' must be a string";
  return success();
}

LogicalResult
GalvatronDialect::verifyRegionArgAttribute(Operation *op, unsigned, unsigned,
                                           NamedAttribute attribute) {
  return verifyValueNameAttribute(op, attribute);
}

LogicalResult
GalvatronDialect::verifyRegionResultAttribute(Operation *op, unsigned, unsigned,
                                              NamedAttribute attribute) {
  return verifyValueNameAttribute(op, attribute);
}

//===----------------------------------------------------------------------===//
// Plan verification
//===----------------------------------------------------------------------===//

PlanAttr mlir::galvatron::getPlan(ModuleOp module) {
  return module->getAttrOfType<PlanAttr>(GalvatronDialect::getPlanAttrName());
}

/// Verifies the layer sequence of one function against the plan. Backward
/// layers run in reverse: their stages never increase.
static LogicalResult verifyFunctionPlan(Operation *function, PlanAttr plan) {
  int64_t microBatch = plan.getGlobalBatch() / plan.getMicroBatches();
  int64_t previousStage = 0, previousBackwardStage = plan.getPp() - 1;
  llvm::SmallVector<bool> stageUsed(plan.getPp(), false);
  bool sawLayer = false;
  WalkResult result = function->walk([&](LayerOp layer) -> WalkResult {
    StrategyAttr strategy = layer.getStrategyAttr();
    if (!strategy)
      return layer.emitOpError()
             << "'" << layer.getLayerName()
             << "' has no #galvatron.strategy but the module has a "
                "#galvatron.plan";
    int64_t devices = plan.getPp() * strategy.getTp() * strategy.getDp();
    if (devices != plan.getDevices())
      return layer.emitOpError()
             << "'" << layer.getLayerName() << "': pp (" << plan.getPp()
             << ") x tp (" << strategy.getTp() << ") x dp (" << strategy.getDp()
             << ") = " << devices << " does not equal the plan's "
             << plan.getDevices() << " devices";
    if (strategy.getStage() >= plan.getPp())
      return layer.emitOpError() << "'" << layer.getLayerName()
                                 << "' is on stage " << strategy.getStage()
                                 << " but the plan has pp = " << plan.getPp();
    if (layer.getBackward()) {
      if (strategy.getStage() > previousBackwardStage)
        return layer.emitOpError()
               << "backward layer '" << layer.getLayerName() << "' is on stage "
               << strategy.getStage() << " after a backward layer on stage "
               << previousBackwardStage
               << ": backward stages must not increase";
      previousBackwardStage = strategy.getStage();
      return WalkResult::advance();
    }
    sawLayer = true;
    if (strategy.getStage() < previousStage)
      return layer.emitOpError()
             << "'" << layer.getLayerName() << "' is on stage "
             << strategy.getStage() << " after a layer on stage "
             << previousStage << ": stages must not decrease along the model";
    if (microBatch % strategy.getDp() != 0)
      return layer.emitOpError()
             << "'" << layer.getLayerName() << "': a micro-batch of "
             << microBatch
             << " sequences does not divide among dp = " << strategy.getDp()
             << " replicas";
    previousStage = strategy.getStage();
    stageUsed[strategy.getStage()] = true;
    return WalkResult::advance();
  });
  if (result.wasInterrupted())
    return failure();
  // A function exchanging pipeline messages is one stage's part of a model.
  bool pipelineStage = false;
  function->walk([&](Operation *op) {
    if (isa<SendOp, RecvOp>(op))
      pipelineStage = true;
  });
  if (!sawLayer || pipelineStage)
    return success();
  for (auto [stage, used] : llvm::enumerate(stageUsed))
    if (!used)
      return function->emitOpError() << "pipeline stage " << stage << " of "
                                     << plan.getPp() << " has no layer";
  return success();
}

LogicalResult mlir::galvatron::verifyPlan(ModuleOp module, PlanAttr plan) {
  for (auto function : module.getOps<func::FuncOp>())
    if (failed(verifyFunctionPlan(function, plan)))
      return failure();
  return success();
}
