//===- Debug.cpp - --debug and --debug-only for release builds ------------===//

#include "galvatron/Support/Debug.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/WithColor.h"

#include <string>
#include <vector>

using namespace llvm;

#if defined(NDEBUG) && !GALVATRON_ENABLE_TRACING
static void warnNoTracing() {
  WithColor::warning() << "this build has no tracing (configured with "
                          "-DGALVATRON_ENABLE_TRACING=OFF): --debug and "
                          "--debug-only print nothing\n";
}
#endif

void mlir::galvatron::registerDebugOptions() {
  // An assertions build of LLVM registers both itself.
  if (cl::getRegisteredOptions().count("debug-only"))
    return;
  static std::vector<std::string> types;
  static cl::opt<bool, /*ExternalStorage=*/true> debug(
      "debug", cl::desc("Print every traced decision (LLVM_DEBUG)"),
      cl::location(DebugFlag), cl::callback([](const bool &) {
#if defined(NDEBUG) && !GALVATRON_ENABLE_TRACING
        warnNoTracing();
#endif
      }));
  static cl::list<std::string> debugOnly(
      "debug-only",
      cl::desc("Print the traced decisions of these DEBUG_TYPEs only "
               "(docs/architecture.md lists them)"),
      cl::CommaSeparated, cl::value_desc("type,..."),
      cl::callback([](const std::string &type) {
#if defined(NDEBUG) && !GALVATRON_ENABLE_TRACING
        if (types.empty())
          warnNoTracing();
#endif
        types.push_back(type);
        std::vector<const char *> names;
        for (const std::string &name : types)
          names.push_back(name.c_str());
        DebugFlag = true;
        setCurrentDebugTypes(names.data(), names.size());
      }));
  (void)debug;
  (void)debugOnly;
}
