//===- ProgramFileTest.cpp - Program files and their validation -----------===//

#include "RuntimeTestUtils.h"

#include "galvatron/Runtime/KernelCatalog.h"
#include "galvatron/Runtime/ProgramFile.h"

#include "gtest/gtest.h"

#include <random>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

TensorType f32(std::vector<int64_t> shape) {
  return TensorType{ElementType::f32, std::move(shape)};
}

/// Two ranks exercising every kind of table: rank 0 computes
/// linear(x, w, c), reshapes it by a view, all-reduces it with rank 1 and
/// sends the sum to rank 1, which outputs what it receives.
Program twoRankProgram() {
  Program program;
  program.worldSize = 2;
  program.model = "test";
  program.modelDirectory = "/models";
  program.groups = {{0, 1}};

  RankProgram &first = program.ranks.emplace_back();
  first.rank = 0;
  first.buffers = {
      Buffer{f32({2, 3}), 0, std::nullopt, "x"},
      Buffer{f32({3, 4}), 64, std::nullopt, "w"},
      Buffer{f32({4}), 128, std::nullopt, "c"},
      Buffer{f32({2, 4}), 192, std::nullopt, ""},
      Buffer{f32({8}), 192, 3u, ""},
      Buffer{f32({8}), 256, std::nullopt, ""},
  };
  first.arenaSize = 320;
  Parameter w;
  w.buffer = 1;
  w.name = "w";
  w.init = Initializer{InitKind::normal, 0.0, 0.02};
  w.external = ExternalData{"weights.bin", 16, 48, "fc.weight"};
  first.parameters.push_back(w);
  first.constants.push_back(Constant{2, std::vector<uint8_t>(16, 0)});
  first.inputs.push_back(Binding{"x", 0});
  first.outputs.push_back(Binding{"sum", 5});
  first.layers = {"fc"};
  Instruction linear;
  linear.kernel = "linear";
  linear.inputs = {0, 1, 2};
  linear.outputs = {3};
  linear.attributes = {Attribute::makeInteger("transpose_weight", 0)};
  linear.layer = 0;
  Instruction reduce;
  reduce.kind = InstructionKind::allReduce;
  reduce.inputs = {4};
  reduce.outputs = {5};
  reduce.reduce = ReduceOp::avg;
  Instruction send;
  send.kind = InstructionKind::send;
  send.inputs = {5};
  send.peer = 1;
  send.tag = 3;
  first.instructions = {linear, reduce, send};

  RankProgram &second = program.ranks.emplace_back();
  second.rank = 1;
  second.buffers = {Buffer{f32({8}), 0, std::nullopt, "part"},
                    Buffer{f32({8}), 64, std::nullopt, ""},
                    Buffer{f32({8}), 128, std::nullopt, ""}};
  second.arenaSize = 192;
  second.inputs.push_back(Binding{"part", 0});
  second.outputs.push_back(Binding{"received", 2});
  Instruction reduce1 = reduce;
  reduce1.inputs = {0};
  reduce1.outputs = {1};
  Instruction recv;
  recv.kind = InstructionKind::recv;
  recv.outputs = {2};
  recv.peer = 0;
  recv.tag = 3;
  second.instructions = {reduce1, recv};
  return program;
}

std::string validationError(const Program &program) {
  Status status = validateProgram(program);
  return status.isOk() ? "ok" : status.message();
}

std::string loadError(const std::vector<uint8_t> &bytes) {
  Expected<Program> program = deserializeProgram(bytes.data(), bytes.size());
  return program ? "ok" : program.status().message();
}

void fixChecksum(std::vector<uint8_t> &bytes) {
  uint32_t crc = crc32(bytes.data() + kProgramHeaderSize,
                       bytes.size() - kProgramHeaderSize);
  for (int i = 0; i < 4; ++i)
    bytes[24 + i] = uint8_t(crc >> (8 * i));
}

