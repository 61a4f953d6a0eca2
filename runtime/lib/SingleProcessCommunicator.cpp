//===- SingleProcessCommunicator.cpp - A job of one process ---------------===//
//
// With one member every collective is a copy of the input (the sum, mean,
// maximum or gather of one part is that part); there is no peer to message.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Runtime/Communicator.h"

#include <cstdlib>
#include <cstring>

namespace galvatron::runtime {
namespace {

class SingleProcessCommunicator final : public Communicator {
public:
  uint32_t rank() const override { return 0; }
  uint32_t worldSize() const override { return 1; }

  Status setupGroups(const std::vector<std::vector<uint32_t>> &groups) override {
    for (size_t g = 0; g < groups.size(); ++g)
      if (!groups[g].empty() && groups[g] != std::vector<uint32_t>{0})
        return error("group ", g, " names ranks other than 0 in a job of one "
                     "process");
    return Status::ok();
  }

  Status allReduce(uint32_t, const void *in, void *out, uint64_t count,
                   ElementType type, ReduceOp) override {
    return copy(in, out, count, type);
  }
  Status allGather(uint32_t, const void *in, void *out, uint64_t count,
                   ElementType type) override {
    return copy(in, out, count, type);
  }
  Status reduceScatter(uint32_t, const void *in, void *out, uint64_t count,
                       ElementType type, ReduceOp) override {
    return copy(in, out, count, type);
  }
  Status allToAll(uint32_t, const void *in, void *out, uint64_t count,
                  ElementType type) override {
    return copy(in, out, count, type);
  }
  Status broadcast(uint32_t, uint32_t, const void *in, void *out,
                   uint64_t count, ElementType type) override {
    return copy(in, out, count, type);
  }
  Status send(uint32_t peer, const void *, uint64_t, int32_t) override {
    return error("cannot send to rank ", peer, " in a job of one process");
  }
  Status recv(uint32_t peer, void *, uint64_t, int32_t) override {
    return error("cannot receive from rank ", peer,
                 " in a job of one process");
  }
  std::vector<int64_t> allGatherValue(int64_t value) override {
    return {value};
  }
  [[noreturn]] void abort(int exitCode) override { std::exit(exitCode); }

private:
  static Status copy(const void *in, void *out, uint64_t count,
                     ElementType type) {
    if (in != out)
      std::memcpy(out, in, count * elementSize(type));
    return Status::ok();
  }
};

} // namespace

std::unique_ptr<Communicator> createSingleProcessCommunicator() {
  return std::make_unique<SingleProcessCommunicator>();
}

} // namespace galvatron::runtime
