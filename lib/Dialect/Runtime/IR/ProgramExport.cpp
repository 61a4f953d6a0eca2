//===- ProgramExport.cpp - grt IR to the runtime's program model ----------===//

#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::galvatron::grt;
namespace rt = ::galvatron::runtime;

std::optional<rt::ElementType> mlir::galvatron::grt::convertElementType(Type type) {
  if (type.isF32())
    return rt::ElementType::f32;
  if (type.isF16())
    return rt::ElementType::f16;
  if (type.isBF16())
    return rt::ElementType::bf16;
  if (type.isInteger(64))
    return rt::ElementType::i64;
  if (type.isInteger(32))
    return rt::ElementType::i32;
  if (type.isInteger(1))
    return rt::ElementType::i1;
  return std::nullopt;
}

FailureOr<rt::TensorType> mlir::galvatron::grt::convertType(ShapedType type) {
  std::optional<rt::ElementType> element =
      convertElementType(type.getElementType());
  if (!element || !type.hasStaticShape())
    return failure();
  return rt::TensorType{*element, std::vector<int64_t>(type.getShape().begin(),
                                                       type.getShape().end())};
}

/// The rank terms of `terms` (an ArrayAttr of #grt.term), numbered by
/// `groups`; `indexOf` maps a term's key to the index of its attribute.
template <typename IndexOf>
static LogicalResult convertTerms(Operation *op, ArrayAttr terms,
                                  const llvm::StringMap<uint32_t> &groups,
                                  IndexOf indexOf) {
  if (!terms)
    return success();
  for (auto term : terms.getAsRange<RankTermAttr>()) {
    auto group = groups.find(term.getGroup().getValue());
    if (group == groups.end())
      return op->emitOpError() << "names " << term.getGroup()
                               << ", which is not a grt.group";
    if (term.getIndex() < 0)
      return op->emitOpError() << "has a rank term with a negative index";
    std::vector<rt::RankTerm> *into = indexOf(term.getKey().getValue());
    if (!into)
      return op->emitOpError() << "has a rank term for '"
                               << term.getKey().getValue()
                               << "', which it does not hold";
    into->push_back(rt::RankTerm{uint32_t(term.getIndex()), group->second,
                                 term.getCoefficient()});
  }
  return success();
}

FailureOr<std::vector<rt::Attribute>>
mlir::galvatron::grt::convertKernelConfig(
    KernelOp op, const llvm::StringMap<uint32_t> &groups) {
  std::vector<rt::Attribute> attributes;
  for (NamedAttribute named : op.getConfig()) {
    std::string name = named.getName().str();
    Attribute value = named.getValue();
    if (auto integer = dyn_cast<IntegerAttr>(value))
      attributes.push_back(rt::Attribute::makeInteger(
          name, integer.getType().isInteger(1) ? int64_t(integer.getValue().getBoolValue())
                                               : integer.getInt()));
    else if (auto real = dyn_cast<FloatAttr>(value))
      attributes.push_back(
          rt::Attribute::makeReal(name, real.getValueAsDouble()));
    else if (auto list = dyn_cast<DenseI64ArrayAttr>(value))
      attributes.push_back(rt::Attribute::makeIntegers(
          name, std::vector<int64_t>(list.asArrayRef().begin(),
                                     list.asArrayRef().end())));
    else
      return op.emitOpError()
             << "config entry '" << name
             << "' must be an integer, a float or an array<i64>";
  }
  if (failed(convertTerms(op, op.getTermsAttr(), groups,
                          [&](StringRef key) -> std::vector<rt::RankTerm> * {
                            for (rt::Attribute &attribute : attributes)
                              if (attribute.name == key)
                                return &attribute.terms;
                            return nullptr;
                          })))
    return failure();
  return attributes;
}

namespace {

/// Little-endian bytes of dense constant values.
FailureOr<std::vector<uint8_t>> constantBytes(ConstantOp op,
                                              rt::ElementType type) {
  auto dense = dyn_cast<DenseElementsAttr>(op.getValue());
  if (!dense)
    return op.emitOpError() << "needs dense constant values";
  std::vector<uint8_t> bytes;
  auto append = [&](uint64_t value, unsigned size) {
    for (unsigned i = 0; i < size; ++i)
      bytes.push_back(uint8_t(value >> (8 * i)));
  };
  unsigned size = rt::elementSize(type);
  if (rt::isFloat(type)) {
    for (const APFloat &value : dense.getValues<APFloat>())
      append(value.bitcastToAPInt().getZExtValue(), size);
  } else {
    for (const APInt &value : dense.getValues<APInt>())
      append(type == rt::ElementType::i1 ? value.getBoolValue()
                                         : value.getZExtValue(),
             size);
  }
  return bytes;
}

rt::Initializer convertInit(mlir::galvatron::InitAttr init) {
  return rt::Initializer{rt::InitKind(unsigned(init.getKind())),
                         init.getA().convertToDouble(),
                         init.getB().convertToDouble()};
}

rt::ExternalData convertExternal(mlir::galvatron::ExternalDataAttr external) {
  return rt::ExternalData{
      external.getLocation().str(), external.getOffset(), external.getLength(),
      external.getKey() ? external.getKey().getValue().str() : std::string()};
}

/// Builds one stage's program, numbering buffers in declaration order.
class StageExporter {
public:
  StageExporter(const llvm::StringMap<uint32_t> &groups) : groups(groups) {}