TEST(KernelCatalogTest, EveryOpcodeHasItsSpec) {
  for (unsigned i = 0; i < kNumOpcodes; ++i) {
    const KernelSpec &spec = getKernel(Opcode(i));
    EXPECT_EQ(unsigned(spec.opcode), i);
    EXPECT_EQ(findKernel(spec.name), &spec) << spec.name;
  }
  EXPECT_EQ(findKernel("no_such_kernel"), nullptr);
}

TEST(KernelCatalogTest, CallsAreChecked) {
  std::vector<Attribute> none, axis = {Attribute::makeInteger("axis", 3)};
  auto check = [](const std::string &kernel, std::vector<TensorType> inputs,
                  std::vector<TensorType> outputs,
                  const std::vector<Attribute> &attributes) {
    Status status = verifyKernelCall(KernelCall(
        *findKernel(kernel), std::move(inputs), std::move(outputs), attributes));
    return status.isOk() ? std::string("ok") : status.message();
  };
  EXPECT_EQ(check("add", {f32({2, 3}), f32({3})}, {f32({2, 3})}, none), "ok");
  EXPECT_EQ(check("add", {f32({2, 3}), f32({4})}, {f32({2, 3})}, none),
            "operand shapes [2,3] and [4] do not broadcast");
  EXPECT_EQ(check("add", {f32({2})}, {f32({2})}, none),
            "takes 2 operands, got 1");
  EXPECT_EQ(check("softmax", {f32({2})}, {f32({2})}, none),
            "missing attribute 'axis'");
  EXPECT_EQ(check("softmax", {f32({2})}, {f32({2})}, axis),
            "axis 3 is out of range for f32[2]");
  EXPECT_EQ(check("neg", {f32({2})}, {f32({2})}, axis),
            "unknown attribute 'axis'");
  EXPECT_EQ(check("softmax", {f32({2})}, {f32({2})},
                  {Attribute::makeReal("axis", 0.0)}),
            "attribute 'axis' must be an integer");
  EXPECT_EQ(check("matmul", {f32({2, 3}), f32({4, 5})}, {f32({2, 5})}, none),
            "contracting dimensions differ: 3 vs 4");
  EXPECT_EQ(check("linear", {f32({2, 3}), f32({3, 5})}, {f32({2, 4})}, none),
            "result #0 must be f32[2,5], got f32[2,4]");
  // A rank's block of a split vocabulary is one of its blocks; the last
  // may extend past it (a padded vocabulary: [4, 8) of 6 is 2 rows and 2 of
  // padding).
  TensorType ids{ElementType::i64, {2}};
  std::vector<Attribute> block = {Attribute::makeInteger("vocab_start", 4),
                                  Attribute::makeInteger("vocab_size", 8)};
  std::vector<Attribute> padded = {Attribute::makeInteger("vocab_start", 4),
                                   Attribute::makeInteger("vocab_size", 6)};
  EXPECT_EQ(check("embedding", {f32({4, 3}), ids}, {f32({2, 3})}, block),
            "ok");
  EXPECT_EQ(check("embedding", {f32({4, 3}), ids}, {f32({2, 3})}, padded),
            "ok");
  EXPECT_EQ(check("embedding", {f32({5, 3}), ids}, {f32({2, 3})}, block),
            "vocabulary block [4, 9) is not a block of [0, 8)");
  EXPECT_EQ(check("vocab_cross_entropy_stats", {f32({2, 4}), f32({2}), ids},
                  {f32({2, 2})}, block),
            "ok");
  EXPECT_EQ(check("vocab_cross_entropy_stats", {f32({2, 4}), f32({2, 1}), ids},
                  {f32({2, 2})}, block),
            "row maximum must be f32[2], got f32[2,1]");
  EXPECT_EQ(check("vocab_cross_entropy", {f32({2, 3}), f32({2, 4}), f32({2}), ids},
                  {f32({})}, block),
            "statistics must be f32[2,2], got f32[2,3]");
}

