//===- GalvatronStrategyTest.cpp - Galvatron strategy JSON ----------------===//

#include "galvatron/Analysis/GalvatronStrategy.h"
#include "galvatron/Analysis/GalvatronProfiles.h"
#include "galvatron/Models/ModelPresets.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/FormatVariadic.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

namespace {

ModelProfile gptTiny(MLIRContext &context) {
  auto module = buildModel(&context, *findModelPreset("gpt-tiny"), {1, 0});
  return std::move(*ModelProfile::build(**module));
}

constexpr const char *kStrategy = R"({
  "pp_deg": 2, "tp_sizes_enc": "2,1", "tp_consecutive_flags": "1,1",
  "dp_types_enc": "0,1", "use_sp": "1,0", "checkpoint": "0,1",
  "global_bsz": 16, "chunks": 4, "pp_division": "1,1",
  "pipeline_type": "pipedream_flush", "default_dp_type": "zero2",
  "vtp": 2, "vsp": 0, "embed_sdp": 1})";

TEST(GalvatronStrategyTest, ReadsEveryField) {
  MLIRContext context;
  ModelProfile model = gptTiny(context);
  auto plan = parseGalvatronStrategy(kStrategy, "s.json", model, 8, 8,
                                     Precision::bf16);
  ASSERT_TRUE(bool(plan)) << llvm::toString(plan.takeError());
  EXPECT_EQ(plan->pp, 2);
  EXPECT_EQ(plan->microBatches, 4);
  EXPECT_EQ(plan->globalBatch, 16);
  // embedding, h.0 (use_sp: Ulysses on its 2 ranks), h.1, head
  EXPECT_EQ(plan->layers[0], (LayerStrategy{0, 2, true, DataParallelType::zero3,
                                            false, false}));
  EXPECT_EQ(plan->layers[1], (LayerStrategy{0, 2, true, DataParallelType::zero2,
                                            false, false, true}));
  EXPECT_EQ(plan->layers[2], (LayerStrategy{1, 1, true, DataParallelType::zero3,
                                            false, true}));
  EXPECT_EQ(plan->layers[3].stage, 1);
  EXPECT_EQ(plan->layers[3].tp, 2);
  // Galvatron's --sequence-parallel: Megatron SP in every TP layer.
  auto megatron = parseGalvatronStrategy(kStrategy, "s.json", model, 8, 8,
                                         Precision::bf16,
                                         /*megatronSequenceParallel=*/true);
  ASSERT_TRUE(bool(megatron)) << llvm::toString(megatron.takeError());
  EXPECT_TRUE(megatron->layers[0].sp);
  EXPECT_FALSE(megatron->layers[1].sp);
  EXPECT_TRUE(megatron->layers[1].ulysses);
  EXPECT_FALSE(megatron->layers[2].sp);
}

TEST(GalvatronStrategyTest, RoundTrips) {
  MLIRContext context;
  ModelProfile model = gptTiny(context);
  auto plan = parseGalvatronStrategy(kStrategy, "s.json", model, 8, 8,
                                     Precision::bf16);
  ASSERT_TRUE(bool(plan));
  auto json = writeGalvatronStrategy(*plan, model);
  ASSERT_TRUE(bool(json)) << llvm::toString(json.takeError());
  std::string text;
  llvm::raw_string_ostream(text) << llvm::json::Value(std::move(*json));
  auto again = parseGalvatronStrategy(text, "again.json", model, 8, 8,
                                      Precision::bf16);
  ASSERT_TRUE(bool(again)) << llvm::toString(again.takeError());
  EXPECT_EQ(again->layers, plan->layers);
  EXPECT_EQ(again->microBatches, plan->microBatches);
}

std::string errorOf(MLIRContext &context, llvm::StringRef text) {
  ModelProfile model = gptTiny(context);
  auto plan = parseGalvatronStrategy(text, "s.json", model, 8, 8,
                                     Precision::bf16);
  if (plan)
    return "";
  return llvm::toString(plan.takeError());
}

TEST(GalvatronStrategyTest, Errors) {
  MLIRContext context;
  EXPECT_NE(errorOf(context, "[1]").find("must be a JSON object"),
            std::string::npos);
  EXPECT_NE(errorOf(context, R"({"pp_deg": 1, "global_bsz": 8, "gpus": 8})")
                .find("unknown key 'gpus'"),
            std::string::npos);
  EXPECT_NE(errorOf(context, R"({"global_bsz": 8})")
                .find("'pp_deg' is missing"),
            std::string::npos);
  EXPECT_NE(errorOf(context,
                    R"({"pp_deg": 1, "global_bsz": 8, "tp_sizes_enc": "1"})")
                .find("'tp_sizes_enc' has 1 entries but the model has 2"),
            std::string::npos);
  EXPECT_NE(errorOf(context, R"({"pp_deg": 1, "global_bsz": 8,
                                 "pipeline_type": "interleaved"})")
                .find("'pipeline_type' must be"),
            std::string::npos);
  EXPECT_NE(errorOf(context, R"({"pp_deg": 3, "global_bsz": 8})")
                .find("does not divide the 8 devices"),
            std::string::npos);
  EXPECT_NE(errorOf(context, R"({"pp_deg": 1, "global_bsz": 8, "vsp": 5})")
                .find("'vsp' must be an integer in [0, 1]"),
            std::string::npos);
  // tp 8 with 4 heads.
  EXPECT_NE(errorOf(context, R"({"pp_deg": 1, "global_bsz": 8,
                                 "tp_sizes_enc": "8,8"})")
                .find("4 heads do not divide among 8 ranks"),
            std::string::npos);
}

