//===- CommunicationQueue.cpp - Communication beside computation ----------===//

#include "galvatron/Runtime/CommunicationQueue.h"

#include <algorithm>

namespace galvatron::runtime {

Status runTransfer(Communicator &communicator, const Transfer &transfer) {
  switch (transfer.kind) {
  case InstructionKind::allReduce:
    return communicator.allReduce(transfer.group, transfer.in, transfer.out,
                                  transfer.count, transfer.type,
                                  transfer.reduce);
  case InstructionKind::allGather:
    return communicator.allGather(transfer.group, transfer.in, transfer.out,
                                  transfer.count, transfer.type);
  case InstructionKind::reduceScatter:
    return communicator.reduceScatter(transfer.group, transfer.in,
                                      transfer.out, transfer.count,
                                      transfer.type, transfer.reduce);
  case InstructionKind::allToAll:
    return communicator.allToAll(transfer.group, transfer.in, transfer.out,
                                 transfer.count, transfer.type);
  case InstructionKind::broadcast:
    return communicator.broadcast(transfer.group, transfer.peer, transfer.in,
                                  transfer.out, transfer.count, transfer.type);
  case InstructionKind::send:
    return communicator.send(transfer.peer, transfer.in, transfer.bytes,
                             transfer.tag);
  case InstructionKind::recv:
    return communicator.recv(transfer.peer, transfer.out, transfer.bytes,
                             transfer.tag);
  default:
    return error("not a communication instruction");
  }
}

Status Communicator::runGroup(std::vector<Transfer> &transfers) {
  for (Transfer &transfer : transfers) {
    transfer.began = std::chrono::steady_clock::now();
    GALVATRON_RETURN_IF_ERROR(runTransfer(*this, transfer));
    transfer.finished = std::chrono::steady_clock::now();
  }
  return Status::ok();
}

CommunicationQueue::CommunicationQueue(Communicator &communicator,
                                       bool threaded)
    : communicator(communicator) {
  if (threaded && communicator.runsOnQueueThread())
    worker = std::thread([this] { serve(); });
}

CommunicationQueue::~CommunicationQueue() {
  if (!worker.joinable())
    return;
  {
    std::lock_guard<std::mutex> lock(mutex);
    stopping = true;
  }
  changed.notify_all();
  worker.join();
}

uint64_t CommunicationQueue::add(const Transfer &transfer) {
  std::lock_guard<std::mutex> lock(mutex);
  transfers.push_back(transfer);
  return base + transfers.size() - 1;
}

Status CommunicationQueue::submit() {
  std::unique_lock<std::mutex> lock(mutex);
  uint64_t end = base + transfers.size();
  if (end == submitted)
    return Status::ok();
  if (worker.joinable()) {
    // The worker takes groups as [done, submitted) boundaries; a group is
    // what one submit adds.
    groupEnds.push_back(end);
    submitted = end;
    lock.unlock();
    changed.notify_all();
    return Status::ok();
  }
  // No thread: run the group here.
  std::vector<Transfer> group(transfers.begin() + (submitted - base),
                              transfers.end());
  submitted = end;
  lock.unlock();
  Status status = communicator.runGroup(group);
  lock.lock();
  std::copy(group.begin(), group.end(), transfers.begin() + (done - base));
  done = end;
  if (!status.isOk() && failure.isOk())
    failure = status;
  return status;
}

void CommunicationQueue::serve() {
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    changed.wait(lock, [&] { return stopping || !groupEnds.empty(); });
    if (groupEnds.empty())
      return;
    uint64_t end = groupEnds.front();
    std::vector<Transfer> group(transfers.begin() + (done - base),
                                transfers.begin() + (end - base));
    Status status = failure;
    lock.unlock();
    // After a failure the queue only completes tickets: the job is ending.
    if (status.isOk())
      status = communicator.runGroup(group);
    lock.lock();
    std::copy(group.begin(), group.end(), transfers.begin() + (done - base));
    groupEnds.pop_front();
    done = end;
    if (!status.isOk() && failure.isOk())
      failure = status;
    changed.notify_all();
  }
}

Status CommunicationQueue::wait(uint64_t ticket) {
  // Only this thread moves `submitted`.
  if (ticket >= submitted)
    GALVATRON_RETURN_IF_ERROR(submit());
  std::unique_lock<std::mutex> lock(mutex);
  changed.wait(lock, [&] { return done > ticket; });
  return failure;
}

Status CommunicationQueue::waitAll() {
  GALVATRON_RETURN_IF_ERROR(submit());
  std::unique_lock<std::mutex> lock(mutex);
  changed.wait(lock, [&] { return done == submitted; });
  return failure;
}

const Transfer &CommunicationQueue::completed(uint64_t ticket) const {
  return transfers[ticket - base];
}

void CommunicationQueue::release(uint64_t ticket) {
  std::lock_guard<std::mutex> lock(mutex);
  while (base < ticket && base < done) {
    transfers.pop_front();
    ++base;
  }
}

} // namespace galvatron::runtime
