//===- CheckpointTest.cpp - Which rank writes which part of a tensor ------===//

#include "galvatron/Runtime/Checkpoint.h"

#include "gtest/gtest.h"

using namespace galvatron::runtime;

namespace {

/// A program of `ranks` ranks holding parameters only, each rank a stage
/// of its own (so that every rank may hold different parts).
struct ProgramBuilder {
  Program program;

  explicit ProgramBuilder(uint32_t ranks) {
    program.worldSize = ranks;
    for (uint32_t r = 0; r < ranks; ++r)
      program.stages.emplace_back().stage = r;
  }
  /// Rank `rank` holds `shape` of `name` at `start` of `full` (whole when
  /// `full` is empty).
  ProgramBuilder &hold(uint32_t rank, const std::string &name,
                       std::vector<int64_t> shape,
                       std::vector<int64_t> full = {},
                       std::vector<int64_t> start = {}, bool state = false) {
    StageProgram &program = this->program.stages[rank];
    program.buffers.push_back(
        Buffer{TensorType{ElementType::f32, std::move(shape)}, 0, {}, name});
    Parameter &parameter = program.parameters.emplace_back();
    parameter.buffer = uint32_t(program.buffers.size() - 1);
    parameter.name = name;
    parameter.fullShape = std::move(full);
    parameter.sliceStart = std::move(start);
    parameter.state = state;
    return *this;
  }
};

std::string owners(const LogicalTensor &tensor) {
  std::string text;
  for (const LogicalTensor::Part &part : tensor.parts)
    text += (text.empty() ? "" : " ") + std::to_string(part.rank) + "@" +
            shapeString(part.start);
  return text;
}

/// pp 2 x tp 2 (ranks 0, 1 | 2, 3): replicas write nothing twice, slices
/// go to the lowest rank holding them, state is kept apart on request, and
/// names with numbers sort by value.
TEST(CheckpointTest, TheLowestRankHoldingAPartWritesIt) {
  ProgramBuilder b(4);
  for (uint32_t r = 0; r < 4; ++r) {
    // A tied embedding split along the vocabulary on both stages.
    b.hold(r, "wte", {4, 8}, {8, 8}, {4 * (r % 2), 0});
    // A norm every rank of a stage holds whole.
    b.hold(r, r < 2 ? "h.2.ln" : "h.10.ln", {8});
    b.hold(r, "train.step", {}, {}, {}, /*state=*/true);
  }
  // ZeRO-1 moments: quarters of a [8] weight over the ranks of stage 0's
  // data-parallel pair, halves of each TP part.
  b.hold(1, "h.2.ln.exp_avg", {2}, {8}, {0}, true);
  b.hold(0, "h.2.ln.exp_avg", {2}, {8}, {2}, true);
  b.hold(3, "h.2.ln.exp_avg", {4}, {8}, {4}, true);
  Expected<std::vector<LogicalTensor>> tensors =
      collectLogicalTensors(b.program, /*withState=*/true);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  std::vector<std::string> names;
  for (const LogicalTensor &tensor : *tensors)
    names.push_back(tensor.name);
  EXPECT_EQ(names, (std::vector<std::string>{"h.2.ln", "h.2.ln.exp_avg",
                                             "h.10.ln", "train.step", "wte"}));
  EXPECT_EQ(owners((*tensors)[0]), "0@[0]");
  EXPECT_EQ(owners((*tensors)[1]), "0@[2] 1@[0] 3@[4]");
  EXPECT_EQ(owners((*tensors)[2]), "2@[0]");
  EXPECT_EQ(owners((*tensors)[3]), "0@[]");
  EXPECT_EQ(owners((*tensors)[4]), "0@[0,0] 1@[4,0]");
  EXPECT_TRUE((*tensors)[3].state);
  EXPECT_EQ((*tensors)[4].type.str(), "f32[8,8]");

  Expected<std::vector<LogicalTensor>> weights =
      collectLogicalTensors(b.program, /*withState=*/false);
  ASSERT_TRUE(weights.isOk());
  EXPECT_EQ(weights->size(), 3u);
}

/// A fused weight whose full shape refines the source's: the checkpoint
/// holds the source shape; a rank holding it whole covers every part.
TEST(CheckpointTest, RefinedSlicesKeepTheSourceShape) {
  ProgramBuilder b(3);
  b.hold(0, "qkv", {4, 12});
  b.hold(1, "qkv", {4, 3, 2}, {4, 3, 4}, {0, 0, 0});
  b.hold(2, "qkv", {4, 3, 2}, {4, 3, 4}, {0, 0, 2});
  b.program.stages[1].parameters[0].sourceShape = {4, 12};
  b.program.stages[2].parameters[0].sourceShape = {4, 12};
  Expected<std::vector<LogicalTensor>> tensors =
      collectLogicalTensors(b.program, false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 1u);
  EXPECT_EQ((*tensors)[0].type.str(), "f32[4,12]");
  EXPECT_EQ((*tensors)[0].fullShape, (std::vector<int64_t>{4, 3, 4}));
  // Rank 0's whole box holds the slices: it alone writes.
  EXPECT_EQ(owners((*tensors)[0]), "0@[0,0,0]");
  // Slices first, the whole last: the whole replaces them.
  std::swap(b.program.stages[0].parameters, b.program.stages[2].parameters);
  std::swap(b.program.stages[0].buffers, b.program.stages[2].buffers);
  tensors = collectLogicalTensors(b.program, false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  EXPECT_EQ(owners((*tensors)[0]), "2@[0,0,0]");
}

/// A padded vocabulary (6 rows padded to 9 on 3 ranks): each part leaves
/// out the padding, and a block of padding alone holds nothing.
TEST(CheckpointTest, PaddedSlicesHoldOnlyTheTensor) {
  ProgramBuilder b(3);
  for (uint32_t r = 0; r < 3; ++r)
    b.hold(r, "wte", {3, 4}, {6, 4}, {3 * int64_t(r), 0});
  Expected<std::vector<LogicalTensor>> tensors =
      collectLogicalTensors(b.program, false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  EXPECT_EQ((*tensors)[0].type.str(), "f32[6,4]");
  EXPECT_EQ(owners((*tensors)[0]), "0@[0,0] 1@[3,0]");
  ProgramBuilder partly(2);
  partly.hold(0, "wte", {4, 4}, {6, 4}, {0, 0})
      .hold(1, "wte", {4, 4}, {6, 4}, {4, 0});
  tensors = collectLogicalTensors(partly.program, false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  ASSERT_EQ((*tensors)[0].parts.size(), 2u);
  EXPECT_EQ((*tensors)[0].parts[1].shape, (std::vector<int64_t>{2, 4}));
}

TEST(CheckpointTest, PartsMustCoverATensorOnce) {
  ProgramBuilder gap(2);
  gap.hold(0, "w", {2}, {6}, {0}).hold(1, "w", {2}, {6}, {2});
  EXPECT_EQ(collectLogicalTensors(gap.program, false).status().message(),
            "the ranks hold 4 of the 6 elements of 'w'");
  ProgramBuilder overlap(2);
  overlap.hold(0, "w", {4}, {6}, {0}).hold(1, "w", {3}, {6}, {3});
  EXPECT_EQ(collectLogicalTensors(overlap.program, false).status().message(),
            "ranks 0 and 1 hold overlapping slices of 'w'");
  ProgramBuilder types(2);
  types.hold(0, "w", {6}).hold(1, "w", {2, 3});
  EXPECT_EQ(collectLogicalTensors(types.program, false).status().message(),
            "rank 1 holds 'w' as f32[2,3] but rank 0 as f32[6]");
}

/// pp 2 x tp 2 as the compiler emits it: one program per stage, each rank's
/// slice given by rank terms on the tensor-parallel family.
TEST(CheckpointTest, RankTermsPlaceEachRanksSlice) {
  Program program;
  program.worldSize = 4;
  program.groups = {Group{{GroupAxis{2, 1}}}};
  for (uint32_t s = 0; s < 2; ++s) {
    StageProgram &stage = program.stages.emplace_back();
    stage.stage = s;
    stage.buffers.push_back(
        Buffer{TensorType{ElementType::f32, {4, 8}}, 0, {}, "wte"});
    Parameter &wte = stage.parameters.emplace_back();
    wte.name = "wte";
    wte.fullShape = {8, 8};
    wte.sliceStart = {0, 0};
    wte.sliceTerms = {RankTerm{0, 0, 4}};
    // A fused bias [12] held as [3, 4], split along its last dimension.
    stage.buffers.push_back(
        Buffer{TensorType{ElementType::f32, {3, 2}}, 0, {}, "qkv.bias"});
    Parameter &bias = stage.parameters.emplace_back();
    bias.buffer = 1;
    bias.name = s == 0 ? "h.0.qkv.bias" : "h.1.qkv.bias";
    bias.fullShape = {3, 4};
    bias.sliceStart = {0, 0};
    bias.sliceTerms = {RankTerm{1, 0, 2}};
    bias.sourceShape = {12};
  }
  Expected<std::vector<LogicalTensor>> tensors =
      collectLogicalTensors(program, false);
  ASSERT_TRUE(tensors.isOk()) << tensors.status().message();
  ASSERT_EQ(tensors->size(), 3u);
  EXPECT_EQ((*tensors)[0].name, "h.0.qkv.bias");
  EXPECT_EQ((*tensors)[0].type.str(), "f32[12]");
  EXPECT_EQ(owners((*tensors)[0]), "0@[0,0] 1@[0,2]");
  EXPECT_EQ(owners((*tensors)[1]), "2@[0,0] 3@[0,2]");
  EXPECT_EQ(owners((*tensors)[2]), "0@[0,0] 1@[4,0]");
}

} // namespace
