//===- AttributesTest.cpp - Strategy and plan attributes ------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

namespace {

class AttributesTest : public ::testing::Test {
protected:
  AttributesTest() { context.loadDialect<GalvatronDialect>(); }

  /// Runs `build` and returns the diagnostics it emitted.
  template <typename Fn> std::string diagnosticsOf(Fn build) {
    std::string messages;
    ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diag) {
      messages += diag.str() + "\n";
      return success();
    });
    build();
    return messages;
  }

  StrategyAttr strategy(int64_t stage, int64_t tp, int64_t dp) {
    return StrategyAttr::getChecked(
        [&] { return emitError(UnknownLoc::get(&context)); }, &context, stage,
        tp, dp, true, DataParallelType::ddp, false, false, false);
  }

  MLIRContext context;
};

TEST_F(AttributesTest, StrategyDegreesMustBePositive) {
  EXPECT_TRUE(strategy(0, 2, 4));
  std::string errors;
  errors = diagnosticsOf([&] { EXPECT_FALSE(strategy(0, 0, 4)); });
  EXPECT_NE(errors.find("tensor-parallel degree must be positive, got 0"),
            std::string::npos);
  errors = diagnosticsOf([&] { EXPECT_FALSE(strategy(-1, 1, 1)); });
  EXPECT_NE(errors.find("pipeline stage must be non-negative"),
            std::string::npos);
}

TEST_F(AttributesTest, PlanChecksBatchSplit) {
  auto loc = UnknownLoc::get(&context);
  std::string errors = diagnosticsOf([&] {
    EXPECT_FALSE(PlanAttr::getChecked(
        [&] { return emitError(loc); }, &context, int64_t(8), int64_t(8),
        int64_t(2), int64_t(3), int64_t(16), PipelineSchedule::gpipe,
        Precision::bf16, int64_t(128)));
  });
  EXPECT_NE(errors.find("global batch 16 does not split into 3 equal "
                        "micro-batches"),
            std::string::npos)
      << errors;
  PlanAttr plan = PlanAttr::get(
      &context, int64_t(16), int64_t(8), int64_t(2), int64_t(4), int64_t(32),
      PipelineSchedule::pipedream_flush, Precision::fp16, int64_t(128));
  EXPECT_EQ(plan.getNodes(), 2);
}

TEST_F(AttributesTest, VerifyPlanAgainstLayers) {
  const char *source = R"mlir(
    module attributes {galvatron.plan = #galvatron.plan<devices = 8, devices_per_node = 8, pp = 2, micro_batches = 2, global_batch = 8>} {
      func.func @main(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
        %0 = galvatron.layer decoder "a" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 0, tp = 2, dp = 2>} {
          galvatron.yield %a : tensor<2x4xf32>
        }
        %1 = galvatron.layer decoder "b" (%a = %0 : tensor<2x4xf32>) -> tensor<2x4xf32> attributes {strategy = #galvatron.strategy<stage = 1, tp = 4, dp = 1>} {
          galvatron.yield %a : tensor<2x4xf32>
        }
        return %1 : tensor<2x4xf32>
      }
    })mlir";
  context.loadDialect<func::FuncDialect>();
  OwningOpRef<ModuleOp> module = parseSourceString<ModuleOp>(source, &context);
  ASSERT_TRUE(module);
  PlanAttr plan = getPlan(*module);
  ASSERT_TRUE(plan);
  EXPECT_TRUE(succeeded(verifyPlan(*module, plan)));

  // The same layers under a 16-device plan no longer multiply out.
  PlanAttr wrong =
      PlanAttr::get(&context, int64_t(16), int64_t(8), int64_t(2), int64_t(2),
                    int64_t(8), PipelineSchedule::gpipe, Precision::fp32,
                    int64_t(128));
  std::string errors =
      diagnosticsOf([&] { EXPECT_TRUE(failed(verifyPlan(*module, wrong))); });
  EXPECT_NE(errors.find("pp (2) x tp (2) x dp (2) = 8 does not equal the "
                        "plan's 16 devices"),
            std::string::npos)
      << errors;
}

} // namespace