TEST(GalvatronStrategyTest, ExportNamesWhatItCannotExpress) {
  MLIRContext context;
  ModelProfile model = gptTiny(context);
  ParallelPlan plan;
  plan.devices = 8;
  plan.devicesPerNode = 8;
  plan.globalBatch = 8;
  ASSERT_EQ(assignStages(plan, model, {}), "");
  auto exportError = [&](const ParallelPlan &plan) {
    auto json = writeGalvatronStrategy(plan, model);
    return json ? std::string() : llvm::toString(json.takeError());
  };
  ParallelPlan mixed = plan;
  mixed.layers[2].dpType = DataParallelType::zero2;
  EXPECT_NE(exportError(mixed).find("one default_dp_type"), std::string::npos);
  // Galvatron's runtime has no ZeRO-1, and no per-layer Megatron SP.
  ParallelPlan zero1 = plan;
  zero1.layers[1].dpType = DataParallelType::zero1;
  EXPECT_NE(exportError(zero1).find("zero1, which Galvatron's runtime does "
                                    "not have"),
            std::string::npos);
  ParallelPlan megatron = plan;
  for (LayerStrategy &strategy : megatron.layers)
    strategy.tp = 2;
  megatron.layers[1].sp = true;
  EXPECT_NE(exportError(megatron).find("uses Megatron sequence parallelism"),
            std::string::npos);
  EXPECT_EQ(exportError(plan), "");
}

/// Forward seconds per sequence of layer `index` on one device.
double forwardPerSequence(const ModelProfile &model, unsigned index,
                          const ClusterSpec &cluster, int64_t batch) {
  StageContext context;
  context.cluster = &cluster;
  context.microBatch = batch;
  return evaluateLayer(model.layers[index], index, LayerStrategy{}, context)
             .forward /
         double(batch);
}

TEST(GalvatronProfilesTest, ComputationProfileScalesTheIRTimes) {
  // Blocks measured 3x and the layers outside them 2x the IR's times (in
  // milliseconds per sequence, at the model's sequence length): the
  // factors that fit the measurements.
  MLIRContext context;
  ModelProfile model = gptTiny(context);
  ClusterSpec cluster = *getClusterPreset("a100-80gb", 1);
  double block = forwardPerSequence(model, 1, cluster, 2);
  double other = forwardPerSequence(model, 0, cluster, 2) +
                 forwardPerSequence(model, 3, cluster, 2);
  std::string text = llvm::formatv(
      R"({{"layertype_0_bsz2_seq64": {0:e15}, "layertype_other_bsz2_seq64": {1:e15},
          "layertype_0_bsz4_seq2048": 1.0})",
      3000 * block, 2000 * other);
  auto root = llvm::json::parse(text);
  ASSERT_TRUE(bool(root)) << llvm::toString(root.takeError());
  ASSERT_TRUE(isGalvatronModelProfile(*root->getAsObject()));
  ASSERT_FALSE(bool(applyGalvatronModelProfile(
      model, *root->getAsObject(), "c.json", cluster, Precision::bf16)));
  EXPECT_NEAR(model.layers[1].computeScale, 3.0, 1e-9);
  EXPECT_NEAR(model.layers[2].computeScale, 3.0, 1e-9);
  EXPECT_NEAR(model.layers[0].computeScale, 2.0, 1e-9);
  EXPECT_NEAR(forwardPerSequence(model, 1, cluster, 2), 3 * block, 1e-12);
  // Unknown keys are named.
  auto bad = llvm::json::parse(R"({"layertype_0_bsz2_seq64": 1.0,
                                   "gpus": 8})");
  llvm::Error error = applyGalvatronModelProfile(
      model, *bad->getAsObject(), "c.json", cluster, Precision::bf16);
  ASSERT_TRUE(bool(error));
  EXPECT_NE(llvm::toString(std::move(error)).find("unknown key 'gpus'"),
            std::string::npos);
}

TEST(GalvatronProfilesTest, MemoryProfileReplacesBlockActivations) {
  // 8 MB per sequence at tp 1, 2 MB checkpointed: a block's activations on
  // a device of 4 sequences.
  MLIRContext context;
  ModelProfile model = gptTiny(context);
  ClusterSpec cluster = *getClusterPreset("a100-80gb", 1);
  auto root = llvm::json::parse(R"({
    "layertype_0": {"64": {"parameter_size": 1.0,
                           "tp_activation_per_bsz_dict": {"1": 8, "checkpoint": 2}}},
    "model_config": {"n_layers": 2}})");
  ASSERT_FALSE(bool(applyGalvatronModelProfile(
      model, *root->getAsObject(), "m.json", cluster, Precision::bf16)));
  StageContext stage;
  stage.cluster = &cluster;
  stage.microBatch = 4;
  double mb = double(1 << 20);
  EXPECT_DOUBLE_EQ(
      evaluateLayer(model.layers[1], 1, LayerStrategy{}, stage).activations,
      32 * mb);
  LayerStrategy checkpointed;
  checkpointed.ckpt = true;
  EXPECT_DOUBLE_EQ(
      evaluateLayer(model.layers[1], 1, checkpointed, stage).activations,
      8 * mb);
}

} // namespace