  FailureOr<rt::StageProgram> run(ProgramOp program) {
    stage.stage = uint32_t(program.getStage());
    stage.arenaSize = uint64_t(program.getArenaSize());
    ScheduleOp schedule;
    bool hasBlocks = !program.getBody().getOps<BlockOp>().empty();
    for (Operation &op : program.getBody().front()) {
      if (auto block = dyn_cast<BlockOp>(op)) {
        if (failed(exportBlock(block)))
          return failure();
        continue;
      }
      if (auto found = dyn_cast<ScheduleOp>(op)) {
        if (schedule || !hasBlocks)
          return found.emitOpError()
                 << "needs grt.block ops to run, and one schedule per program";
        schedule = found;
        continue;
      }
      if (hasBlocks && isInstruction(&op))
        return op.emitOpError()
               << "lies outside the grt.block ops of its program";
      if (failed(exportOp(&op)))
        return failure();
    }
    if (!hasBlocks) {
      // The instructions run once, in order: one block, one step.
      stage.blocks.push_back(rt::Block{
          "main", 0, uint32_t(stage.instructions.size()), false});
      stage.schedule.phases.push_back(rt::Phase{1, {rt::ScheduleStep{0, 0}}});
    } else if (!schedule) {
      return program.emitOpError() << "has grt.block ops but no grt.schedule";
    } else if (failed(exportSchedule(schedule))) {
      return failure();
    }
    for (auto &[index, name] : inputBlocks) {
      std::optional<uint32_t> block = blockIndex(name);
      if (!block)
        return program.emitOpError() << "has an input per micro-batch of block '"
                                     << name << "', which does not exist";
      stage.inputs[index].block = int32_t(*block);
    }
    return std::move(stage);
  }

private:
  static bool isInstruction(Operation *op) {
    return isa<KernelOp, AllReduceOp, ReduceScatterOp, AllGatherOp,
               AllToAllOp, BroadcastOp, SendOp, RecvOp, WaitOp>(op);
  }

  std::optional<uint32_t> blockIndex(StringRef name) const {
    for (auto [index, block] : llvm::enumerate(stage.blocks))
      if (block.name == name)
        return uint32_t(index);
    return std::nullopt;
  }

  LogicalResult exportBlock(BlockOp block) {
    rt::Block &added = stage.blocks.emplace_back();
    added.name = block.getName().str();
    added.slotted = block.getSlotted();
    added.first = uint32_t(stage.instructions.size());
    for (Operation &op : block.getBody().front())
      if (failed(exportOp(&op)))
        return failure();
    added.count = uint32_t(stage.instructions.size()) - added.first;
    return success();
  }

  LogicalResult exportSchedule(ScheduleOp schedule) {
    rt::Schedule &out = stage.schedule;
    out.microBatches = uint32_t(schedule.getMicroBatches());
    out.slots = uint32_t(schedule.getSlots());
    out.slotOffset = uint64_t(schedule.getSlotOffset());
    out.slotSize = uint64_t(schedule.getSlotSize());
    for (Attribute attr : schedule.getPhases()) {
      auto phase = cast<ArrayAttr>(attr);
      rt::Phase &added = out.phases.emplace_back();
      added.iterations = uint32_t(cast<IntegerAttr>(phase[0]).getInt());
      for (size_t i = 1; i + 1 < phase.size(); i += 2) {
        StringRef name = cast<StringAttr>(phase[i]).getValue();
        std::optional<uint32_t> block = blockIndex(name);
        if (!block)
          return schedule.emitOpError()
                 << "runs block '" << name << "', which does not exist";
        added.steps.push_back(rt::ScheduleStep{
            *block, int32_t(cast<IntegerAttr>(phase[i + 1]).getInt())});
      }
    }
    return success();
  }

