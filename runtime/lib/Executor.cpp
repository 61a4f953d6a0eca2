//===- Executor.cpp - Runs one rank's program -----------------------------===//

#include "galvatron/Runtime/Executor.h"

#include "galvatron/Runtime/ProgramValidator.h"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstdio>
#include <map>

namespace galvatron::runtime {

Expected<std::unique_ptr<Executor>>
Executor::create(const Program &program, uint32_t rankIndex, Backend &backend,
                 Communicator &communicator, bool overlap) {
  Expected<RankProgram> rank = instantiateRank(program, rankIndex);
  if (!rank)
    return rank.takeStatus();
  // The backend binds addresses in the executor's copy of the program.
  std::unique_ptr<Executor> executor(
      new Executor(program, std::move(*rank), backend, communicator, overlap));
  const RankProgram &bound = executor->rank;
  GALVATRON_RETURN_IF_ERROR(
      backend.load(bound).withContext(std::string(backend.name()) + " backend"));
  GALVATRON_RETURN_IF_ERROR(communicator.setupGroups(bound.groups));
  executor->staged.resize(bound.inputs.size());
  for (const Constant &constant : bound.constants)
    GALVATRON_RETURN_IF_ERROR(executor->writeBuffer(
        constant.buffer, constant.data.data(), constant.data.size()));
  return executor;
}

TensorType Executor::inputType(const Binding &input) const {
  TensorType type = rank.buffers[input.buffer].type;
  if (input.block >= 0)
    type.shape[0] *= rank.schedule.microBatches;
  return type;
}

Status Executor::writeInput(const Binding &input, const void *data,
                            uint64_t bytes) {
  if (input.block < 0)
    return writeBuffer(input.buffer, data, bytes);
  uint64_t expected = inputType(input).byteSize();
  if (bytes != expected)
    return error("writing ", bytes, " bytes into input '", input.name,
                 "' of ", expected);
  std::vector<uint8_t> &rows = staged[&input - rank.inputs.data()];
  const uint8_t *begin = static_cast<const uint8_t *>(data);
  rows.assign(begin, begin + bytes);
  return Status::ok();
}

Status Executor::writeBuffer(uint32_t buffer, const void *data,
                             uint64_t bytes) {
  const Buffer &target = rank.buffers[buffer];
  if (bytes != target.type.byteSize())
    return error("writing ", bytes, " bytes into buffer ", buffer, " of ",
                 target.type.byteSize());
  return device.write(target.offset, data, bytes);
}

Status Executor::readBuffer(uint32_t buffer, void *data, uint64_t bytes) {
  const Buffer &source = rank.buffers[buffer];
  if (bytes != source.type.byteSize())
    return error("reading ", bytes, " bytes from buffer ", buffer, " of ",
                 source.type.byteSize());
  return device.read(source.offset, data, bytes);
}

Transfer Executor::transferOf(const Instruction &instruction) {
  Transfer transfer;
  transfer.kind = instruction.kind;
  transfer.group = instruction.group;
  transfer.reduce = instruction.reduce;
  transfer.tag = instruction.tag;
  transfer.peer = uint32_t(instruction.peer);
  if (instruction.kind == InstructionKind::send ||
      instruction.kind == InstructionKind::recv) {
    bool send = instruction.kind == InstructionKind::send;
    uint32_t buffer = send ? instruction.inputs[0] : instruction.outputs[0];
    transfer.bytes = rank.buffers[buffer].type.byteSize();
    if (send)
      transfer.in = address(buffer);
    else
      transfer.out = address(buffer);
    return transfer;
  }
  const TensorType &in = rank.buffers[instruction.inputs[0]].type;
  const TensorType &out = rank.buffers[instruction.outputs[0]].type;
  transfer.in = address(instruction.inputs[0]);
  transfer.out = address(instruction.outputs[0]);
  transfer.type = in.elementType;
  transfer.bytes = in.byteSize();
  uint64_t members = rank.groups[instruction.group].size();
  switch (instruction.kind) {
  case InstructionKind::reduceScatter:
    transfer.count = out.numElements();
    break;
  case InstructionKind::allToAll:
    transfer.count = in.numElements() / members;
    break;
  case InstructionKind::broadcast:
    // The root's world rank.
    transfer.peer = rank.groups[instruction.group][instruction.peer];
    transfer.count = in.numElements();
    break;
  default:
    transfer.count = in.numElements();
  }
  return transfer;
}

static const char *categoryOf(InstructionKind kind) {
  switch (kind) {
  case InstructionKind::kernel:
    return "kernel";
  case InstructionKind::send:
    return "send";
  case InstructionKind::recv:
    return "recv";
  default:
    return "collective";
  }
}

Status Executor::complete(int32_t event, Trace *trace) {
  auto found = inFlight.find(event);
  if (found == inFlight.end())
    return error("waits for event ", event, ", which is not in flight");
  std::vector<InFlight> transfers = std::move(found->second);
  inFlight.erase(found);
  for (const InFlight &started : transfers) {
    GALVATRON_RETURN_IF_ERROR(queue.wait(started.ticket));
    if (!trace)
      continue;
    double now = traceClock();
    const Instruction &instruction = rank.instructions[started.instruction];
    const Transfer &transfer = queue.completed(started.ticket);
    TraceEvent traced;
    traced.name = instructionKindName(instruction.kind);
    traced.category = categoryOf(instruction.kind);
    traced.layer = instruction.layer >= 0 ? rank.layers[instruction.layer] : "";
    traced.block = rank.blocks[started.block].name;
    traced.microBatch = started.microBatch;
    traced.bytes = transfer.bytes;
    traced.event = instruction.event;
    traced.step = trace->step;
    traced.track = TraceTrack::communication;
    traced.begin = traceTime(transfer.began);
    traced.end = traceTime(transfer.finished);
    trace->events.push_back(traced);
    traced.track = TraceTrack::inFlight;
    traced.begin = started.started;
    traced.end = now;
    trace->events.push_back(std::move(traced));
  }
  return Status::ok();
}

Status Executor::completeWaited(Trace *trace) {
  GALVATRON_RETURN_IF_ERROR(queue.submit());
  std::vector<int32_t> events = std::move(waited);
  waited.clear();
  for (int32_t event : events)
    GALVATRON_RETURN_IF_ERROR(complete(event, trace));
  return Status::ok();
}

bool Executor::touchesWaited(const Instruction &instruction) const {
  auto range = [&](uint32_t buffer) {
    const Buffer &b = rank.buffers[buffer];
    return std::make_pair(b.offset, b.offset + b.type.byteSize());
  };
  for (int32_t event : waited) {
    auto found = inFlight.find(event);
    if (found == inFlight.end())
      continue;
    for (const InFlight &started : found->second) {
      const Instruction &other = rank.instructions[started.instruction];
      for (const auto *mine : {&instruction.inputs, &instruction.outputs})
        for (uint32_t a : *mine)
          for (const auto *theirs : {&other.inputs, &other.outputs})
            for (uint32_t b : *theirs)
              if (range(a).first < range(b).second &&
                  range(b).first < range(a).second)
                return true;
    }
  }
  return false;
}

/// Fault injection for failure tests: GALVATRON_TEST_KILL="RANK:INDEX" kills
/// rank RANK with SIGKILL just before the INDEX-th instruction it runs
/// (from 0, counted over the run), as a crashed or preempted process would
/// die. Returns the index for this rank, or -1.
static int64_t killBeforeInstruction(uint32_t rank) {
  const char *value = std::getenv("GALVATRON_TEST_KILL");
  unsigned victim = 0;
  long long index = -1;
  if (!value || std::sscanf(value, "%u:%lld", &victim, &index) != 2 ||
      victim != rank)
    return -1;
  return index;
}

Status Executor::run(Profile *profile, Trace *trace) {
  int64_t killAt = killBeforeInstruction(rank.rank);
  using Clock = std::chrono::steady_clock;
  std::map<std::string, double> layerTimes, kernelTimes;
  std::vector<std::string> layerOrder;
  Clock::time_point runStart = Clock::now();
  const Schedule &schedule = rank.schedule;
  int64_t lastMicroBatch = int64_t(schedule.microBatches) - 1;
  int64_t executed = 0;
  for (const Phase &phase : schedule.phases)
    for (uint32_t iteration = 0; iteration < phase.iterations; ++iteration)
      for (const ScheduleStep &step : phase.steps) {
        const Block &block = rank.blocks[step.block];
        int64_t micro = int64_t(step.microBatch) + iteration;
        uint32_t slot = block.slotted ? uint32_t(micro % schedule.slots) : 0;
        for (size_t b = 0; b < rank.inputs.size(); ++b) {
          const Binding &input = rank.inputs[b];
          if (input.block != int32_t(step.block))
            continue;
          if (staged[b].empty())
            return error("input '", input.name, "' was not given");
          GALVATRON_RETURN_IF_ERROR(completeWaited(trace));
          const Buffer &buffer = rank.buffers[rank.slotBuffers[slot][input.buffer]];
          uint64_t bytes = buffer.type.byteSize();
          GALVATRON_RETURN_IF_ERROR(device.write(
              buffer.offset, staged[b].data() + uint64_t(micro) * bytes, bytes));
        }
        uint32_t first = rank.blockStarts[step.block][slot];
        for (uint32_t i = first; i < first + block.count; ++i) {
          const Instruction &instruction = rank.instructions[i];
          if (instruction.lastMicroBatch && micro != lastMicroBatch)
            continue;
          if (executed++ == killAt)
            std::raise(SIGKILL);
          Clock::time_point start = Clock::now();
          double started = trace ? traceClock() : 0.0;
          Status status;
          if (instruction.kind == InstructionKind::kernel) {
            // The open group goes out before the kernel; what was waited
            // for completes before it (profiled as "wait").
            status = completeWaited(trace);
            if (profile) {
              Clock::time_point now = Clock::now();
              kernelTimes["wait"] +=
                  std::chrono::duration<double>(now - start).count();
              start = now;
            }
            if (trace)
              started = traceClock();
            if (status.isOk())
              status = device.runKernel(i);
          } else if (instruction.kind == InstructionKind::wait) {
            waited.push_back(instruction.event);
          } else {
            if (touchesWaited(instruction))
              status = completeWaited(trace);
            int32_t event = instruction.event;
            // A synchronous instruction (format 2.0) completes here, on an
            // event of its own.
            if (event < 0) {
              event = -1 - int32_t(i);
              if (status.isOk())
                status = completeWaited(trace);
            }
            if (status.isOk()) {
              inFlight[event].push_back(InFlight{
                  queue.add(transferOf(instruction)), i,
                  block.slotted ? micro : -1, step.block, started});
              if (instruction.event < 0)
                status = complete(event, trace);
            }
          }
          if (!status.isOk()) {
            std::string where =
                describeInstruction(rank, block.first + (i - first));
            if (block.slotted)
              where += " for micro-batch " + std::to_string(micro);
            return std::move(status).withContext(where);
          }
          if (trace && instruction.kind == InstructionKind::kernel) {
            TraceEvent traced;
            traced.name = instruction.kernel;
            traced.category = "kernel";
            traced.layer =
                instruction.layer >= 0 ? rank.layers[instruction.layer] : "";
            traced.block = block.name;
            traced.microBatch = block.slotted ? micro : -1;
            for (const auto *buffers : {&instruction.inputs, &instruction.outputs})
              for (uint32_t buffer : *buffers)
                traced.bytes += rank.buffers[buffer].type.byteSize();
            traced.step = trace->step;
            traced.begin = started;
            GALVATRON_RETURN_IF_ERROR(device.synchronize());
            traced.end = traceClock();
            trace->events.push_back(std::move(traced));
          }
          if (!profile)
            continue;
          GALVATRON_RETURN_IF_ERROR(device.synchronize());
          double seconds =
              std::chrono::duration<double>(Clock::now() - start).count();
          std::string layer = instruction.layer >= 0
                                  ? rank.layers[instruction.layer]
                                  : "(none)";
          if (!layerTimes.count(layer))
            layerOrder.push_back(layer);
          layerTimes[layer] += seconds;
          kernelTimes[instruction.kind == InstructionKind::kernel
                          ? instruction.kernel
                          : std::string(instructionKindName(instruction.kind))] +=
              seconds;
        }
      }
  GALVATRON_RETURN_IF_ERROR(completeWaited(trace));
  if (!inFlight.empty())
    return error("the run ends with event ", inFlight.begin()->first,
                 " in flight");
  GALVATRON_RETURN_IF_ERROR(queue.waitAll());
  queue.release(UINT64_MAX);
  GALVATRON_RETURN_IF_ERROR(device.synchronize());
  if (profile) {
    profile->total =
        std::chrono::duration<double>(Clock::now() - runStart).count();
    profile->layers.clear();
    for (const std::string &layer : layerOrder)
      profile->layers.emplace_back(layer, layerTimes[layer]);
    profile->kernels.assign(kernelTimes.begin(), kernelTimes.end());
  }
  return Status::ok();
}

} // namespace galvatron::runtime
