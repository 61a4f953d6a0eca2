//===- PresetsTest.cpp - Model presets against published figures ---------===//

#include "galvatron/Analysis/ModelStatistics.h"
#include "galvatron/Models/ModelPresets.h"

#include "mlir/IR/MLIRContext.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;

namespace {

ModelStatistics statisticsOf(MLIRContext &context, StringRef name,
                             ModelShape shape = {}) {
  const ModelConfig *config = findModelPreset(name);
  EXPECT_NE(config, nullptr) << name.str();
  auto module = buildModel(&context, *config, shape);
  EXPECT_TRUE(bool(module)) << llvm::toString(module.takeError());
  auto main = (*module)->lookupSymbol<func::FuncOp>("main");
  return ModelStatistics::compute(main);
}

// Counts published with each model (Hugging Face checkpoints; BERT with
// its pooler, GPT-2 with the LM head tied to the token embedding).
TEST(PresetsTest, ParameterCountsMatchPublishedFigures) {
  MLIRContext context;
  const std::pair<const char *, int64_t> published[] = {
      {"gpt2-small", 124439808},   {"gpt2-medium", 354823168},
      {"gpt2-large", 774030080},   {"gpt2-xl", 1557611200},
      {"llama2-7b", 6738415616},   {"llama2-13b", 13015864320},
      {"llama2-70b", 68976648192}, {"bert-base", 109482240},
      {"bert-large", 335141888},   {"t5-base", 222903552},
      {"t5-large", 737668096},     {"vit-base", 86567656},
      {"vit-large", 304326632},    {"vit-huge", 632045800},
  };
  for (auto [name, count] : published)
    EXPECT_EQ(statisticsOf(context, name).totalParameters, count) << name;
}

// The IR-derived count and the closed-form formula are independent
// computations; they must agree on every preset.
TEST(PresetsTest, IRCountEqualsClosedFormForEveryPreset) {
  MLIRContext context;
  for (const ModelConfig &config : getModelPresets())
    EXPECT_EQ(statisticsOf(context, config.name).totalParameters,
              countPresetParameters(config))
        << config.name;
}

// The same agreement on the architecture variants Hugging Face configs
// select: biases, head dims, gating, tied or untied heads, BERT and ViT
// heads.
TEST(PresetsTest, IRCountEqualsClosedFormForVariants) {
  MLIRContext context;
  auto check = [&](ModelConfig config, StringRef what) {
    auto module = buildModel(&context, config, {1, 0});
    ASSERT_TRUE(bool(module)) << what.str() << ": "
                              << llvm::toString(module.takeError());
    auto main = (**module).lookupSymbol<func::FuncOp>("main");
    EXPECT_EQ(ModelStatistics::compute(main).totalParameters,
              countPresetParameters(config))
        << what.str();
  };
  ModelConfig llama = *findModelPreset("llama-tiny");
  llama.qkvBias = true;
  check(llama, "llama with q/k/v biases");
  llama.outputBias = llama.mlpBias = true;
  llama.headDimension = 24;
  llama.tiedHead = true;
  check(llama, "llama with every bias, head_dim and a tied head");
  ModelConfig gpt = *findModelPreset("gpt-tiny");
  gpt.tiedHead = false;
  gpt.qkvBias = gpt.mlpBias = false;
  check(gpt, "gpt untied without biases");
  ModelConfig t5 = *findModelPreset("t5-tiny");
  t5.gatedFeedForward = true;
  t5.tiedHead = false;
  t5.headDimension = 8;
  check(t5, "gated t5 with narrow heads and an untied head");
  ModelConfig bert = *findModelPreset("bert-tiny");
  for (ModelHead head : {ModelHead::pooler, ModelHead::maskedLM}) {
    bert.head = head;
    check(bert, "bert head");
  }
  ModelConfig vit = *findModelPreset("vit-tiny");
  vit.head = ModelHead::pooler;
  vit.qkvBias = false;
  check(vit, "vit model without q/k/v biases");
}

TEST(PresetsTest, GPTLayerFlopsMatchFormula) {
  MLIRContext context;
  for (auto [name, batch, seq] :
       {std::tuple<const char *, int64_t, int64_t>{"gpt2-small", 1, 1024},
        {"gpt2-small", 4, 128},
        {"gpt-1.5b", 2, 1024},
        {"gpt3-175b", 1, 2048}}) {
    const ModelConfig *config = findModelPreset(name);
    ModelStatistics stats = statisticsOf(context, name, {batch, seq});
    int64_t b = batch, s = seq, h = config->hidden;
    int64_t expected = 24 * b * s * h * h + 4 * b * s * s * h;
    int64_t blocks = 0;
    for (const LayerStatistics &layer : stats.layers) {
      if (layer.kind != LayerKind::decoder)
        continue;
      ++blocks;
      EXPECT_EQ(layer.flops, expected) << name << " " << layer.name;
    }
    EXPECT_EQ(blocks, config->layers) << name;
  }
}

TEST(PresetsTest, TiedHeadIsCountedOnce) {
  MLIRContext context;
  ModelStatistics stats = statisticsOf(context, "gpt2-small");
  const LayerStatistics &head = stats.layers.back();
  EXPECT_EQ(head.kind, LayerKind::head);
  // ln_f only; the 50257x768 tied embedding is shared.
  EXPECT_EQ(head.parameters, 2 * 768);
  EXPECT_EQ(head.sharedParameters, 50257 * 768);
}

TEST(PresetsTest, LayersAreExplicit) {
  MLIRContext context;
  struct Expectation {
    const char *name;
    int64_t embeddings, encoders, decoders, heads, others;
  };
  for (Expectation e : {Expectation{"gpt2-small", 1, 0, 12, 1, 0},
                        {"llama2-7b", 1, 0, 32, 1, 0},
                        {"bert-base", 1, 12, 0, 1, 0},
                        {"t5-base", 2, 12, 12, 1, 1},
                        {"vit-base", 1, 12, 0, 1, 0}}) {
    int64_t counts[5] = {0, 0, 0, 0, 0};
    for (const LayerStatistics &layer : statisticsOf(context, e.name).layers)
      ++counts[static_cast<int>(layer.kind)];
    EXPECT_EQ(counts[int(LayerKind::embedding)], e.embeddings) << e.name;
    EXPECT_EQ(counts[int(LayerKind::encoder)], e.encoders) << e.name;
    EXPECT_EQ(counts[int(LayerKind::decoder)], e.decoders) << e.name;
    EXPECT_EQ(counts[int(LayerKind::head)], e.heads) << e.name;
    EXPECT_EQ(counts[int(LayerKind::other)], e.others) << e.name;
  }
}

TEST(PresetsTest, IRSizeDoesNotGrowWithParameters) {
  // Same depth, 256x the parameters: the IR text must stay within a few
  // percent (only dimension digits change).
  MLIRContext context;
  auto textOf = [&](StringRef name) {
    auto module = buildModel(&context, *findModelPreset(name), {});
    std::string text;
    llvm::raw_string_ostream os(text);
    (*module)->print(os);
    return text.size();
  };
  size_t small = textOf("gpt2-small"); // 12 layers, 768 hidden
  size_t tiny = textOf("gpt-tiny");    // 2 layers
  size_t perLayer = (small - tiny) / 10;
  EXPECT_LT(perLayer, 16384u);
  size_t huge = textOf("gpt3-175b"); // 96 layers, 12288 hidden
  EXPECT_LT(huge, 2 * 96 * perLayer);
}

TEST(PresetsTest, RejectsUnsuitableShapes) {
  MLIRContext context;
  auto expectError = [&](StringRef name, ModelShape shape, StringRef text) {
    auto module = buildModel(&context, *findModelPreset(name), shape);
    ASSERT_FALSE(bool(module));
    std::string message = llvm::toString(module.takeError());
    EXPECT_NE(message.find(text.str()), std::string::npos) << message;
  };
  expectError("gpt2-small", {1, 2048}, "exceeds the 1024 learned positions");
  expectError("bert-base", {0, 128}, "batch must be positive");
  expectError("vit-base", {1, 100}, "fixed by its image");
  ModelConfig windowed = *findModelPreset("llama-tiny");
  windowed.slidingWindow = 32;
  auto module = buildModel(&context, windowed, {1, 33});
  ASSERT_FALSE(bool(module));
  EXPECT_NE(llvm::toString(module.takeError()).find("sliding window of 32"),
            std::string::npos);
  EXPECT_TRUE(bool(buildModel(&context, windowed, {1, 32})));
  EXPECT_EQ(findModelPreset("no-such-model"), nullptr);
}

} // namespace
