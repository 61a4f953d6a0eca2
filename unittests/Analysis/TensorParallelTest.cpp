//===- TensorParallelTest.cpp - Megatron-style sharding of layers ---------===//

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Models/ModelPresets.h"

#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

namespace {

OwningOpRef<ModuleOp> preset(MLIRContext &context, StringRef name) {
  auto module = buildModel(&context, *findModelPreset(name), {2, 0});
  EXPECT_TRUE(bool(module));
  return std::move(*module);
}

size_t count(const TensorParallelAnalysis &analysis, TPCommPoint::Kind kind) {
  return llvm::count_if(analysis.getCommPoints(), [&](const TPCommPoint &p) {
    return p.kind == kind;
  });
}

TEST(TensorParallelTest, GptBlockIsMegatron) {
  MLIRContext context;
  auto module = preset(context, "gpt-tiny");
  auto main = module->lookupSymbol<func::FuncOp>("main");
  auto analyses = TensorParallelAnalysis::analyzeFunction(main);
  ASSERT_EQ(analyses.size(), 4u);
  const TensorParallelAnalysis &block = analyses[1];
  ASSERT_TRUE(block.isShardable());
  SmallVector<LinearParallelism> kinds;
  for (auto linear : block.getLayer().getBodyBlock().getOps<LinearOp>())
    kinds.push_back(block.getLinearParallelism(linear));
  EXPECT_EQ(kinds, (SmallVector<LinearParallelism>{
                       LinearParallelism::Column, LinearParallelism::Row,
                       LinearParallelism::Column, LinearParallelism::Row}));
  // f on the inputs of the column-parallel linears, g after the row-parallel
  // ones: nothing else.
  EXPECT_EQ(count(block, TPCommPoint::ReplicatedInput), 2u);
  EXPECT_EQ(count(block, TPCommPoint::ReducePartial), 2u);
  EXPECT_EQ(block.getCommPoints().size(), 4u);
  // The fused QKV weight splits per q, k and v.
  for (const TPParameterSharding &param : block.getParameters())
    if (ParamOp(param.op).getName().ends_with("c_attn.weight")) {
      EXPECT_EQ(param.dim, 1);
      EXPECT_EQ(param.segments, (SmallVector<int64_t>{64, 64, 64}));
    }
  EXPECT_TRUE(block.supportsSequenceParallel());
  // 4 heads: tp 1, 2, 4.
  EXPECT_TRUE(block.supportsDegree(4));
  std::string reason;
  EXPECT_FALSE(block.supportsDegree(8, &reason));
  EXPECT_NE(reason.find("4 heads"), std::string::npos) << reason;
  // Vocabulary-parallel embedding and head.
  EXPECT_EQ(count(analyses[0], TPCommPoint::ReducePartial), 1u);
  EXPECT_EQ(analyses[3].getShardedResults().size(), 1u);
}

TEST(TensorParallelTest, GroupedQueryAttentionLimitsTheDegree) {
  MLIRContext context;
  auto module = preset(context, "llama-tiny"); // 4 query, 2 key/value heads
  auto analyses = TensorParallelAnalysis::analyzeFunction(
      module->lookupSymbol<func::FuncOp>("main"));
  EXPECT_TRUE(analyses[1].supportsDegree(2));
  EXPECT_FALSE(analyses[1].supportsDegree(4));
}

TEST(TensorParallelTest, ViewsAcrossTheSequenceStopSequenceParallelism) {
  MLIRContext context;
  auto module = preset(context, "vit-tiny");
  auto analyses = TensorParallelAnalysis::analyzeFunction(
      module->lookupSymbol<func::FuncOp>("main"));
  // The classifier reads the class token: a slice along the sequence.
  const TensorParallelAnalysis &head = analyses.back();
  EXPECT_TRUE(head.isShardable());
  EXPECT_FALSE(head.supportsSequenceParallel());
  EXPECT_NE(head.getSequenceParallelFailure().find("galvatron.slice"),
            llvm::StringRef::npos);
  EXPECT_TRUE(analyses[1].supportsSequenceParallel());
}

TEST(TensorParallelTest, UnknownOpOnAShardedValueMeansTpOne) {
  MLIRContext context;
  context.loadDialect<GalvatronDialect, func::FuncDialect>();
  context.allowUnregisteredDialects();
  auto module = parseSourceString<ModuleOp>(R"mlir(
    galvatron.parameter @w : tensor<8x16xf32> {init = #galvatron.init<zeros>}
    func.func @main(%x: tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
      %0 = galvatron.layer decoder "odd" (%a = %x : tensor<2x4x8xf32>) -> tensor<2x4x16xf32> {
        %w = galvatron.param @w : tensor<8x16xf32>
        %y = galvatron.linear %a, %w : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
        %z = "test.mystery"(%y) : (tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
        galvatron.yield %z : tensor<2x4x16xf32>
      }
      return %0 : tensor<2x4x16xf32>
    }
  )mlir",
                                            &context);
  ASSERT_TRUE(bool(module));
  auto analyses = TensorParallelAnalysis::analyzeFunction(
      module->lookupSymbol<func::FuncOp>("main"));
  ASSERT_EQ(analyses.size(), 1u);
  EXPECT_FALSE(analyses[0].isShardable());
  EXPECT_NE(analyses[0].getFailure().find("test.mystery"),
            llvm::StringRef::npos);
  std::string reason;
  EXPECT_TRUE(analyses[0].supportsDegree(1));
  EXPECT_FALSE(analyses[0].supportsDegree(2, &reason));
  EXPECT_NE(reason.find("no tensor-parallel rule"), std::string::npos);
}

} // namespace
