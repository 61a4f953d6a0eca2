//===- InitAll.cpp - Register Galvatron dialects and passes ---------------===//

#include "galvatron/InitAll.h"

#include "galvatron/Conversion/Passes.h"
#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/Transforms/Passes.h"
#include "galvatron/Dialect/Runtime/IR/RuntimeDialect.h"
#include "galvatron/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Transforms/Passes.h"

void mlir::galvatron::registerAllDialects(DialectRegistry &registry) {
  registry.insert<GalvatronDialect, grt::GrtDialect, func::FuncDialect,
                  arith::ArithDialect, tensor::TensorDialect>();
}

void mlir::galvatron::registerAllPasses() {
  registerGalvatronPasses();
  registerGalvatronConversionPasses();
  registerRuntimePipeline();
  registerGalvatronTransformsPasses();
  registerGalvatronPipelines();
  // The upstream passes users combine with ours.
  registerCanonicalizerPass();
  registerCSEPass();
  registerSymbolDCEPass();
  registerInlinerPass();
}
