//===- AutodiffTest.cpp - The autodiff engine's library interface ---------===//
//
// What passes other than the training step rely on: seeds given as
// arguments of the backward function (a pipeline stage receiving its output
// gradient) or built inside the producer's backward layer (a loss), gradients
// returned for chosen arguments, and parameter gradients handed to a sink.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Transforms/Autodiff.h"

#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Parser/Parser.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

namespace {

/// Two layers of a stage: x·W1, then tanh(h·W2) and a constant that
/// depends on nothing.
constexpr const char *kStage = R"mlir(
galvatron.parameter @w1 : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
galvatron.parameter @w2 : tensor<4x4xf32> {init = #galvatron.init<normal(0.0, 0.02)>}
func.func @stage(%x: tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
  %h = galvatron.layer decoder "first" (%a = %x : tensor<2x4xf32>) -> tensor<2x4xf32> {
    %w = galvatron.param @w1 : tensor<4x4xf32>
    %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    galvatron.yield %y : tensor<2x4xf32>
  }
  %o:2 = galvatron.layer decoder "second" (%a = %h : tensor<2x4xf32>) -> (tensor<2x4xf32>, tensor<2x4xf32>) {
    %w = galvatron.param @w2 : tensor<4x4xf32>
    %y = galvatron.matmul %a, %w : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    %t = galvatron.tanh %y : tensor<2x4xf32>
    %c = galvatron.constant dense<1.0> : tensor<2x4xf32>
    galvatron.yield %t, %c : tensor<2x4xf32>, tensor<2x4xf32>
  }
  return %o#0, %o#1 : tensor<2x4xf32>, tensor<2x4xf32>
}
)mlir";

class AutodiffTest : public ::testing::Test {
protected:
  AutodiffTest() {
    context.loadDialect<GalvatronDialect, func::FuncDialect>();
    module = parseSourceString<ModuleOp>(kStage, &context);
  }

  func::FuncOp stage() { return module->lookupSymbol<func::FuncOp>("stage"); }
  Value result(unsigned index) {
    return stage().getBody().front().getTerminator()->getOperand(index);
  }

  MLIRContext context;
  OwningOpRef<ModuleOp> module;
};

TEST_F(AutodiffTest, StageReceivesItsOutputGradient) {
  ASSERT_TRUE(module);
  SmallVector<std::string> sunk;
  AutodiffOptions options;
  options.backwardName = "stage_backward";
  options.gradientArguments = {0};
  options.parameterGradient = [&](OpBuilder &, Location, ParameterOp parameter,
                                  Value) {
    sunk.push_back(parameter.getSymName().str());
    return success();
  };
  // The constant result depends on nothing: it gets no argument.
  FailureOr<BackwardFunction> backward = buildBackward(
      stage(), {GradientSeed{result(0), nullptr}, {result(1), nullptr}},
      options);
  ASSERT_TRUE(succeeded(backward));
  ASSERT_EQ(backward->seedArguments.size(), 1u);
  EXPECT_EQ(backward->seedArguments[0], result(0));
  // Saved: x (for dW1), h (for dW2) and the tanh output.
  EXPECT_EQ(backward->savedValues.size(), 3u);
  EXPECT_EQ(backward->function.getNumArguments(), 4u);
  // The gradient of x is returned, parameters are sunk in reverse order.
  EXPECT_EQ(backward->argumentGradients, SmallVector<unsigned>({0}));
  EXPECT_EQ(backward->function.getNumResults(), 1u);
  EXPECT_EQ(sunk, SmallVector<std::string>({"w2", "w1"}));
  EXPECT_TRUE(succeeded(verify(*module)));
}

TEST_F(AutodiffTest, BuiltSeedLivesInTheProducersBackwardLayer) {
  ASSERT_TRUE(module);
  int built = 0;
  Operation *seedOwner = nullptr;
  AutodiffOptions options;
  options.backwardName = "stage_backward";
  options.parameterGradient = [](OpBuilder &, Location, ParameterOp, Value) {
    return success();
  };
  GradientSeed seed{
      result(0), [&](OpBuilder &builder, Location loc) -> Value {
        ++built;
        Value one = buildScalar(builder, loc, 1.0, builder.getF32Type());
        seedOwner = one.getDefiningOp()->getParentOp();
        return buildZeros(builder, loc,
                          RankedTensorType::get({2, 4}, builder.getF32Type()));
      }};
  FailureOr<BackwardFunction> backward = buildBackward(stage(), seed, options);
  ASSERT_TRUE(succeeded(backward));
  EXPECT_EQ(built, 1);
  EXPECT_TRUE(backward->seedArguments.empty());
  auto layer = dyn_cast_or_null<LayerOp>(seedOwner);
  ASSERT_TRUE(layer);
  EXPECT_TRUE(layer.getBackward());
  EXPECT_EQ(layer.getLayerName(), "second");
}

TEST_F(AutodiffTest, ParameterGradientsNeedASink) {
  ASSERT_TRUE(module);
  std::string messages;
  ScopedDiagnosticHandler handler(&context, [&](Diagnostic &diagnostic) {
    messages += diagnostic.str();
    return success();
  });
  AutodiffOptions options;
  options.backwardName = "stage_backward";
  EXPECT_TRUE(failed(
      buildBackward(stage(), GradientSeed{result(0), nullptr}, options)));
  EXPECT_NE(messages.find("computes the gradient of @w2 but autodiff was "
                          "given no sink for it"),
            std::string::npos)
      << messages;
}

} // namespace
