//===- OutputFile.cpp - Output files whose every write is checked ---------===//

#include "galvatron/Support/OutputFile.h"

#include "llvm/Support/ToolOutputFile.h"

static llvm::Error makeError(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The error of `os` after a flush, cleared so that the stream's destructor
/// does not abort the process.
static std::error_code takeStreamError(llvm::raw_fd_ostream &os) {
  os.flush();
  std::error_code error = os.error();
  os.clear_error();
  return error;
}

llvm::Error mlir::galvatron::keepOutputFile(llvm::ToolOutputFile &file) {
  if (std::error_code error = takeStreamError(file.os())) {
    std::string name = file.outputFilename() == "-"
                           ? "to the standard output"
                           : "'" + file.outputFilename() + "'";
    return makeError("cannot write " + name + ": " + error.message());
  }
  file.keep();
  return llvm::Error::success();
}

llvm::Error mlir::galvatron::flushStandardOutput() {
  if (std::error_code error = takeStreamError(llvm::outs()))
    return makeError("cannot write to the standard output: " + error.message());
  return llvm::Error::success();
}
