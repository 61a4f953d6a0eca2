//===- ProgramFileTest.cpp - Program files and their validation -----------===//

#include "RuntimeTestUtils.h"

#include "galvatron/Runtime/KernelCatalog.h"
#include "galvatron/Runtime/Parameters.h"
#include "galvatron/Runtime/ProgramFile.h"
#include "galvatron/Runtime/RankProgram.h"

#include "gtest/gtest.h"

#include <cmath>
#include <random>

using namespace galvatron::runtime;
using namespace galvatron::runtime::testing;

namespace {

TensorType f32(std::vector<int64_t> shape) {
  return TensorType{ElementType::f32, std::move(shape)};
}

Buffer buffer(TensorType type, uint64_t offset, std::string name = "") {
  return Buffer{std::move(type), offset, std::nullopt, std::move(name), false};
}

/// Two stages of two ranks exercising every kind of table. The group
/// family {2, 1} pairs ranks {0, 1} and {2, 3}. Stage 0 computes
/// linear(x, w, c) with its rank's half of w's columns (a rank term),
/// reshapes it by a view, all-reduces it in its pair and sends the mean to
/// stage 1, whose ranks sum their input in their pair and output what they
/// receive.
Program twoStageProgram() {
  Program program;
  program.worldSize = 4;
  program.model = "test";
  program.modelDirectory = "/models";
  program.groups = {Group{{GroupAxis{2, 1}}}};

  StageProgram &first = program.stages.emplace_back();
  first.stage = 0;
  first.buffers = {buffer(f32({2, 3}), 0, "x"),   buffer(f32({3, 4}), 64, "w"),
                   buffer(f32({4}), 128, "c"),    buffer(f32({2, 4}), 192),
                   buffer(f32({8}), 192),         buffer(f32({8}), 256)};
  first.buffers[4].viewOf = 3;
  first.arenaSize = 320;
  Parameter w;
  w.buffer = 1;
  w.name = "w";
  w.fullShape = {3, 8};
  w.sliceStart = {0, 0};
  w.sliceTerms = {RankTerm{1, 0, 4}};
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
  runOnce(first);

  StageProgram &second = program.stages.emplace_back();
  second.stage = 1;
  second.buffers = {buffer(f32({8}), 0, "part"), buffer(f32({8}), 64),
                    buffer(f32({8}), 128)};
  second.arenaSize = 192;
  second.inputs.push_back(Binding{"part", 0});
  second.outputs.push_back(Binding{"received", 2});
  Instruction reduce1 = reduce;
  reduce1.reduce = ReduceOp::sum;
  reduce1.inputs = {0};
  reduce1.outputs = {1};
  Instruction recv;
  recv.kind = InstructionKind::recv;
  recv.outputs = {2};
  recv.peer = 0;
  recv.tag = 3;
  second.instructions = {reduce1, recv};
  runOnce(second);
  return program;
}

/// One rank training in a loop: per micro-batch, the forward doubles its
/// input rows into a slotted buffer and the backward adds them into an
/// accumulator; the optimizer block outputs the accumulator. 1F1B-like
/// phases with a warm-up forward keep two micro-batches in flight.
Program loopProgram(uint32_t microBatches) {
  Program program;
  StageProgram &stage = program.stages.emplace_back();
  // [0, 64) accumulator, slot 0 at [64, 128), slot 1 at [128, 192),
  // the forward's input in the scratch above, the output after it.
  stage.buffers = {buffer(f32({2}), 0, "acc"), buffer(f32({2}), 256, "in"),
                   buffer(f32({2}), 64, "doubled"), buffer(f32({2}), 320)};
  stage.buffers[2].slotted = true;
  stage.arenaSize = 384;
  Parameter acc;
  acc.buffer = 0;
  acc.name = "acc";
  acc.init = Initializer{InitKind::zeros, 0, 0};
  acc.state = true;
  stage.parameters = {acc};
  stage.inputs = {Binding{"in", 1, 0}};
  stage.outputs = {Binding{"total", 3}};
  Instruction twice;
  twice.kernel = "add";
  twice.inputs = {1, 1};
  twice.outputs = {2};
  Instruction accumulate;
  accumulate.kernel = "add";
  accumulate.inputs = {0, 2};
  accumulate.outputs = {0};
  Instruction copy;
  copy.kernel = "copy";
  copy.inputs = {0};
  copy.outputs = {3};
  stage.instructions = {twice, accumulate, copy};
  stage.blocks = {Block{"forward", 0, 1, true}, Block{"backward", 1, 1, true},
                  Block{"optimizer", 2, 1, false}};
  Schedule &schedule = stage.schedule;
  schedule.microBatches = microBatches;
  schedule.slots = 2;
  schedule.slotOffset = 64;
  schedule.slotSize = 64;
  schedule.phases = {
      Phase{1, {ScheduleStep{0, 0}}},
      Phase{microBatches - 1, {ScheduleStep{0, 1}, ScheduleStep{1, 0}}},
      Phase{1, {ScheduleStep{1, int32_t(microBatches - 1)}}},
      Phase{1, {ScheduleStep{2, 0}}}};
  return program;
}

std::string validationError(const Program &program) {
  Status status = validateProgram(program);
  return status.isOk() ? "ok" : status.message();
}

/// `program` written and read back; its bytes are in `bytes`.
Expected<Program> roundTrip(const Program &program,
                            std::vector<uint8_t> &bytes) {
  bytes = serializeProgram(program);
  return deserializeProgram(bytes.data(), bytes.size());
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

TEST(GroupTest, MembersAndPositionsFollowTheAxes) {
  // Data-parallel groups of 2 x 2 consecutive tensor-parallel ranks on a
  // stage of 4: {0, 2} and {1, 3}; their position is the DP coordinate.
  Group dp{{GroupAxis{2, 2}}};
  EXPECT_EQ(dp.members(3), (std::vector<uint32_t>{1, 3}));
  EXPECT_EQ(dp.position(3), 1u);
  EXPECT_EQ(dp.position(1), 0u);
  // Two axes, the first slowest: a stage of 4 ranks on stages of 8.
  Group stage{{GroupAxis{2, 16}, GroupAxis{4, 1}}};
  EXPECT_EQ(stage.size(), 8u);
  EXPECT_EQ(stage.members(21),
            (std::vector<uint32_t>{4, 5, 6, 7, 20, 21, 22, 23}));
  EXPECT_EQ(stage.position(21), 5u);
}

TEST(ProgramFileTest, RoundTripKeepsEveryField) {
  Program program = twoStageProgram();
  ASSERT_EQ(validationError(program), "ok");
  std::vector<uint8_t> bytes;
  Expected<Program> loaded = roundTrip(program, bytes);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(serializeProgram(*loaded), bytes);
  EXPECT_EQ(loaded->model, "test");
  EXPECT_EQ(loaded->groups, program.groups);
  const StageProgram &first = loaded->stages[0];
  EXPECT_EQ(first.buffers[4].viewOf, std::optional<uint32_t>(3));
  EXPECT_EQ(first.parameters[0].external->key, "fc.weight");
  EXPECT_EQ(first.parameters[0].init->b, 0.02);
  EXPECT_EQ(first.parameters[0].sliceTerms, program.stages[0].parameters[0].sliceTerms);
  EXPECT_EQ(first.instructions[1].reduce, ReduceOp::avg);
  EXPECT_EQ(first.instructions[2].tag, 3);
  EXPECT_EQ(first.layers, std::vector<std::string>{"fc"});
  EXPECT_FALSE(loaded->training);

  // Training programs: state, blocks, slots, the schedule's phases and the
  // training information.
  program = loopProgram(3);
  program.training = TrainingInfo{LossKind::maskedToken, 123, 50257};
  ASSERT_EQ(validationError(program), "ok");
  loaded = roundTrip(program, bytes);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(serializeProgram(*loaded), bytes);
  const StageProgram &stage = loaded->stages[0];
  EXPECT_TRUE(stage.parameters[0].state);
  EXPECT_TRUE(stage.buffers[2].slotted);
  EXPECT_EQ(stage.inputs[0].block, 0);
  EXPECT_EQ(stage.blocks[1].name, "backward");
  EXPECT_EQ(stage.schedule.slots, 2u);
  EXPECT_EQ(stage.schedule.phases[1].iterations, 2u);
  EXPECT_EQ(stage.schedule.phases[1].steps[1].block, 1u);
  ASSERT_TRUE(loaded->training);
  EXPECT_EQ(loaded->training->loss, LossKind::maskedToken);
  EXPECT_EQ(loaded->training->modelFlops, 123);
  EXPECT_EQ(loaded->training->vocabSize, 50257);
  // A large job's model FLOPs exceed an int64 (format 2.4 stores a double).
  program.training->modelFlops = 4.4e21;
  loaded = roundTrip(program, bytes);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded->training->modelFlops, 4.4e21);
  // A file's bad FLOPs are refused, not read as the old field's.
  for (double bad : {-1.0, std::nan("")}) {
    program.training->modelFlops = bad;
    bytes = serializeProgram(program);
    EXPECT_EQ(loadError(bytes),
              "training information needs finite, non-negative model FLOPs "
              "and a positive vocabulary size");
  }

  // A slice of a tensor whose full shape refines the source's: every
  // rank's program keeps the source shape.
  program = twoStageProgram();
  program.stages[0].parameters[0].sourceShape = {24};
  ASSERT_EQ(validationError(program), "ok");
  bytes = serializeProgram(program);
  loaded = deserializeProgram(bytes.data(), bytes.size());
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded->stages[0].parameters[0].sourceShape,
            std::vector<int64_t>{24});
  Expected<RankProgram> rank = instantiateRank(*loaded, 1);
  ASSERT_TRUE(rank.isOk()) << rank.status().message();
  const Parameter &slice = rank->parameters[0];
  EXPECT_EQ(slice.sliceStart, (std::vector<int64_t>{0, 4}));
  EXPECT_EQ(slice.modelShape({3, 4}), std::vector<int64_t>{24});
  EXPECT_EQ(slice.wholeShape({3, 4}), (std::vector<int64_t>{3, 8}));
}

