//===- HoistGradientSync.cpp - DDP sync in the last backward --------------===//
//
// Moves the optimizer step's once-per-step all-reduce of a data-parallel
// weight's accumulated gradient into the last micro-batch's backward layer,
// right after the gradient's last contribution.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Transforms/Passes.h"

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

/// Moves `sync`, the all-reduce of `read` (a top-level read of a DDP
/// gradient accumulator), onto the accumulator's last assignment when that
/// lies in a layer and the accumulator is zeroed after the sync.
void hoist(func::FuncOp function, AllReduceOp sync, ReadStateOp read) {
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
  if (!last || !zeroing || !isa<LayerOp>(topLevelOf(function, last)))
    return;
  OpBuilder builder(last);
  Value synced =
      AllReduceOp::create(builder, sync.getLoc(), last.getValue(),
                          CollectiveReduction::sum, sync.getGroups());
  last.getValueMutable().assign(synced);
  sync.replaceAllUsesWith(read.getResult());
  sync.erase();
}

struct HoistGradientSyncPass
    : impl::HoistGradientSyncBase<HoistGradientSyncPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    for (func::FuncOp function : module.getOps<func::FuncOp>()) {
      if (function.isExternal())
        continue;
      SmallVector<std::pair<AllReduceOp, ReadStateOp>> syncs;
      for (auto sync : function.getBody().front().getOps<AllReduceOp>()) {
        auto read = sync.getInput().getDefiningOp<ReadStateOp>();
        auto state = read ? module.lookupSymbol<StateOp>(read.getNameAttr())
                          : StateOp();
        if (!state || state.getKind() != StateKind::gradient ||
            !state.getParameterAttr())
          continue;
        std::optional<DataParallelSync> dataParallel = getDataParallelSync(
            module.lookupSymbol(state.getParameterAttr()));
        if (dataParallel && dataParallel->zeroStage == 0 &&
            dataParallel->groups == sync.getGroups() &&
            sync.getReduce() == CollectiveReduction::sum)
          syncs.push_back({sync, read});
      }
      for (auto [sync, read] : syncs)
        hoist(function, sync, read);
    }
  }
};

} // namespace
} // namespace mlir::galvatron
