//===- ToolSupport.cpp - What Galvatron's command-line tools share --------===//

#include "galvatron/Support/ToolSupport.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Location.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::galvatron;

ToolDiagnosticHandler::ToolDiagnosticHandler(MLIRContext *context,
                                             llvm::SourceMgr &sourceMgr,
                                             StringRef tool)
    : fileHandler(sourceMgr, context), context(context), tool(tool.str()) {
  // Registered after the source manager's handler, so consulted first.
  id = context->getDiagEngine().registerHandler(
      [this](Diagnostic &diagnostic) { return handle(diagnostic); });
}

ToolDiagnosticHandler::~ToolDiagnosticHandler() {
  context->getDiagEngine().eraseHandler(id);
}

/// The first name a location carries, if any.
static std::optional<std::string> findName(Location location) {
  std::optional<std::string> name;
  location->walk([&](Location inner) {
    if (auto named = dyn_cast<NameLoc>(inner)) {
      name = named.getName().str();
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return name;
}

/// "TOOL: error: " and the like, colored on a terminal.
static llvm::raw_ostream &label(llvm::raw_ostream &os,
                                DiagnosticSeverity severity, StringRef tool) {
  switch (severity) {
  case DiagnosticSeverity::Error:
    return llvm::WithColor::error(os, tool);
  case DiagnosticSeverity::Warning:
    return llvm::WithColor::warning(os, tool);
  case DiagnosticSeverity::Note:
    return llvm::WithColor::note(os, tool);
  case DiagnosticSeverity::Remark:
    return llvm::WithColor::remark(os, tool);
  }
  llvm_unreachable("unknown diagnostic severity");
}

/// The first file a location names, if any. A file without a line (0) is
/// one that has no text to point into: a binary model, whose nodes are
/// loc("NODE"("model.onnx":0:0)).
static std::optional<FileLineColRange> findFile(Location location) {
  std::optional<FileLineColRange> file;
  location->walk([&](Location inner) {
    if (auto range = dyn_cast<FileLineColRange>(inner)) {
      file = range;
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return file;
}

LogicalResult ToolDiagnosticHandler::handle(Diagnostic &diagnostic) {
  std::optional<FileLineColRange> file = findFile(diagnostic.getLocation());
  if (file && file->getStartLine() > 0)
    return failure(); // The source manager's handler prints it.
  auto print = [&](const Diagnostic &part) {
    llvm::raw_ostream &os = label(llvm::errs(), part.getSeverity(), tool);
    std::string where = subject;
    auto add = [&](std::optional<std::string> detail) {
      if (detail && *detail != subject)
        where = where.empty() ? *detail : where + ": " + *detail;
    };
    if (std::optional<FileLineColRange> partFile = findFile(part.getLocation()))
      add(partFile->getFilename().str());
    add(findName(part.getLocation()));
    if (!where.empty())
      os << where << ": ";
    os << part.str() << "\n";
  };
  print(diagnostic);
  for (const Diagnostic &note : diagnostic.getNotes())
    print(note);
  return success();
}

int mlir::galvatron::printToolError(StringRef tool,
                                    const llvm::Twine &message) {
  label(llvm::errs(), DiagnosticSeverity::Error, tool) << message << "\n";
  return 1;
}

void mlir::galvatron::hideLibraryOptions(
    ArrayRef<const llvm::cl::OptionCategory *> categories) {
  for (auto &entry : llvm::cl::getRegisteredOptions()) {
    llvm::cl::Option *option = entry.second;
    bool shown = llvm::any_of(option->Categories, [&](auto *category) {
      return llvm::is_contained(categories, category) ||
             category->getName() == "Generic Options";
    });
    if (!shown)
      option->setHiddenFlag(llvm::cl::ReallyHidden);
  }
}
