//===- Autodiff.cpp - Reverse-mode differentiation of layered functions ---===//
//
// Three phases. Activity: a value needs a gradient when it depends on a
// parameter (or a differentiated argument) and a seed depends on it.
// Planning, per forward layer: the ops to differentiate, the forward values
// their rules read, and where each comes from in the backward layer (a
// layer input, a saved activation the forward layer now also yields, or a
// re-read of weights; everything from the inputs when the layer is
// recomputed). Building, layers in reverse: one backward layer each, taking
// the gradients of the forward layer's results and its saved values,
// yielding the gradients of its inputs. A value used by several layers gets
// a running sum: each consumer's backward layer receives the sum so far and
// yields it with its own contribution added, so every gradient crossing
// layers is one tensor and all arithmetic stays inside layers.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Transforms/Autodiff.h"
#include "galvatron/Transforms/LayerUtils.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"

using namespace mlir;
using namespace mlir::galvatron;

static bool isFloatTensor(Value value) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  return type && isa<FloatType>(type.getElementType());
}

namespace {

/// What the backward layer of one forward layer needs.
struct LayerPlan {
  LayerOp layer;
  bool recompute = false;
  /// Ops whose rules run, in forward order.
  SmallVector<Operation *> differentiated;
  /// Forward ops cloned into the backward layer, in forward order: weight
  /// reads and what is computed from weights alone, or the whole needed
  /// forward when the layer is recomputed.
  llvm::SetVector<Operation *> cloned;
  /// Values inside the forward layer that it now also yields.
  SmallVector<Value> yielded;
  /// The forward values inside the layer that the backward layer receives
  /// (block arguments standing for layer inputs, and `yielded` values).
  llvm::SetVector<Value> received;
};

class Differentiator {
public:
  Differentiator(func::FuncOp forward, ArrayRef<GradientSeed> seeds,
                 const AutodiffOptions &options)
      : forward(forward), options(options), seeds(seeds) {}

  FailureOr<BackwardFunction> run();

private:
  LogicalResult collectLayers();
  void analyzeActivity();
  bool isActive(Value value) {
    return varied.contains(value) && useful.contains(value) &&
           isFloatTensor(value);
  }
  LogicalResult plan(LayerPlan &plan);
  void addSavedResults(LayerPlan &plan);
  LogicalResult buildBackwardLayer(LayerPlan &plan, OpBuilder &builder);

  /// The outer value a received inner value stands for.
  Value outerValue(LayerPlan &plan, Value inner) {
    if (auto argument = dyn_cast<BlockArgument>(inner))
      if (argument.getOwner() == &plan.layer.getBodyBlock())
        return plan.layer.getInputs()[argument.getArgNumber()];
    auto values = getLayerYield(plan.layer).getValues();
    auto it = llvm::find(values, inner);
    return plan.layer.getResult(std::distance(values.begin(), it));
  }

  func::FuncOp forward;
  const AutodiffOptions &options;
  ArrayRef<GradientSeed> seeds;
  SmallVector<LayerPlan> plans;
  DenseSet<Value> varied, useful;
  /// Seeds as (layer, result index), stable while layers are rebuilt.
  SmallVector<std::pair<size_t, unsigned>> seedPositions;

  BackwardFunction result;
  /// Backward value of each saved forward value.
  DenseMap<Value, Value> savedArgument;
  /// Running gradient sum of each forward value crossing layers.
  DenseMap<Value, Value> outerGradient;
};

} // namespace

LogicalResult Differentiator::collectLayers() {
  if (!forward.getBody().hasOneBlock())
    return forward.emitOpError() << "autodiff needs a single-block function";
  for (Operation &op : forward.getBody().front()) {
    if (auto layer = dyn_cast<LayerOp>(op)) {
      if (layer.getBackward())
        return layer.emitOpError()
               << "'" << layer.getLayerName()
               << "' is already a backward layer; autodiff differentiates "
                  "forward functions";
      plans.push_back(LayerPlan{layer});
      continue;
    }
    if (op.hasTrait<OpTrait::IsTerminator>())
      continue;
    return op.emitOpError()
           << "is outside any galvatron.layer of @" << forward.getSymName()
           << "; autodiff differentiates functions made of "
              "layers";
  }
  for (const GradientSeed &seed : seeds) {
    auto layer = seed.value.getDefiningOp<LayerOp>();
    auto it =
        llvm::find_if(plans, [&](LayerPlan &p) { return p.layer == layer; });
    if (!layer || it == plans.end())
      return forward.emitOpError()
             << "a gradient seed is not a layer result of @"
             << forward.getSymName();
    seedPositions.push_back({static_cast<size_t>(it - plans.begin()),
                             cast<OpResult>(seed.value).getResultNumber()});
  }
  return success();
}

