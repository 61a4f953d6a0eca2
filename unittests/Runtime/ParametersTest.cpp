//===- ParametersTest.cpp - Parameter initialization and loading ----------===//

#include "RuntimeTestUtils.h"

#include "galvatron/Runtime/Checkpoint.h"
#include "galvatron/Runtime/Parameters.h"

#include "gtest/gtest.h"

#include <cmath>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

std::vector<float> initialize(const Parameter &parameter, TensorType type,
                              uint64_t seed) {
  std::vector<uint8_t> bytes(type.byteSize());
  initializeParameter(parameter, type, seed, bytes.data());
  std::vector<float> values(type.numElements());
  std::memcpy(values.data(), bytes.data(), bytes.size());
  return values;
}

Parameter normal(const std::string &name, double mean, double std) {
  Parameter parameter;
  parameter.name = name;
  parameter.init = Initializer{InitKind::normal, mean, std};
  return parameter;
}

TEST(ParametersTest, InitializationIsKeyedBySeedAndName) {
  TensorType type{ElementType::f32, {64, 32}};
  std::vector<float> a = initialize(normal("w", 0, 1), type, 7);
  EXPECT_EQ(a, initialize(normal("w", 0, 1), type, 7));
  EXPECT_NE(a, initialize(normal("w", 0, 1), type, 8));
  EXPECT_NE(a, initialize(normal("v", 0, 1), type, 7));
}

TEST(ParametersTest, NormalAndUniformHaveTheirMoments) {
  TensorType type{ElementType::f32, {200000}};
  std::vector<float> values = initialize(normal("w", 0.5, 2.0), type, 1);
  double mean = 0, variance = 0;
  for (float v : values)
    mean += v / double(values.size());
  for (float v : values)
    variance += (v - mean) * (v - mean) / double(values.size());
  EXPECT_NEAR(mean, 0.5, 0.02);
  EXPECT_NEAR(std::sqrt(variance), 2.0, 0.02);
  Parameter uniform;
  uniform.name = "u";
  uniform.init = Initializer{InitKind::uniform, -3.0, 1.0};
  values = initialize(uniform, type, 1);
  float low = 1e9, high = -1e9;
  mean = 0;
  for (float v : values) {
    low = std::min(low, v);
    high = std::max(high, v);
    mean += v / double(values.size());
  }
  EXPECT_GE(low, -3.0f);
  EXPECT_LT(high, 1.0f);
  EXPECT_NEAR(mean, -1.0, 0.02);
  Parameter constant;
  constant.name = "c";
  constant.init = Initializer{InitKind::constant, 0.25, 0};
  EXPECT_EQ(initialize(constant, TensorType{ElementType::f32, {3}}, 0),
            (std::vector<float>{0.25f, 0.25f, 0.25f}));
}

/// A shard initializes to exactly the slice of the whole parameter: ranks
/// holding parts of a tensor-parallel weight agree with one rank holding it.
TEST(ParametersTest, SlicesInitializeToTheSliceOfTheWhole) {
  TensorType full{ElementType::f32, {6, 10}};
  std::vector<float> whole = initialize(normal("w", 0, 1), full, 3);
  Parameter shard = normal("w", 0, 1);
  shard.fullShape = {6, 10};
  shard.sliceStart = {2, 5};
  std::vector<float> part =
      initialize(shard, TensorType{ElementType::f32, {3, 4}}, 3);
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(part[r * 4 + c], whole[(r + 2) * 10 + c + 5]);
}

TEST(ParametersTest, PaddedSlicesHoldZerosPastTheWhole) {
  // Rows [4, 8) of a 6-row tensor (a padded vocabulary): rows 6 and 7 are
  // padding, zero, and packing keeps the first two rows only.
  TensorType full{ElementType::f32, {6, 3}};
  std::vector<float> whole = initialize(normal("w", 0, 1), full, 3);
  Parameter shard = normal("w", 0, 1);
  shard.fullShape = {6, 3};
  shard.sliceStart = {4, 0};
  TensorType type{ElementType::f32, {4, 3}};
  EXPECT_EQ(shard.validShape(type.shape), (std::vector<int64_t>{2, 3}));
  std::vector<float> part = initialize(shard, type, 3);
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 3; ++c)
      EXPECT_EQ(part[r * 3 + c], r < 2 ? whole[(r + 4) * 3 + c] : 0.0f);
  std::vector<uint8_t> bytes(type.byteSize());
  std::memcpy(bytes.data(), part.data(), bytes.size());
  std::vector<uint8_t> packed = packValidPart(shard, type, bytes.data());
  ASSERT_EQ(packed.size(), 6 * sizeof(float));
  EXPECT_EQ(std::memcmp(packed.data(), bytes.data(), packed.size()), 0);
  std::vector<uint8_t> unpacked(type.byteSize(), 0xff);
  unpackValidPart(shard, type, packed.data(), unpacked.data());
  EXPECT_EQ(unpacked, bytes);
}

/// A program with one parameter and an identity-like kernel reading it.
Program parameterProgram(Parameter parameter, TensorType type) {
  Program program = kernelProgram("neg", {type}, {type}, {});
  StageProgram &stage = program.stages[0];
  stage.inputs.clear();
  parameter.buffer = 0;
  stage.parameters = {parameter};
  return program;
}