TEST(ProgramFileTest, HeaderProblemsAreNamed) {
  std::vector<uint8_t> bytes = serializeProgram(twoStageProgram());
  std::vector<uint8_t> magic = bytes;
  magic[0] = 'X';
  EXPECT_EQ(loadError(magic), "not a Galvatron program file (bad magic)");
  std::vector<uint8_t> old = bytes;
  old[8] = 1;
  old[12] = 2;
  EXPECT_EQ(loadError(old),
            "program format 1.2 (one program per rank) is no longer "
            "supported: this runtime reads format 2.4 (one program per "
            "pipeline stage); recompile the model with galvatron-compile");
  std::vector<uint8_t> version = bytes;
  version[8] = 3;
  EXPECT_EQ(loadError(version), "program format version 3.4 is not supported "
                                "by this runtime (format 2.4)");
  std::vector<uint8_t> minor = bytes;
  minor[12] = 5;
  EXPECT_EQ(loadError(minor), "program format version 2.5 is not supported "
                              "by this runtime (format 2.4)");
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
/// program that passes validation, whose every rank then instantiates and
/// runs its kernels without touching memory outside its arena. Never a
/// crash.
TEST(ProgramFileTest, CorruptFilesNeverCrash) {
  for (const Program &valid : {twoStageProgram(), loopProgram(3)}) {
    std::vector<uint8_t> bytes = serializeProgram(valid);
    for (size_t length = 0; length < bytes.size(); ++length)
      ASSERT_NE(loadError(std::vector<uint8_t>(bytes.begin(),
                                               bytes.begin() + length)),
                "ok");
    std::mt19937 engine(42);
    std::uniform_int_distribution<size_t> position(0, bytes.size() - 1);
    std::uniform_int_distribution<int> value(0, 255), flips(1, 4);
    int accepted = 0;
    for (int iteration = 0; iteration < 2000; ++iteration) {
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
      for (uint32_t r = 0; r < program->worldSize; ++r) {
        Expected<RankProgram> rank = instantiateRank(*program, r);
        ASSERT_TRUE(rank.isOk());
        if (rank->arenaSize > (1 << 20))
          continue;
        std::unique_ptr<Backend> backend = createCPUBackend(1);
        if (!backend->load(*rank).isOk())
          continue;
        for (size_t i = 0; i < rank->instructions.size(); ++i)
          if (rank->instructions[i].kind == InstructionKind::kernel)
            (void)backend->runKernel(i, RunContext{});
      }
    }
    // Some mutations hit bytes that do not matter (names, padding).
    EXPECT_GT(accepted, 0);
  }
}

TEST(ProgramValidatorTest, StructuralRulesAreEnforced) {
  Program p = twoStageProgram();
  p.stages[0].buffers[0].offset = 4096;
  EXPECT_EQ(validationError(p),
            "stage 0: buffer 0 ('x'): bytes [4096, 4120) lie outside the "
            "arena of 320 bytes");
  p = twoStageProgram();
  p.stages[0].buffers[2].offset = 132;
  EXPECT_EQ(validationError(p), "stage 0: buffer 2 ('c'): offset 132 is not "
                                "a multiple of the 64-byte alignment");
  p = twoStageProgram();
  p.stages[0].instructions[0].kernel = "fused_magic";
  EXPECT_EQ(validationError(p), "stage 0: instruction 0 (kernel "
                                "'fused_magic' in layer 'fc'): unknown kernel "
                                "'fused_magic'");
  p = twoStageProgram();
  p.stages[0].instructions[0].outputs = {5};
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 0 (kernel 'linear' in layer 'fc'): result "
            "#0 must be f32[2,4], got f32[8]");
  p = twoStageProgram();
  p.stages[0].parameters[0].init.reset();
  p.stages[0].parameters[0].external.reset();
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': needs an initializer "
                                "or external data");
  p = twoStageProgram();
  p.stages[0].inputs.push_back(Binding{"x", 3});
  EXPECT_EQ(validationError(p), "stage 0: input 'x' is bound twice");
  p = twoStageProgram();
  p.stages[0].instructions[2].peer = 0;
  EXPECT_EQ(validationError(p), "stage 0: instruction 2 (send): peer stage 0 "
                                "is this stage itself");
  p = twoStageProgram();
  p.stages[0].instructions[2].peer = 2;
  EXPECT_EQ(validationError(p), "stage 0: instruction 2 (send): peer stage 2 "
                                "is not a stage of the 2-stage pipeline");
  p = twoStageProgram();
  p.stages[0].instructions[1].group = 1;
  EXPECT_EQ(validationError(p), "stage 0: instruction 1 (all_reduce): group "
                                "1 does not exist");
  p = twoStageProgram();
  p.stages[1].instructions.pop_back();
  p.stages[1].outputs.clear();
  runOnce(p.stages[1]);
  EXPECT_EQ(validationError(p), "stage 0 sends 1 message(s) with tag 3 to "
                                "stage 1 that it does not receive alike");
  p = twoStageProgram();
  p.worldSize = 3;
  EXPECT_EQ(validationError(p), "a world of 3 ranks does not split into 2 "
                                "pipeline stages");
  p = twoStageProgram();
  p.stages[1].stage = 0;
  EXPECT_EQ(validationError(p), "stage program 1 is numbered 0");
  p = twoStageProgram();
  p.stages[0].parameters[0].state = true;
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': state needs an "
                                "initializer and no external data");
  p = twoStageProgram();
  p.stages[0].parameters[0].fullShape.clear();
  p.stages[0].parameters[0].sliceStart.clear();
  p.stages[0].parameters[0].sliceTerms.clear();
  p.stages[0].parameters[0].sourceShape = {12};
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': has a slice start or "
                                "source shape but no full shape");
  p.stages[0].parameters[0].fullShape = {3, 8};
  p.stages[0].parameters[0].sliceStart = {0, 0};
  p.stages[0].parameters[0].sourceShape = {8, 3};
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': full shape [3,8] does "
                                "not refine the source shape [8,3]");
  EXPECT_TRUE(refinesShape({64, 3, 64}, {64, 192}));
  EXPECT_TRUE(refinesShape({1, 3, 64}, {1, 192}));
  EXPECT_FALSE(refinesShape({64, 192}, {64, 3, 64}));
  p = twoStageProgram();
  p.training = TrainingInfo{LossKind::nextToken, 1, 0};
  EXPECT_EQ(validationError(p), "training information needs finite, "
                                "non-negative model FLOPs and a positive "
                                "vocabulary size");
  p.training = TrainingInfo{LossKind::nextToken, -1, 8};
  EXPECT_EQ(validationError(p), "training information needs finite, "
                                "non-negative model FLOPs and a positive "
                                "vocabulary size");
  p = twoStageProgram();
  p.stages[0].instructions[0].outputs = {2};
  p.stages[0].buffers[2].type = f32({2, 4});
  p.stages[0].constants[0].data.resize(32);
  p.stages[0].instructions[0].inputs = {0, 1};
  EXPECT_EQ(validationError(p), "stage 0: block 'main': instruction 0 "
                                "(kernel 'linear' in layer 'fc'): writes "
                                "buffer 2 ('c'), which holds a constant");
  p = twoStageProgram();
  p.stages[0].blocks[0].count = 2;
  EXPECT_EQ(validationError(p), "stage 0: instructions from 2 belong to no "
                                "block");
}

