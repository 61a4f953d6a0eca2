//===- RankProgram.h - The concrete program of one rank ---------*- C++ -*-===//
//
// A rank runs its stage's program (Program.h) with every rank-dependent
// quantity resolved: parameter slices and kernel attributes take the
// rank's positions in its groups, send/recv name world ranks, and each
// group family becomes the member list of the rank's own group. Each
// slotted block and buffer gets one copy per micro-batch slot (at the
// slot's addresses), so that backends bind every instruction to fixed
// addresses once, at load. Instantiating costs one pass over the stage's
// program times the slots; the executor, the backends, parameters and
// checkpoints all work on this view.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_RANKPROGRAM_H
#define GALVATRON_RUNTIME_RANKPROGRAM_H

#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

namespace galvatron::runtime {

/// The program of world rank `rank`. Instructions, buffers and blocks of
/// the stage's program keep their indices (they are slot 0's); the copies
/// of other slots follow them.
struct RankProgram : ProgramBody {
  uint32_t rank = 0;
  uint32_t stage = 0;
  /// Per group family of the program: the members of this rank's group in
  /// group order, or nothing when the rank's stage runs no collective on
  /// the family.
  std::vector<std::vector<uint32_t>> groups;
  /// Per block, per slot: where that slot's copy of the block starts (one
  /// entry for a block that is not slotted).
  std::vector<std::vector<uint32_t>> blockStarts;
  /// Per slot, per buffer of the stage's program: that slot's buffer
  /// (itself for slot 0 and for buffers that are not slotted).
  std::vector<std::vector<uint32_t>> slotBuffers;
};

/// The program of `rank` in the validated `program`.
Expected<RankProgram> instantiateRank(const Program &program, uint32_t rank);

/// The value of `base` plus `terms` (element `index` of a list) for `rank`.
int64_t resolveTerms(const Program &program, int64_t base,
                     const std::vector<RankTerm> &terms, uint32_t index,
                     uint32_t rank);

/// Where `rank`'s slice of `parameter` (of its stage's program) starts.
std::vector<int64_t> sliceStartOf(const Program &program,
                                  const Parameter &parameter, uint32_t rank);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_RANKPROGRAM_H
