//===- Error.h - Errors that name their cause and where ---------*- C++ -*-===//
//
// The one way analyses, passes, the importer and the tools report through
// llvm::Error: `makeError` with a message, or with the op, layer or
// location it concerns, which the diagnostic then carries (file:line:col of
// textual IR, the ONNX node's name of an import); `withContext` leads the
// message with what was being done; `emitError` turns either into a
// diagnostic.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_SUPPORT_ERROR_H
#define GALVATRON_SUPPORT_ERROR_H

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/Operation.h"
#include "llvm/Support/Error.h"

namespace mlir::galvatron {

/// An error about an op or a layer, at its location.
class LocatedError : public llvm::ErrorInfo<LocatedError> {
public:
  static char ID;

  LocatedError(Location location, std::string message)
      : location(location), text(std::move(message)) {}

  Location getLocation() const { return location; }
  void log(llvm::raw_ostream &os) const override { os << text; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }

private:
  Location location;
  std::string text;
};

/// An error naming its cause.
inline llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// An error about what lies at `location` (a layer, a graph input),
/// reported there.
inline llvm::Error makeError(Location location, const llvm::Twine &message) {
  return llvm::make_error<LocatedError>(location, message.str());
}

/// An error about `op`, reported at its location.
inline llvm::Error makeError(Operation *op, const llvm::Twine &message) {
  return makeError(op->getLoc(), message);
}

/// `error` with its message led by `context`, at the same location.
llvm::Error withContext(llvm::Error error, const llvm::Twine &context);

/// Emits `error` (consumed) as an error diagnostic led by `prefix`: at the
/// location of the op it concerns, or at `fallback`. Returns failure.
LogicalResult emitError(llvm::Error error, Location fallback,
                        const llvm::Twine &prefix = "");

} // namespace mlir::galvatron

#endif // GALVATRON_SUPPORT_ERROR_H