TEST(ProgramValidatorTest, GroupFamiliesAndRankTermsAreChecked) {
  Program p = twoStageProgram();
  p.groups[0].axes.push_back(GroupAxis{2, 1});
  EXPECT_EQ(validationError(p), "group family 0: axes {2, 1} and {2, 1} "
                                "overlap");
  p = twoStageProgram();
  p.groups[0].axes = {GroupAxis{2, 4}};
  EXPECT_EQ(validationError(p), "group family 0: axis {2, 4} reaches beyond "
                                "the 4-rank world");
  // A pipeline group {2, 2} joins ranks of both stages: both must issue
  // the same collectives on it.
  p = twoStageProgram();
  p.groups[0].axes = {GroupAxis{2, 2}};
  EXPECT_EQ(validationError(p), "ranks 0 (stage 0) and 2 (stage 1) issue "
                                "different collectives on group family 0");
  // The same collective on both stages matches.
  p.stages[1].instructions[0].reduce = ReduceOp::avg;
  EXPECT_EQ(validationError(p), "ok");
  // The highest rank's slice must lie in the whole as well as the lowest's.
  p = twoStageProgram();
  p.stages[0].parameters[0].sliceTerms[0].coefficient = 5;
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': slice f32[3,4] "
                                "starts at 5 in dimension 1 on some rank, "
                                "outside [3,8]");
  // A padded dimension (format 2.3): the last block extends past the
  // whole; a slice past it that is not one of the blocks is refused.
  p = twoStageProgram();
  p.stages[0].parameters[0].fullShape = {3, 6};
  EXPECT_EQ(validationError(p), "ok");
  p.stages[0].parameters[0].sliceTerms[0].coefficient = 3;
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': slice f32[3,4] "
                                "starts at 3 in dimension 1 on some rank, "
                                "outside [3,6]");
  p = twoStageProgram();
  p.stages[0].parameters[0].sliceTerms[0].coefficient = -4;
  EXPECT_EQ(validationError(p), "stage 0: parameter 'w': a rank term has "
                                "coefficient -4 outside [0, 281474976710656 "
                                "/ group size]");
  // Kernel attributes: checked at both ends of the ranks.
  p = twoStageProgram();
  Instruction slice;
  slice.kernel = "slice";
  slice.inputs = {0};
  slice.outputs = {5};
  p.stages[0].buffers[5].type = f32({1, 3});
  slice.attributes = {Attribute::makeIntegers("starts", {0, 0}),
                      Attribute::makeIntegers("limits", {1, 3}),
                      Attribute::makeIntegers("strides", {1, 1})};
  slice.attributes[0].terms = {RankTerm{0, 0, 2}};
  slice.attributes[1].terms = {RankTerm{0, 0, 2}};
  p.stages[0].instructions = {slice};
  p.stages[0].outputs = {Binding{"row", 5}};
  runOnce(p.stages[0]);
  p.stages[1].instructions.pop_back();
  p.stages[1].outputs.clear();
  runOnce(p.stages[1]);
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 0 (kernel 'slice'): on the rank with the "
            "highest positions: [2, 3) is out of bounds for dimension 0 of "
            "f32[2,3]");
  p.stages[0].instructions[0].attributes[0].terms[0].coefficient = 1;
  p.stages[0].instructions[0].attributes[1].terms[0].coefficient = 1;
  EXPECT_EQ(validationError(p), "ok");
}

