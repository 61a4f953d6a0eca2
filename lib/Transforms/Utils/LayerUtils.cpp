//===- LayerUtils.cpp - Rewriting galvatron.layer ops ---------------------===//

#include "galvatron/Transforms/LayerUtils.h"

#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;
using namespace mlir::galvatron;

YieldOp mlir::galvatron::getLayerYield(LayerOp layer) {
  return cast<YieldOp>(layer.getBodyBlock().getTerminator());
}

/// A layer like `layer` over `inputs` returning `types`, taking its body.
static LayerOp rebuildAround(LayerOp layer, ValueRange inputs,
                             TypeRange types) {
  OpBuilder builder(layer);
  auto rebuilt = LayerOp::create(builder, layer.getLoc(), types,
                                 layer.getLayerName(), layer.getKind(), inputs);
  rebuilt->setDiscardableAttrs(layer->getDiscardableAttrDictionary());
  rebuilt.setStrategyAttr(layer.getStrategyAttr());
  rebuilt.setBackward(layer.getBackward());
  rebuilt.getBody().takeBody(layer.getBody());
  return rebuilt;
}

LayerOp mlir::galvatron::rebuildLayerResults(LayerOp layer,
                                             ArrayRef<Value> values,
                                             ArrayRef<int> newIndex) {
  SmallVector<Type> types;
  for (Value value : values)
    types.push_back(value.getType());
  LayerOp rebuilt = rebuildAround(layer, layer.getInputs(), types);
  getLayerYield(rebuilt)->setOperands(values);
  for (auto [index, result] : llvm::enumerate(layer.getResults()))
    if (newIndex[index] >= 0)
      result.replaceAllUsesWith(rebuilt.getResult(newIndex[index]));
  layer.erase();
  return rebuilt;
}

LayerOp mlir::galvatron::appendLayerInputs(LayerOp layer, ValueRange inputs) {
  SmallVector<Value> all(layer.getInputs());
  all.append(inputs.begin(), inputs.end());
  LayerOp rebuilt = rebuildAround(layer, all, layer.getResultTypes());
  for (Value input : inputs)
    rebuilt.getBodyBlock().addArgument(input.getType(), input.getLoc());
  layer.replaceAllUsesWith(rebuilt.getResults());
  layer.erase();
  return rebuilt;
}

void mlir::galvatron::pruneUnusedLayerResults(func::FuncOp function) {
  for (LayerOp layer :
       llvm::make_early_inc_range(function.getBody().getOps<LayerOp>())) {
    SmallVector<Value> kept;
    SmallVector<int> newIndex;
    for (auto [result, value] :
         llvm::zip(layer.getResults(), getLayerYield(layer).getValues())) {
      newIndex.push_back(result.use_empty() ? -1 : kept.size());
      if (!result.use_empty())
        kept.push_back(value);
    }
    if (kept.size() != layer.getNumResults())
      layer = rebuildLayerResults(layer, kept, newIndex);
    Block &body = layer.getBodyBlock();
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
      if (isOpTriviallyDead(&op))
        op.erase();
  }
}