TEST(ProgramFileTest, RoundTripKeepsEveryField) {
  Program program = twoRankProgram();
  ASSERT_EQ(validationError(program), "ok");
  std::vector<uint8_t> bytes = serializeProgram(program);
  Expected<Program> loaded = deserializeProgram(bytes.data(), bytes.size());
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(serializeProgram(*loaded), bytes);
  EXPECT_EQ(loaded->model, "test");
  EXPECT_EQ(loaded->groups, program.groups);
  const RankProgram &first = loaded->ranks[0];
  EXPECT_EQ(first.buffers[4].viewOf, std::optional<uint32_t>(3));
  EXPECT_EQ(first.parameters[0].external->key, "fc.weight");
  EXPECT_EQ(first.parameters[0].init->b, 0.02);
  EXPECT_EQ(first.instructions[1].reduce, ReduceOp::avg);
  EXPECT_EQ(first.instructions[2].tag, 3);
  EXPECT_EQ(first.layers, std::vector<std::string>{"fc"});
  EXPECT_FALSE(loaded->training);

  // Training programs: state and the training information.
  program.ranks[0].parameters[0].state = true;
  program.ranks[0].parameters[0].external.reset();
  program.training = TrainingInfo{LossKind::maskedToken, 123, 50257};
  ASSERT_EQ(validationError(program), "ok");
  bytes = serializeProgram(program);
  loaded = deserializeProgram(bytes.data(), bytes.size());
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_TRUE(loaded->ranks[0].parameters[0].state);
  ASSERT_TRUE(loaded->training);
  EXPECT_EQ(loaded->training->loss, LossKind::maskedToken);
  EXPECT_EQ(loaded->training->modelFlops, 123);
  EXPECT_EQ(loaded->training->vocabSize, 50257);
}

TEST(ProgramFileTest, HeaderProblemsAreNamed) {
  std::vector<uint8_t> bytes = serializeProgram(twoRankProgram());
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  EXPECT_EQ(loadError(magic), "not a Galvatron program file (bad magic)");
  std::vector<uint8_t> version = bytes;
  version[8] = 2;
  EXPECT_EQ(loadError(version), "program format version 2.3 is not supported "
                                "by this runtime (format 1.3)");
  std::vector<uint8_t> minor = bytes;
  minor[12] = 4;
  EXPECT_EQ(loadError(minor), "program format version 1.4 is not supported "
                              "by this runtime (format 1.3)");
  std::vector<uint8_t> truncated(bytes.begin(), bytes.end() - 10);
  EXPECT_EQ(loadError(truncated),
            "truncated or padded file: the header announces " +
                std::to_string(bytes.size() - 32) + " payload bytes, the file "
                "holds " + std::to_string(bytes.size() - 42));
  std::vector<uint8_t> corrupt = bytes;
  corrupt[bytes.size() / 2] ^= 0x40;
  EXPECT_EQ(loadError(corrupt), "checksum mismatch: the file is corrupt");
  std::vector<uint8_t> garbage(bytes.begin(), bytes.begin() + 32);
  garbage.resize(96, 0x7F);
  for (int i = 0; i < 8; ++i)
    garbage[16 + i] = i == 0 ? 64 : 0;
  fixChecksum(garbage);
  EXPECT_EQ(loadError(garbage),
            "malformed program payload (FlatBuffers verification failed)");
}

/// Every corruption of a valid file is rejected with a message or yields a
/// program that passes validation, which then runs without touching memory
/// outside its arena. Never a crash.
TEST(ProgramFileTest, CorruptFilesNeverCrash) {
  std::vector<uint8_t> bytes = serializeProgram(twoRankProgram());
  for (size_t length = 0; length < bytes.size(); ++length)
    ASSERT_NE(loadError(std::vector<uint8_t>(bytes.begin(),
                                             bytes.begin() + length)),
              "ok");
  std::mt19937 engine(42);
  std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
  std::uniform_int_distribution<int> value(0, 255), flips(1, 4);
  int accepted = 0;
  for (int iteration = 0; iteration < 4000; ++iteration) {
    std::vector<uint8_t> mutated = bytes;
    for (int f = flips(engine); f > 0; --f)
      mutated[position(engine)] = uint8_t(value(engine));
    // Half the time keep the checksum valid to reach the deeper checks.
    if (iteration % 2)
      fixChecksum(mutated);
    Expected<Program> program =
        deserializeProgram(mutated.data(), mutated.size());
    if (!program)
      continue;
    ++accepted;
    for (const RankProgram &rank : program->ranks) {
      if (rank.arenaSize > (1 << 20))
        continue;
      std::unique_ptr<Backend> backend = createCPUBackend(1);
      std::unique_ptr<Communicator> comm = createSingleProcessCommunicator();
      if (program->worldSize != 1 || !backend->load(rank).isOk())
        continue;
      for (size_t i = 0; i < rank.instructions.size(); ++i)
        if (rank.instructions[i].kind == InstructionKind::kernel)
          (void)backend->runKernel(i);
    }
  }
  // Some mutations hit bytes that do not matter (names, padding).
  EXPECT_GT(accepted, 0);
}

