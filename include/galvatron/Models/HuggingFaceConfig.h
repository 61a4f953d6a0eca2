//===- HuggingFaceConfig.h - Models from Hugging Face configs ---*- C++ -*-===//
//
// Reads a Hugging Face `config.json` into a ModelConfig. `architectures`
// picks the family and head:
//
//   GPT2LMHeadModel                                   gpt
//   LlamaForCausalLM, MistralForCausalLM,
//   Qwen2ForCausalLM                                  llama
//   BertModel, BertForMaskedLM                        bert
//   T5ForConditionalGeneration                        t5
//   ViTModel, ViTForImageClassification               vit
//
// Absent fields take the defaults of the architecture's configuration
// class. Every field is accounted for: dimensions and variants that the
// builder implements are read; metadata (token ids, labels, generation
// settings, dtypes) is ignored; dropout probabilities are built (the
// attention probabilities' inside the attention op); anything else, and
// values of known fields that would change the math in ways the builder
// does not implement (rope_scaling, relative_key positions, pruned heads,
// ...), is an error naming the field.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_MODELS_HUGGINGFACECONFIG_H
#define GALVATRON_MODELS_HUGGINGFACECONFIG_H

#include "galvatron/Models/ModelPresets.h"

#include "llvm/ADT/SmallVector.h"

namespace mlir::galvatron {

struct HuggingFaceModel {
  ModelConfig config;
};

/// Parses the text of a config.json; `source` names it in errors and
/// `name` becomes the model's name.
llvm::Expected<HuggingFaceModel>
parseHuggingFaceConfig(llvm::StringRef text, llvm::StringRef source,
                       llvm::StringRef name);

/// Reads `path`; the model is named after the file's directory when the
/// file is `config.json`, otherwise after the file without its extension.
llvm::Expected<HuggingFaceModel> loadHuggingFaceConfig(llvm::StringRef path);

/// The architectures `parseHuggingFaceConfig` accepts.
llvm::ArrayRef<llvm::StringRef> getHuggingFaceArchitectures();

} // namespace mlir::galvatron

#endif // GALVATRON_MODELS_HUGGINGFACECONFIG_H
