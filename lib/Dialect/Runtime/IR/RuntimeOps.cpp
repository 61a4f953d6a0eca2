//===- RuntimeOps.cpp - grt operations ------------------------------------===//
//
// The verifiers hand the program to the runtime's own validation
// (galvatron/Runtime/ProgramValidator.h and KernelCatalog.h): what verifies
// here loads in galvatron-run.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"

#include "galvatron/Runtime/KernelCatalog.h"
#include "galvatron/Runtime/ProgramValidator.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/OpImplementation.h"

#include <set>

using namespace mlir;
using namespace mlir::galvatron::grt;
namespace rt = ::galvatron::runtime;

static ParseResult parsePhases(OpAsmParser &parser, ArrayAttr &phases);
static void printPhases(OpAsmPrinter &printer, Operation *, ArrayAttr phases);

#define GET_OP_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

LogicalResult ExecutableOp::verifyRegions() {
  if (getStages() > getWorldSize() || getWorldSize() % getStages())
    return emitOpError() << "a world of " << getWorldSize()
                         << " ranks does not split into " << getStages()
                         << " stages";
  std::set<int64_t> stages;
  for (ProgramOp program : getBody().getOps<ProgramOp>()) {
    if (program.getStage() >= getStages())
      return program.emitOpError()
             << "stage " << program.getStage() << " is outside the "
             << getStages() << "-stage pipeline";
    if (!stages.insert(program.getStage()).second)
      return program.emitOpError()
             << "stage " << program.getStage() << " has another program";
  }
  FailureOr<rt::Program> program = exportExecutable(*this);
  if (failed(program))
    return failure();
  // Each stage it holds; with every stage (not one stage's lowering, linked
  // later) their communication too.
  for (ProgramOp stage : getBody().getOps<ProgramOp>()) {
    rt::Status status =
        rt::validateStageProgram(*program, program->stages[stage.getStage()]);
    if (!status.isOk())
      return stage.emitOpError() << status.message();
  }
  if (holdsEveryStage(*this)) {
    rt::Status status = rt::validateCommunication(*program);
    if (!status.isOk())
      return emitOpError() << status.message();
  }
  return success();
}

LogicalResult GroupOp::verify() {
  if (getSizes().size() != getStrides().size())
    return emitOpError() << "needs one stride per size";
  for (auto [size, stride] : llvm::zip(getSizes(), getStrides()))
    if (size < 1 || stride < 1)
      return emitOpError() << "needs positive sizes and strides";
  return success();
}

/// `[1 x [forward 0], 3 x [forward 1, backward 0]]`: per phase its
/// iterations, then block names and first micro-batches, stored as
/// [iterations, name, micro-batch, name, micro-batch, ...].
static ParseResult parsePhases(OpAsmParser &parser, ArrayAttr &phases) {
  Builder b(parser.getContext());
  SmallVector<Attribute> list;
  auto parseStep = [&](SmallVector<Attribute> &phase) -> ParseResult {
    std::string name;
    int64_t micro = 0;
    if (parser.parseKeywordOrString(&name) || parser.parseInteger(micro))
      return failure();
    phase.push_back(b.getStringAttr(name));
    phase.push_back(b.getI64IntegerAttr(micro));
    return success();
  };
  auto parsePhase = [&]() -> ParseResult {
    int64_t iterations = 0;
    SmallVector<Attribute> phase;
    if (parser.parseInteger(iterations) || parser.parseKeyword("x"))
      return failure();
    phase.push_back(b.getI64IntegerAttr(iterations));
    if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square,
                                       [&] { return parseStep(phase); }))
      return failure();
    list.push_back(b.getArrayAttr(phase));
    return success();
  };
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parsePhase))
    return failure();
  phases = b.getArrayAttr(list);
  return success();
}

static void printPhases(OpAsmPrinter &printer, Operation *, ArrayAttr phases) {
  printer << '[';
  llvm::interleaveComma(phases, printer, [&](Attribute attr) {
    auto phase = cast<ArrayAttr>(attr);
    printer << cast<IntegerAttr>(phase[0]).getInt() << " x [";
    for (size_t i = 1; i + 1 < phase.size(); i += 2) {
      if (i > 1)
        printer << ", ";
      printer.printKeywordOrString(cast<StringAttr>(phase[i]).getValue());
      printer << ' ' << cast<IntegerAttr>(phase[i + 1]).getInt();
    }
    printer << ']';
  });
  printer << ']';
}