TEST(ProgramValidatorTest, StructuralRulesAreEnforced) {
  Program p = twoRankProgram();
  p.ranks[0].buffers[0].offset = 4096;
  EXPECT_EQ(validationError(p),
            "rank 0: buffer 0 ('x'): bytes [4096, 4120) lie outside the arena "
            "of 320 bytes");
  p = twoRankProgram();
  p.ranks[0].buffers[2].offset = 132;
  EXPECT_EQ(validationError(p), "rank 0: buffer 2 ('c'): offset 132 is not a "
                                "multiple of the 64-byte alignment");
  p = twoRankProgram();
  p.groups[0] = {0, 2};
  EXPECT_EQ(validationError(p),
            "group 0 names rank 2 outside the 2-rank world");
  p = twoRankProgram();
  p.ranks[0].instructions[0].kernel = "fused_magic";
  EXPECT_EQ(validationError(p), "rank 0: instruction 0 (kernel 'fused_magic' "
                                "in layer 'fc'): unknown kernel 'fused_magic'");
  p = twoRankProgram();
  p.ranks[0].instructions[0].outputs = {5};
  EXPECT_EQ(validationError(p),
            "rank 0: instruction 0 (kernel 'linear' in layer 'fc'): result #0 "
            "must be f32[2,4], got f32[8]");
  p = twoRankProgram();
  p.ranks[0].parameters[0].init.reset();
  p.ranks[0].parameters[0].external.reset();
  EXPECT_EQ(validationError(p), "rank 0: parameter 'w': needs an initializer "
                                "or external data");
  p = twoRankProgram();
  p.ranks[0].inputs.push_back(Binding{"x", 3});
  EXPECT_EQ(validationError(p), "rank 0: input 'x' is bound twice");
  p = twoRankProgram();
  p.ranks[0].instructions[2].peer = 0;
  EXPECT_EQ(validationError(p),
            "rank 0: instruction 2 (send): peer 0 is this rank itself");
  p = twoRankProgram();
  p.groups.push_back({1});
  p.ranks[0].instructions[1].group = 1;
  EXPECT_EQ(validationError(p), "rank 0: instruction 1 (all_reduce): rank 0 "
                                "is not a member of group 1");
  p = twoRankProgram();
  p.ranks[0].instructions[1].reduce = ReduceOp::sum;
  EXPECT_EQ(validationError(p),
            "ranks 0 and 1 issue different collectives on group 0");
  p = twoRankProgram();
  p.ranks[1].instructions.pop_back();
  p.ranks[1].outputs.clear();
  EXPECT_EQ(validationError(p), "rank 0 sends 1 message(s) with tag 3 to rank "
                                "1 that it does not receive alike");
  p = twoRankProgram();
  p.worldSize = 3;
  EXPECT_EQ(validationError(p), "ok"); // a file may hold a subset of ranks
  p = twoRankProgram();
  p.ranks[0].parameters[0].state = true;
  EXPECT_EQ(validationError(p), "rank 0: parameter 'w': state needs an "
                                "initializer and no external data");
  p = twoRankProgram();
  p.ranks[0].buffers[1].type = TensorType{ElementType::i64, {3, 4}};
  p.ranks[0].parameters[0].state = true;
  p.ranks[0].parameters[0].external.reset();
  EXPECT_EQ(validationError(p), "rank 0: parameter 'w': integer state needs a "
                                "zeros, ones or constant initializer");
  p = twoRankProgram();
  p.training = TrainingInfo{LossKind::nextToken, 1, 0};
  EXPECT_EQ(validationError(p), "training information needs non-negative "
                                "model FLOPs and a positive vocabulary size");
  p = twoRankProgram();
  p.ranks[0].instructions[0].outputs = {2};
  p.ranks[0].buffers[2].type = f32({2, 4});
  p.ranks[0].constants[0].data.resize(32);
  p.ranks[0].instructions[0].inputs = {0, 1};
  EXPECT_EQ(validationError(p), "rank 0: instruction 0 (kernel 'linear' in "
                                "layer 'fc'): writes buffer 2 ('c'), which "
                                "holds a constant");
}

