//===- MemoryPlanner.h - Static arena planning from liveness ----*- C++ -*-===//
//
// Places blocks of memory in one arena so that blocks live at the same time
// never overlap and blocks that are not reuse each other's space. Used to
// lay out a rank's buffers when lowering to the runtime, and to predict a
// rank's memory before anything runs.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_MEMORYPLANNER_H
#define GALVATRON_ANALYSIS_MEMORYPLANNER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

#include <cstdint>
#include <optional>

namespace mlir::galvatron {

/// `size` bytes needed from step `start` to step `end`, both included (steps
/// are instruction indices; -1 is before the first), at `fixedOffset` when
/// the caller has placed it already.
struct MemoryRequest {
  uint64_t size;
  int64_t start, end;
  std::optional<uint64_t> fixedOffset = std::nullopt;
};

struct MemoryPlan {
  /// Offset of each request, a multiple of the alignment.
  llvm::SmallVector<uint64_t> offsets;
  /// Bytes of arena the plan needs: its highest end address.
  uint64_t size = 0;
  /// Most (aligned) bytes live at any one step: a lower bound of `size`.
  uint64_t livePeak = 0;
};

/// Greedy by size: the requests with a fixed offset first, then the
/// largest first, each into the smallest free gap among the requests it
/// overlaps in time that fits, or above them. No request straddles
/// `boundary` (when non-zero): each lies wholly below or above it.
/// Deterministic; sizes are rounded up to `alignment` (a power of two).
MemoryPlan planMemory(llvm::ArrayRef<MemoryRequest> requests,
                      uint64_t alignment, uint64_t boundary = 0);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_MEMORYPLANNER_H