  LogicalResult defineBuffer(Operation *op, Value buffer, uint64_t offset,
                             std::string name, bool slotted = false) {
    FailureOr<rt::TensorType> type =
        convertType(cast<ShapedType>(buffer.getType()));
    if (failed(type))
      return op->emitOpError() << "has a buffer of unsupported type "
                               << buffer.getType();
    indices[buffer] = uint32_t(stage.buffers.size());
    stage.buffers.push_back(
        rt::Buffer{*type, offset, std::nullopt, std::move(name), slotted});
    return success();
  }

  uint32_t indexOf(Value buffer) { return indices.lookup(buffer); }

  int32_t layerIndex(std::optional<StringRef> layer) {
    if (!layer)
      return -1;
    auto [it, inserted] =
        layers.try_emplace(*layer, int32_t(stage.layers.size()));
    if (inserted)
      stage.layers.push_back(layer->str());
    return it->second;
  }

  /// Appends an instruction of `kind` reading `inputs` and writing `outputs`.
  rt::Instruction &instruction(rt::InstructionKind kind, ValueRange inputs,
                               ValueRange outputs,
                               std::optional<StringRef> layer) {
    rt::Instruction &added = stage.instructions.emplace_back();
    added.kind = kind;
    for (Value input : inputs)
      added.inputs.push_back(indexOf(input));
    for (Value output : outputs)
      added.outputs.push_back(indexOf(output));
    added.layer = layerIndex(layer);
    return added;
  }

  template <typename OpTy>
  LogicalResult collective(OpTy op, rt::InstructionKind kind) {
    auto group = groups.find(op.getGroup());
    if (group == groups.end())
      return op.emitOpError() << "refers to " << op.getGroupAttr()
                              << ", which is not a grt.group";
    rt::Instruction &added =
        instruction(kind, op.getInput(), op.getOutput(), op.getLayer());
    added.group = group->second;
    return success();
  }

  template <typename OpTy>
  LogicalResult reducing(OpTy op, rt::InstructionKind kind) {
    if (failed(collective(op, kind)))
      return failure();
    stage.instructions.back().reduce = rt::ReduceOp(unsigned(op.getReduce()));
    return success();
  }

  LogicalResult exportOp(Operation *op) {
    size_t before = stage.instructions.size();
    if (failed(exportDefinition(op)))
      return failure();
    // A started collective or message (format 2.1).
    if (stage.instructions.size() > before) {
      rt::Instruction &added = stage.instructions.back();
      if (auto event = op->getAttrOfType<IntegerAttr>("event"))
        added.event = int32_t(event.getInt());
      added.lastMicroBatch = op->hasAttr("last_micro_batch");
    }
    return success();
  }