TEST(ProgramValidatorTest, RanksInstantiateTheirStage) {
  Program program = twoStageProgram();
  ASSERT_EQ(validationError(program), "ok");
  Expected<RankProgram> rank1 = instantiateRank(program, 1);
  ASSERT_TRUE(rank1.isOk());
  EXPECT_EQ(rank1->stage, 0u);
  EXPECT_EQ(rank1->parameters[0].sliceStart, (std::vector<int64_t>{0, 4}));
  EXPECT_TRUE(rank1->parameters[0].sliceTerms.empty());
  EXPECT_EQ(rank1->groups[0], (std::vector<uint32_t>{0, 1}));
  EXPECT_EQ(rank1->instructions[2].peer, 3); // stage 1, local index 1
  Expected<RankProgram> rank2 = instantiateRank(program, 2);
  ASSERT_TRUE(rank2.isOk());
  EXPECT_EQ(rank2->stage, 1u);
  EXPECT_EQ(rank2->groups[0], (std::vector<uint32_t>{2, 3}));
  EXPECT_EQ(rank2->instructions[1].peer, 0);
  EXPECT_FALSE(instantiateRank(program, 4).isOk());
}

TEST(ProgramValidatorTest, MemoryPlanIsChecked) {
  // The linear's result overlaps the constant it reads.
  Program p = twoStageProgram();
  p.stages[0].buffers[3].offset = 128;
  p.stages[0].buffers[4].offset = 128;
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 0 (kernel 'linear' in layer 'fc'): result "
            "#0 overlaps operand #2 but may not be computed in place");
  // The all-reduce result lands on the parameter, live throughout.
  p = twoStageProgram();
  p.stages[0].buffers[5].offset = 64;
  EXPECT_EQ(validationError(p), "stage 0: buffer 5 shares bytes with a "
                                "buffer live throughout");
  // Reading a temporary nobody wrote.
  Program single = kernelProgram("neg", {f32({4})}, {f32({4})}, {});
  StageProgram &stage = single.stages[0];
  stage.buffers.push_back(buffer(f32({4}), stage.arenaSize, "t"));
  stage.arenaSize += 64;
  stage.instructions[0].inputs = {2};
  EXPECT_EQ(validationError(single), "stage 0: block 'main': instruction 0 "
                                     "(kernel 'neg'): reads buffer 2 ('t') "
                                     "before it is written");
}

