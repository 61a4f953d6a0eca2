//===- Executor.h - Runs one rank's program ---------------------*- C++ -*-===//
//
// Instantiates one rank's program from its stage's program, binds it to a
// backend and a communicator, moves bytes in and out of named buffers, and
// runs the schedule: each block the schedule names, for its micro-batch in
// that micro-batch's slot, with kernels on the backend and collectives and
// send/recv on the communicator.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_EXECUTOR_H
#define GALVATRON_RUNTIME_EXECUTOR_H

#include "galvatron/Runtime/Backend.h"
#include "galvatron/Runtime/Communicator.h"
#include "galvatron/Runtime/RankProgram.h"
#include "galvatron/Runtime/Status.h"

#include <memory>
#include <string>
#include <vector>

namespace galvatron::runtime {

/// Seconds spent per layer and per kernel (or instruction kind) in a run.
struct Profile {
  std::vector<std::pair<std::string, double>> layers;
  std::vector<std::pair<std::string, double>> kernels;
  double total = 0.0;
};

class Executor {
public:
  /// Prepares `rank` of the validated `program`: instantiates the rank's
  /// program, the backend loads it (and allocates the arena), the
  /// communicator sets up the rank's groups, and constants are written.
  /// `program`, `backend` and `communicator` must outlive the executor.
  static Expected<std::unique_ptr<Executor>>
  create(const Program &program, uint32_t rank, Backend &backend,
         Communicator &communicator);

  const Program &program() const { return whole; }
  const RankProgram &rankProgram() const { return rank; }
  Backend &backend() { return device; }

  /// The tensor a caller gives for `input`: a per-micro-batch input holds
  /// every micro-batch's rows, stacked along dimension 0.
  TensorType inputType(const Binding &input) const;
  /// Writes a program input (exactly `inputType`'s bytes) for the next runs.
  Status writeInput(const Binding &input, const void *data, uint64_t bytes);

  /// Copies a buffer's bytes (exactly its size) in or out.
  Status writeBuffer(uint32_t buffer, const void *data, uint64_t bytes);
  Status readBuffer(uint32_t buffer, void *data, uint64_t bytes);

  /// Runs the schedule once; with `profile`, also times each instruction
  /// (after synchronizing the backend) and adds the times up.
  Status run(Profile *profile = nullptr);

private:
  Executor(const Program &program, RankProgram rank, Backend &backend,
           Communicator &communicator)
      : whole(program), rank(std::move(rank)), device(backend),
        comm(communicator) {}

  Status runCommunication(const Instruction &instruction);
  void *address(uint32_t buffer) {
    return device.address(rank.buffers[buffer].offset);
  }

  const Program &whole;
  const RankProgram rank;
  Backend &device;
  Communicator &comm;
  /// Per input binding: a per-micro-batch input's rows, written into its
  /// buffer before each run of its block.
  std::vector<std::vector<uint8_t>> staged;
};

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_EXECUTOR_H
