//===- galvatron-opt.cpp - Galvatron optimizer driver ---------------------===//
//
// mlir-opt for Galvatron: parses IR, runs passes, prints IR.
//
//===----------------------------------------------------------------------===//

#include "galvatron/InitAll.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"

int main(int argc, char **argv) {
  mlir::galvatron::registerAllPasses();
  mlir::DialectRegistry registry;
  mlir::galvatron::registerAllDialects(registry);
  return mlir::asMainReturnCode(
      mlir::MlirOptMain(argc, argv, "Galvatron optimizer driver\n", registry));
}
