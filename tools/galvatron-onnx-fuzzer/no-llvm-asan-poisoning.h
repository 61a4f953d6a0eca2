//===- no-llvm-asan-poisoning.h - No ASan annotations in LLVM headers ----===//
//
// Force-included into the fuzz tree. LLVM's BumpPtrAllocator poisons and
// unpoisons its slabs for AddressSanitizer when the including code is
// instrumented. Debian's LLVM/MLIR libraries are not, and both copies of
// these inline functions end up in one program, so memory poisoned by one is
// handed out by the other: false "use-after-poison" reports. Turning the
// annotations off keeps every other ASan check.
//
//===----------------------------------------------------------------------===//

#include <sanitizer/asan_interface.h>

#define __asan_poison_memory_region(addr, size) ((void)(addr), (void)(size))
#define __asan_unpoison_memory_region(addr, size) ((void)(addr), (void)(size))
