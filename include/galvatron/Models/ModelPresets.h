//===- ModelPresets.h - Built-in model configurations -----------*- C++ -*-===//
//
// The model zoo: GPT-2/GPT-3 style, LLaMA, BERT, T5 and ViT configurations
// that `galvatron-translate --model=NAME` turns into galvatron IR.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_MODELS_MODELPRESETS_H
#define GALVATRON_MODELS_MODELPRESETS_H

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <optional>
#include <string>

namespace mlir::galvatron {

enum class ModelFamily {
  /// GPT-2 / GPT-3: learned positions, pre-LN, tanh GELU, tied LM head.
  GPT,
  /// LLaMA: RMSNorm, rotary embeddings, grouped-query attention, SwiGLU.
  LLaMA,
  /// BERT: post-LN encoder, token types, padding mask, erf GELU, pooler.
  BERT,
  /// T5: RMSNorm encoder-decoder, relative position bias, cross-attention.
  T5,
  /// ViT: patch embedding, class token, pre-LN encoder, classifier.
  ViT,
};

llvm::StringRef stringifyModelFamily(ModelFamily family);
std::optional<ModelFamily> symbolizeModelFamily(llvm::StringRef name);

/// What follows the transformer blocks.
enum class ModelHead {
  /// The family's head: the LM head (GPT, LLaMA, T5), the classifier on
  /// the class token (ViT), and for BERT the presets' pooler plus logits
  /// through the tied word embedding.
  standard,
  /// Only the pooler (Hugging Face's BertModel and ViTModel): the outputs
  /// are last_hidden_state and pooler_output, and parameter names have no
  /// "bert." / "vit." prefix.
  pooler,
  /// BertForMaskedLM's prediction head: dense, activation, LayerNorm, and
  /// the tied word embedding plus a bias (no pooler).
  maskedLM,
};

struct ModelConfig {
  std::string name;
  ModelFamily family;
  /// Transformer blocks (for T5, per stack: encoder and decoder each).
  int64_t layers;
  int64_t hidden;
  int64_t heads;
  /// Key/value heads (grouped-query attention when < heads).
  int64_t kvHeads;
  int64_t ffnHidden;
  int64_t vocab;
  /// Learned position table size (GPT, BERT); 0 when positions are not
  /// learned.
  int64_t maxPositions;
  /// Default sequence length (tokens; ViT derives it from the image).
  int64_t seqLen;
  /// LM head shares the token embedding.
  bool tiedHead;
  double normEpsilon;
  /// ViT only.
  int64_t imageSize = 0, patchSize = 0, channels = 0, classes = 0;
  /// T5 only.
  int64_t relativeBuckets = 0, relativeMaxDistance = 0;
  /// BERT only.
  int64_t tokenTypes = 0;

  // Variants of the family's architecture (from Hugging Face configs). The
  // optional ones default to the family's own architecture; see the
  // accessors below.

  /// Width of one attention head (LLaMA's head_dim, T5's d_kv); 0 =
  /// hidden / heads.
  int64_t headDimension = 0;
  /// Rotary embedding base (LLaMA family).
  double ropeTheta = 10000.0;
  /// Biases of the query/key/value projections, the attention output
  /// projection and the feed-forward linears (GPT, BERT, ViT: all;
  /// LLaMA, T5: none).
  std::optional<bool> qkvBias, outputBias, mlpBias;
  /// The feed-forward activation (GPT: tanh GELU, LLaMA: SiLU, BERT and
  /// ViT: GELU, T5: ReLU).
  std::optional<Activation> activation;
  /// T5: a gated feed-forward (wi_0 activated times wi_1, T5 v1.1).
  /// LLaMA's is always gated.
  bool gatedFeedForward = false;
  ModelHead head = ModelHead::standard;
  /// GPT-2: scale attention scores by 1/sqrt(head dim) (scale_attn_weights)
  /// and further by 1/(layer index + 1) (scale_attn_by_inverse_layer_idx).
  bool scaleAttention = true, scaleByInverseLayer = false;
  /// Sliding-window attention span (Mistral); 0 = none. Only sequences that
  /// fit in the window are supported (where it changes nothing).
  int64_t slidingWindow = 0;
  /// Standard deviation of normally initialized weights (initializer_range).
  double initStd = 0.02;
  /// Dropout probabilities (training only). `embeddingDropout`: the
  /// embeddings' output (GPT-2's embd_pdrop; BERT's, ViT's and T5's
  /// hidden dropout). `hiddenDropout`: each residual branch (GPT-2's
  /// resid_pdrop, BERT's and ViT's hidden_dropout_prob, T5's dropout_rate,
  /// which also drops the feed-forward's activation and each stack's
  /// output). LLaMA builds none. `attentionDropout`: the attention
  /// probabilities (attn_pdrop, attention_probs_dropout_prob, T5's
  /// dropout_rate, LLaMA's attention_dropout), dropped inside the attention op.
  double embeddingDropout = 0.0, hiddenDropout = 0.0, attentionDropout = 0.0;

  int64_t headDim() const {
    return headDimension ? headDimension : hidden / heads;
  }
  bool hasQkvBias() const;
  bool hasOutputBias() const;
  bool hasMlpBias() const;
  Activation getActivation() const;
  /// Whether the feed-forward block is gated (LLaMA's SwiGLU, T5 v1.1).
  bool isGated() const {
    return family == ModelFamily::LLaMA || gatedFeedForward;
  }
};

/// Sizes the generated IR is specialized to.
struct ModelShape {
  int64_t batch = 1;
  /// 0 selects the preset's default.
  int64_t seqLen = 0;
};

/// All presets, in the order `--list-models` prints them.
llvm::ArrayRef<ModelConfig> getModelPresets();

/// The preset named `name`, or null.
const ModelConfig *findModelPreset(llvm::StringRef name);

/// Parameters of `config` by closed-form formula, independent of the IR.
int64_t countPresetParameters(const ModelConfig &config);

/// Sets every dropout probability of `config` to `probability` (the
/// --dropout option); fails outside [0, 1).
llvm::Error setDropout(ModelConfig &config, double probability);

/// Checks that `config`'s dimensions are consistent (positive sizes, heads
/// dividing the hidden size, key/value heads dividing the heads, ...);
/// returns a message naming the first problem, or "".
std::string checkModelConfig(const ModelConfig &config);

/// Builds the forward graph of `config` as a module: parameter declarations
/// and one function `@main` whose ops all live in layers. Fails with a
/// message when `shape` does not suit the model.
llvm::Expected<OwningOpRef<ModuleOp>>
buildModel(MLIRContext *context, const ModelConfig &config, ModelShape shape);

} // namespace mlir::galvatron

#endif // GALVATRON_MODELS_MODELPRESETS_H
