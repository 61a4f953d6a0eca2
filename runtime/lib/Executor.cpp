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
  const RankProgram *rank = program.findRank(rankIndex);
  if (!rank)
    return error("the program has no code for rank ", rankIndex);
  GALVATRON_RETURN_IF_ERROR(
      backend.load(*rank).withContext(std::string(backend.name()) + " backend"));
  GALVATRON_RETURN_IF_ERROR(communicator.setupGroups(program.groups));
  std::unique_ptr<Executor> executor(
      new Executor(program, *rank, backend, communicator));
  for (const Constant &constant : rank->constants)
    GALVATRON_RETURN_IF_ERROR(executor->writeBuffer(
        constant.buffer, constant.data.data(), constant.data.size()));
  return executor;
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
  uint64_t members = whole.groups[group].size();
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
/// rank RANK with SIGKILL just before its instruction INDEX, as a crashed or
/// preempted process would die. Returns the index for this rank, or -1.
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
  for (size_t i = 0; i < rank.instructions.size(); ++i) {
    const Instruction &instruction = rank.instructions[i];
    if (int64_t(i) == killAt)
      std::raise(SIGKILL);
    Clock::time_point start = Clock::now();
    Status status = instruction.kind == InstructionKind::kernel
                        ? device.runKernel(i)
                        : runCommunication(instruction);
    if (!status.isOk())
      return std::move(status).withContext(describeInstruction(rank, i));
    if (!profile)
      continue;
    GALVATRON_RETURN_IF_ERROR(device.synchronize());
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::string layer =
        instruction.layer >= 0 ? rank.layers[instruction.layer] : "(none)";
    if (!layerTimes.count(layer))
      layerOrder.push_back(layer);
    layerTimes[layer] += seconds;
    kernelTimes[instruction.kind == InstructionKind::kernel
                    ? instruction.kernel
                    : std::string(instructionKindName(instruction.kind))] +=
        seconds;
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
