//===- ModelPresets.cpp - Built-in model configurations -------------------===//
//
// Dimensions follow the published configurations: GPT-2 (Radford et al.),
// GPT-3 (Brown et al., Table 2.1; Galvatron's gpt-0.3b..6.7b use GPT-2's
// architecture at these sizes), Llama 2 (Touvron et al.), BERT (Devlin et
// al.), T5 v1.0 (Raffel et al.) and ViT (Dosovitskiy et al.). So do the
// training dropout probabilities: 0.1 on GPT-2's embeddings, residual
// branches and attention probabilities (also for Galvatron's gpt-* presets,
// GPT-2's architecture, and GPT-3, as Megatron-LM, whose hidden_dropout and
// attention_dropout default to 0.1), BERT's hidden_dropout_prob and
// attention_probs_dropout_prob 0.1, T5's dropout_rate 0.1, ViT-B and ViT-L
// 0.1 (their ImageNet-21k pre-training, Dosovitskiy et al. Table 3; ViT-H
// was trained on JFT only, with none), Llama none. The *-tiny presets are
// small models of each family for tests and demos, built without dropout
// (--dropout adds it) so that tests compare against references without
// masks.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Models/ModelPresets.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/raw_ostream.h"

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

std::optional<ModelFamily>
mlir::galvatron::symbolizeModelFamily(StringRef name) {
  for (ModelFamily family : {ModelFamily::GPT, ModelFamily::LLaMA,
                             ModelFamily::BERT, ModelFamily::T5,
                             ModelFamily::ViT})
    if (stringifyModelFamily(family) == name)
      return family;
  return std::nullopt;
}

/// GPT, BERT and ViT bias every linear layer; LLaMA and T5 none.
static bool biasedByDefault(ModelFamily family) {
  return family == ModelFamily::GPT || family == ModelFamily::BERT ||
         family == ModelFamily::ViT;
}

bool ModelConfig::hasQkvBias() const {
  return qkvBias.value_or(biasedByDefault(family));
}
bool ModelConfig::hasOutputBias() const {
  return outputBias.value_or(biasedByDefault(family));
}
bool ModelConfig::hasMlpBias() const {
  return mlpBias.value_or(biasedByDefault(family));
}

