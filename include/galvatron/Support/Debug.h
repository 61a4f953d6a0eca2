//===- Debug.h - LLVM_DEBUG tracing in release builds -----------*- C++ -*-===//
//
// Galvatron traces its decisions with LLVM_DEBUG under a DEBUG_TYPE per
// part (docs/architecture.md lists them). Debian's LLVM is a release build:
// NDEBUG compiles LLVM_DEBUG away and its tools lack -debug-only. With
// GALVATRON_ENABLE_TRACING (the CMake option of that name), code that
// includes this header gets LLVM_DEBUG / DEBUG_WITH_TYPE as in an
// assertions build, reading the flags that release libLLVMSupport still
// defines (llvm::DebugFlag, isCurrentDebugType); NDEBUG itself stays
// defined, so no LLVM or MLIR class or assertion changes meaning.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_SUPPORT_DEBUG_H
#define GALVATRON_SUPPORT_DEBUG_H

#include "galvatron/Support/TracingConfig.h"

#include "llvm/Support/Debug.h"

#if defined(NDEBUG) && GALVATRON_ENABLE_TRACING
#undef isCurrentDebugType
#undef setCurrentDebugType
#undef setCurrentDebugTypes
#undef DEBUG_WITH_TYPE
namespace llvm {
// Defined in every build of libLLVMSupport; release headers hide them.
bool isCurrentDebugType(const char *Type, int Level);
void setCurrentDebugTypes(const char **Types, unsigned Count);
} // namespace llvm
#define DEBUG_WITH_TYPE(TYPE, ...)                                             \
  do {                                                                         \
    if (::llvm::DebugFlag && ::llvm::isCurrentDebugType(TYPE, 1)) {            \
      __VA_ARGS__;                                                             \
    }                                                                          \
  } while (false)
#endif

namespace mlir::galvatron {

/// Registers --debug (trace every type) and --debug-only=<type,...> when
/// LLVM has not (release LLVM registers neither). Call it before the
/// command line is parsed.
void registerDebugOptions();

} // namespace mlir::galvatron

#endif // GALVATRON_SUPPORT_DEBUG_H
