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

FailureOr<std::vector<rt::Attribute>>
mlir::galvatron::grt::convertKernelConfig(KernelOp op) {
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

/// Builds one rank's program, numbering buffers in declaration order.
class RankExporter {
public:
  RankExporter(const llvm::StringMap<uint32_t> &groups) : groups(groups) {}

  FailureOr<rt::RankProgram> run(ProgramOp program) {
    rank.rank = uint32_t(program.getRank());
    rank.arenaSize = uint64_t(program.getArenaSize());
    for (Operation &op : program.getBody().front())
      if (failed(exportOp(&op)))
        return failure();
    return std::move(rank);
  }

private:
  LogicalResult defineBuffer(Operation *op, Value buffer, uint64_t offset,
                             std::string name) {
    FailureOr<rt::TensorType> type =
        convertType(cast<ShapedType>(buffer.getType()));
    if (failed(type))
      return op->emitOpError() << "has a buffer of unsupported type "
                               << buffer.getType();
    indices[buffer] = uint32_t(rank.buffers.size());
    rank.buffers.push_back(rt::Buffer{*type, offset, std::nullopt, name});
    return success();
  }

  uint32_t indexOf(Value buffer) { return indices.lookup(buffer); }

  int32_t layerIndex(std::optional<StringRef> layer) {
    if (!layer)
      return -1;
    auto [it, inserted] =
        layers.try_emplace(*layer, int32_t(rank.layers.size()));
    if (inserted)
      rank.layers.push_back(layer->str());
    return it->second;
  }

  /// Appends an instruction of `kind` reading `inputs` and writing `outputs`.
  rt::Instruction &instruction(rt::InstructionKind kind, ValueRange inputs,
                               ValueRange outputs,
                               std::optional<StringRef> layer) {
    rt::Instruction &added = rank.instructions.emplace_back();
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
    rank.instructions.back().reduce = rt::ReduceOp(unsigned(op.getReduce()));
    return success();
  }

  LogicalResult exportOp(Operation *op) {
    using rt::InstructionKind;
    return TypeSwitch<Operation *, LogicalResult>(op)
        .Case([&](BufferOp op) {
          return defineBuffer(op, op.getBuffer(), op.getOffset(), "");
        })
        .Case([&](InputOp op) {
          rank.inputs.push_back(
              rt::Binding{op.getName().str(), uint32_t(rank.buffers.size())});
          return defineBuffer(op, op.getBuffer(), op.getOffset(),
                              op.getName().str());
        })
        .Case([&](ParameterOp op) {
          rt::Parameter parameter;
          parameter.buffer = uint32_t(rank.buffers.size());
          parameter.name = op.getName().str();
          if (auto shape = op.getFullShape())
            parameter.fullShape.assign(shape->begin(), shape->end());
          if (auto start = op.getSliceStart())
            parameter.sliceStart.assign(start->begin(), start->end());
          if (auto source = op.getSourceShape())
            parameter.sourceShape.assign(source->begin(), source->end());
          if (auto init = op.getInitAttr())
            parameter.init = convertInit(init);
          if (auto external = op.getExternalAttr())
            parameter.external = convertExternal(external);
          parameter.state = op.getState();
          rank.parameters.push_back(std::move(parameter));
          return defineBuffer(op, op.getBuffer(), op.getOffset(),
                              op.getName().str());
        })
        .Case([&](ConstantOp op) -> LogicalResult {
          if (failed(defineBuffer(op, op.getBuffer(), op.getOffset(), "")))
            return failure();
          uint32_t index = uint32_t(rank.buffers.size() - 1);
          FailureOr<std::vector<uint8_t>> bytes =
              constantBytes(op, rank.buffers[index].type.elementType);
          if (failed(bytes))
            return failure();
          rank.constants.push_back(rt::Constant{index, std::move(*bytes)});
          return success();
        })
        .Case([&](ViewOp op) -> LogicalResult {
          uint32_t source = indexOf(op.getSource());
          uint64_t offset = rank.buffers[source].offset + op.getByteOffset();
          if (failed(defineBuffer(op, op.getBuffer(), offset, "")))
            return failure();
          rank.buffers.back().viewOf = source;
          return success();
        })
        .Case([&](KernelOp op) -> LogicalResult {
          rt::Instruction &added =
              instruction(InstructionKind::kernel, op.getInputs(),
                          op.getOutputs(), op.getLayer());
          added.kernel = op.getKernel().str();
          FailureOr<std::vector<rt::Attribute>> config = convertKernelConfig(op);
          if (failed(config))
            return failure();
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
          rank.instructions.back().peer = int32_t(op.getRoot());
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
        .Case([&](OutputOp op) {
          rank.outputs.push_back(
              rt::Binding{op.getName().str(), indexOf(op.getBuffer())});
          return success();
        })
        .Default([](Operation *op) {
          return op->emitOpError() << "cannot be part of a runtime program";
        });
  }

private:
  const llvm::StringMap<uint32_t> &groups;
  rt::RankProgram rank;
  DenseMap<Value, uint32_t> indices;
  llvm::StringMap<int32_t> layers;
};

} // namespace

namespace mlir::galvatron::grt {

rt::Program exportProgramHeader(ExecutableOp executable,
                                llvm::StringMap<uint32_t> &groupIndices) {
  rt::Program program;
  program.worldSize = uint32_t(executable.getWorldSize());
  program.alignment = uint32_t(executable.getAlignment());
  program.model = executable.getModel().value_or("").str();
  program.modelDirectory = executable.getModelDirectory().value_or("").str();
  if (auto training = executable.getTrainingAttr())
    program.training = rt::TrainingInfo{
        rt::LossKind(unsigned(training.getLoss())), training.getModelFlops(),
        training.getVocabSize()};
  for (GroupOp group : executable.getBody().getOps<GroupOp>()) {
    groupIndices[group.getSymName()] = uint32_t(program.groups.size());
    std::vector<uint32_t> ranks;
    for (int64_t rank : group.getRanks())
      ranks.push_back(uint32_t(rank));
    program.groups.push_back(std::move(ranks));
  }
  return program;
}

FailureOr<rt::RankProgram>
exportRankProgram(ProgramOp program,
                  const llvm::StringMap<uint32_t> &groupIndices) {
  return RankExporter(groupIndices).run(program);
}

FailureOr<rt::Program> exportExecutable(ExecutableOp executable) {
  llvm::StringMap<uint32_t> groupIndices;
  rt::Program program = exportProgramHeader(executable, groupIndices);
  for (ProgramOp rank : executable.getBody().getOps<ProgramOp>()) {
    FailureOr<rt::RankProgram> exported =
        exportRankProgram(rank, groupIndices);
    if (failed(exported))
      return failure();
    program.ranks.push_back(std::move(*exported));
  }
  return program;
}

} // namespace mlir::galvatron::grt