TEST(ProgramValidatorTest, InPlaceResultsMayReuseTheirOperand) {
  // neg(x) into a temporary t, then exp(t) written over t.
  Program program = kernelProgram("neg", {f32({4})}, {f32({4})}, {});
  StageProgram &stage = program.stages[0];
  Instruction exp;
  exp.kernel = "exp";
  exp.inputs = {1};
  exp.outputs = {2};
  stage.buffers.push_back(buffer(f32({4}), stage.buffers[1].offset));
  stage.instructions.push_back(exp);
  stage.outputs = {Binding{"y", 2}};
  runOnce(stage);
  ASSERT_EQ(validationError(program), "ok");
  auto outputs = runProgram(program, {floats({4}, {0, 1, 2, -1})});
  ASSERT_TRUE(outputs.isOk());
  std::vector<float> y = valuesOf<float>((*outputs)[0]);
  EXPECT_FLOAT_EQ(y[1], std::exp(-1.0f));
  EXPECT_FLOAT_EQ(y[3], std::exp(1.0f));
  // A kernel that cannot work in place may not.
  stage.instructions[1].kernel = "softmax";
  stage.instructions[1].attributes = {Attribute::makeInteger("axis", 0)};
  ASSERT_EQ(validationError(program), "ok");
  stage.instructions[1].kernel = "cast";
  stage.instructions[1].attributes.clear();
  EXPECT_EQ(validationError(program),
            "stage 0: instruction 1 (kernel 'cast'): result #0 overlaps "
            "operand #0 but may not be computed in place");
}

