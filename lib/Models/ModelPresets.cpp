//===- ModelPresets.cpp - Built-in model configurations -------------------===//
//
// Dimensions follow the published configurations: GPT-2 (Radford et al.),
// GPT-3 (Brown et al., Table 2.1; Galvatron's gpt-0.3b..6.7b use GPT-2's
// architecture at these sizes), Llama 2 (Touvron et al.), BERT (Devlin et
// al.), T5 v1.0 (Raffel et al.) and ViT (Dosovitskiy et al.). The *-tiny
// presets are small models of each family for tests and demos.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Models/ModelPresets.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::galvatron;

StringRef mlir::galvatron::stringifyModelFamily(ModelFamily family) {
  switch (family) {
  case ModelFamily::GPT:
    return "gpt";
  case ModelFamily::LLaMA:
    return "llama";
  case ModelFamily::BERT:
    return "bert";
  case ModelFamily::T5:
    return "t5";
  case ModelFamily::ViT:
    return "vit";
  }
  llvm_unreachable("unknown model family");
}

static ModelConfig gpt(const char *name, int64_t layers, int64_t hidden,
                       int64_t heads, int64_t seqLen = 1024,
                       int64_t vocab = 50257) {
  return ModelConfig{
      name,  ModelFamily::GPT, layers, hidden, heads, heads, 4 * hidden,
      vocab, seqLen,           seqLen, true,   1e-5};
}

static ModelConfig llama(const char *name, int64_t layers, int64_t hidden,
                         int64_t heads, int64_t kvHeads, int64_t ffn,
                         int64_t seqLen = 4096, int64_t vocab = 32000) {
  return ModelConfig{name,   ModelFamily::LLaMA,
                     layers, hidden,
                     heads,  kvHeads,
                     ffn,    vocab,
                     0,      seqLen,
                     false,  1e-5};
}

static ModelConfig bert(const char *name, int64_t layers, int64_t hidden,
                        int64_t heads, int64_t seqLen = 512,
                        int64_t vocab = 30522, int64_t positions = 512) {
  ModelConfig config{
      name,  ModelFamily::BERT, layers, hidden, heads, heads, 4 * hidden,
      vocab, positions,         seqLen, true,   1e-12};
  config.tokenTypes = 2;
  return config;
}

static ModelConfig t5(const char *name, int64_t layers, int64_t hidden,
                      int64_t heads, int64_t seqLen = 512,
                      int64_t vocab = 32128) {
  ModelConfig config{name,       ModelFamily::T5, layers, hidden, heads, heads,
                     4 * hidden, vocab,           0,      seqLen, true,  1e-6};
  config.relativeBuckets = 32;
  config.relativeMaxDistance = 128;
  return config;
}

static ModelConfig vit(const char *name, int64_t layers, int64_t hidden,
                       int64_t heads, int64_t patch, int64_t image = 224,
                       int64_t classes = 1000) {
  int64_t tokens = (image / patch) * (image / patch) + 1;
  ModelConfig config{
      name, ModelFamily::ViT, layers, hidden, heads, heads, 4 * hidden,
      0,    tokens,           tokens, false,  1e-12};
  config.imageSize = image;
  config.patchSize = patch;
  config.channels = 3;
  config.classes = classes;
  return config;
}

ArrayRef<ModelConfig> mlir::galvatron::getModelPresets() {
  static const std::vector<ModelConfig> presets = {
      // Galvatron's GPT configurations.
      gpt("gpt-0.3b", 24, 1024, 16),
      gpt("gpt-1.5b", 48, 1600, 32),
      gpt("gpt-2.7b", 32, 2560, 32),
      gpt("gpt-6.7b", 32, 4096, 32),
      // OpenAI GPT-2.
      gpt("gpt2-small", 12, 768, 12),
      gpt("gpt2-medium", 24, 1024, 16),
      gpt("gpt2-large", 36, 1280, 20),
      gpt("gpt2-xl", 48, 1600, 25),
      // GPT-3 175B.
      gpt("gpt3-175b", 96, 12288, 96, 2048),
      // Llama 2.
      llama("llama2-7b", 32, 4096, 32, 32, 11008),
      llama("llama2-13b", 40, 5120, 40, 40, 13824),
      llama("llama2-70b", 80, 8192, 64, 8, 28672),
      // BERT.
      bert("bert-base", 12, 768, 12),
      bert("bert-large", 24, 1024, 16),
      // T5 v1.0.
      t5("t5-base", 12, 768, 12),
      t5("t5-large", 24, 1024, 16),
      // ViT.
      vit("vit-base", 12, 768, 12, 16),
      vit("vit-large", 24, 1024, 16, 16),
      vit("vit-huge", 32, 1280, 16, 14),
      // Small models of each family for tests and demos.
      gpt("gpt-tiny", 2, 64, 4, 64, 256),
      llama("llama-tiny", 2, 64, 4, 2, 176, 64, 256),
      bert("bert-tiny", 2, 64, 4, 32, 256, 64),
      t5("t5-tiny", 2, 64, 4, 32, 256),
      vit("vit-tiny", 2, 64, 4, 8, 32, 10),
  };
  return presets;
}

const ModelConfig *mlir::galvatron::findModelPreset(StringRef name) {
  for (const ModelConfig &config : getModelPresets())
    if (config.name == name)
      return &config;
  return nullptr;
}

int64_t mlir::galvatron::countPresetParameters(const ModelConfig &c) {
  int64_t h = c.hidden, f = c.ffnHidden, l = c.layers;
  // Pre- or post-LN block with biased q/k/v/o and a two-matrix MLP.
  int64_t biasedBlock = 4 * h * h + 2 * h * f + 9 * h + f;
  switch (c.family) {
  case ModelFamily::GPT:
    return c.vocab * h * (c.tiedHead ? 1 : 2) + c.maxPositions * h +
           l * biasedBlock + 2 * h;
  case ModelFamily::LLaMA: {
    int64_t kv = c.kvHeads * c.headDim();
    int64_t block = 2 * h * h + 2 * h * kv + 3 * h * f + 2 * h;
    return 2 * c.vocab * h + l * block + h;
  }
  case ModelFamily::BERT:
    return (c.vocab + c.maxPositions + c.tokenTypes) * h + 2 * h +
           l * biasedBlock + h * h + h;
  case ModelFamily::T5: {
    int64_t bias = c.relativeBuckets * c.heads;
    int64_t encoder = l * (4 * h * h + 2 * h * f + 2 * h) + bias + h;
    int64_t decoder = l * (8 * h * h + 2 * h * f + 3 * h) + bias + h;
    return c.vocab * h + encoder + decoder;
  }
  case ModelFamily::ViT:
    return h * c.channels * c.patchSize * c.patchSize + h + h +
           c.maxPositions * h + l * biasedBlock + 2 * h + h * c.classes +
           c.classes;
  }
  llvm_unreachable("unknown model family");
}
