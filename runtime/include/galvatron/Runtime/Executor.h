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
#include "galvatron/Runtime/CommunicationQueue.h"
#include "galvatron/Runtime/Communicator.h"
#include "galvatron/Runtime/RankProgram.h"
#include "galvatron/Runtime/Status.h"
#include "galvatron/Runtime/Trace.h"

#include <map>
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
  /// With `overlap`, started communication runs on a queue of its own
  /// beside the kernels (see CommunicationQueue.h); without, each transfer
  /// completes where it is started (the same results, for comparisons).
  static Expected<std::unique_ptr<Executor>>
  create(const Program &program, uint32_t rank, Backend &backend,
         Communicator &communicator, bool overlap = true);

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

  /// Whether started communication overlaps kernels on this rank.
  bool overlaps() const { return queue.threaded(); }

  /// Runs the schedule once; with `profile`, also times each instruction
  /// (after synchronizing the backend) and adds the times up; with `trace`,
  /// appends every kernel, transfer and time in flight to it.
  Status run(Profile *profile = nullptr, Trace *trace = nullptr);

private:
  Executor(const Program &program, RankProgram rank, Backend &backend,
           Communicator &communicator, bool overlap)
      : whole(program), rank(std::move(rank)), device(backend),
        comm(communicator), queue(communicator, overlap) {}

  /// A communication instruction as the communicator runs it.
  Transfer transferOf(const Instruction &instruction);
  void *address(uint32_t buffer) {
    return device.address(rank.buffers[buffer].offset);
  }

  /// A transfer started and not yet waited for.
  struct InFlight {
    uint64_t ticket;
    uint32_t instruction;
    int64_t microBatch;
    uint32_t block;
    double started;
  };
  /// Waits for the transfers of `event` and traces them.
  Status complete(int32_t event, Trace *trace);
  /// Completes every event waited for so far.
  Status completeWaited(Trace *trace);
  /// Whether `instruction` touches bytes of a transfer waited for.
  bool touchesWaited(const Instruction &instruction) const;

  const Program &whole;
  const RankProgram rank;
  Backend &device;
  Communicator &comm;
  CommunicationQueue queue;
  /// Per event: its transfers in flight.
  std::map<int32_t, std::vector<InFlight>> inFlight;
  /// Events waited for, completed before the next kernel: the starts
  /// between two kernels form one group even across waits (a stage's send
  /// and its next receive: one NCCL group).
  std::vector<int32_t> waited;
  /// Per input binding: a per-micro-batch input's rows, written into its
  /// buffer before each run of its block.
  std::vector<std::vector<uint8_t>> staged;
};

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_EXECUTOR_H
