//===- ProgramValidator.h - Semantic checks of a program --------*- C++ -*-===//
//
// Everything the runtime relies on before it touches memory: group ranks
// inside the world, every buffer inside its arena and aligned, parameters,
// constants and bindings well formed, each kernel call matching its
// signature (KernelCatalog.h), each collective and send/recv well typed, the
// memory plan free of conflicts (no two buffers live at the same time share
// a byte, no buffer read before it is written) and, when a file holds every
// rank, the communication of the ranks matching up. A program that passes
// cannot make the runtime read or write outside its arena.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_PROGRAMVALIDATOR_H
#define GALVATRON_RUNTIME_PROGRAMVALIDATOR_H

#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

namespace galvatron::runtime {

/// Limits that keep a malformed program from requesting absurd resources.
constexpr uint32_t kMaxWorldSize = 1u << 20;
constexpr int64_t kMaxRank = 16;

/// Checks the whole program; the message names the rank, the instruction or
/// buffer, and the rule broken.
Status validateProgram(const Program &program);

/// Checks one rank's program against the program-wide tables.
Status validateRankProgram(const Program &program, const RankProgram &rank);

/// Checks one instruction of `rank` (operands, signature, group, peer).
Status validateInstruction(const Program &program, const RankProgram &rank,
                           const Instruction &instruction);

/// Checks `rank`'s memory plan: live ranges of buffers sharing bytes never
/// overlap, except where an instruction legally writes its result over an
/// operand it reads for the last time, and no buffer is read before it is
/// written (parameters, constants and inputs are written before the first
/// instruction). Assumes validateRankProgram's other checks passed.
Status checkMemoryPlan(const RankProgram &rank);

/// When a root buffer's bytes are in use: from its first write (-1: before
/// the first instruction) to its last access (the instruction count: after
/// the last instruction). Both are kNever for an unused buffer.
struct LiveRange {
  static constexpr int64_t kNever = -2;
  int64_t start, end;
};

/// The live range of every root buffer (entries of views are unused).
/// Fails when a buffer is read before it is written or an output is never
/// written.
Expected<std::vector<LiveRange>> computeLiveRanges(const RankProgram &rank);

struct MemoryUsage {
  /// The arena the program plans (and the runtime allocates).
  uint64_t arenaBytes = 0;
  /// Most bytes live at one instruction: what any plan needs at least.
  uint64_t peakLiveBytes = 0;
  uint64_t parameterBytes = 0;
  /// Training state (gradient accumulators, optimizer moments, counters).
  uint64_t stateBytes = 0;
};

/// Memory figures of a validated rank program.
MemoryUsage analyzeMemory(const RankProgram &rank);

/// A name for diagnostics: "instruction 12 (kernel 'linear' in layer 'h.0')".
std::string describeInstruction(const RankProgram &rank, size_t index);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PROGRAMVALIDATOR_H
