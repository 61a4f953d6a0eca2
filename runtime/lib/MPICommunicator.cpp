//===- MPICommunicator.cpp - Collectives over MPI -------------------------===//

#include "galvatron/Runtime/MPICommunicator.h"

#include "galvatron/Runtime/HalfFloat.h"

#include <mpi.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <deque>

namespace galvatron::runtime {
namespace {

Status mpiStatus(int code, const char *what) {
  if (code == MPI_SUCCESS)
    return Status::ok();
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  return error(what, " failed: ", std::string(text, length));
}

MPI_Datatype mpiType(ElementType type) {
  switch (type) {
  case ElementType::f32:
    return MPI_FLOAT;
  case ElementType::i64:
    return MPI_INT64_T;
  case ElementType::i32:
    return MPI_INT32_T;
  case ElementType::f16:
  case ElementType::bf16:
    return MPI_UINT16_T; // reduced by the user operations below
  case ElementType::i1:
    return MPI_UINT8_T;
  }
  return MPI_BYTE;
}

MPI_Op mpiOp(ReduceOp op) {
  switch (op) {
  case ReduceOp::max:
    return MPI_MAX;
  case ReduceOp::min:
    return MPI_MIN;
  default:
    return MPI_SUM; // avg divides the sum afterwards
  }
}

//===----------------------------------------------------------------------===//
// 16-bit floats reduce in f32 arithmetic
//===----------------------------------------------------------------------===//

/// MPI has no 16-bit float types (MPI_UINT16_T would add integers): a user
/// operation per (format, reduction) widens both operands to float,
/// combines them and rounds the result to nearest even, as NCCL does for
/// bf16. Partial results travel as 16-bit values, so a reduction over n
/// ranks rounds up to n - 1 times, like NCCL's ring.
template <float (*load)(uint16_t), uint16_t (*store)(float), typename Combine>
void reduceHalves(void *in, void *inout, int *count, MPI_Datatype *) {
  const uint16_t *a = static_cast<const uint16_t *>(in);
  uint16_t *b = static_cast<uint16_t *>(inout);
  for (int i = 0; i < *count; ++i)
    b[i] = store(Combine()(load(a[i]), load(b[i])));
}

struct Add {
  float operator()(float a, float b) const { return a + b; }
};
struct Maximum {
  float operator()(float a, float b) const {
    return a != a || a > b ? a : b; // NaN wins, as in MPI_MAX on floats
  }
};
struct Minimum {
  float operator()(float a, float b) const { return a != a || a < b ? a : b; }
};

template <float (*load)(uint16_t), uint16_t (*store)(float)>
std::array<MPI_User_function *, 3> halfReductions() {
  return {reduceHalves<load, store, Add>, reduceHalves<load, store, Maximum>,
          reduceHalves<load, store, Minimum>};
}

/// The MPI operations of the 16-bit formats, created once per process.
class HalfOps {
public:
  Status create() {
    const std::array<MPI_User_function *, 3> functions[2] = {
        halfReductions<halfToFloat, floatToHalf>(),
        halfReductions<bfloat16ToFloat, floatToBfloat16>()};
    for (int format = 0; format < 2; ++format)
      for (int op = 0; op < 3; ++op)
        GALVATRON_RETURN_IF_ERROR(mpiStatus(
            MPI_Op_create(functions[format][op], /*commute=*/1,
                          &ops[format][op]),
            "MPI_Op_create"));
    return Status::ok();
  }
  void free() {
    for (auto &format : ops)
      for (MPI_Op &op : format)
        if (op != MPI_OP_NULL)
          MPI_Op_free(&op);
  }
  MPI_Op get(ElementType type, ReduceOp op) const {
    int index = op == ReduceOp::max ? 1 : op == ReduceOp::min ? 2 : 0;
    return ops[type == ElementType::bf16][index];
  }

private:
  MPI_Op ops[2][3] = {{MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL},
                      {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL}};
};

Status checkCount(uint64_t count) {
  if (count > uint64_t(INT_MAX))
    return error("a message of ", count,
                 " elements exceeds MPI's 32-bit counts");
  return Status::ok();
}

class MPICommunicator final : public Communicator {
public:
  MPICommunicator(uint32_t rank, uint32_t size, HalfOps halfOps,
                  bool serialized)
      : myRank(rank), size(size), halfOps(halfOps), serialized(serialized) {}

