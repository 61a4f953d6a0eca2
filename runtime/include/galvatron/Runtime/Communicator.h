//===- Communicator.h - Collectives and point-to-point messages -*- C++ -*-===//
//
// The ranks of a job talk through a communicator: collectives on the device
// groups a program declares, and send/recv between world ranks. MPI carries
// them on the CPU backend; an NCCL communicator (device pointers, the
// backend's stream, its unique id broadcast over MPI) is the next one.
// Buffers are addresses the backend hands out (Backend::address).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_COMMUNICATOR_H
#define GALVATRON_RUNTIME_COMMUNICATOR_H

#include "galvatron/Runtime/Program.h"
#include "galvatron/Runtime/Status.h"

#include <chrono>
#include <memory>
#include <vector>

namespace galvatron::runtime {

/// One collective or message of a group of communication started together
/// (see Communicator::runGroup): a communication instruction with its
/// arena addresses. `count` is what the matching Communicator call takes
/// (elements per member for allGather, reduceScatter and allToAll);
/// `peer` is the world rank of a message's peer or a broadcast's root.
struct Transfer {
  InstructionKind kind = InstructionKind::allReduce;
  uint32_t group = 0;
  ReduceOp reduce = ReduceOp::sum;
  uint32_t peer = 0;
  int32_t tag = 0;
  const void *in = nullptr;
  void *out = nullptr;
  uint64_t count = 0;
  ElementType type = ElementType::f32;
  /// Bytes the rank sends or receives, for traces.
  uint64_t bytes = 0;
  /// When the communicator began and finished it (set by runGroup).
  std::chrono::steady_clock::time_point began, finished;
};

class Communicator {
public:
  virtual ~Communicator() = default;

  virtual uint32_t rank() const = 0;
  virtual uint32_t worldSize() const = 0;

  /// Prepares the groups of a program: per group family of the program,
  /// the world ranks of this rank's group in group order, or nothing where
  /// the rank runs no collective on the family. Every rank calls this with
  /// a table of the same length (the program's families); later calls name
  /// a group by its family's index.
  virtual Status setupGroups(const std::vector<std::vector<uint32_t>> &groups) = 0;

  /// Every member's `count` elements reduced with `op` into every member's
  /// `out`. `in` may equal `out`.
  virtual Status allReduce(uint32_t group, const void *in, void *out,
                           uint64_t count, ElementType type, ReduceOp op) = 0;
  /// The members' `count` elements concatenated in group order.
  virtual Status allGather(uint32_t group, const void *in, void *out,
                           uint64_t count, ElementType type) = 0;
  /// Member i receives part i (`count` elements) of the reduced input.
  virtual Status reduceScatter(uint32_t group, const void *in, void *out,
                               uint64_t count, ElementType type,
                               ReduceOp op) = 0;
  /// Part j (`count` elements) of member i's input becomes part i of member
  /// j's output.
  virtual Status allToAll(uint32_t group, const void *in, void *out,
                          uint64_t count, ElementType type) = 0;
  /// World rank `root`'s input copied into every member's output.
  virtual Status broadcast(uint32_t group, uint32_t root, const void *in,
                           void *out, uint64_t count, ElementType type) = 0;

  virtual Status send(uint32_t peer, const void *data, uint64_t bytes,
                      int32_t tag) = 0;
  virtual Status recv(uint32_t peer, void *data, uint64_t bytes,
                      int32_t tag) = 0;

  /// Runs a group of transfers that were started together and returns once
  /// all completed, with NCCL's group semantics: the messages of a group
  /// may progress in any order (a receive is posted before the group's
  /// collectives run), so two stages exchanging messages in one group
  /// cannot deadlock. Collectives run in group order. The default runs
  /// each transfer with the calls above, in order.
  virtual Status runGroup(std::vector<Transfer> &transfers);

  /// Whether runGroup may run on a thread of its own (the executor's
  /// communication queue) while the thread that created the communicator
  /// runs kernels. The communicator is never called from two threads at
  /// once: the executor calls nothing else while a group is in flight.
  virtual bool runsOnQueueThread() const { return true; }

  /// Every rank's `value`, indexed by rank: lets all ranks stop together
  /// when one of them fails outside a collective, and check that they
  /// agree (on a checkpoint's step, say), naming those that do not.
  virtual std::vector<int64_t> allGatherValue(int64_t value) = 0;

  /// Ends the whole job after an error on this rank, so that no other rank
  /// waits forever for it. Does not return.
  [[noreturn]] virtual void abort(int exitCode) = 0;
};

/// Runs one transfer with the communicator's blocking calls.
Status runTransfer(Communicator &communicator, const Transfer &transfer);

/// A job of one process: groups must be {0} (or unused); collectives copy.
std::unique_ptr<Communicator> createSingleProcessCommunicator();

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_COMMUNICATOR_H
