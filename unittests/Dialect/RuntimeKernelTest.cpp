//===- RuntimeKernelTest.cpp - Ops and the runtime's kernel catalog -------===//
//
// An op's RuntimeKernelOpInterface names its kernel and supplies the
// attributes the catalog lists; the catalog alone says what a call looks
// like. Every op declaring a kernel must name one the catalog has, so a
// renamed kernel or op fails here, not at some model's lowering.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Runtime/KernelCatalog.h"

#include "mlir/IR/MLIRContext.h"

#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

TEST(RuntimeKernelTest, EveryKernelOpNamesACatalogKernel) {
  MLIRContext context;
  context.loadDialect<GalvatronDialect>();
  int kernelOps = 0;
  for (RegisteredOperationName name : context.getRegisteredOperations()) {
    if (name.getDialectNamespace() != GalvatronDialect::getDialectNamespace() ||
        !name.hasInterface<RuntimeKernelOpInterface>())
      continue;
    ++kernelOps;
    // The default kernel name is the op's; the ops naming another kernel
    // would override getKernelName (none does).
    std::string kernel = name.stripDialect().str();
    EXPECT_NE(::galvatron::runtime::findKernel(kernel), nullptr)
        << name.getStringRef().str() << " names kernel '" << kernel
        << "', which the runtime's catalog lacks";
  }
  // Every catalog kernel but the lowering's own (copy, fill) is an op's.
  EXPECT_EQ(kernelOps + 2, int(::galvatron::runtime::kNumOpcodes));
}
