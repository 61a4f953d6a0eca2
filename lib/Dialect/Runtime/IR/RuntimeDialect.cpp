//===- RuntimeDialect.cpp - The grt runtime-program dialect ---------------===//

#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::galvatron::grt;

#include "galvatron/Dialect/Runtime/IR/RuntimeEnums.cpp.inc"
#include "galvatron/Dialect/Runtime/IR/RuntimeOpsDialect.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "galvatron/Dialect/Runtime/IR/RuntimeAttrs.cpp.inc"

void GrtDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "galvatron/Dialect/Runtime/IR/RuntimeAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "galvatron/Dialect/Runtime/IR/RuntimeOps.cpp.inc"
      >();
}
