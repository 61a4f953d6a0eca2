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

#define GET_OP_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.cpp.inc"

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

LogicalResult ExecutableOp::verifyRegions() {
  std::set<int64_t> ranks;
  for (ProgramOp program : getBody().getOps<ProgramOp>()) {
    if (program.getRank() >= getWorldSize())
      return program.emitOpError()
             << "rank " << program.getRank() << " is outside the "
             << getWorldSize() << "-rank world";
    if (!ranks.insert(program.getRank()).second)
      return program.emitOpError()
             << "rank " << program.getRank() << " has another program";
  }
  FailureOr<rt::Program> program = exportExecutable(*this);
  if (failed(program))
    return failure();
  rt::Status status = rt::validateProgram(*program);
  if (!status.isOk())
    return emitOpError() << status.message();
  return success();
}

LogicalResult GroupOp::verify() {
  int64_t worldSize = cast<ExecutableOp>((*this)->getParentOp()).getWorldSize();
  if (getRanks().empty())
    return emitOpError() << "has no ranks";
  std::set<int64_t> seen;
  for (int64_t rank : getRanks()) {
    if (rank < 0 || rank >= worldSize)
      return emitOpError() << "names rank " << rank << " outside the "
                           << worldSize << "-rank world";
    if (!seen.insert(rank).second)
      return emitOpError() << "names rank " << rank << " twice";
  }
  return success();
}

LogicalResult ProgramOp::verifyRegions() {
  auto executable = cast<ExecutableOp>((*this)->getParentOp());
  llvm::StringMap<uint32_t> groupIndices;
  rt::Program header = exportProgramHeader(executable, groupIndices);
  FailureOr<rt::RankProgram> rank = exportRankProgram(*this, groupIndices);
  if (failed(rank))
    return failure();
  rt::Status status = rt::validateRankProgram(header, *rank);
  if (!status.isOk())
    return emitOpError() << status.message();
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

LogicalResult KernelOp::verify() {
  const rt::KernelSpec *spec = rt::findKernel(getKernel().str());
  if (!spec)
    return emitOpError() << "calls unknown kernel '" << getKernel() << "'";
  FailureOr<std::vector<rt::Attribute>> config = convertKernelConfig(*this);
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
  rt::Status status = rt::verifyKernelCall(
      rt::KernelCall(*spec, std::move(inputs), std::move(outputs), *config));
  if (!status.isOk())
    return emitOpError() << "'" << getKernel() << "' " << status.message();
  return success();
}

/// Collectives name a grt.group of the enclosing executable.
static LogicalResult verifyGroup(Operation *op, FlatSymbolRefAttr group,
                                 SymbolTableCollection &symbolTable) {
  Operation *executable = op->getParentOp()->getParentOp();
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
