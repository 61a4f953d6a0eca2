//===- ModelPresets.h - Built-in model configurations -----------*- C++ -*-===//
//
// The model zoo: GPT-2/GPT-3 style, LLaMA, BERT, T5 and ViT configurations
// that `galvatron-translate --model=NAME` turns into galvatron IR.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_MODELS_MODELPRESETS_H
#define GALVATRON_MODELS_MODELPRESETS_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
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

  int64_t headDim() const { return hidden / heads; }
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

/// Builds the forward graph of `config` as a module: parameter declarations
/// and one function `@main` whose ops all live in layers. Fails with a
/// message when `shape` does not suit the model.
llvm::Expected<OwningOpRef<ModuleOp>>
buildModel(MLIRContext *context, const ModelConfig &config, ModelShape shape);

} // namespace mlir::galvatron

#endif // GALVATRON_MODELS_MODELPRESETS_H