  ~MPICommunicator() override {
    // Sends whose receiver is done have completed; wait for the rest.
    for (PendingSend &pending : pendingSends)
      MPI_Wait(&pending.request, MPI_STATUS_IGNORE);
    for (MPI_Comm &comm : comms)
      if (comm != MPI_COMM_NULL)
        MPI_Comm_free(&comm);
    halfOps.free();
    MPI_Finalize();
  }

  uint32_t rank() const override { return myRank; }
  uint32_t worldSize() const override { return size; }

  Status setupGroups(const std::vector<std::vector<uint32_t>> &table) override {
    groups = table;
    comms.assign(table.size(), MPI_COMM_NULL);
    // One split of the world per family, in table order on every rank
    // (collective over the world): the ranks of a group share its first
    // member as the color and are ordered by their position in it.
    for (size_t g = 0; g < table.size(); ++g) {
      const std::vector<uint32_t> &members = table[g];
      int color = MPI_UNDEFINED, key = 0;
      if (!members.empty()) {
        color = int(members.front());
        key = int(std::find(members.begin(), members.end(), myRank) -
                  members.begin());
      }
      GALVATRON_RETURN_IF_ERROR(mpiStatus(
          MPI_Comm_split(MPI_COMM_WORLD, color, key, &comms[g]),
          "MPI_Comm_split"));
      if (comms[g] != MPI_COMM_NULL)
        MPI_Comm_set_errhandler(comms[g], MPI_ERRORS_RETURN);
    }
    return Status::ok();
  }

  Status allReduce(uint32_t group, const void *in, void *out, uint64_t count,
                   ElementType type, ReduceOp op) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(count));
    Expected<MPI_Op> reduction = reductionOf(type, op);
    if (!reduction)
      return reduction.takeStatus();
    GALVATRON_RETURN_IF_ERROR(mpiStatus(
        MPI_Allreduce(in == out ? MPI_IN_PLACE : in, out, int(count),
                      mpiType(type), *reduction, comms[group]),
        "MPI_Allreduce"));
    average(group, out, count, type, op);
    return Status::ok();
  }

