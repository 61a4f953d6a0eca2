//===- PipelineSplit.cpp - One forward function per pipeline stage --------===//

#include "galvatron/Transforms/LayerUtils.h"
#include "galvatron/Transforms/Passes.h"
#include "galvatron/Transforms/Training.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_PIPELINESPLIT
#include "galvatron/Transforms/Passes.h.inc"

namespace {

/// A value computed on one stage and used on later ones.
struct Crossing {
  int64_t producer;
  int64_t tag;
  /// A float depending on a parameter: its gradient travels back.
  bool differentiable = false;
  /// Receiving stages, ascending.
  SmallVector<int64_t> receivers;
};

class StageSplitter {
public:
  explicit StageSplitter(func::FuncOp function) : function(function) {}

  LogicalResult analyze();
  /// Records on each parameter several stages read which stages they are.
  void markSharedParameters(ModuleOp module);
  /// Builds stage `stage`'s function named `name` before the original.
  func::FuncOp build(int64_t stage, StringRef name);

private:
  /// The stage computing `value`; -1 for a function argument.
  int64_t producerStage(Value value) const {
    Operation *producer = value.getDefiningOp();
    return producer ? stageOf.lookup(producer) : -1;
  }
  void findVariedValues();

  func::FuncOp function;
  SmallVector<LayerOp> layers;
  DenseMap<Operation *, int64_t> stageOf;
  llvm::MapVector<Value, Crossing> crossings;
  DenseSet<Value> varied;
};

LogicalResult StageSplitter::analyze() {
  for (Operation &op : function.getBody().front().without_terminator()) {
    auto layer = dyn_cast<LayerOp>(op);
    if (!layer)
      return op.emitOpError()
             << "lies outside every layer; --galvatron-pipeline assigns "
                "stages layer by layer";
    StrategyAttr strategy = layer.getStrategyAttr();
    if (!strategy)
      return layer.emitOpError()
             << "'" << layer.getLayerName()
             << "' has no #galvatron.strategy to take its stage from";
    layers.push_back(layer);
    stageOf[layer] = strategy.getStage();
  }
  for (LayerOp layer : layers) {
    int64_t stage = stageOf.lookup(layer);
    for (Value input : layer.getInputs()) {
      int64_t producer = producerStage(input);
      if (producer < 0 || producer == stage)
        continue;
      auto [it, inserted] = crossings.try_emplace(input);
      if (inserted) {
        it->second.producer = producer;
        it->second.tag = crossings.size() - 1;
      }
      if (!llvm::is_contained(it->second.receivers, stage))
        it->second.receivers.push_back(stage);
    }
  }
  findVariedValues();
  for (auto &[value, crossing] : crossings)
    crossing.differentiable = varied.contains(value);
  return success();
}

/// The autodiff engine's activity rule: float results of ops reading a
/// parameter or a varied operand vary, through layer boundaries.
void StageSplitter::findVariedValues() {
  for (LayerOp layer : layers) {
    for (auto [input, argument] :
         llvm::zip(layer.getInputs(), layer.getBodyBlock().getArguments()))
      if (varied.contains(input))
        varied.insert(argument);
    for (Operation &op : layer.getBodyBlock().without_terminator()) {
      if (!isa<ParamOp>(op) && llvm::none_of(op.getOperands(), [&](Value v) {
            return varied.contains(v);
          }))
        continue;
      for (Value result : op.getResults())
        if (auto type = dyn_cast<RankedTensorType>(result.getType());
            type && isa<FloatType>(type.getElementType()))
          varied.insert(result);
    }
    for (auto [value, output] :
         llvm::zip(getLayerYield(layer).getValues(), layer.getResults()))
      if (varied.contains(value))
        varied.insert(output);
  }
}

void StageSplitter::markSharedParameters(ModuleOp module) {
  llvm::MapVector<StringAttr, llvm::SmallSetVector<int64_t, 4>> readers;
  for (LayerOp layer : layers)
    layer.walk([&](ParamOp param) {
      readers[param.getNameAttr().getAttr()].insert(stageOf.lookup(layer));
    });
  Builder builder(module.getContext());
  for (auto &[name, stages] : readers) {
    if (stages.size() < 2)
      continue;
    SmallVector<int64_t> sorted(stages.begin(), stages.end());
    llvm::sort(sorted);
    module.lookupSymbol(name)->setAttr(kPipelineStagesAttrName,
                                       builder.getDenseI64ArrayAttr(sorted));
  }
}

func::FuncOp StageSplitter::build(int64_t stage, StringRef name) {
  OpBuilder builder(function);
  Location loc = function.getLoc();
  // The arguments the stage's layers read, in the original order.
  SmallVector<unsigned> arguments;
  for (BlockArgument argument : function.getArguments())
    if (llvm::any_of(argument.getUsers(), [&](Operation *user) {
          return stageOf.lookup(user) == stage;
        }))
      arguments.push_back(argument.getArgNumber());
  SmallVector<Type> argumentTypes;
  for (unsigned index : arguments)
    argumentTypes.push_back(function.getArgument(index).getType());
  auto stageFunction = func::FuncOp::create(
      builder, loc, name, builder.getFunctionType(argumentTypes, {}));
  Block *body = stageFunction.addEntryBlock();
  IRMapping mapping;
  for (auto [position, index] : llvm::enumerate(arguments)) {
    stageFunction.setArgAttrs(position, function.getArgAttrDict(index));
    mapping.map(function.getArgument(index), body->getArgument(position));
  }

  builder.setInsertionPointToEnd(body);
  for (LayerOp layer : layers) {
    if (stageOf.lookup(layer) != stage)
      continue;
    // Inputs from other stages not received yet arrive in this layer.
    SmallVector<unsigned> received;
    for (auto [index, input] : llvm::enumerate(layer.getInputs()))
      if (crossings.count(input) && !mapping.contains(input))
        received.push_back(index);
    IRMapping operands = mapping;
    for (unsigned index : received)
      operands.map(layer.getInputs()[index], layer.getInputs()[index]);
    auto clone = cast<LayerOp>(builder.clone(*layer, operands));
    Block &inner = clone.getBodyBlock();
    YieldOp yield = getLayerYield(clone);
    OpBuilder innerBuilder = OpBuilder::atBlockBegin(&inner);
    SmallVector<Value> receivedValues;
    for (unsigned index : received) {
      const Crossing &crossing = crossings.find(layer.getInputs()[index])->second;
      BlockArgument argument = inner.getArgument(index);
      Value value = RecvOp::create(innerBuilder, clone.getLoc(),
                                   argument.getType(), crossing.producer,
                                   crossing.tag, crossing.differentiable);
      argument.replaceAllUsesWith(value);
      receivedValues.push_back(value);
    }
    for (unsigned index : llvm::reverse(received)) {
      inner.eraseArgument(index);
      clone->eraseOperand(index);
    }
    // Results later stages use leave through sends.
    innerBuilder.setInsertionPoint(yield);
    for (auto [output, value] :
         llvm::zip(layer.getResults(), yield.getValues())) {
      auto it = crossings.find(output);
      if (it == crossings.end())
        continue;
      for (int64_t receiver : it->second.receivers)
        SendOp::create(innerBuilder, clone.getLoc(), value, receiver,
                       it->second.tag);
    }
    if (!receivedValues.empty()) {
      SmallVector<Value> values(yield.getValues());
      SmallVector<int> newIndex;
      for (unsigned i = 0; i < values.size(); ++i)
        newIndex.push_back(i);
      values.append(receivedValues);
      clone = rebuildLayerResults(clone, values, newIndex);
    }
    builder.setInsertionPointAfter(clone);
    for (auto [output, result] :
         llvm::zip(layer.getResults(), clone.getResults()))
      mapping.map(output, result);
    for (auto [index, value] : llvm::enumerate(received))
      mapping.map(layer.getInputs()[value],
                  clone.getResult(layer.getNumResults() + index));
  }

  // The function's results computed on this stage.
  Operation *terminator = function.getBody().front().getTerminator();
  SmallVector<Value> results;
  SmallVector<DictionaryAttr> resultAttrs;
  for (auto [index, value] : llvm::enumerate(terminator->getOperands())) {
    if (producerStage(value) != stage &&
        !(producerStage(value) < 0 && stage == 0))
      continue;
    results.push_back(mapping.lookup(value));
    resultAttrs.push_back(function.getResultAttrDict(index));
  }
  func::ReturnOp::create(builder, loc, results);
  stageFunction.setFunctionType(builder.getFunctionType(
      argumentTypes, ValueRange(results).getTypes()));
  for (auto [index, attrs] : llvm::enumerate(resultAttrs))
    stageFunction.setResultAttrs(index, attrs);
  // Received values no later layer of the stage reads need not be yielded.
  pruneUnusedLayerResults(stageFunction);
  return stageFunction;
}

struct PipelineSplitPass : impl::PipelineSplitBase<PipelineSplitPass> {
  using PipelineSplitBase::PipelineSplitBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](Operation *at) {
      InFlightDiagnostic diagnostic = at->emitError();
      diagnostic << "--galvatron-pipeline: ";
      signalPassFailure();
      return diagnostic;
    };
    auto main = module.lookupSymbol<func::FuncOp>(function);
    if (!main || main.isExternal()) {
      fail(module) << "no function @" << function << " with a body";
      return;
    }
    PlanAttr plan = getPlan(module);
    if (!plan) {
      fail(module) << "the module has no #galvatron.plan to split by";
      return;
    }
    int64_t pp = plan.getPp();
    if (stage >= pp) {
      fail(module) << "stage=" << static_cast<int64_t>(stage)
                   << " is outside the plan's " << pp << " stages";
      return;
    }
    StageSplitter splitter(main);
    if (failed(splitter.analyze()))
      return signalPassFailure();
    splitter.markSharedParameters(module);
    if (stage < 0) {
      for (int64_t k = 0; k < pp; ++k) {
        std::string name = (function + "_stage" + Twine(k)).str();
        if (module.lookupSymbol(name)) {
          fail(module) << "@" << name << " already exists";
          return;
        }
        splitter.build(k, name);
      }
      return;
    }
    func::FuncOp stageFunction = splitter.build(stage, function);
    main.erase();
    stageFunction.setSymName(function);
    // Weights of other stages are not part of this stage's model. (One walk
    // for every use: a walk per parameter would grow with their product.)
    DenseSet<StringAttr> used;
    module.walk([&](Operation *op) {
      op->getAttrDictionary().walk([&](SymbolRefAttr reference) {
        used.insert(reference.getRootReference());
      });
    });
    for (auto parameter :
         llvm::make_early_inc_range(module.getOps<ParameterOp>()))
      if (!used.contains(parameter.getSymNameAttr()))
        parameter.erase();
  }
};

} // namespace
} // namespace mlir::galvatron
