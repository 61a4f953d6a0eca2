//===- MemoryPlanner.cpp - Static arena planning from liveness ------------===//

#include "galvatron/Analysis/MemoryPlanner.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/Sequence.h"

#include <algorithm>
#include <limits>
#include <map>
#include <vector>

using namespace mlir::galvatron;

static uint64_t alignTo(uint64_t value, uint64_t alignment) {
  return (value + alignment - 1) / alignment * alignment;
}

MemoryPlan mlir::galvatron::planMemory(llvm::ArrayRef<MemoryRequest> requests,
                                       uint64_t alignment, uint64_t boundary) {
  MemoryPlan plan;
  plan.offsets.assign(requests.size(), 0);
  llvm::SmallVector<uint64_t> sizes;
  for (const MemoryRequest &request : requests)
    sizes.push_back(alignTo(request.size, alignment));

  auto indices = llvm::seq<size_t>(0, requests.size());
  llvm::SmallVector<size_t> order(indices.begin(), indices.end());
  llvm::stable_sort(order, [&](size_t a, size_t b) {
    bool aFixed = requests[a].fixedOffset.has_value();
    if (aFixed != requests[b].fixedOffset.has_value())
      return aFixed;
    if (sizes[a] != sizes[b])
      return sizes[a] > sizes[b];
    return requests[a].start < requests[b].start;
  });

  // Placed blocks, scanned for every request: kept compact.
  struct Placed {
    int64_t start, end;
    uint64_t offset, size;
  };
  std::vector<Placed> placed;
  std::vector<std::pair<uint64_t, uint64_t>> conflicts;
  for (size_t index : order) {
    const MemoryRequest &request = requests[index];
    uint64_t size = sizes[index];
    if (size == 0)
      continue;
    uint64_t offset;
    if (request.fixedOffset) {
      offset = *request.fixedOffset;
    } else {
      // The placed blocks live at the same time as this one, by offset.
      conflicts.clear();
      for (const Placed &other : placed)
        if (other.start <= request.end && request.start <= other.end)
          conflicts.emplace_back(other.offset, other.size);
      llvm::sort(conflicts);
      uint64_t cursor = 0, best = 0;
      uint64_t bestGap = std::numeric_limits<uint64_t>::max();
      // Considers [from, to) as a free gap, split at the boundary.
      auto consider = [&](uint64_t from, uint64_t to) {
        auto fit = [&](uint64_t begin, uint64_t end) {
          if (end > begin && end - begin >= size && end - begin < bestGap) {
            bestGap = end - begin;
            best = begin;
          }
        };
        if (boundary && from < boundary && boundary < to) {
          fit(from, boundary);
          fit(boundary, to);
        } else {
          fit(from, to);
        }
      };
      for (auto [begin, blockSize] : conflicts) {
        if (begin > cursor)
          consider(cursor, begin);
        cursor = std::max(cursor, begin + blockSize);
      }
      if (bestGap != std::numeric_limits<uint64_t>::max())
        offset = best;
      else if (boundary && cursor < boundary && cursor + size > boundary)
        offset = boundary;
      else
        offset = cursor;
    }
    plan.offsets[index] = offset;
    plan.size = std::max(plan.size, offset + size);
    placed.push_back(Placed{request.start, request.end, offset, size});
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