TEST(ParametersTest, LoadsFromCheckpointsAndExternalData) {
  TensorType type{ElementType::f32, {2, 3}};
  std::vector<float> values = {1, 2, 3, 4, 5, 6};
  std::string directory = ::testing::TempDir();
  std::string weights = directory + "/parameters_test.bin";
  FILE *file = std::fopen(weights.c_str(), "wb");
  std::fwrite("header..", 1, 8, file);
  std::fwrite(values.data(), sizeof(float), values.size(), file);
  std::fclose(file);

  Parameter parameter = normal("w", 0, 1);
  parameter.external =
      ExternalData{"parameters_test.bin", 8, 24, "w"};
  Program program = parameterProgram(parameter, type);
  ASSERT_TRUE(validateProgram(program).isOk());
  std::unique_ptr<Backend> backend = createCPUBackend(1);
  std::unique_ptr<Communicator> comm = createSingleProcessCommunicator();
  auto executor = Executor::create(program, 0, *backend, *comm);
  ASSERT_TRUE(executor.isOk());
  ParameterOptions options;
  options.modelDirectory = directory;
  auto report = loadParameters(**executor, options);
  ASSERT_TRUE(report.isOk()) << report.status().message();
  EXPECT_EQ(report->fromExternalData, 1);
  std::vector<float> loaded(6);
  ASSERT_TRUE((*executor)->readBuffer(0, loaded.data(), 24).isOk());
  EXPECT_EQ(loaded, values);

  // Save, then load the weights back.
  std::string checkpoint = directory + "/parameters_test.safetensors";
  Expected<std::vector<LogicalTensor>> tensors =
      collectLogicalTensors(program, /*withState=*/false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  ASSERT_TRUE(saveWeights(**executor, *comm, *tensors, checkpoint,
                          [](Status status) { return status; })
                  .isOk());
  options = ParameterOptions{};
  options.initializersOnly = true;
  ASSERT_TRUE(loadParameters(**executor, options).isOk());
  ASSERT_TRUE((*executor)->readBuffer(0, loaded.data(), 24).isOk());
  EXPECT_NE(loaded, values);
  options.checkpoint = checkpoint;
  report = loadParameters(**executor, options);
  ASSERT_TRUE(report.isOk());
  EXPECT_EQ(report->fromCheckpoint, 1);
  ASSERT_TRUE((*executor)->readBuffer(0, loaded.data(), 24).isOk());
  EXPECT_EQ(loaded, values);

  // External data of the wrong size names the parameter and both sizes.
  program.stages[0].parameters[0].external->length = 20;
  auto executor2 = Executor::create(program, 0, *backend, *comm);
  ASSERT_TRUE(executor2.isOk());
  options = ParameterOptions{};
  options.modelDirectory = directory;
  EXPECT_EQ(loadParameters(**executor2, options).status().message(),
            "parameter 'w': external data 'parameters_test.bin' of 20 bytes "
            "does not fit f32[2,3] (24 bytes)");

  // Locations outside the model's folder are refused, whatever the file.
  program.stages[0].parameters[0].external->length = -1;
  for (auto [location, why] :
       {std::pair<std::string, std::string>{
            directory + "/parameters_test.bin",
            "is an absolute path; external data must be relative to the "
            "model's folder"},
        {"../" + directory.substr(directory.rfind('/') + 1) +
             "/parameters_test.bin",
         "leaves the model's folder ('..' in the path)"}}) {
    program.stages[0].parameters[0].external->location = location;
    EXPECT_EQ(validateProgram(program).message(),
              "stage 0: parameter 'w': external data '" + location + "' " + why);
    auto executor3 = Executor::create(program, 0, *backend, *comm);
    ASSERT_TRUE(executor3.isOk());
    EXPECT_EQ(loadParameters(**executor3, options).status().message(),
              "parameter 'w': external data '" + location + "' " + why);
  }
}

/// A rank loads only its slice of a whole tensor, from a file in another
/// element type, also when its full shape refines the file's (a fused
/// weight [2, 6] held as [2, 3, 2], the rank's part [2, 3, 1]).
TEST(ParametersTest, LoadsTheSliceOfAWholeTensor) {
  std::vector<uint16_t> halves;
  std::vector<float> whole;
  for (int i = 0; i < 12; ++i) {
    whole.push_back(float(i));
    halves.push_back(uint16_t(0x4000 + (i << 6))); // f16 values
  }
  std::string path = ::testing::TempDir() + "/parameters_slice.safetensors";
  ASSERT_TRUE(writeSafeTensors(path, {{"w", TensorType{ElementType::f16, {2, 6}},
                                       halves.data()}})
                  .isOk());
  Parameter parameter = normal("w", 0, 1);
  parameter.fullShape = {2, 3, 2};
  parameter.sliceStart = {0, 0, 1};
  parameter.sourceShape = {2, 6};
  Program program =
      parameterProgram(parameter, TensorType{ElementType::f32, {2, 3, 1}});
  ASSERT_EQ(validateProgram(program).isOk() ? "ok"
                                            : validateProgram(program).message(),
            "ok");
  std::unique_ptr<Backend> backend = createCPUBackend(1);
  std::unique_ptr<Communicator> comm = createSingleProcessCommunicator();
  auto executor = Executor::create(program, 0, *backend, *comm);
  ASSERT_TRUE(executor.isOk());
  ParameterOptions options;
  options.checkpoint = path;
  auto report = loadParameters(**executor, options);
  ASSERT_TRUE(report.isOk()) << report.status().message();
  std::vector<float> loaded(6);
  ASSERT_TRUE((*executor)->readBuffer(0, loaded.data(), 24).isOk());
  // f16 0x4000 + (i << 6) is 2 + i / 8; the slice holds the odd elements.
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(loaded[i], 2.0f + float(2 * i + 1) / 8.0f);

  // The file's shape must be the source model's.
  ASSERT_TRUE(writeSafeTensors(path, {{"w", TensorType{ElementType::f32, {12}},
                                       whole.data()}})
                  .isOk());
  EXPECT_EQ(loadParameters(**executor, options).status().message(),
            "parameter 'w' in '" + path + "': has shape [12], expected [2,6]");
}

} // namespace
