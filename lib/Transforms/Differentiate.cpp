//===- Differentiate.cpp - Backward function of a layered function --------===//

#include "galvatron/Transforms/Passes.h"
#include "galvatron/Support/Error.h"
#include "galvatron/Transforms/Autodiff.h"
#include "galvatron/Transforms/PlanUtils.h"
#include "galvatron/Transforms/Training.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_DIFFERENTIATE
#include "galvatron/Transforms/Passes.h.inc"

namespace {

/// `galvatron.name` of result `index` of `function`, or "result<index>".
static std::string resultName(func::FuncOp function, unsigned index) {
  if (auto name = function.getResultAttrOfType<StringAttr>(
          index, GalvatronDialect::getNameAttrName()))
    return name.str();
  return "result" + std::to_string(index);
}

static std::string argumentName(func::FuncOp function, unsigned index) {
  if (auto name = function.getArgAttrOfType<StringAttr>(
          index, GalvatronDialect::getNameAttrName()))
    return name.str();
  return "arg" + std::to_string(index);
}

static bool isFloatTensor(Type type) {
  auto tensor = dyn_cast<RankedTensorType>(type);
  return tensor && isa<FloatType>(tensor.getElementType());
}

struct DifferentiatePass : impl::DifferentiateBase<DifferentiatePass> {
  using DifferentiateBase::DifferentiateBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](llvm::Error error) {
      emitPassError(module, "--galvatron-differentiate", std::move(error));
      signalPassFailure();
    };
    auto forward = module.lookupSymbol<func::FuncOp>(function);
    if (!forward || forward.isExternal())
      return fail(makeError("no function @" + function +
                            " with a body to differentiate"));
    std::optional<CheckpointPolicy> policy = parseCheckpointPolicy(checkpoint);
    if (!policy)
      return fail(makeError("unknown checkpoint policy '" + checkpoint +
                            "' (expected plan, none, blocks or all)"));
    std::string backwardName = function + "_backward";
    if (Operation *existing = module.lookupSymbol(backwardName))
      return fail(makeError(existing, "@" + backwardName + " already exists"));

    // The float results computed by layers arrive with gradients.
    auto terminator = forward.getBody().front().getTerminator();
    SmallVector<GradientSeed> seeds;
    for (Value value : terminator->getOperands())
      if (isFloatTensor(value.getType()) && value.getDefiningOp<LayerOp>())
        seeds.push_back({value, nullptr});

    StateDeclarer states(module);
    GradientAccumulators accumulators(states, /*deferSync=*/false);
    AutodiffOptions options;
    options.backwardName = backwardName;
    options.recompute = [&](LayerOp layer) {
      return shouldRecompute(*policy, layer);
    };
    options.parameterGradient = [&](OpBuilder &builder, Location loc,
                                    ParameterOp parameter, Value gradient) {
      return accumulators.accumulate(builder, loc, parameter, gradient);
    };
    for (auto [index, type] : llvm::enumerate(forward.getArgumentTypes()))
      if (isFloatTensor(type))
        options.gradientArguments.push_back(index);

    FailureOr<BackwardFunction> backward =
        buildBackward(forward, seeds, options);
    if (failed(backward))
      return signalPassFailure();
    accumulators.eraseBypassedSyncs();

    // The forward also returns the saved activations.
    SmallVector<DictionaryAttr> resultAttrs;
    forward.getAllResultAttrs(resultAttrs);
    SmallVector<Value> results(terminator->getOperands());
    results.append(backward->savedValues);
    resultAttrs.resize(results.size(), DictionaryAttr::get(&getContext()));
    terminator->setOperands(results);
    forward.setFunctionType(FunctionType::get(&getContext(),
                                              forward.getArgumentTypes(),
                                              ValueRange(results).getTypes()));
    forward.setAllResultAttrs(resultAttrs);

    // Name the backward function's gradients after what they belong to.
    func::FuncOp backwardFunction = backward->function;
    StringAttr nameAttr =
        StringAttr::get(&getContext(), GalvatronDialect::getNameAttrName());
    for (auto [position, value] : llvm::enumerate(backward->seedArguments)) {
      unsigned result = llvm::find(results, value) - results.begin();
      backwardFunction.setArgAttr(
          position, nameAttr,
          StringAttr::get(&getContext(),
                          resultName(forward, result) + ".grad"));
    }
    for (auto [position, index] : llvm::enumerate(backward->argumentGradients))
      backwardFunction.setResultAttr(
          position, nameAttr,
          StringAttr::get(&getContext(),
                          argumentName(forward, index) + ".grad"));
  }
};

} // namespace
} // namespace mlir::galvatron
