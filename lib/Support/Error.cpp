//===- Error.cpp - Errors that name their cause and where -----------------===//

#include "galvatron/Support/Error.h"

using namespace mlir;
using namespace mlir::galvatron;

char LocatedError::ID;

LogicalResult mlir::galvatron::emitError(llvm::Error error, Location fallback,
                                         const llvm::Twine &prefix) {
  llvm::handleAllErrors(std::move(error), [&](const llvm::ErrorInfoBase &info) {
    Location location =
        info.isA<LocatedError>()
            ? static_cast<const LocatedError &>(info).getLocation()
            : fallback;
    mlir::emitError(location) << prefix << info.message();
  });
  return failure();
}