TEST(ProgramValidatorTest, MemoryPlanIsChecked) {
  // The linear's result overlaps the constant it reads.
  Program p = twoRankProgram();
  p.ranks[0].buffers[3].offset = 128;
  p.ranks[0].buffers[4].offset = 128;
  EXPECT_EQ(validationError(p),
            "rank 0: instruction 0 (kernel 'linear' in layer 'fc'): result #0 "
            "overlaps operand #2 but may not be computed in place");
  // The all-reduce result lands on the parameter, live throughout.
  p = twoRankProgram();
  p.ranks[0].buffers[5].offset = 64;
  EXPECT_EQ(validationError(p),
            "rank 0: buffer 1 ('w') and buffer 5 share bytes while both are "
            "live (instructions 1 to 3)");
  // Reading a temporary nobody wrote.
  Program single = kernelProgram("neg", {f32({4})}, {f32({4})}, {});
  RankProgram &rank = single.ranks[0];
  rank.buffers.push_back(Buffer{f32({4}), rank.arenaSize, std::nullopt, "t"});
  rank.arenaSize += 64;
  rank.instructions[0].inputs = {2};
  EXPECT_EQ(validationError(single), "rank 0: instruction 0 (kernel 'neg'): "
                                     "reads buffer 2 ('t') before it is "
                                     "written");
}

TEST(ProgramValidatorTest, InPlaceResultsMayReuseTheirOperand) {
  // neg(x) into a temporary t, then exp(t) written over t.
  Program program = kernelProgram("neg", {f32({4})}, {f32({4})}, {});
  RankProgram &rank = program.ranks[0];
  Instruction exp;
  exp.kernel = "exp";
  exp.inputs = {1};
  exp.outputs = {2};
  rank.buffers.push_back(Buffer{f32({4}), rank.buffers[1].offset,
                                std::nullopt, ""});
  rank.instructions.push_back(exp);
  rank.outputs = {Binding{"y", 2}};
  ASSERT_EQ(validationError(program), "ok");
  auto outputs = runProgram(program, {floats({4}, {0, 1, 2, -1})});
  ASSERT_TRUE(outputs.isOk());
  std::vector<float> y = valuesOf<float>((*outputs)[0]);
  EXPECT_FLOAT_EQ(y[1], std::exp(-1.0f));
  EXPECT_FLOAT_EQ(y[3], std::exp(1.0f));
  // A kernel that cannot work in place may not.
  rank.instructions[1].kernel = "softmax";
  rank.instructions[1].attributes = {Attribute::makeInteger("axis", 0)};
  ASSERT_EQ(validationError(program), "ok");
  rank.instructions[1].kernel = "cast";
  rank.instructions[1].attributes.clear();
  EXPECT_EQ(validationError(program),
            "rank 0: instruction 1 (kernel 'cast'): result #0 overlaps operand "
            "#0 but may not be computed in place");
}

TEST(ProgramValidatorTest, MemoryUsageCountsSharedBytesOnce) {
  Program program = twoRankProgram();
  MemoryUsage usage = analyzeMemory(program.ranks[0]);
  EXPECT_EQ(usage.arenaBytes, 320u);
  EXPECT_EQ(usage.parameterBytes, 48u);
  // At the all-reduce: w, c, the linear's result and the sum.
  EXPECT_EQ(usage.peakLiveBytes, 48u + 16 + 32 + 32);
}

} // namespace
