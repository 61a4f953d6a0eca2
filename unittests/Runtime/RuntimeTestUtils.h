//===- RuntimeTestUtils.h - Building and running small programs -*- C++ -*-===//

#ifndef GALVATRON_UNITTESTS_RUNTIME_RUNTIMETESTUTILS_H
#define GALVATRON_UNITTESTS_RUNTIME_RUNTIMETESTUTILS_H

#include "galvatron/Runtime/Executor.h"
#include "galvatron/Runtime/ProgramValidator.h"
#include "galvatron/Runtime/TensorFiles.h"

#include <cstring>
#include <random>

namespace galvatron::runtime::testing {

inline HostTensor floats(std::vector<int64_t> shape,
                         const std::vector<float> &values) {
  HostTensor tensor{TensorType{ElementType::f32, std::move(shape)}, {}};
  tensor.data.resize(values.size() * sizeof(float));
  if (!values.empty())
    std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

/// Normally distributed floats from a fixed seed.
inline HostTensor randomFloats(std::vector<int64_t> shape, unsigned seed) {
  std::mt19937 engine(seed);
  std::normal_distribution<float> normal;
  std::vector<float> values(TensorType{ElementType::f32, shape}.numElements());
  for (float &value : values)
    value = normal(engine);
  return floats(std::move(shape), values);
}

template <typename T>
HostTensor integers(ElementType type, std::vector<int64_t> shape,
                    const std::vector<T> &values) {
  HostTensor tensor{TensorType{type, std::move(shape)}, {}};
  tensor.data.resize(values.size() * sizeof(T));
  std::memcpy(tensor.data.data(), values.data(), tensor.data.size());
  return tensor;
}

template <typename T> std::vector<T> valuesOf(const HostTensor &tensor) {
  std::vector<T> values(tensor.data.size() / sizeof(T));
  std::memcpy(values.data(), tensor.data.data(), tensor.data.size());
  return values;
}

inline uint64_t alignUp(uint64_t value) { return (value + 63) / 64 * 64; }

/// Makes `stage` run its instructions once, in order (one block).
inline void runOnce(StageProgram &stage) {
  stage.blocks = {Block{"main", 0, uint32_t(stage.instructions.size()), false}};
  stage.schedule.phases = {Phase{1, {ScheduleStep{0, 0}}}};
}

/// A one-rank program calling `kernel` once: inputs are program inputs
/// "in0", "in1"..., results are outputs "out0", ... Buffers do not share
/// bytes.
inline Program kernelProgram(const std::string &kernel,
                             const std::vector<TensorType> &inputs,
                             const std::vector<TensorType> &outputs,
                             std::vector<Attribute> attributes) {
  Program program;
  StageProgram &stage = program.stages.emplace_back();
  Instruction instruction;
  instruction.kernel = kernel;
  instruction.attributes = std::move(attributes);
  uint64_t offset = 0;
  auto add = [&](const TensorType &type) {
    stage.buffers.push_back(Buffer{type, offset, std::nullopt, "", false});
    offset += alignUp(type.byteSize());
    return uint32_t(stage.buffers.size() - 1);
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    instruction.inputs.push_back(add(inputs[i]));
    stage.inputs.push_back(
        Binding{"in" + std::to_string(i), instruction.inputs.back()});
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    instruction.outputs.push_back(add(outputs[i]));
    stage.outputs.push_back(
        Binding{"out" + std::to_string(i), instruction.outputs.back()});
  }
  stage.instructions.push_back(std::move(instruction));
  stage.arenaSize = offset;
  runOnce(stage);
  return program;
}

/// Runs rank 0 of `program` on the CPU backend with `inputs` bound in order;
/// returns its outputs in order.
inline Expected<std::vector<HostTensor>>
runProgram(const Program &program, const std::vector<HostTensor> &inputs,
           int threads = 2) {
  GALVATRON_RETURN_IF_ERROR(validateProgram(program));
  std::unique_ptr<Backend> backend = createCPUBackend(threads);
  std::unique_ptr<Communicator> comm = createSingleProcessCommunicator();
  Expected<std::unique_ptr<Executor>> executor =
      Executor::create(program, 0, *backend, *comm);
  if (!executor)
    return executor.takeStatus();
  const RankProgram &rank = (*executor)->rankProgram();
  for (size_t i = 0; i < inputs.size(); ++i)
    GALVATRON_RETURN_IF_ERROR((*executor)->writeInput(
        rank.inputs[i], inputs[i].data.data(), inputs[i].data.size()));
  GALVATRON_RETURN_IF_ERROR((*executor)->run());
  std::vector<HostTensor> outputs;
  for (const Binding &output : rank.outputs) {
    HostTensor tensor{rank.buffers[output.buffer].type, {}};
    tensor.data.resize(tensor.type.byteSize());
    GALVATRON_RETURN_IF_ERROR((*executor)->readBuffer(
        output.buffer, tensor.data.data(), tensor.data.size()));
    outputs.push_back(std::move(tensor));
  }
  return outputs;
}

/// Runs one kernel call.
inline Expected<std::vector<HostTensor>>
runKernel(const std::string &kernel, const std::vector<HostTensor> &inputs,
          const std::vector<TensorType> &outputs,
          std::vector<Attribute> attributes = {}, int threads = 2) {
  std::vector<TensorType> inputTypes;
  for (const HostTensor &input : inputs)
    inputTypes.push_back(input.type);
  return runProgram(
      kernelProgram(kernel, inputTypes, outputs, std::move(attributes)),
      inputs, threads);
}

} // namespace galvatron::runtime::testing

#endif // GALVATRON_UNITTESTS_RUNTIME_RUNTIMETESTUTILS_H