LogicalResult ScheduleOp::verify() {
  for (Attribute attr : getPhases()) {
    auto phase = dyn_cast<ArrayAttr>(attr);
    if (!phase || phase.size() < 3 || phase.size() % 2 == 0 ||
        !isa<IntegerAttr>(phase[0]) ||
        cast<IntegerAttr>(phase[0]).getInt() < 1)
      return emitOpError() << "needs phases of a positive iteration count "
                              "and at least one step";
    for (size_t i = 1; i + 1 < phase.size(); i += 2)
      if (!isa<StringAttr>(phase[i]) || !isa<IntegerAttr>(phase[i + 1]))
        return emitOpError() << "needs steps of a block name and a "
                                "micro-batch";
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Buffers
//===----------------------------------------------------------------------===//

LogicalResult ConstantOp::verify() {
  auto valueType = cast<ShapedType>(getValue().getType());
  auto bufferType = getBuffer().getType();
  if (valueType.getShape() != bufferType.getShape() ||
      valueType.getElementType() != bufferType.getElementType())
    return emitOpError() << "value of type " << valueType
                         << " does not fill " << bufferType;
  return success();
}

//===----------------------------------------------------------------------===//
// Instructions
//===----------------------------------------------------------------------===//

/// The executable's group families by symbol, numbered in order.
static llvm::StringMap<uint32_t> groupIndices(Operation *op) {
  llvm::StringMap<uint32_t> groups;
  if (auto executable = op->getParentOfType<ExecutableOp>())
    for (GroupOp group : executable.getBody().getOps<GroupOp>())
      groups.try_emplace(group.getSymName(), uint32_t(groups.size()));
  return groups;
}

LogicalResult KernelOp::verify() {
  const rt::KernelSpec *spec = rt::findKernel(getKernel().str());
  if (!spec)
    return emitOpError() << "calls unknown kernel '" << getKernel() << "'";
  FailureOr<std::vector<rt::Attribute>> config =
      convertKernelConfig(*this, groupIndices(*this));
  if (failed(config))
    return failure();
  std::vector<rt::TensorType> inputs, outputs;
  for (auto [operands, types] : {std::pair(getInputs(), &inputs),
                                 std::pair(getOutputs(), &outputs)})
    for (Value operand : operands) {
      FailureOr<rt::TensorType> type =
          convertType(cast<ShapedType>(operand.getType()));
      if (failed(type))
        return emitOpError() << "operand type " << operand.getType()
                             << " has no runtime element type";
      types->push_back(*type);
    }
  // Rank-dependent values are checked for every rank with the program; here
  // the signature holds for the rank at the lowest positions.
  rt::Status status = rt::verifyKernelCall(
      rt::KernelCall(*spec, std::move(inputs), std::move(outputs), *config));
  if (!status.isOk())
    return emitOpError() << "'" << getKernel() << "' " << status.message();
  return success();
}

/// Collectives name a grt.group of the enclosing executable.
static LogicalResult verifyGroup(Operation *op, FlatSymbolRefAttr group,
                                 SymbolTableCollection &symbolTable) {
  Operation *executable = op->getParentOfType<ExecutableOp>();
  if (!symbolTable.lookupSymbolIn<GroupOp>(executable, group.getAttr()))
    return op->emitOpError() << "refers to " << group
                             << ", which is not a grt.group";
  return success();
}

#define GALVATRON_COLLECTIVE_SYMBOL_USES(OP)                                   \
  LogicalResult OP::verifySymbolUses(SymbolTableCollection &symbolTable) {     \
    return verifyGroup(*this, getGroupAttr(), symbolTable);                    \
  }
GALVATRON_COLLECTIVE_SYMBOL_USES(AllReduceOp)
GALVATRON_COLLECTIVE_SYMBOL_USES(ReduceScatterOp)
GALVATRON_COLLECTIVE_SYMBOL_USES(AllGatherOp)
GALVATRON_COLLECTIVE_SYMBOL_USES(AllToAllOp)
GALVATRON_COLLECTIVE_SYMBOL_USES(BroadcastOp)
#undef GALVATRON_COLLECTIVE_SYMBOL_USES