void Differentiator::analyzeActivity() {
  for (unsigned index : options.gradientArguments)
    varied.insert(forward.getArgument(index));
  for (LayerPlan &plan : plans) {
    LayerOp layer = plan.layer;
    for (auto [input, argument] :
         llvm::zip(layer.getInputs(), layer.getBodyBlock().getArguments()))
      if (varied.contains(input))
        varied.insert(argument);
    for (Operation &op : layer.getBodyBlock().without_terminator()) {
      auto rule = dyn_cast<VJPOpInterface>(op);
      bool depends = isa<ParamOp>(op) || (rule && rule.isVariedSource()) ||
                     llvm::any_of(op.getOperands(),
                                  [&](Value v) { return varied.contains(v); });
      if (depends)
        for (Value value : op.getResults())
          if (isFloatTensor(value))
            varied.insert(value);
    }
    for (auto [value, output] :
         llvm::zip(getLayerYield(layer).getValues(), layer.getResults()))
      if (varied.contains(value))
        varied.insert(output);
  }

  for (const GradientSeed &seed : seeds)
    useful.insert(seed.value);
  for (LayerPlan &plan : llvm::reverse(plans)) {
    LayerOp layer = plan.layer;
    for (auto [value, output] :
         llvm::zip(getLayerYield(layer).getValues(), layer.getResults()))
      if (useful.contains(output))
        useful.insert(value);
    for (Operation &op :
         llvm::reverse(layer.getBodyBlock().without_terminator())) {
      auto rule = dyn_cast<VJPOpInterface>(op);
      bool needed = (rule && rule.isGradientSource()) ||
                    llvm::any_of(op.getResults(),
                                 [&](Value v) { return useful.contains(v); });
      if (needed)
        useful.insert(op.operand_begin(), op.operand_end());
    }
    for (auto [input, argument] :
         llvm::zip(layer.getInputs(), layer.getBodyBlock().getArguments()))
      if (useful.contains(argument))
        useful.insert(input);
  }
}

/// Whether `value` inside `layer` depends on the layer's inputs or on state,
/// so that the backward layer cannot just recompute it from weights.
static bool dependsOnInputs(Value value, LayerOp layer,
                            DenseMap<Value, bool> &memo) {
  if (auto it = memo.find(value); it != memo.end())
    return it->second;
  bool depends;
  Operation *producer = value.getDefiningOp();
  if (!producer || producer->getParentOp() != layer)
    depends = true;
  else if (isa<ReadStateOp, RecvOp>(producer))
    depends = true;
  else
    depends = llvm::any_of(producer->getOperands(), [&](Value operand) {
      return dependsOnInputs(operand, layer, memo);
    });
  memo[value] = depends;
  return depends;
}

/// The all-gather in `layer` that makes `value` whole from sequence-parallel
/// shards for column-parallel work (its gradient is reduce-scattered), if
/// `value` is one.
static AllGatherOp getSequenceGather(Value value, LayerOp layer) {
  auto gather = value.getDefiningOp<AllGatherOp>();
  if (!gather || gather->getParentOp() != layer || !gather.getReduceGrad())
    return {};
  return gather;
}

/// Adds to `ops` the ops of `layer` that `value` is computed from (stopping
/// at the layer's arguments and at received values, which cannot be
/// received twice) and to `arguments` the values reached.
static void collectSlice(Value value, LayerOp layer,
                         llvm::SetVector<Operation *> &ops,
                         llvm::SetVector<Value> &arguments) {
  Operation *producer = value.getDefiningOp();
  if (!producer || isa<RecvOp>(producer)) {
    arguments.insert(value);
    return;
  }
  if (ops.contains(producer))
    return;
  for (Value operand : producer->getOperands())
    collectSlice(operand, layer, ops, arguments);
  ops.insert(producer);
}