  Status allGather(uint32_t group, const void *in, void *out, uint64_t count,
                   ElementType type) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(count * groups[group].size()));
    return mpiStatus(MPI_Allgather(in, int(count), mpiType(type), out,
                                   int(count), mpiType(type), comms[group]),
                     "MPI_Allgather");
  }

  Status reduceScatter(uint32_t group, const void *in, void *out,
                       uint64_t count, ElementType type,
                       ReduceOp op) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(count * groups[group].size()));
    Expected<MPI_Op> reduction = reductionOf(type, op);
    if (!reduction)
      return reduction.takeStatus();
    GALVATRON_RETURN_IF_ERROR(mpiStatus(
        MPI_Reduce_scatter_block(in, out, int(count), mpiType(type),
                                 *reduction, comms[group]),
        "MPI_Reduce_scatter_block"));
    average(group, out, count, type, op);
    return Status::ok();
  }

  Status allToAll(uint32_t group, const void *in, void *out, uint64_t count,
                  ElementType type) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(count * groups[group].size()));
    return mpiStatus(MPI_Alltoall(in, int(count), mpiType(type), out,
                                  int(count), mpiType(type), comms[group]),
                     "MPI_Alltoall");
  }

  Status broadcast(uint32_t group, uint32_t root, const void *in, void *out,
                   uint64_t count, ElementType type) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(count));
    const std::vector<uint32_t> &members = groups[group];
    int localRoot = int(std::find(members.begin(), members.end(), root) -
                        members.begin());
    if (root == myRank && in != out)
      std::memcpy(out, in, count * elementSize(type));
    return mpiStatus(
        MPI_Bcast(out, int(count), mpiType(type), localRoot, comms[group]),
        "MPI_Bcast");
  }

  /// Buffered: the bytes are copied and the send completes in the
  /// background, so a rank never waits for its peer to post the receive.
  /// Pipeline schedules rely on it: in 1F1B's steady state neighbouring
  /// stages send to each other at the same time.
  Status send(uint32_t peer, const void *data, uint64_t bytes,
              int32_t tag) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(bytes));
    GALVATRON_RETURN_IF_ERROR(completeSends());
    PendingSend &pending = pendingSends.emplace_back();
    const auto *begin = static_cast<const uint8_t *>(data);
    pending.bytes.assign(begin, begin + bytes);
    return mpiStatus(MPI_Isend(pending.bytes.data(), int(bytes), MPI_BYTE,
                               int(peer), tag, MPI_COMM_WORLD,
                               &pending.request),
                     "MPI_Isend");
  }

  Status recv(uint32_t peer, void *data, uint64_t bytes,
              int32_t tag) override {
    GALVATRON_RETURN_IF_ERROR(checkCount(bytes));
    MPI_Status status;
    GALVATRON_RETURN_IF_ERROR(mpiStatus(MPI_Recv(data, int(bytes), MPI_BYTE,
                                                 int(peer), tag,
                                                 MPI_COMM_WORLD, &status),
                                        "MPI_Recv"));
    int received = 0;
    MPI_Get_count(&status, MPI_BYTE, &received);
    if (uint64_t(received) != bytes)
      return error("received ", received, " bytes from rank ", peer,
                   ", expected ", bytes);
    return Status::ok();
  }

  /// Receives are posted first (MPI_Irecv) and waited for last, sends are
  /// buffered, collectives run in order in between: the group's messages
  /// progress while its collectives run, whatever order peers issue them.
  Status runGroup(std::vector<Transfer> &transfers) override {
    using Clock = std::chrono::steady_clock;
    std::vector<MPI_Request> requests;
    std::vector<Transfer *> receives;
    for (Transfer &transfer : transfers) {
      if (transfer.kind != InstructionKind::recv)
        continue;
      GALVATRON_RETURN_IF_ERROR(checkCount(transfer.bytes));
      transfer.began = Clock::now();
      GALVATRON_RETURN_IF_ERROR(mpiStatus(
          MPI_Irecv(transfer.out, int(transfer.bytes), MPI_BYTE,
                    int(transfer.peer), transfer.tag, MPI_COMM_WORLD,
                    &requests.emplace_back()),
          "MPI_Irecv"));
      receives.push_back(&transfer);
    }
    for (Transfer &transfer : transfers) {
      if (transfer.kind == InstructionKind::recv)
        continue;
      transfer.began = Clock::now();
      GALVATRON_RETURN_IF_ERROR(runTransfer(*this, transfer));
      transfer.finished = Clock::now();
    }
    std::vector<MPI_Status> statuses(requests.size());
    GALVATRON_RETURN_IF_ERROR(mpiStatus(
        MPI_Waitall(int(requests.size()), requests.data(), statuses.data()),
        "MPI_Waitall"));
    for (size_t r = 0; r < receives.size(); ++r) {
      receives[r]->finished = Clock::now();
      int received = 0;
      MPI_Get_count(&statuses[r], MPI_BYTE, &received);
      if (uint64_t(received) != receives[r]->bytes)
        return error("received ", received, " bytes from rank ",
                     receives[r]->peer, ", expected ", receives[r]->bytes);
    }
    return Status::ok();
  }

  bool runsOnQueueThread() const override { return serialized; }

  std::vector<int64_t> allGatherValue(int64_t value) override {
    std::vector<int64_t> values(worldSize());
    if (MPI_Allgather(&value, 1, MPI_INT64_T, values.data(), 1, MPI_INT64_T,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
      abort(1);
    return values;
  }

  [[noreturn]] void abort(int exitCode) override {
    MPI_Abort(MPI_COMM_WORLD, exitCode);
    std::exit(exitCode);
  }

private:
  struct PendingSend {
    std::vector<uint8_t> bytes;
    MPI_Request request = MPI_REQUEST_NULL;
  };

  /// Frees the copies of sends that have completed.
  Status completeSends() {
    for (PendingSend &pending : pendingSends) {
      int done = 0;
      GALVATRON_RETURN_IF_ERROR(mpiStatus(
          MPI_Test(&pending.request, &done, MPI_STATUS_IGNORE), "MPI_Test"));
    }
    pendingSends.erase(std::remove_if(pendingSends.begin(),
                                      pendingSends.end(),
                                      [](const PendingSend &pending) {
                                        return pending.request ==
                                               MPI_REQUEST_NULL;
                                      }),
                       pendingSends.end());
    return Status::ok();
  }

  /// The MPI operation reducing `type` with `op`: the element type comes
  /// from the program's buffers, and only what the validator allows
  /// reduces (floats; integers except by avg).
  Expected<MPI_Op> reductionOf(ElementType type, ReduceOp op) const {
    if (!(isFloat(type) || (isInteger(type) && op != ReduceOp::avg)))
      return error("cannot reduce ", elementTypeName(type), " with ",
                   reduceOpName(op));
    if (type == ElementType::f16 || type == ElementType::bf16)
      return halfOps.get(type, op);
    return mpiOp(op);
  }

  /// Turns a sum of float values into their mean over the group (rounded
  /// once more for 16-bit values).
  void average(uint32_t group, void *data, uint64_t count, ElementType type,
               ReduceOp op) {
    if (op != ReduceOp::avg)
      return;
    float members = float(groups[group].size());
    if (type == ElementType::f32) {
      float *values = static_cast<float *>(data);
      for (uint64_t i = 0; i < count; ++i)
        values[i] /= members;
      return;
    }
    uint16_t *values = static_cast<uint16_t *>(data);
    bool bf16 = type == ElementType::bf16;
    for (uint64_t i = 0; i < count; ++i)
      values[i] = bf16 ? floatToBfloat16(bfloat16ToFloat(values[i]) / members)
                       : floatToHalf(halfToFloat(values[i]) / members);
  }

  uint32_t myRank, size;
  HalfOps halfOps;
  /// MPI may be called from any one thread at a time.
  bool serialized;
  std::vector<std::vector<uint32_t>> groups;
  std::vector<MPI_Comm> comms;
  std::deque<PendingSend> pendingSends;
};

} // namespace

bool launchedByMPI() {
  for (const char *variable :
       {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE"})
    if (std::getenv(variable))
      return true;
  return false;
}

Expected<std::unique_ptr<Communicator>> createMPICommunicator(int *argc,
                                                              char ***argv) {
  // The executor's communication queue calls MPI from a thread of its own,
  // never while another thread does: MPI_THREAD_SERIALIZED suffices. An MPI
  // that provides less runs communication on the main thread (no overlap).
  int provided = 0;
  GALVATRON_RETURN_IF_ERROR(mpiStatus(
      MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided),
      "MPI_Init_thread"));
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  HalfOps halfOps;
  GALVATRON_RETURN_IF_ERROR(halfOps.create());
  return std::unique_ptr<Communicator>(std::make_unique<MPICommunicator>(
      uint32_t(rank), uint32_t(size), halfOps,
      provided >= MPI_THREAD_SERIALIZED));
}

} // namespace galvatron::runtime
