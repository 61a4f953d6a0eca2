//===- ProgramValidator.h - Semantic checks of a program --------*- C++ -*-===//
//
// Everything the runtime relies on before it touches memory, proven once
// per stage for every rank of the stage and every micro-batch: group
// families that partition the world, every buffer inside its arena and
// aligned (each slot's copy inside its slot), parameters, constants and
// bindings well formed, each kernel call matching its signature
// (KernelCatalog.h) for the lowest and the highest value of every
// rank-dependent integer, each collective and send/recv well typed, the
// schedule well formed (each micro-batch runs the same blocks in the same
// order in a slot no other micro-batch holds meanwhile), the memory plan
// free of conflicts over the whole schedule (no two buffers live at the
// same time share a byte, no buffer read before it is written), and the
// communication of the stages matching up: the members of every group, on
// whatever stages, issue the same collectives in the same order, and every
// send has its matching receive. A program that passes cannot make the
// runtime read or write outside its arena, for any rank.
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
/// Block runs of one schedule.
constexpr uint64_t kMaxScheduleSteps = uint64_t(1) << 22;

/// Checks the whole program; the message names the stage, the instruction
/// or buffer, and the rule broken.
Status validateProgram(const Program &program);

/// Checks one stage's program against the program-wide tables (everything
/// but the matching of communication between stages).
Status validateStageProgram(const Program &program, const StageProgram &stage);

/// Checks that the stages' communication matches up: the members of every
/// group issue the same collectives in the same order, and every send has
/// its receive. Assumes every stage program validated.
Status validateCommunication(const Program &program);

struct MemoryUsage {
  /// The arena the program plans (and the runtime allocates).
  uint64_t arenaBytes = 0;
  /// Most bytes live at one instruction of the whole schedule (every slot
  /// in flight counted): what any plan needs at least.
  uint64_t peakLiveBytes = 0;
  uint64_t parameterBytes = 0;
  /// Training state (gradient accumulators, optimizer moments, counters).
  uint64_t stateBytes = 0;
};

/// Memory figures of a validated stage program.
MemoryUsage analyzeMemory(const StageProgram &stage);

/// A name for diagnostics: "instruction 12 (kernel 'linear' in layer 'h.0')".
std::string describeInstruction(const ProgramBody &program, size_t index);

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_PROGRAMVALIDATOR_H