/// The schedule runs the blocks of each micro-batch in its slot: the loop
/// program sums twice every micro-batch's rows.
TEST(ProgramValidatorTest, LoopsRunEveryMicroBatchInItsSlot) {
  Program program = loopProgram(3);
  ASSERT_EQ(validationError(program), "ok");
  Expected<RankProgram> rank = instantiateRank(program, 0);
  ASSERT_TRUE(rank.isOk());
  // One copy of the slotted blocks per slot, not per micro-batch.
  EXPECT_EQ(rank->instructions.size(), 5u);
  EXPECT_EQ(rank->buffers[rank->slotBuffers[1][2]].offset, 128u);
  std::unique_ptr<Backend> backend = createCPUBackend(1);
  std::unique_ptr<Communicator> comm = createSingleProcessCommunicator();
  Expected<std::unique_ptr<Executor>> executor =
      Executor::create(program, 0, *backend, *comm);
  ASSERT_TRUE(executor.isOk()) << executor.status().message();
  ASSERT_TRUE(loadParameters(**executor, ParameterOptions{}).isOk());
  const Binding &input = (*executor)->rankProgram().inputs[0];
  EXPECT_EQ((*executor)->inputType(input), f32({6}));
  std::vector<float> rows = {1, 2, 3, 4, 5, 6}, total(2);
  ASSERT_TRUE((*executor)->writeInput(input, rows.data(), 24).isOk());
  ASSERT_TRUE((*executor)->run().isOk());
  ASSERT_TRUE((*executor)->readBuffer(3, total.data(), 8).isOk());
  EXPECT_EQ(total, (std::vector<float>{18, 24}));
  // Micro-batches in flight: the accumulator, both slots, an input.
  MemoryUsage usage = analyzeMemory(program.stages[0]);
  EXPECT_EQ(usage.arenaBytes, 384u);
  EXPECT_EQ(usage.stateBytes, 8u);
  EXPECT_EQ(usage.peakLiveBytes, 8u + 8 + 8 + 8);

  // What a micro-batch keeps between its blocks lies in its slot.
  Program p = loopProgram(3);
  p.stages[0].buffers[2].slotted = false;
  EXPECT_EQ(validationError(p), "stage 0: buffer 2 ('doubled') is kept from "
                                "one block of a micro-batch to the next but "
                                "is not slotted");
  p = loopProgram(3);
  p.stages[0].buffers[2].offset = 128;
  EXPECT_EQ(validationError(p), "stage 0: buffer 2 ('doubled'): is slotted "
                                "but lies outside slot 0's bytes [64, 128)");
  p = loopProgram(3);
  p.stages[0].buffers[1].offset = 128;
  EXPECT_EQ(validationError(p), "stage 0: buffer 1 ('in') is not slotted but "
                                "lies in the slots' bytes");
  // Three micro-batches in flight need three slots.
  p = loopProgram(3);
  p.stages[0].schedule.phases = {
      Phase{3, {ScheduleStep{0, 0}}}, Phase{3, {ScheduleStep{1, 0}}},
      Phase{1, {ScheduleStep{2, 0}}}};
  EXPECT_EQ(validationError(p), "stage 0: micro-batch 2 starts in slot 0 "
                                "while micro-batch 0 still holds it");
  // Every micro-batch runs the same blocks.
  p = loopProgram(3);
  p.stages[0].schedule.phases[2].steps[0].microBatch = 1;
  EXPECT_EQ(validationError(p), "stage 0: micro-batch 1 runs 3 slotted "
                                "block(s), not the 2 of micro-batch 0 in the "
                                "same order");
  // The optimizer may reuse the slots' bytes only when none is in flight.
  p = loopProgram(3);
  p.stages[0].buffers[3].offset = 64;
  EXPECT_EQ(validationError(p), "ok");
  std::swap(p.stages[0].schedule.phases[2], p.stages[0].schedule.phases[3]);
  p.stages[0].outputs.clear();
  EXPECT_EQ(validationError(p), "stage 0: block 'optimizer' uses the slots' "
                                "bytes while a micro-batch is in flight");
}

