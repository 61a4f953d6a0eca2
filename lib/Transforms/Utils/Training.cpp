//===- Training.cpp - Pieces shared by the training-step passes -----------===//

#include "galvatron/Transforms/Training.h"

#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Transforms/LayerUtils.h"

#include "llvm/ADT/StringSwitch.h"

using namespace mlir;
using namespace mlir::galvatron;

//===----------------------------------------------------------------------===//
// State
//===----------------------------------------------------------------------===//

FailureOr<StateOp> StateDeclarer::declare(StringRef name, StateKind kind,
                                          RankedTensorType type,
                                          ParameterOp parameter,
                                          InitAttr init) {
  if (Operation *existing = SymbolTable::lookupSymbolIn(module, name))
    return existing->emitOpError()
           << "takes the name @" << name << " that training state needs";
  OpBuilder builder(module.getContext());
  auto functions = module.getOps<func::FuncOp>();
  if (functions.empty())
    builder.setInsertionPointToEnd(module.getBody());
  else
    builder.setInsertionPoint(*functions.begin());
  if (!init)
    init = InitAttr::get(module.getContext(), InitKind::zeros);
  return StateOp::create(
      builder, module.getLoc(), kind, name, type, init,
      parameter ? FlatSymbolRefAttr::get(parameter.getSymNameAttr())
                : FlatSymbolRefAttr());
}

/// The all-reduce (sum) over `groups` that `gradient` is, the
/// data-parallel replicate's rule (cast back to the master weight's type
/// under mixed precision); null when it is something else.
static AllReduceOp getSync(Value gradient, ArrayAttr groups) {
  auto cast = gradient.getDefiningOp<CastOp>();
  auto sync =
      (cast ? cast.getInput() : gradient).getDefiningOp<AllReduceOp>();
  if (!sync || sync.getGroups() != groups ||
      sync.getReduce() != CollectiveReduction::sum)
    return {};
  return sync;
}

LogicalResult GradientAccumulators::accumulate(OpBuilder &builder, Location loc,
                                               ParameterOp parameter,
                                               Value gradient) {
  std::optional<DataParallelSync> sync = getDataParallelSync(parameter);
  AllReduceOp perMicroBatchSync;
  if (sync) {
    perMicroBatchSync = getSync(gradient, sync->groups);
    if (!perMicroBatchSync)
      return parameter.emitOpError()
             << "is data-parallel but a read of it is not replicated over "
                "its data-parallel groups";
  }
  StateOp &state = accumulators[parameter];
  if (!state) {
    AccumulatedGradient kind = AccumulatedGradient::synced;
    if (sync && sync->zeroStage == 2)
      kind = AccumulatedGradient::slice;
    else if (sync && deferSync)
      kind = AccumulatedGradient::local;
    RankedTensorType type = parameter.getTensorType();
    std::optional<ParameterShard> shard;
    if (kind == AccumulatedGradient::slice) {
      shard = sync->stateShard(parameter, type.getShape());
      type = RankedTensorType::get(shard->partShape(), type.getElementType());
    }
    FailureOr<StateOp> declared =
        states.declare((parameter.getSymName() + ".grad").str(),
                       StateKind::gradient, type, parameter);
    if (failed(declared))
      return failure();
    state = *declared;
    if (shard)
      state->setAttr(ParameterShard::getAttrName(),
                     shard->toAttr(builder.getContext()));
    kinds[parameter] = kind;
  }
  AccumulatedGradient kind = kinds.lookup(parameter);
  Value contribution = gradient;
  if (kind != AccumulatedGradient::synced) {
    // The rank's own gradient, in the master weight's type.
    contribution = perMicroBatchSync.getInput();
    if (contribution.getType() != gradient.getType())
      contribution =
          CastOp::create(builder, loc, gradient.getType(), contribution);
    bypassed.push_back(gradient.getDefiningOp());
    if (gradient.getDefiningOp() != perMicroBatchSync)
      bypassed.push_back(perMicroBatchSync);
  }
  if (kind == AccumulatedGradient::slice)
    contribution = ReduceScatterOp::create(
        builder, loc, state.getType(), contribution, CollectiveReduction::sum,
        sync->dim, sync->groups);
  auto symbol = FlatSymbolRefAttr::get(state.getSymNameAttr());
  Value sum = ReadStateOp::create(builder, loc, state.getType(), symbol);
  sum = AddOp::create(builder, loc, sum, contribution);
  AssignOp::create(builder, loc, symbol, sum);
  return success();
}

void GradientAccumulators::eraseBypassedSyncs() {
  for (Operation *op : bypassed)
    if (op->use_empty())
      op->erase();
  bypassed.clear();
}