  LogicalResult exportDefinition(Operation *op) {
    using rt::InstructionKind;
    return TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](BufferOp op) {
          return defineBuffer(op, op.getBuffer(), op.getOffset(), "",
                              op.getSlotted());
        })
        .Case([&](InputOp op) {
          if (auto block = op.getBlock())
            inputBlocks.emplace_back(stage.inputs.size(), block->str());
          stage.inputs.push_back(
              rt::Binding{op.getName().str(), uint32_t(stage.buffers.size())});
          return defineBuffer(op, op.getBuffer(), op.getOffset(),
                              op.getName().str(), op.getSlotted());
        })
        .Case([&](ParameterOp op) -> LogicalResult {
          rt::Parameter parameter;
          parameter.buffer = uint32_t(stage.buffers.size());
          parameter.name = op.getName().str();
          if (auto shape = op.getFullShape())
            parameter.fullShape.assign(shape->begin(), shape->end());
          if (auto start = op.getSliceStart())
            parameter.sliceStart.assign(start->begin(), start->end());
          if (auto source = op.getSourceShape())
            parameter.sourceShape.assign(source->begin(), source->end());
          if (failed(convertTerms(
                  op, op.getSliceTermsAttr(), groups,
                  [&](StringRef key) -> std::vector<rt::RankTerm> * {
                    return key == "slice_start" ? &parameter.sliceTerms
                                                : nullptr;
                  })))
            return failure();
          if (auto init = op.getInitAttr())
            parameter.init = convertInit(init);
          if (auto external = op.getExternalAttr())
            parameter.external = convertExternal(external);
          parameter.state = op.getState();
          stage.parameters.push_back(std::move(parameter));
          return defineBuffer(op, op.getBuffer(), op.getOffset(),
                              op.getName().str());
        })
        .Case([&](ConstantOp op) -> LogicalResult {
          if (failed(defineBuffer(op, op.getBuffer(), op.getOffset(), "")))
            return failure();
          uint32_t index = uint32_t(stage.buffers.size() - 1);
          FailureOr<std::vector<uint8_t>> bytes =
              constantBytes(op, stage.buffers[index].type.elementType);
          if (failed(bytes))
            return failure();
          stage.constants.push_back(rt::Constant{index, std::move(*bytes)});
          return success();
        })
        .Case([&](ViewOp op) -> LogicalResult {
          uint32_t source = indexOf(op.getSource());
          uint64_t offset = stage.buffers[source].offset + op.getByteOffset();
          if (failed(defineBuffer(op, op.getBuffer(), offset, "")))
            return failure();
          stage.buffers.back().viewOf = source;
          return success();
        })
        .Case([&](KernelOp op) -> LogicalResult {
          FailureOr<std::vector<rt::Attribute>> config =
              convertKernelConfig(op, groups);
          if (failed(config))
            return failure();
          rt::Instruction &added =
              instruction(InstructionKind::kernel, op.getInputs(),
                          op.getOutputs(), op.getLayer());
          added.kernel = op.getKernel().str();
          added.attributes = std::move(*config);
          return success();
        })
        .Case([&](AllReduceOp op) {
          return reducing(op, InstructionKind::allReduce);
        })
        .Case([&](ReduceScatterOp op) {
          return reducing(op, InstructionKind::reduceScatter);
        })
        .Case([&](AllGatherOp op) {
          return collective(op, InstructionKind::allGather);
        })
        .Case([&](AllToAllOp op) {
          return collective(op, InstructionKind::allToAll);
        })
        .Case([&](BroadcastOp op) {
          if (failed(collective(op, InstructionKind::broadcast)))
            return failure();
          stage.instructions.back().peer = int32_t(op.getRoot());
          return success();
        })
        .Case([&](SendOp op) {
          rt::Instruction &added = instruction(
              InstructionKind::send, op.getInput(), {}, op.getLayer());
          added.peer = int32_t(op.getPeer());
          added.tag = int32_t(op.getTag());
          return success();
        })
        .Case([&](RecvOp op) {
          rt::Instruction &added = instruction(
              InstructionKind::recv, {}, op.getOutput(), op.getLayer());
          added.peer = int32_t(op.getPeer());
          added.tag = int32_t(op.getTag());
          return success();
        })
        .Case([&](WaitOp op) {
          instruction(InstructionKind::wait, {}, {}, std::nullopt);
          return success();
        })
        .Case([&](OutputOp op) {
          stage.outputs.push_back(
              rt::Binding{op.getName().str(), indexOf(op.getBuffer())});
          return success();
        })
        .Default([](Operation *op) {
          return op->emitOpError() << "cannot be part of a runtime program";
        });
  }

  const llvm::StringMap<uint32_t> &groups;
  rt::StageProgram stage;
  DenseMap<Value, uint32_t> indices;
  llvm::StringMap<int32_t> layers;
  /// Inputs per micro-batch and the name of their block.
  SmallVector<std::pair<size_t, std::string>> inputBlocks;
};

} // namespace

namespace mlir::galvatron::grt {

bool holdsEveryStage(ExecutableOp executable) {
  return int64_t(llvm::range_size(executable.getBody().getOps<ProgramOp>())) ==
         executable.getStages();
}

FailureOr<rt::Program> exportExecutable(ExecutableOp executable) {
  rt::Program program;
  program.worldSize = uint32_t(executable.getWorldSize());
  program.alignment = uint32_t(executable.getAlignment());
  program.model = executable.getModel().value_or("").str();
  program.modelDirectory = executable.getModelDirectory().value_or("").str();
  if (auto training = executable.getTrainingAttr())
    program.training = rt::TrainingInfo{
        rt::LossKind(unsigned(training.getLoss())),
        training.getModelFlopsValue(),
        training.getVocabSize()};
  llvm::StringMap<uint32_t> groupIndices;
  for (GroupOp group : executable.getBody().getOps<GroupOp>()) {
    groupIndices[group.getSymName()] = uint32_t(program.groups.size());
    rt::Group &added = program.groups.emplace_back();
    for (auto [size, stride] :
         llvm::zip(group.getSizes(), group.getStrides()))
      added.axes.push_back(rt::GroupAxis{uint32_t(size), uint32_t(stride)});
  }
  program.stages.resize(executable.getStages());
  for (auto [index, stage] : llvm::enumerate(program.stages))
    stage.stage = uint32_t(index);
  for (ProgramOp stage : executable.getBody().getOps<ProgramOp>()) {
    FailureOr<rt::StageProgram> exported =
        StageExporter(groupIndices).run(stage);
    if (failed(exported))
      return failure();
    if (exported->stage >= program.stages.size())
      return stage.emitOpError() << "is stage " << exported->stage
                                 << " of a pipeline of " << program.stages.size();
    program.stages[exported->stage] = std::move(*exported);
  }
  return program;
}

} // namespace mlir::galvatron::grt
