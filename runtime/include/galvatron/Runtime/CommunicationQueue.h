//===- CommunicationQueue.h - Communication beside computation --*- C++ -*-===//
//
// A rank's second queue: groups of collectives and messages run here, in
// the order submitted, while the compute queue (the backend) runs kernels;
// a ticket per transfer tells when it completed. With a communicator that
// allows it (MPI with MPI_THREAD_SERIALIZED or more), a thread of its own
// runs the groups, so transfers overlap kernels for real; otherwise
// `submit` runs the group on the caller's thread (the same results, no
// overlap). A CUDA backend maps this queue to a stream for NCCL, a group
// to ncclGroupStart/End and a ticket to an event recorded after its group.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_RUNTIME_COMMUNICATIONQUEUE_H
#define GALVATRON_RUNTIME_COMMUNICATIONQUEUE_H

#include "galvatron/Runtime/Communicator.h"

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace galvatron::runtime {

class CommunicationQueue {
public:
  /// With `threaded` (and a communicator that allows it), groups run on a
  /// thread of their own.
  CommunicationQueue(Communicator &communicator, bool threaded);
  ~CommunicationQueue();
  CommunicationQueue(const CommunicationQueue &) = delete;
  CommunicationQueue &operator=(const CommunicationQueue &) = delete;

  /// Whether groups run beside the caller's thread.
  bool threaded() const { return worker.joinable(); }

  /// Adds `transfer` to the open group; returns its ticket (tickets count
  /// up from 0 over the queue's life).
  uint64_t add(const Transfer &transfer);
  /// Submits the open group (nothing when it is empty).
  Status submit();
  /// Waits until transfer `ticket` completed (submitting its group when
  /// still open); returns the first error of the queue, if any.
  Status wait(uint64_t ticket);
  /// Waits for every transfer added so far.
  Status waitAll();
  /// A transfer waited for, with its times (for traces), until released.
  const Transfer &completed(uint64_t ticket) const;
  /// Forgets completed transfers below `ticket` (after they were traced).
  void release(uint64_t ticket);

private:
  void serve();

  Communicator &communicator;
  std::mutex mutex;
  std::condition_variable changed;
  /// Every transfer not yet released, by ticket - `base`.
  std::deque<Transfer> transfers;
  uint64_t base = 0;
  /// Tickets below `submitted` were submitted, below `done` completed.
  uint64_t submitted = 0, done = 0;
  /// Where each submitted group not yet run ends.
  std::deque<uint64_t> groupEnds;
  Status failure;
  bool stopping = false;
  std::thread worker;
};

} // namespace galvatron::runtime

#endif // GALVATRON_RUNTIME_COMMUNICATIONQUEUE_H