//===----------------------------------------------------------------------===//
// Checkpointing
//===----------------------------------------------------------------------===//

std::optional<CheckpointPolicy>
mlir::galvatron::parseCheckpointPolicy(StringRef text) {
  return llvm::StringSwitch<std::optional<CheckpointPolicy>>(text)
      .Case("plan", CheckpointPolicy::plan)
      .Case("none", CheckpointPolicy::none)
      .Case("blocks", CheckpointPolicy::blocks)
      .Case("all", CheckpointPolicy::all)
      .Default(std::nullopt);
}

bool mlir::galvatron::shouldRecompute(CheckpointPolicy policy, LayerOp layer) {
  switch (policy) {
  case CheckpointPolicy::plan:
    return layer.getStrategy() && layer.getStrategy()->getCkpt();
  case CheckpointPolicy::none:
    return false;
  case CheckpointPolicy::blocks:
    return layer.isTransformerBlock();
  case CheckpointPolicy::all:
    return true;
  }
  llvm_unreachable("unknown checkpoint policy");
}

//===----------------------------------------------------------------------===//
// Mixed precision
//===----------------------------------------------------------------------===//

/// `type` with an f32 element type replaced by `lowType`.
static Type lowered(Type type, FloatType lowType) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  if (!tensor || !tensor.getElementType().isF32())
    return type;
  return RankedTensorType::get(tensor.getShape(), lowType);
}

/// Rewrites one op of a layer body whose operands may have changed type.
static void lowerOp(Operation &op, FloatType lowType) {
  if (auto param = dyn_cast<ParamOp>(op)) {
    Type low = lowered(param.getType(), lowType);
    if (low == param.getType())
      return;
    OpBuilder builder(op.getContext());
    builder.setInsertionPointAfter(param);
    auto cast = CastOp::create(builder, param.getLoc(), low, param);
    param.getResult().replaceAllUsesExcept(cast, cast);
    return;
  }
  if (auto constant = dyn_cast<ConstantOp>(op)) {
    auto values = dyn_cast<DenseFPElementsAttr>(constant.getValue());
    if (!values || !values.getElementType().isF32())
      return;
    // A finite constant beyond the 16-bit range saturates rather than
    // become infinite: exporters mask with torch.finfo(float32).min, and
    // (1 - mask) * -inf would be NaN where the mask is 1.
    const llvm::fltSemantics &semantics = lowType.getFloatSemantics();
    auto converted = values.mapValues(lowType, [&](const APFloat &value) {
      APFloat result = value;
      bool lost;
      result.convert(semantics, APFloat::rmNearestTiesToEven, &lost);
      if (result.isInfinity() && !value.isInfinity())
        result = APFloat::getLargest(semantics, value.isNegative());
      return result.bitcastToAPInt();
    });
    constant.setValueAttr(converted);
    constant.getResult().setType(cast<RankedTensorType>(converted.getType()));
    return;
  }
  // Ops that infer their result types keep types they fix (a loss in f32);
  // the rest store what they compute in the low type.
  if (auto inferrable = dyn_cast<InferTypeOpInterface>(op)) {
    SmallVector<Type> types;
    if (succeeded(inferrable.inferReturnTypes(
            op.getContext(), op.getLoc(), op.getOperands(),
            op.getRawDictionaryAttrs(), op.getPropertiesStorage(),
            op.getRegions(), types))) {
      for (auto [result, type] : llvm::zip(op.getResults(), types))
        result.setType(type);
      return;
    }
  }
  for (Value result : op.getResults())
    result.setType(lowered(result.getType(), lowType));
}

void mlir::galvatron::convertToLowPrecision(func::FuncOp function,
                                            FloatType lowType) {
  Block &entry = function.getBody().front();
  for (BlockArgument argument : entry.getArguments())
    argument.setType(lowered(argument.getType(), lowType));
  for (LayerOp layer : function.getBody().getOps<LayerOp>()) {
    Block &body = layer.getBodyBlock();
    for (auto [input, argument] :
         llvm::zip(layer.getInputs(), body.getArguments()))
      argument.setType(input.getType());
    for (Operation &op : llvm::make_early_inc_range(body.without_terminator()))
      lowerOp(op, lowType);
    for (auto [result, value] :
         llvm::zip(layer.getResults(), getLayerYield(layer).getValues()))
      result.setType(value.getType());
  }
  function.setFunctionType(FunctionType::get(
      function.getContext(), entry.getArgumentTypes(),
      function.getBody().front().getTerminator()->getOperandTypes()));
}
