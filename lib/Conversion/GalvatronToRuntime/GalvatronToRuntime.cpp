//===- GalvatronToRuntime.cpp - Lower a model function to a program -------===//
//
// Flattens the entry function's layers into one instruction stream over
// numbered buffers, decides which results overwrite their operands in place,
// plans the arena from live ranges, and emits a grt.executable.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/MemoryPlanner.h"
#include "galvatron/Conversion/Passes.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include "mlir/IR/Builders.h"
#include "llvm/ADT/TypeSwitch.h"

namespace mlir::galvatron {
#define GEN_PASS_DEF_LOWERTORUNTIME
#include "galvatron/Conversion/Passes.h.inc"
} // namespace mlir::galvatron

using namespace mlir;
using namespace mlir::galvatron;
namespace rt = ::galvatron::runtime;

namespace {

//===----------------------------------------------------------------------===//
// Kernel calls
//===----------------------------------------------------------------------===//

/// The runtime kernel an op calls (named like the op) and its config.
FailureOr<std::pair<std::string, DictionaryAttr>>
describeKernel(Operation *op) {
  std::string name = op->getName().stripDialect().str();
  if (op->getDialect()->getNamespace() != GalvatronDialect::getDialectNamespace() ||
      !rt::findKernel(name))
    return op->emitOpError() << "has no runtime kernel";
  Builder b(op->getContext());
  SmallVector<NamedAttribute> config;
  auto add = [&](StringRef key, Attribute value) {
    config.push_back(b.getNamedAttr(key, value));
  };
  auto flag = [&](StringRef key, bool value) {
    if (value)
      add(key, b.getBoolAttr(true));
  };
  auto axes = [&](auto reduce) {
    add("axes", b.getDenseI64ArrayAttr(reduce.getAxes()));
    flag("keep_dims", reduce.getKeepDims());
  };
  TypeSwitch<Operation *>(op)
      .Case([&](GeluOp op) {
        flag("approximate", op.getApproximate() == GeluApproximation::tanh);
      })
      .Case([&](MatmulOp op) {
        flag("transpose_lhs", op.getTransposeLhs());
        flag("transpose_rhs", op.getTransposeRhs());
      })
      .Case([&](LinearOp op) {
        flag("transpose_weight", op.getTransposeWeight());
      })
      .Case<LayerNormOp, RMSNormOp>(
          [&](auto op) { add("epsilon", op.getEpsilonAttr()); })
      .Case([&](SoftmaxOp op) { add("axis", op.getAxisAttr()); })
      .Case([&](TransposeOp op) { add("perm", op.getPermAttr()); })
      .Case([&](SliceOp op) {
        add("starts", op.getStartsAttr());
        add("limits", op.getLimitsAttr());
        add("strides", op.getStridesAttr());
      })
      .Case<ConcatOp, SplitOp>([&](auto op) { add("axis", op.getAxisAttr()); })
      .Case<ReduceSumOp, ReduceMeanOp, ReduceMaxOp>(axes)
      .Case([&](RotaryOp op) {
        add("seq_axis", op.getSeqAxisAttr());
        add("theta", op.getThetaAttr());
        add("rotary_dim", b.getI64IntegerAttr(op.getEffectiveRotaryDim()));
        flag("interleaved", op.getInterleaved());
      })
      .Case([&](AttentionOp op) {
        flag("causal", op.getCausal());
        add("scale", b.getF64FloatAttr(op.getEffectiveScale()));
      })
      .Case([&](CrossEntropyOp op) {
        add("ignore_index", op.getIgnoreIndexAttr());
        add("reduction", b.getI64IntegerAttr(
                             op.getReduction() == LossReduction::sum ? 1 : 0));
      })
      .Case([&](RelativePositionBucketOp op) {
        add("num_buckets", op.getNumBucketsAttr());
        add("max_distance", op.getMaxDistanceAttr());
        add("bidirectional", op.getBidirectionalAttr());
      })
      .Case([&](ExtractPatchesOp op) {
        add("patch_size", op.getPatchSizeAttr());
      })
      .Case([&](TrilMaskOp op) { add("diagonal", op.getDiagonalAttr()); });
  return std::make_pair(name, b.getDictionaryAttr(config));
}

//===----------------------------------------------------------------------===//
// The lowering
//===----------------------------------------------------------------------===//

enum class Role { temporary, input, parameter, constant };

/// A value's storage: a buffer of its own (a root) or a view of a root.
struct ValueBuffer {
  RankedTensorType type;
  Role role = Role::temporary;
  /// The root (itself for a root) and where in it the bytes start.
  unsigned root;
  uint64_t offsetInRoot = 0;
  /// Input or parameter name.
  std::string name;
  ParameterOp parameter;
  ElementsAttr value;