TEST(ProgramValidatorTest, MemoryUsageCountsSharedBytesOnce) {
  Program program = twoStageProgram();
  MemoryUsage usage = analyzeMemory(program.stages[0]);
  EXPECT_EQ(usage.arenaBytes, 320u);
  EXPECT_EQ(usage.parameterBytes, 48u);
  // At the all-reduce: w, c, the linear's result and the sum.
  EXPECT_EQ(usage.peakLiveBytes, 48u + 16 + 32 + 32);
}

} // namespace

/// Stage 0 of `twoStageProgram` with its all-reduce started (event 0) and
/// waited for before the send reads its result.
Program asyncProgram() {
  Program program = twoStageProgram();
  StageProgram &first = program.stages[0];
  Instruction wait;
  wait.kind = InstructionKind::wait;
  wait.event = 0;
  first.instructions[1].event = 0;
  first.instructions.insert(first.instructions.begin() + 2, wait);
  runOnce(first);
  return program;
}

TEST(ProgramValidatorTest, StartedCommunicationIsWaitedFor) {
  Program p = asyncProgram();
  ASSERT_EQ(validationError(p), "ok");
  std::vector<uint8_t> bytes;
  Expected<Program> loaded = roundTrip(p, bytes);
  ASSERT_TRUE(loaded.isOk()) << loaded.status().message();
  EXPECT_EQ(loaded->stages[0].instructions[1].event, 0);
  EXPECT_EQ(loaded->stages[0].instructions[2].kind, InstructionKind::wait);

  // The send reads the all-reduce's result while it is in flight.
  std::swap(p.stages[0].instructions[2], p.stages[0].instructions[3]);
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 2 (send) touches buffer 5 while event 0 is "
            "in flight with it");
  p = asyncProgram();
  p.stages[0].instructions.erase(p.stages[0].instructions.begin() + 2);
  runOnce(p.stages[0]);
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 2 (send) touches buffer 5 while event 0 is "
            "in flight with it");
  p = asyncProgram();
  p.stages[0].instructions.pop_back(); // the send: nothing waits after it
  p.stages[0].instructions.erase(p.stages[0].instructions.begin() + 2);
  runOnce(p.stages[0]);
  EXPECT_EQ(validationError(p).rfind("stage 0: block 'main' ends with event 0 "
                                     "in flight (no wait)", 0),
            0u);
  p = asyncProgram();
  p.stages[0].instructions[2].event = 7;
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 2 (wait of event 7): block 'main' started "
            "no event 7 before it");
  p = asyncProgram();
  p.stages[0].instructions[0].event = 1;
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 0 (kernel 'linear' of event 1 in layer "
            "'fc'): event 1 on a kernel (only communication is started)");
  p = asyncProgram();
  p.stages[0].instructions[1].lastMicroBatch = true;
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 1 (all_reduce of event 0): only a slotted "
            "block runs per micro-batch");
}