LogicalResult Differentiator::plan(LayerPlan &plan) {
  LayerOp layer = plan.layer;
  plan.recompute = options.recompute && options.recompute(layer);
  llvm::SetVector<Value> primals;
  for (Operation &op : layer.getBodyBlock().without_terminator()) {
    auto rule = dyn_cast<VJPOpInterface>(op);
    bool source =
        rule && rule.isGradientSource() &&
        (rule.isVariedSource() ||
         llvm::any_of(op.getOperands(), [&](Value v) { return isActive(v); }));
    bool active = source || llvm::any_of(op.getResults(),
                                         [&](Value v) { return isActive(v); });
    if (!active)
      continue;
    if (!rule)
      return op.emitOpError()
             << "has no reverse-mode rule (VJPOpInterface) but layer '"
             << layer.getLayerName() << "' needs its gradient";
    SmallVector<bool> wanted;
    for (Value operand : op.getOperands())
      wanted.push_back(isActive(operand));
    SmallVector<Value> values;
    rule.getVJPPrimals(wanted, values);
    primals.insert(values.begin(), values.end());
    plan.differentiated.push_back(&op);
  }

  // Sort the cloned ops into forward order at the end.
  llvm::SetVector<Operation *> cloned;
  if (plan.recompute) {
    for (Value primal : primals)
      collectSlice(primal, layer, cloned, plan.received);
    for (Operation *op : cloned)
      if (auto read = dyn_cast<ReadStateOp>(op))
        return read.emitOpError()
               << "reads state @" << read.getName()
               << ", which may change before the backward pass; layer '"
               << layer.getLayerName() << "' cannot be recomputed";
    // Received values are saved like activations.
    for (Value value : plan.received)
      if (!isa<BlockArgument>(value))
        plan.yielded.push_back(value);
  } else {
    DenseMap<Value, bool> memo;
    llvm::SetVector<Value> noArguments;
    // A layer input is received as it is; any other value the forward layer
    // also yields.
    auto save = [&](Value value) {
      if (plan.received.insert(value) && !isa<BlockArgument>(value))
        plan.yielded.push_back(value);
    };
    for (Value primal : primals) {
      if (!dependsOnInputs(primal, layer, memo)) {
        collectSlice(primal, layer, cloned, noArguments);
      } else if (auto gather = getSequenceGather(primal, layer)) {
        // Megatron's sequence parallelism: keep the sequence shard and
        // gather it again in the backward (tp times less memory for one
        // more all-gather, as the cost model prices it).
        cloned.insert(gather);
        save(gather.getInput());
      } else {
        save(primal);
      }
    }
  }
  for (Operation &op : layer.getBodyBlock())
    if (cloned.contains(&op))
      plan.cloned.insert(&op);
  return success();
}

void Differentiator::addSavedResults(LayerPlan &plan) {
  if (plan.yielded.empty())
    return;
  SmallVector<Value> values(getLayerYield(plan.layer).getValues());
  SmallVector<int> newIndex;
  for (unsigned i = 0; i < values.size(); ++i)
    newIndex.push_back(i);
  for (Value value : plan.yielded)
    if (!llvm::is_contained(values, value))
      values.push_back(value);
  if (values.size() != newIndex.size())
    plan.layer = rebuildLayerResults(plan.layer, values, newIndex);
}

/// Adds `gradient` to the running sum `map[key]`.
static void accumulate(OpBuilder &builder, Location loc,
                       DenseMap<Value, Value> &map, Value key, Value gradient) {
  Value &slot = map[key];
  slot = slot ? Value(AddOp::create(builder, loc, slot, gradient)) : gradient;
}

