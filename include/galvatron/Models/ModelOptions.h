//===- ModelOptions.h - Choosing a model on the command line ----*- C++ -*-===//
//
// The options tools share to name a model: a preset or a family
// (--model=gpt-1.5b | gpt | llama | bert | t5 | vit) or a Hugging Face
// config (--config config.json), with dimensions that override it:
//
//   --layers N --hidden N --heads N [--kv-heads N] [--ffn N] [--vocab N]
//   [--positions N]
//
// A family needs --layers, --hidden and --heads; a preset or a config
// gives every dimension and the flags change some. Key/value heads follow
// --heads unless the model had grouped-query attention. When --hidden changes
// without --ffn, the feed-forward size follows the family's rule (4 x
// hidden; LLaMA: 8 x hidden / 3 rounded up to a multiple of 256).
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_MODELS_MODELOPTIONS_H
#define GALVATRON_MODELS_MODELOPTIONS_H

#include "galvatron/Models/HuggingFaceConfig.h"

#include "llvm/Support/CommandLine.h"

namespace mlir::galvatron {

class ModelOptions {
public:
  /// Registers the options in `category`; construct before parsing the
  /// command line.
  explicit ModelOptions(llvm::cl::OptionCategory &category);

  /// Whether --model or --config was given.
  bool hasModel() const;

  /// The model the options describe,
  /// for sequences of `seqLen` tokens (0: the model's default; a family's
  /// learned position table grows to it). Errors name the option or the
  /// config field.
  llvm::Expected<HuggingFaceModel> getModel(int64_t seqLen = 0) const;

  llvm::cl::opt<std::string> model;
  llvm::cl::opt<std::string> config;
  llvm::cl::opt<int64_t> layers, hidden, heads, kvHeads, ffn, vocab, positions;
  llvm::cl::opt<double> dropout;
};

} // namespace mlir::galvatron

#endif // GALVATRON_MODELS_MODELOPTIONS_H