  uint64_t bytes() const {
    return uint64_t(type.getNumElements()) *
           rt::elementSize(*grt::convertElementType(type.getElementType()));
  }
};

struct KernelStep {
  Operation *op;
  std::string kernel;
  DictionaryAttr config;
  StringAttr layer;
  SmallVector<unsigned> inputs, outputs;
};

/// Where a rank sits in the job: stage-major (rank = stage · devices / pp +
/// local index), so the peer of a pipeline message holds the same local
/// index on the other stage.
struct RankPlacement {
  int64_t rank = 0, worldSize = 1, ranksPerStage = 1;

  int64_t peerOf(int64_t peerStage) const {
    return peerStage * ranksPerStage + rank % ranksPerStage;
  }
};

class Lowering {
public:
  Lowering(ModuleOp module, func::FuncOp entry, uint64_t alignment,
           RankPlacement placement)
      : module(module), entry(entry), alignment(alignment),
        placement(placement) {}

  LogicalResult collect();
  void assignInPlace();
  MemoryPlan plan();
  void emit(const MemoryPlan &memory, StringRef modelDirectory);

private:
  FailureOr<unsigned> newBuffer(Operation *op, Value value, Role role);
  LogicalResult visit(Operation *op, StringAttr layer);
  unsigned rootOf(unsigned buffer) const { return buffers[buffer].root; }
  /// The class (set of roots sharing bytes through in-place results).
  unsigned classOf(unsigned root) const { return rootClass[root]; }

  ModuleOp module;
  func::FuncOp entry;
  uint64_t alignment;
  RankPlacement placement;

  SmallVector<ValueBuffer> buffers;
  DenseMap<Value, unsigned> bufferOf;
  llvm::StringMap<unsigned> parameterBuffers;
  SmallVector<KernelStep> steps;
  SmallVector<std::pair<std::string, unsigned>> outputs;