/// The accumulator of `loopProgram` all-reduced for the last micro-batch
/// only, right after the backward's accumulation, waited for by the
/// optimizer block.
Program lateSyncProgram(uint32_t microBatches) {
  Program program = loopProgram(microBatches);
  program.groups = {Group{{GroupAxis{1, 1}}}};
  StageProgram &stage = program.stages[0];
  Instruction sync;
  sync.kind = InstructionKind::allReduce;
  sync.inputs = {0};
  sync.outputs = {0};
  sync.event = 3;
  sync.lastMicroBatch = true;
  Instruction wait;
  wait.kind = InstructionKind::wait;
  wait.event = 3;
  stage.instructions = {stage.instructions[0], stage.instructions[1], sync,
                        wait, stage.instructions[2]};
  stage.blocks = {Block{"forward", 0, 1, true}, Block{"backward", 1, 2, true},
                  Block{"optimizer", 3, 2, false}};
  return program;
}

TEST(ProgramValidatorTest, LastMicroBatchSyncIsWaitedByTheOptimizer) {
  Program p = lateSyncProgram(3);
  ASSERT_EQ(validationError(p), "ok");
  // Started for every micro-batch, it would be started again before its
  // wait.
  p.stages[0].instructions[2].lastMicroBatch = false;
  EXPECT_EQ(validationError(p),
            "stage 0: block 'backward' ends with event 3 in flight (no wait)");
  p = lateSyncProgram(3);
  p.stages[0].buffers.push_back(buffer(f32({2}), 192, "scratch"));
  p.stages[0].instructions[2].outputs = {4};
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 2 (all_reduce of event 3): started for the "
            "last micro-batch only, it may use only parameters and state, not "
            "buffer 4 ('scratch')");
  // The optimizer reads the accumulator before waiting for its sync.
  p = lateSyncProgram(3);
  std::swap(p.stages[0].instructions[3], p.stages[0].instructions[4]);
  EXPECT_EQ(validationError(p),
            "stage 0: instruction 3 (kernel 'copy') touches buffer 0 ('acc') "
            "while event 3 is in flight with it");
}
