//===- RuntimeDialect.cpp - The grt runtime-program dialect ---------------===//

#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"

using namespace mlir;
using namespace mlir::galvatron::grt;

#include "galvatron/Dialect/Runtime/IR/RuntimeEnums.cpp.inc"
#include "galvatron/Dialect/Runtime/IR/RuntimeOpsDialect.cpp.inc"

void GrtDialect::initialize() {
  addOperations<
#define GET_OP_LIST
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.cpp.inc"
      >();
}
