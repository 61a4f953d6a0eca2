//===- Error.cpp - Errors that name their cause and where -----------------===//

#include "galvatron/Support/Error.h"

using namespace mlir;
using namespace mlir::galvatron;

char LocatedError::ID;

llvm::Error mlir::galvatron::withContext(llvm::Error error,
                                         const llvm::Twine &context) {
  std::string prefix = context.str();
  return llvm::handleErrors(
      std::move(error),
      [&](LocatedError &located) -> llvm::Error {
        return makeError(located.getLocation(), prefix + located.message());
      },
      [&](llvm::ErrorInfoBase &info) -> llvm::Error {
        return makeError(prefix + info.message());
      });
}

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