LogicalResult Differentiator::buildBackwardLayer(LayerPlan &plan,
                                                 OpBuilder &builder) {
  LayerOp layer = plan.layer;
  Location loc = layer.getLoc();
  YieldOp yield = getLayerYield(layer);
  size_t index = &plan - plans.data();

  // Gradients arriving for the forward layer's results.
  SmallVector<std::pair<unsigned, Value>> resultGradients;
  SmallVector<std::pair<unsigned, const GradientSeed *>> builtSeeds;
  for (auto [position, seed] : llvm::zip(seedPositions, seeds))
    if (position.first == index && seed.build &&
        isActive(yield.getOperand(position.second)))
      builtSeeds.push_back({position.second, &seed});
  for (OpResult output : layer.getResults())
    if (Value gradient = outerGradient.lookup(output))
      resultGradients.push_back({output.getResultNumber(), gradient});
  bool hasSource = llvm::any_of(plan.differentiated, [](Operation *op) {
    return cast<VJPOpInterface>(op).isGradientSource();
  });
  if (resultGradients.empty() && builtSeeds.empty() && !hasSource)
    return success();

  // Inputs that get a gradient, each once, with the block arguments bound to
  // them.
  llvm::MapVector<Value, SmallVector<BlockArgument>> inputGradients;
  for (auto [input, argument] :
       llvm::zip(layer.getInputs(), layer.getBodyBlock().getArguments()))
    if (isActive(argument))
      inputGradients[input].push_back(argument);

  // Operands: result gradients, saved values, running sums of the inputs.
  SmallVector<Value> operands;
  for (auto &entry : resultGradients)
    operands.push_back(entry.second);
  for (Value inner : plan.received)
    operands.push_back(savedArgument.lookup(outerValue(plan, inner)));
  SmallVector<Value> runningInputs;
  for (auto &entry : inputGradients)
    if (Value running = outerGradient.lookup(entry.first)) {
      runningInputs.push_back(entry.first);
      operands.push_back(running);
    }
  SmallVector<Type> resultTypes;
  for (auto &entry : inputGradients)
    resultTypes.push_back(entry.first.getType());

  auto backward =
      LayerOp::create(builder, loc, resultTypes, layer.getLayerName(),
                      layer.getKind(), operands);
  backward.setBackward(true);
  backward.setStrategyAttr(layer.getStrategyAttr());
  Block &body = backward.getBodyBlock();
  OpBuilder inner = OpBuilder::atBlockEnd(&body);
  auto arguments = body.getArguments();

  // Forward values on the backward side.
  IRMapping primals;
  unsigned next = resultGradients.size();
  for (Value value : plan.received)
    primals.map(value, arguments[next++]);
  for (Operation *op : plan.cloned)
    inner.clone(*op, primals);

  DenseMap<Value, Value> gradients;
  for (auto [position, entry] : llvm::enumerate(resultGradients))
    accumulate(inner, loc, gradients, yield.getOperand(entry.first),
               arguments[position]);
  for (auto &[resultIndex, seed] : builtSeeds)
    accumulate(inner, loc, gradients, yield.getOperand(resultIndex),
               seed->build(inner, loc));

  // Parameter gradients go to the client as soon as they exist, so they
  // need not stay live until the end of the layer.
  LogicalResult sinkStatus = success();
  auto sink = [&](FlatSymbolRefAttr name, Value gradient) {
    auto parameter =
        SymbolTable::lookupNearestSymbolFrom<ParameterOp>(forward, name);
    if (failed(sinkStatus))
      return;
    if (!options.parameterGradient)
      sinkStatus = layer.emitOpError()
                   << "computes the gradient of @" << name.getValue()
                   << " but autodiff was given no sink for it";
    else
      sinkStatus = options.parameterGradient(inner, loc, parameter, gradient);
  };
  auto lookup = [&](Value forwardValue) {
    return primals.lookupOrNull(forwardValue);
  };
  for (Operation *op : llvm::reverse(plan.differentiated)) {
    auto rule = cast<VJPOpInterface>(op);
    SmallVector<Value> results;
    for (Value output : op->getResults())
      results.push_back(gradients.lookup(output));
    if (llvm::all_of(results, [](Value v) { return !v; }) &&
        !rule.isGradientSource())
      continue;
    SmallVector<bool> wanted;
    for (Value operand : op->getOperands())
      wanted.push_back(isActive(operand));
    VJPBuilder vjp(inner, op, results, wanted, lookup, sink);
    if (failed(rule.buildVJP(vjp)) || failed(sinkStatus))
      return failure();
    for (auto [operandIndex, gradient] :
         llvm::enumerate(vjp.getOperandGradients())) {
      if (!gradient)
        continue;
      Value operand = op->getOperand(operandIndex);
      if (gradient.getType() != operand.getType())
        return op->emitOpError()
               << "reverse-mode rule produced a " << gradient.getType()
               << " gradient for operand #" << operandIndex << " of type "
               << operand.getType();
      accumulate(inner, loc, gradients, operand, gradient);
    }
  }

  // Yield each input's running sum: this layer's contributions plus what
  // later layers contributed.
  SmallVector<Value> totals;
  for (auto &[input, bound] : inputGradients) {
    Value total;
    for (BlockArgument argument : bound)
      if (Value gradient = gradients.lookup(argument))
        total = total ? Value(AddOp::create(inner, loc, total, gradient))
                      : gradient;
    auto running = llvm::find(runningInputs, input);
    if (running != runningInputs.end()) {
      Value previous = arguments[resultGradients.size() + plan.received.size() +
                                 (running - runningInputs.begin())];
      total =
          total ? Value(AddOp::create(inner, loc, total, previous)) : previous;
    }
    if (!total)
      total = buildZeros(inner, loc, cast<RankedTensorType>(input.getType()));
    totals.push_back(total);
  }
  YieldOp::create(inner, loc, totals);
  for (auto [position, entry] : llvm::enumerate(inputGradients))
    outerGradient[entry.first] = backward.getResult(position);
  return success();
}