  // Per root buffer: first write (-1 before the run) and last access
  // (steps.size() after it).
  SmallVector<int64_t> start, end;
  SmallVector<unsigned> rootClass;
};

FailureOr<unsigned> Lowering::newBuffer(Operation *op, Value value, Role role) {
  auto type = dyn_cast<RankedTensorType>(value.getType());
  if (!type || !type.hasStaticShape() ||
      !grt::convertElementType(type.getElementType())) {
    InFlightDiagnostic diagnostic = op->emitOpError();
    if (auto argument = dyn_cast<BlockArgument>(value))
      diagnostic << "argument #" << argument.getArgNumber() << " has type ";
    else
      diagnostic << "produces ";
    return diagnostic << value.getType()
                      << ", which the runtime cannot hold (static tensors of "
                         "f32, f16, bf16, i64, i32 or i1)";
  }
  unsigned index = buffers.size();
  ValueBuffer &buffer = buffers.emplace_back();
  buffer.type = type;
  buffer.role = role;
  buffer.root = index;
  bufferOf[value] = index;
  return index;
}

LogicalResult Lowering::visit(Operation *op, StringAttr layer) {
  if (auto nested = dyn_cast<LayerOp>(op)) {
    Block &body = nested.getBodyBlock();
    for (auto [argument, operand] :
         llvm::zip(body.getArguments(), nested.getInputs()))
      bufferOf[argument] = bufferOf.lookup(operand);
    for (Operation &inner : body.without_terminator())
      if (failed(visit(&inner, nested.getLayerNameAttr())))
        return failure();
    auto yield = cast<YieldOp>(body.getTerminator());
    for (auto [result, value] :
         llvm::zip(nested.getResults(), yield.getValues()))
      bufferOf[result] = bufferOf.lookup(value);
    return success();
  }
  if (auto ret = dyn_cast<func::ReturnOp>(op)) {
    for (auto [index, value] : llvm::enumerate(ret.getOperands())) {
      auto name = entry.getResultAttrOfType<StringAttr>(
          index, GalvatronDialect::getNameAttrName());
      outputs.emplace_back(name ? name.str() : "output" + std::to_string(index),
                           bufferOf.lookup(value));
    }
    return success();
  }
  if (auto param = dyn_cast<ParamOp>(op)) {
    auto it = parameterBuffers.find(param.getName());
    if (it != parameterBuffers.end()) {
      bufferOf[param.getResult()] = it->second;
      return success();
    }
    FailureOr<unsigned> index = newBuffer(op, param.getResult(), Role::parameter);
    if (failed(index))
      return failure();
    buffers[*index].name = param.getName().str();
    buffers[*index].parameter =
        module.lookupSymbol<ParameterOp>(param.getNameAttr());
    parameterBuffers[param.getName()] = *index;
    return success();
  }
  if (auto constant = dyn_cast<ConstantOp>(op)) {
    FailureOr<unsigned> index =
        newBuffer(op, constant.getResult(), Role::constant);
    if (failed(index))
      return failure();
    buffers[*index].value = constant.getValue();
    return success();
  }
  if (auto reshape = dyn_cast<ReshapeOp>(op)) {
    // A view: the same bytes under another shape.
    const ValueBuffer source = buffers[bufferOf.lookup(reshape.getInput())];
    FailureOr<unsigned> index =
        newBuffer(op, reshape.getResult(), Role::temporary);
    if (failed(index))
      return failure();
    buffers[*index].root = source.root;
    buffers[*index].offsetInRoot = source.offsetInRoot;
    return success();
  }
  // Messages are steps without a kernel.
  std::pair<std::string, DictionaryAttr> kernel;
  if (!isa<SendOp, RecvOp>(op)) {
    FailureOr<std::pair<std::string, DictionaryAttr>> described =
        describeKernel(op);
    if (failed(described))
      return failure();
    kernel = *described;
  }
  KernelStep step{op, kernel.first, kernel.second, layer, {}, {}};
  for (Value operand : op->getOperands())
    step.inputs.push_back(bufferOf.lookup(operand));
  for (Value result : op->getResults()) {
    FailureOr<unsigned> index = newBuffer(op, result, Role::temporary);
    if (failed(index))
      return failure();
    step.outputs.push_back(*index);
  }
  steps.push_back(std::move(step));
  return success();
}

LogicalResult Lowering::collect() {
  for (auto [index, argument] : llvm::enumerate(entry.getArguments())) {
    FailureOr<unsigned> buffer = newBuffer(entry, argument, Role::input);
    if (failed(buffer))
      return failure();
    auto name = entry.getArgAttrOfType<StringAttr>(
        index, GalvatronDialect::getNameAttrName());
    buffers[*buffer].name =
        name ? name.str() : "input" + std::to_string(index);
  }
  for (Operation &op : entry.getBody().front())
    if (failed(visit(&op, StringAttr())))
      return failure();

  // Live ranges of roots.
  int64_t count = steps.size();
  start.assign(buffers.size(), count);
  end.assign(buffers.size(), -1);
  for (auto [index, buffer] : llvm::enumerate(buffers)) {
    if (buffer.root != index)
      continue;
    if (buffer.role != Role::temporary)
      start[index] = -1;
    if (buffer.role == Role::parameter || buffer.role == Role::constant)
      end[index] = count;
  }
  for (auto [i, step] : llvm::enumerate(steps)) {
    for (unsigned input : step.inputs)
      end[rootOf(input)] = std::max<int64_t>(end[rootOf(input)], i);
    for (unsigned output : step.outputs) {
      start[output] = std::min<int64_t>(start[output], i);
      end[output] = std::max<int64_t>(end[output], i);
    }
  }
  for (auto &[name, buffer] : outputs)
    end[rootOf(buffer)] = count;
  return success();
}

void Lowering::assignInPlace() {
  rootClass.assign(buffers.size(), 0);
  for (unsigned i = 0; i < buffers.size(); ++i)
    rootClass[i] = i;
  for (auto [index, step] : llvm::enumerate(steps)) {
    if (step.kernel.empty())
      continue;
    const rt::KernelSpec &spec = *rt::findKernel(step.kernel);
    if (!spec.inPlaceInputs || step.outputs.empty())
      continue;
    unsigned output = step.outputs[0];
    uint64_t bytes = buffers[output].bytes();
    auto overwritable = [&](unsigned slot) {
      if (slot >= 32 || !(spec.inPlaceInputs >> slot & 1))
        return false;
      const ValueBuffer &input = buffers[step.inputs[slot]];
      const ValueBuffer &root = buffers[input.root];
      // Only a temporary read here for the last time; every operand using
      // its bytes must be one the kernel may overwrite, whole.
      if (root.role != Role::temporary || end[input.root] != int64_t(index) ||
          root.bytes() != bytes)
        return false;
      for (auto [other, operand] : llvm::enumerate(step.inputs)) {
        const ValueBuffer &buffer = buffers[operand];
        if (buffer.root == input.root &&
            (other >= 32 || !(spec.inPlaceInputs >> other & 1) ||
             buffer.offsetInRoot != 0 || buffer.bytes() != bytes))
          return false;
      }
      return true;
    };
    for (unsigned slot = 0; slot < step.inputs.size(); ++slot) {
      if (overwritable(slot)) {
        rootClass[output] = classOf(rootOf(step.inputs[slot]));
        break;
      }
    }
  }
}

MemoryPlan Lowering::plan() {
  // One request per class of roots sharing bytes.
  SmallVector<MemoryRequest> requests;
  DenseMap<unsigned, unsigned> requestOf;
  for (auto [index, buffer] : llvm::enumerate(buffers)) {
    if (buffer.root != index || start[index] > end[index])
      continue;
    auto [it, inserted] = requestOf.try_emplace(classOf(index), requests.size());
    if (inserted) {
      requests.push_back({buffer.bytes(), start[index], end[index]});
      continue;
    }
    MemoryRequest &request = requests[it->second];
    request.start = std::min(request.start, start[index]);
    request.end = std::max(request.end, end[index]);
  }
  MemoryPlan memory = planMemory(requests, alignment);
  // Re-index the offsets by class.
  SmallVector<uint64_t> offsets(buffers.size(), 0);
  for (auto [cls, request] : requestOf)
    offsets[cls] = memory.offsets[request];
  memory.offsets = std::move(offsets);
  return memory;
}

void Lowering::emit(const MemoryPlan &memory, StringRef modelDirectory) {
  MLIRContext *context = module.getContext();
  OpBuilder builder(context);
  Location loc = entry.getLoc();
  builder.setInsertionPointToEnd(module.getBody());
  auto model = module->getAttrOfType<StringAttr>(
      GalvatronDialect::getModelAttrName());
  auto executable = grt::ExecutableOp::create(
      builder, loc, placement.worldSize, alignment, model,
      modelDirectory.empty() ? StringAttr() : builder.getStringAttr(modelDirectory));
  builder.setInsertionPointToStart(&executable.getBody().emplaceBlock());
  auto program = grt::ProgramOp::create(builder, loc, placement.rank, memory.size);
  builder.setInsertionPointToStart(&program.getBody().emplaceBlock());

  auto offsetOf = [&](unsigned index) {
    return int64_t(memory.offsets[classOf(buffers[index].root)]);
  };
  auto memrefOf = [](RankedTensorType type) {
    return MemRefType::get(type.getShape(), type.getElementType());
  };
  SmallVector<Value> values(buffers.size());
  // Inputs, parameters and constants first, then temporaries and views in
  // the order they were created (a view follows its root).
  for (Role role : {Role::input, Role::parameter, Role::constant,
                    Role::temporary}) {
    for (auto [index, buffer] : llvm::enumerate(buffers)) {
      if (buffer.role != role)
        continue;
      MemRefType type = memrefOf(buffer.type);
      Location at = loc;
      if (buffer.root != index) {
        values[index] = grt::ViewOp::create(builder, at, type,
                                            values[buffer.root],
                                            buffer.offsetInRoot);
        continue;
      }
      switch (role) {
      case Role::input:
        values[index] =
            grt::InputOp::create(builder, at, type, buffer.name, offsetOf(index));
        break;
      case Role::parameter: {
        ParameterOp parameter = buffer.parameter;
        values[index] = grt::ParameterOp::create(
            builder, parameter.getLoc(), type, buffer.name, offsetOf(index),
            parameter.getInitAttr(), parameter.getExternalAttr(),
            DenseI64ArrayAttr(), DenseI64ArrayAttr());
        break;
      }
      case Role::constant:
        values[index] = grt::ConstantOp::create(builder, at, type,
                                                offsetOf(index), buffer.value);
        break;
      case Role::temporary:
        values[index] =
            grt::BufferOp::create(builder, at, type, offsetOf(index));
        break;
      }
    }
  }
  for (const KernelStep &step : steps) {
    SmallVector<Value> inputs, results;
    for (unsigned input : step.inputs)
      inputs.push_back(values[input]);
    for (unsigned output : step.outputs)
      results.push_back(values[output]);
    Location at = step.op->getLoc();
    if (auto send = dyn_cast<SendOp>(step.op)) {
      grt::SendOp::create(builder, at, inputs[0],
                          placement.peerOf(send.getPeer()), send.getTag(),
                          step.layer);
      continue;
    }
    if (auto recv = dyn_cast<RecvOp>(step.op)) {
      grt::RecvOp::create(builder, at, results[0],
                          placement.peerOf(recv.getPeer()), recv.getTag(),
                          step.layer);
      continue;
    }
    grt::KernelOp::create(builder, step.op->getLoc(), step.kernel, inputs,
                          results, step.config, step.layer);
  }
  for (auto &[name, buffer] : outputs)
    grt::OutputOp::create(builder, loc, name, values[buffer]);
}

} // namespace

