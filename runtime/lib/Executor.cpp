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
                 Communicator &communicator) {
  Expected<RankProgram> rank = instantiateRank(program, rankIndex);
  if (!rank)
    return rank.takeStatus();
  // The backend binds addresses in the executor's copy of the program.
  std::unique_ptr<Executor> executor(
      new Executor(program, std::move(*rank), backend, communicator));
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

Status Executor::runCommunication(const Instruction &instruction) {
  if (instruction.kind == InstructionKind::send) {
    const TensorType &type = rank.buffers[instruction.inputs[0]].type;
    return comm.send(uint32_t(instruction.peer), address(instruction.inputs[0]),
                     type.byteSize(), instruction.tag);
  }
  if (instruction.kind == InstructionKind::recv) {
    const TensorType &type = rank.buffers[instruction.outputs[0]].type;
    return comm.recv(uint32_t(instruction.peer),
                     address(instruction.outputs[0]), type.byteSize(),
                     instruction.tag);
  }
  const TensorType &in = rank.buffers[instruction.inputs[0]].type;
  const TensorType &out = rank.buffers[instruction.outputs[0]].type;
  const void *source = address(instruction.inputs[0]);
  void *target = address(instruction.outputs[0]);
  uint32_t group = instruction.group;
  uint64_t members = rank.groups[group].size();
  switch (instruction.kind) {
  case InstructionKind::allReduce:
    return comm.allReduce(group, source, target, in.numElements(),
                          in.elementType, instruction.reduce);
  case InstructionKind::allGather:
    return comm.allGather(group, source, target, in.numElements(),
                          in.elementType);
  case InstructionKind::reduceScatter:
    return comm.reduceScatter(group, source, target, out.numElements(),
                              in.elementType, instruction.reduce);
  case InstructionKind::allToAll:
    return comm.allToAll(group, source, target, in.numElements() / members,
                         in.elementType);
  case InstructionKind::broadcast:
    return comm.broadcast(group, uint32_t(instruction.peer), source, target,
                          in.numElements(), in.elementType);
  default:
    return error("not a communication instruction");
  }
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

Status Executor::run(Profile *profile) {
  int64_t killAt = killBeforeInstruction(rank.rank);
  using Clock = std::chrono::steady_clock;
  std::map<std::string, double> layerTimes, kernelTimes;
  std::vector<std::string> layerOrder;
  Clock::time_point runStart = Clock::now();
  const Schedule &schedule = rank.schedule;
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
          const Buffer &buffer = rank.buffers[rank.slotBuffers[slot][input.buffer]];
          uint64_t bytes = buffer.type.byteSize();
          GALVATRON_RETURN_IF_ERROR(device.write(
              buffer.offset, staged[b].data() + uint64_t(micro) * bytes, bytes));
        }
        uint32_t first = rank.blockStarts[step.block][slot];
        for (uint32_t i = first; i < first + block.count; ++i) {
          const Instruction &instruction = rank.instructions[i];
          if (executed++ == killAt)
            std::raise(SIGKILL);
          Clock::time_point start = Clock::now();
          Status status = instruction.kind == InstructionKind::kernel
                              ? device.runKernel(i)
                              : runCommunication(instruction);
          if (!status.isOk()) {
            std::string where =
                describeInstruction(rank, block.first + (i - first));
            if (block.slotted)
              where += " for micro-batch " + std::to_string(micro);
            return std::move(status).withContext(where);
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
