//===- MemoryPlanner.cpp - Static arena planning from liveness ------------===//

#include "galvatron/Analysis/MemoryPlanner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Sequence.h"

#include <algorithm>
#include <limits>
#include <map>

using namespace mlir::galvatron;

static uint64_t alignTo(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

MemoryPlan mlir::galvatron::planMemory(llvm::ArrayRef<MemoryRequest> requests,
                                       uint64_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  llvm::SmallVector<uint64_t> sizes;
  for (const MemoryRequest &request : requests)
    sizes.push_back(alignTo(request.size, alignment));

  auto indices = llvm::seq<size_t>(0, requests.size());
  llvm::SmallVector<size_t> order(indices.begin(), indices.end());
  llvm::stable_sort(order, [&](size_t a, size_t b) {
    if (sizes[a] != sizes[b])
      return sizes[a] > sizes[b];
    return requests[a].start < requests[b].start;
  });

  llvm::SmallVector<size_t> placed;
  for (size_t index : order) {
    const MemoryRequest &request = requests[index];
    uint64_t size = sizes[index];
    if (size == 0)
      continue;
    // The placed blocks live at the same time as this one, by offset.
    llvm::SmallVector<size_t> conflicts;
    for (size_t other : placed)
      if (requests[other].start <= request.end &&
          request.start <= requests[other].end)
        conflicts.push_back(other);
    llvm::sort(conflicts, [&](size_t a, size_t b) {
      return plan.offsets[a] < plan.offsets[b];
    });
    uint64_t cursor = 0, best = 0;
    uint64_t bestGap = std::numeric_limits<uint64_t>::max();
    for (size_t other : conflicts) {
      uint64_t begin = plan.offsets[other];
      if (begin > cursor && begin - cursor >= size && begin - cursor < bestGap) {
        bestGap = begin - cursor;
        best = cursor;
      }
      cursor = std::max(cursor, begin + sizes[other]);
    }
    plan.offsets[index] =
        bestGap == std::numeric_limits<uint64_t>::max() ? cursor : best;
    plan.size = std::max(plan.size, plan.offsets[index] + size);
    placed.push_back(index);
  }

  // Live bytes per step: +size at start, -size after end.
  std::map<int64_t, int64_t> changes;
  for (auto [request, size] : llvm::zip(requests, sizes)) {
    changes[request.start] += int64_t(size);
    changes[request.end + 1] -= int64_t(size);
  }
  int64_t live = 0;
  for (auto [step, change] : changes) {
    live += change;
    plan.livePeak = std::max(plan.livePeak, uint64_t(live));
  }
  return plan;
}