FailureOr<BackwardFunction> Differentiator::run() {
  if (failed(collectLayers()))
    return failure();
  analyzeActivity();
  for (LayerPlan &plan : plans)
    if (failed(this->plan(plan)))
      return failure();
  for (LayerPlan &plan : plans)
    addSavedResults(plan);

  // The backward function: seed arguments, then the saved values.
  SmallVector<Type> argumentTypes;
  for (auto [position, seed] : llvm::zip(seedPositions, seeds))
    if (!seed.build && varied.contains(seed.value)) {
      Value value = plans[position.first].layer.getResult(position.second);
      result.seedArguments.push_back(value);
      argumentTypes.push_back(value.getType());
    }
  llvm::SetVector<Value> saved;
  for (LayerPlan &plan : plans)
    for (Value inner : plan.received)
      saved.insert(outerValue(plan, inner));
  result.savedValues.assign(saved.begin(), saved.end());
  for (Value value : saved)
    argumentTypes.push_back(value.getType());

  OpBuilder builder(forward->getContext());
  builder.setInsertionPointAfter(forward);
  auto backward =
      func::FuncOp::create(builder, forward.getLoc(), options.backwardName,
                           builder.getFunctionType(argumentTypes, {}));
  result.function = backward;
  Block *entry = backward.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  for (auto [value, argument] :
       llvm::zip(result.seedArguments, entry->getArguments()))
    outerGradient[value] = argument;
  for (auto [value, argument] :
       llvm::zip(result.savedValues,
                 entry->getArguments().drop_front(result.seedArguments.size())))
    savedArgument[value] = argument;

  for (LayerPlan &plan : llvm::reverse(plans))
    if (failed(buildBackwardLayer(plan, builder)))
      return failure();

  SmallVector<Value> returned;
  for (unsigned index : options.gradientArguments)
    if (Value gradient = outerGradient.lookup(forward.getArgument(index))) {
      returned.push_back(gradient);
      result.argumentGradients.push_back(index);
    }
  func::ReturnOp::create(builder, forward.getLoc(), returned);
  backward.setFunctionType(
      builder.getFunctionType(argumentTypes, ValueRange(returned).getTypes()));
  return result;
}

FailureOr<BackwardFunction>
mlir::galvatron::buildBackward(func::FuncOp forward,
                               ArrayRef<GradientSeed> seeds,
                               const AutodiffOptions &options) {
  return Differentiator(forward, seeds, options).run();
}
