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

static bool hasFilePosition(Location location) {
  bool found = false;
  location->walk([&](Location inner) {
    found |= isa<FileLineColRange>(inner);
    return found ? WalkResult::interrupt() : WalkResult::advance();
  });
  return found;
}

LogicalResult ToolDiagnosticHandler::handle(Diagnostic &diagnostic) {
  if (hasFilePosition(diagnostic.getLocation()))
    return failure(); // The source manager's handler prints it.
  auto print = [&](const Diagnostic &part) {
    llvm::raw_ostream &os = label(llvm::errs(), part.getSeverity(), tool);
    std::string where = subject;
    if (std::optional<std::string> name = findName(part.getLocation());
        name && *name != subject)
      where = where.empty() ? *name : where + ": " + *name;
    if (!where.empty())
      os << where << ": ";
    os << part.str() << "\n";
  };
  print(diagnostic);
  for (const Diagnostic &note : diagnostic.getNotes())
    print(note);
  return success();
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