Activation ModelConfig::getActivation() const {
  if (activation)
    return *activation;
  switch (family) {
  case ModelFamily::GPT:
    return Activation::gelu_tanh;
  case ModelFamily::LLaMA:
    return Activation::silu;
  case ModelFamily::T5:
    return Activation::relu;
  case ModelFamily::BERT:
  case ModelFamily::ViT:
    return Activation::gelu;
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

/// `config` trained with dropout `probability` everywhere its architecture
/// has dropout.
static ModelConfig withDropout(ModelConfig config, double probability) {
  config.embeddingDropout = config.hiddenDropout = config.attentionDropout =
      probability;
  return config;
}

ArrayRef<ModelConfig> mlir::galvatron::getModelPresets() {
  static const std::vector<ModelConfig> presets = {
      // Galvatron's GPT configurations.
      withDropout(gpt("gpt-0.3b", 24, 1024, 16), 0.1),
      withDropout(gpt("gpt-1.5b", 48, 1600, 32), 0.1),
      // Galvatron's gpt-2.7b and gpt-6.7b have 2048 positions.
      withDropout(gpt("gpt-2.7b", 32, 2560, 32, 2048), 0.1),
      withDropout(gpt("gpt-6.7b", 32, 4096, 32, 2048), 0.1),
      // OpenAI GPT-2.
      withDropout(gpt("gpt2-small", 12, 768, 12), 0.1),
      withDropout(gpt("gpt2-medium", 24, 1024, 16), 0.1),
      withDropout(gpt("gpt2-large", 36, 1280, 20), 0.1),
      withDropout(gpt("gpt2-xl", 48, 1600, 25), 0.1),
      // GPT-3 175B.
      withDropout(gpt("gpt3-175b", 96, 12288, 96, 2048), 0.1),
      // Llama 2.
      llama("llama2-7b", 32, 4096, 32, 32, 11008),
      llama("llama2-13b", 40, 5120, 40, 40, 13824),
      llama("llama2-70b", 80, 8192, 64, 8, 28672),
      // BERT.
      withDropout(bert("bert-base", 12, 768, 12), 0.1),
      withDropout(bert("bert-large", 24, 1024, 16), 0.1),
      // T5 v1.0.
      withDropout(t5("t5-base", 12, 768, 12), 0.1),
      withDropout(t5("t5-large", 24, 1024, 16), 0.1),
      // ViT.
      withDropout(vit("vit-base", 12, 768, 12, 16), 0.1),
      withDropout(vit("vit-large", 24, 1024, 16, 16), 0.1),
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
  int64_t h = c.hidden, f = c.ffnHidden, l = c.layers, v = c.vocab;
  int64_t inner = c.heads * c.headDim(), kv = c.kvHeads * c.headDim();
  // Self-attention: q, k, v and the output projection.
  int64_t attention = h * inner + 2 * h * kv + inner * h +
                      (c.hasQkvBias() ? inner + 2 * kv : 0) +
                      (c.hasOutputBias() ? h : 0);
  int64_t feedForward = (c.isGated() ? 3 : 2) * h * f +
                        (c.hasMlpBias() ? (c.isGated() ? 2 : 1) * f + h : 0);
  int64_t layerNorm = 2 * h, rmsNorm = h;
  int64_t untiedHead = c.tiedHead ? 0 : v * h;
  switch (c.family) {
  case ModelFamily::GPT:
    return v * h + untiedHead + c.maxPositions * h +
           l * (attention + feedForward + 2 * layerNorm) + layerNorm;
  case ModelFamily::LLaMA:
    return v * h + untiedHead + l * (attention + feedForward + 2 * rmsNorm) +
           rmsNorm;
  case ModelFamily::BERT: {
    int64_t embeddings =
        (v + c.maxPositions + c.tokenTypes) * h + layerNorm;
    int64_t pooler = h * h + h;
    int64_t head = c.head == ModelHead::maskedLM
                       ? h * h + h + layerNorm + v // transform, decoder bias
                       : pooler;
    return embeddings + l * (attention + feedForward + 2 * layerNorm) + head;
  }
  case ModelFamily::T5: {
    int64_t bias = c.relativeBuckets * c.heads;
    int64_t encoder = l * (attention + feedForward + 2 * rmsNorm) + bias +
                      rmsNorm;
    int64_t decoder = l * (2 * attention + feedForward + 3 * rmsNorm) + bias +
                      rmsNorm;
    return v * h + untiedHead + encoder + decoder;
  }
  case ModelFamily::ViT: {
    int64_t embeddings = h * c.channels * c.patchSize * c.patchSize + h +
                         h + c.maxPositions * h;
    int64_t head = c.head == ModelHead::pooler ? h * h + h
                                                : h * c.classes + c.classes;
    return embeddings + l * (attention + feedForward + 2 * layerNorm) +
           layerNorm + head;
  }
  }
  llvm_unreachable("unknown model family");
}

llvm::Error mlir::galvatron::setDropout(ModelConfig &config,
                                        double probability) {
  if (!(probability >= 0.0 && probability < 1.0))
    return makeError(llvm::formatv(
        "--dropout must be a probability in [0, 1), got {0}", probability));
  config = withDropout(std::move(config), probability);
  return llvm::Error::success();
}

std::string mlir::galvatron::checkModelConfig(const ModelConfig &c) {
  auto positive = [](int64_t value) { return value > 0; };
  std::string message;
  llvm::raw_string_ostream os(message);
  if (!positive(c.layers))
    os << "the layer count must be positive, got " << c.layers;
  else if (!positive(c.hidden))
    os << "the hidden size must be positive, got " << c.hidden;
  else if (!positive(c.heads))
    os << "the head count must be positive, got " << c.heads;
  else if (!c.headDimension && c.hidden % c.heads != 0)
    os << c.heads << " heads do not divide the hidden size " << c.hidden;
  else if (c.headDimension < 0)
    os << "the head dimension must be positive, got " << c.headDimension;
  else if (!positive(c.kvHeads) || c.heads % c.kvHeads != 0)
    os << c.kvHeads << " key/value heads do not divide the " << c.heads
       << " heads";
  else if (c.family != ModelFamily::LLaMA && c.kvHeads != c.heads)
    os << "grouped-query attention (" << c.kvHeads << " key/value heads for "
       << c.heads << " heads) exists only in the llama family";
  else if (!positive(c.ffnHidden))
    os << "the feed-forward size must be positive, got " << c.ffnHidden;
  else if (c.family != ModelFamily::ViT && !positive(c.vocab))
    os << "the vocabulary size must be positive, got " << c.vocab;
  else if ((c.family == ModelFamily::GPT || c.family == ModelFamily::BERT) &&
           !positive(c.maxPositions))
    os << "the position table size must be positive, got " << c.maxPositions;
  else if (c.family != ModelFamily::ViT && !positive(c.seqLen))
    os << "the sequence length must be positive, got " << c.seqLen;
  else if (c.family == ModelFamily::LLaMA && c.headDim() % 2 != 0)
    os << "rotary embeddings need an even head dimension, got "
       << c.headDim();
  else if (c.family == ModelFamily::ViT &&
           (!positive(c.patchSize) || !positive(c.imageSize) ||
            c.imageSize % c.patchSize != 0))
    os << "the patch size " << c.patchSize
       << " must divide the image size " << c.imageSize;
  else if (c.family == ModelFamily::ViT && c.head == ModelHead::standard &&
           !positive(c.classes))
    os << "the class count must be positive, got " << c.classes;
  else if (c.family == ModelFamily::T5 &&
           (!positive(c.relativeBuckets) || !positive(c.relativeMaxDistance)))
    os << "T5's relative attention needs positive bucket count and distance";
  else if (c.family == ModelFamily::BERT && !positive(c.tokenTypes))
    os << "the token type count must be positive, got " << c.tokenTypes;
  else if (c.head == ModelHead::maskedLM && c.family != ModelFamily::BERT)
    os << "a masked-LM head exists only for BERT";
  else if (c.head == ModelHead::pooler && c.family != ModelFamily::BERT &&
           c.family != ModelFamily::ViT)
    os << "a pooler head exists only for BERT and ViT";
  return message;
}
