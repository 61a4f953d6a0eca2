//===- UnrollSchedule.cpp - One function for a training step --------------===//

#include "galvatron/Transforms/Passes.h"

#include "mlir/IR/IRMapping.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_UNROLLSCHEDULE
#include "galvatron/Transforms/Passes.h.inc"

namespace {

/// Clones the body of `callee` at `builder`'s insertion point with its
/// arguments bound to `arguments`; returns the values it returns.
SmallVector<Value> inlineCall(OpBuilder &builder, func::FuncOp callee,
                              ValueRange arguments) {
  IRMapping mapping;
  Block &body = callee.getBody().front();
  mapping.map(body.getArguments(), arguments);
  for (Operation &op : body.without_terminator())
    builder.clone(op, mapping);
  SmallVector<Value> results;
  for (Value value : body.getTerminator()->getOperands())
    results.push_back(mapping.lookup(value));
  return results;
}

/// Model FLOPs of one forward call: every matrix op of the function.
int64_t forwardFlops(func::FuncOp function) {
  int64_t flops = 0;
  function.walk([&](FlopCountOpInterface op) { flops += op.getFlops(); });
  return flops;
}

struct UnrollSchedulePass : impl::UnrollScheduleBase<UnrollSchedulePass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto fail = [&](Operation *at, const Twine &message) {
      at->emitError() << "--galvatron-unroll-schedule: " << message;
      signalPassFailure();
    };
    auto schedules = llvm::to_vector(module.getOps<ScheduleOp>());
    if (schedules.size() != 1)
      return fail(module, "expected one galvatron.schedule, found " +
                              Twine(schedules.size()));
    ScheduleOp schedule = schedules.front();
    auto lookup = [&](FlatSymbolRefAttr name) {
      return module.lookupSymbol<func::FuncOp>(name);
    };
    func::FuncOp forward = lookup(schedule.getForwardAttr());
    func::FuncOp backward = lookup(schedule.getBackwardAttr());
    func::FuncOp optimizer = lookup(schedule.getOptimizerAttr());
    int64_t microBatches = schedule.getMicroBatches();

    // The data of the whole step: micro-batches stacked along dimension 0.
    MLIRContext *context = &getContext();
    SmallVector<Type> inputTypes;
    for (auto [index, type] : llvm::enumerate(forward.getArgumentTypes())) {
      auto tensor = cast<RankedTensorType>(type);
      if (tensor.getRank() == 0)
        return fail(forward, "argument #" + Twine(index) +
                                 " is a scalar; forward arguments are "
                                 "per-micro-batch data with a batch dimension");
      SmallVector<int64_t> shape(tensor.getShape());
      shape[0] *= microBatches;
      inputTypes.push_back(
          RankedTensorType::get(shape, tensor.getElementType()));
    }
    OpBuilder builder(schedule);
    auto step = func::FuncOp::create(
        builder, schedule.getLoc(), "__unrolled_step",
        FunctionType::get(context, inputTypes, optimizer.getResultTypes()));
    for (unsigned index = 0; index < forward.getNumArguments(); ++index)
      step.setArgAttrs(index, forward.getArgAttrDict(index));
    for (unsigned index = 0; index < optimizer.getNumResults(); ++index)
      step.setResultAttrs(index, optimizer.getResultAttrDict(index));
    builder.setInsertionPointToStart(step.addEntryBlock());

    // Micro-batch m reads rows [m·b, (m+1)·b) of every input.
    auto microBatchInputs = [&](int64_t micro) {
      SmallVector<Value> values;
      for (auto [input, type] :
           llvm::zip(step.getArguments(), forward.getArgumentTypes())) {
        if (microBatches == 1) {
          values.push_back(input);
          continue;
        }
        auto shape = cast<RankedTensorType>(type).getShape();
        SmallVector<int64_t> starts(shape.size(), 0), limits(shape),
            strides(shape.size(), 1);
        starts[0] = micro * shape[0];
        limits[0] = (micro + 1) * shape[0];
        values.push_back(SliceOp::create(builder, schedule.getLoc(), input,
                                         starts, limits, strides));
      }
      return values;
    };

    SmallVector<SmallVector<Value>> saved(microBatches);
    SmallVector<Value> results;
    for (auto entry : schedule.getOrder().getAsRange<ScheduleStepAttr>()) {
      int64_t micro = entry.getMicroBatch();
      switch (entry.getKind()) {
      case ScheduleStepKind::forward:
        saved[micro] = inlineCall(builder, forward, microBatchInputs(micro));
        break;
      case ScheduleStepKind::backward:
        inlineCall(builder, backward, saved[micro]);
        saved[micro].clear();
        break;
      case ScheduleStepKind::optimizer:
        results = inlineCall(builder, optimizer, {});
        break;
      }
    }
    func::ReturnOp::create(builder, schedule.getLoc(), results);

    int64_t vocabSize = 0;
    auto columnsOf = [](Value logits) {
      return cast<RankedTensorType>(logits.getType()).getShape().back();
    };
    forward.walk([&](Operation *op) {
      if (auto loss = dyn_cast<CrossEntropyOp>(op))
        vocabSize = columnsOf(loss.getLogits());
      // The vocabulary split over the loss's groups (less their padding).
      if (auto loss = dyn_cast<VocabCrossEntropyOp>(op))
        vocabSize =
            loss.getVocabSize().value_or(
                columnsOf(loss.getLogits()) *
                cast<DenseI64ArrayAttr>(loss.getVocabGroups()[0]).size());
    });
    step->setAttr(GalvatronDialect::getTrainingAttrName(),
                  TrainingAttr::get(context, schedule.getLoss(),
                                    3 * microBatches * forwardFlops(forward),
                                    vocabSize));
    StringAttr name = schedule.getSymNameAttr();
    for (Operation *op : {schedule.getOperation(), forward.getOperation(),
                          backward.getOperation(), optimizer.getOperation()})
      op->erase();
    step.setSymName(name);
  }
};

} // namespace
} // namespace mlir::galvatron