//===----------------------------------------------------------------------===//
// The pass
//===----------------------------------------------------------------------===//

namespace mlir::galvatron {
namespace {
struct LowerToRuntimePass : impl::LowerToRuntimeBase<LowerToRuntimePass> {
  using LowerToRuntimeBase::LowerToRuntimeBase;

  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (alignment < 1 || (alignment & (alignment - 1)) || alignment > 4096) {
      module.emitError() << "alignment must be a power of two up to 4096, got "
                         << int64_t(alignment);
      return signalPassFailure();
    }
    auto function = module.lookupSymbol<func::FuncOp>(entry);
    if (!function || function.isExternal()) {
      module.emitError() << "no function '" << entry << "' to lower";
      return signalPassFailure();
    }
    if (!function.getBody().hasOneBlock()) {
      function.emitOpError() << "must have a single block to be lowered";
      return signalPassFailure();
    }
    // The plan sizes the job; without one the program runs on one rank.
    RankPlacement placement;
    placement.rank = rank;
    if (PlanAttr plan = getPlan(module)) {
      placement.worldSize = plan.getDevices();
      placement.ranksPerStage = plan.getDevices() / plan.getPp();
    }
    if (placement.rank < 0 || placement.rank >= placement.worldSize) {
      module.emitError() << "rank " << int64_t(rank)
                         << " is outside the job of " << placement.worldSize
                         << (placement.worldSize == 1 ? " rank" : " ranks");
      return signalPassFailure();
    }
    Lowering lowering(module, function, uint64_t(alignment), placement);
    if (failed(lowering.collect()))
      return signalPassFailure();
    lowering.assignInPlace();
    lowering.emit(lowering.plan(), modelDirectory);
    // The program replaces the model: drop the function and parameters.
    function.erase();
    for (ParameterOp parameter :
         llvm::make_early_inc_range(module.getOps<ParameterOp>()))
      parameter.erase();
  }
};
} // namespace
} // namespace mlir::galvatron
