//===- ToolSupport.h - What the command-line tools share --------*- C++ -*-===//
//
// Diagnostics that name the input (a file, or a preset model) instead of
// "<unknown>:0: error: loc(...)", and --help without the hundreds of
// options LLVM's code generators register in every binary that links them.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_SUPPORT_TOOLSUPPORT_H
#define GALVATRON_SUPPORT_TOOLSUPPORT_H

#include "mlir/IR/Diagnostics.h"
#include "llvm/Support/CommandLine.h"

#include <optional>

namespace llvm {
class SourceMgr;
} // namespace llvm

namespace mlir::galvatron {

/// Prints a tool's diagnostics. One whose location holds a file position
/// goes through the source manager (file:line:col and the source line);
/// any other prints as "TOOL: error: SUBJECT[: FILE][: NAME]: message",
/// where SUBJECT is what the tool works on (an input file, a preset
/// model), FILE a file without positions the location names when it is
/// not the subject (an imported model: "model.onnx":0:0), and NAME the
/// name the location carries (a layer, an ONNX node), if any.
class ToolDiagnosticHandler {
public:
  ToolDiagnosticHandler(MLIRContext *context, llvm::SourceMgr &sourceMgr,
                        StringRef tool);
  ~ToolDiagnosticHandler();
  void setSubject(StringRef subject) { this->subject = subject.str(); }

private:
  LogicalResult handle(Diagnostic &diagnostic);

  SourceMgrDiagnosticHandler fileHandler;
  MLIRContext *context;
  DiagnosticEngine::HandlerID id;
  std::string tool, subject;
};

/// Prints "TOOL: error: message" (colored on a terminal), for errors
/// without a location; returns 1, the tool's exit code.
int printToolError(StringRef tool, const llvm::Twine &message);

/// Hides from --help every option the linked libraries registered before
/// main started (LLVM's code generators and optimizers: hundreds of flags
/// no Galvatron user sets). Options in `categories`, LLVM's generic ones
/// (--help, --version) and those registered later (MLIR's printing,
/// context, pass manager and pipeline options) stay. Call it first in main.
void hideLibraryOptions(ArrayRef<const llvm::cl::OptionCategory *> categories);

} // namespace mlir::galvatron

#endif // GALVATRON_SUPPORT_TOOLSUPPORT_H
