//===- HoistGradientSync.cpp - Gradient sync in the last backward ---------===//
//
// Moves the optimizer step's once-per-step sync of a data-parallel weight's
// accumulated gradient (DDP's all-reduce, ZeRO-1's reduce-scatter) into the
// last micro-batch's backward layer, right after the gradient's last
// contribution.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Transforms/LayerUtils.h"
#include "galvatron/Transforms/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/IR/Matchers.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_HOISTGRADIENTSYNC
#include "galvatron/Transforms/Passes.h.inc"

namespace {

/// Whether `value` is all zeros (how the optimizer step resets an
/// accumulator: a zero broadcast).
bool isZeros(Value value) {
  if (auto broadcast = value.getDefiningOp<BroadcastOp>())
    value = broadcast.getInput();
  return matchPattern(value, m_AnyZeroFloat());
}

/// The op of `function`'s body holding `op` (itself at the top level).
Operation *topLevelOf(func::FuncOp function, Operation *op) {
  return function.getBody().front().findAncestorOpInBlock(*op);
}

/// Moves `sync` (a collective on `read`, a top-level read of a
/// data-parallel gradient accumulator) onto the accumulator's last update
/// when that lies in a layer. An all-reduce replaces the accumulated sum in
/// place, which needs the accumulator zeroed after the sync (so it started
/// the step at zero); a reduce-scatter's smaller result leaves the layer as
/// a new result.
void hoist(func::FuncOp function, Operation *sync, ReadStateOp read) {
  StringAttr name = read.getNameAttr().getAttr();
  AssignOp last, zeroing;
  function.walk([&](AssignOp assign) {
    if (assign.getNameAttr().getAttr() != name)
      return;
    Operation *top = topLevelOf(function, assign);
    if (top->isBeforeInBlock(read))
      last = assign;
    else if (sync->isBeforeInBlock(top) && !zeroing &&
             isZeros(assign.getValue()))
      zeroing = assign;
  });
  auto layer = last ? dyn_cast<LayerOp>(topLevelOf(function, last)) : LayerOp();
  bool inPlace = isa<AllReduceOp>(sync);
  if (!layer || (inPlace && !zeroing))
    return;
  OpBuilder builder(last);
  if (!inPlace)
    builder.setInsertionPointAfter(last);
  IRMapping operand;
  operand.map(read.getResult(), last.getValue());
  Value synced = builder.clone(*sync, operand)->getResult(0);
  if (inPlace) {
    last.getValueMutable().assign(synced);
    sync->replaceAllUsesWith(ValueRange{read.getResult()});
  } else {
    SmallVector<Value> values(getLayerYield(layer).getValues());
    SmallVector<int> newIndex =
        llvm::to_vector(llvm::seq<int>(0, int(values.size())));
    values.push_back(synced);
    layer = rebuildLayerResults(layer, values, newIndex);
    sync->replaceAllUsesWith(ValueRange{layer.getResults().back()});
  }
  sync->erase();
  if (read->use_empty())
    read->erase();
}

struct HoistGradientSyncPass
    : impl::HoistGradientSyncBase<HoistGradientSyncPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    // The data-parallel sync of the weight whose accumulator `read` reads.
    auto syncOf = [&](Value input) -> std::optional<DataParallelSync> {
      auto read = input.getDefiningOp<ReadStateOp>();
      auto state = read ? module.lookupSymbol<StateOp>(read.getNameAttr())
                        : StateOp();
      if (!state || state.getKind() != StateKind::gradient ||
          !state.getParameterAttr())
        return std::nullopt;
      return getDataParallelSync(
          module.lookupSymbol(state.getParameterAttr()));
    };
    for (func::FuncOp function : module.getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      SmallVector<Operation *> syncs;
      for (Operation &op : function.getBody().front()) {
        if (auto allReduce = dyn_cast<AllReduceOp>(op)) {
          std::optional<DataParallelSync> sync = syncOf(allReduce.getInput());
          if (sync && sync->zeroStage == 0 &&
              sync->groups == allReduce.getGroups() &&
              allReduce.getReduce() == CollectiveReduction::sum)
            syncs.push_back(&op);
        }
        if (auto scatter = dyn_cast<ReduceScatterOp>(op)) {
          std::optional<DataParallelSync> sync = syncOf(scatter.getInput());
          if (sync && sync->zeroStage == 1 &&
              sync->groups == scatter.getGroups() &&
              sync->dim == int64_t(scatter.getDim()) &&
              scatter.getReduce() == CollectiveReduction::sum)
            syncs.push_back(&op);
        }
      }
      for (Operation *sync : syncs)
        hoist(function, sync,
              sync->getOperand(0).getDefiningOp<ReadStateOp>());
    }
  }
};

} // namespace
} // namespace mlir::galvatron
