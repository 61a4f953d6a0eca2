//===- ModelOptions.cpp - Choosing a model on the command line ------------===//

#include "galvatron/Models/ModelOptions.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::galvatron;
namespace cl = llvm::cl;

ModelOptions::ModelOptions(cl::OptionCategory &category)
    : model("model",
            cl::desc("A preset (galvatron-translate --list-models) or a "
                     "family to size with the dimension flags: gpt, llama, "
                     "bert, t5, vit"),
            cl::value_desc("name"), cl::cat(category)),
      config("config",
             cl::desc("A Hugging Face config.json (GPT-2, LLaMA, Mistral, "
                      "Qwen2, BERT, T5, ViT)"),
             cl::value_desc("file"), cl::cat(category)),
      layers("layers",
             cl::desc("Transformer blocks (T5: per stack)"),
             cl::value_desc("N"), cl::cat(category)),
      hidden("hidden", cl::desc("Hidden size"), cl::value_desc("N"),
             cl::cat(category)),
      heads("heads", cl::desc("Attention heads"), cl::value_desc("N"),
            cl::cat(category)),
      kvHeads("kv-heads",
              cl::desc("Key/value heads (llama: grouped-query attention; "
                       "default: the heads)"),
              cl::value_desc("N"), cl::cat(category)),
      ffn("ffn", cl::desc("Feed-forward size"), cl::value_desc("N"),
          cl::cat(category)),
      vocab("vocab", cl::desc("Vocabulary size"), cl::value_desc("N"),
            cl::cat(category)),
      positions("positions",
                cl::desc("Learned positions (gpt, bert)"),
                cl::value_desc("N"), cl::cat(category)),
      dropout("dropout",
              cl::desc("Dropout probability of every dropout site of "
                       "the model while training (default: the "
                       "architecture's)"),
              cl::value_desc("P"), cl::cat(category)) {}

bool ModelOptions::hasModel() const {
  return !model.empty() || !config.empty();
}

/// What a family starts from before --layers/--hidden/--heads.
static std::optional<ModelConfig> getFamilyBase(StringRef name) {
  static constexpr std::pair<StringRef, StringRef> bases[] = {
      {"gpt", "gpt2-small"}, {"llama", "llama2-7b"}, {"bert", "bert-base"},
      {"t5", "t5-base"},     {"vit", "vit-base"}};
  for (auto [family, preset] : bases)
    if (family == name) {
      ModelConfig config = *findModelPreset(preset);
      config.name = family.str();
      return config;
    }
  return std::nullopt;
}

/// The family's feed-forward size for `hidden`.
static int64_t getDefaultFeedForward(ModelFamily family, int64_t hidden) {
  if (family != ModelFamily::LLaMA)
    return 4 * hidden;
  int64_t size = 8 * hidden / 3;
  return (size + 255) / 256 * 256;
}

llvm::Expected<HuggingFaceModel>
ModelOptions::getModel(int64_t seqLen) const {
  if (!model.empty() && !config.empty())
    return makeError("give either --model or --config, not both");
  HuggingFaceModel result;
  ModelConfig &c = result.config;
  bool family = false;
  if (!config.empty()) {
    auto loaded = loadHuggingFaceConfig(config);
    if (!loaded)
      return loaded.takeError();
    result = std::move(*loaded);
  } else if (std::optional<ModelConfig> base = getFamilyBase(model)) {
    c = *base;
    family = true;
  } else if (const ModelConfig *preset = findModelPreset(model)) {
    c = *preset;
  } else {
    return makeError("unknown model '" + model +
                     "'; --list-models lists the presets (families: gpt, "
                     "llama, bert, t5, vit)");
  }

  // The dimension flags, in order.
  struct Flag {
    const cl::opt<int64_t> &option;
    int64_t *field;
  };
  int64_t newPositions = c.maxPositions;
  bool multiHead = c.kvHeads == c.heads;
  Flag flags[] = {{layers, &c.layers},   {hidden, &c.hidden},
                  {heads, &c.heads},     {kvHeads, &c.kvHeads},
                  {ffn, &c.ffnHidden},   {vocab, &c.vocab},
                  {positions, &newPositions}};
  SmallVector<std::string> changed;
  for (Flag &flag : flags) {
    if (!flag.option.getNumOccurrences())
      continue;
    if (flag.option < 1)
      return makeError(llvm::formatv("--{0} must be positive, got {1}",
                                     flag.option.ArgStr,
                                     flag.option.getValue()));
    *flag.field = flag.option;
    changed.push_back(
        llvm::formatv("{0}={1}", flag.option.ArgStr, flag.option.getValue()));
  }
  if (family)
    for (const cl::opt<int64_t> *required : {&layers, &hidden, &heads})
      if (!required->getNumOccurrences())
        return makeError("--model=" + model + " is a family: give --layers, "
                         "--hidden and --heads (missing --" +
                         required->ArgStr + ")");
  bool learned =
      c.family == ModelFamily::GPT || c.family == ModelFamily::BERT;
  if (positions.getNumOccurrences() && !learned)
    return makeError("--positions sizes learned position tables (gpt, "
                     "bert); " +
                     stringifyModelFamily(c.family) +
                     (c.family == ModelFamily::ViT
                          ? " derives its positions from the image"
                          : " has no learned positions"));
  if (vocab.getNumOccurrences() && c.family == ModelFamily::ViT)
    return makeError("--vocab does not apply to vit (it reads pixels)");
  // A family's position table grows to the sequence unless given.
  if (learned && family && !positions.getNumOccurrences())
    newPositions = std::max(newPositions, seqLen);
  if (learned && newPositions != c.maxPositions) {
    c.maxPositions = newPositions;
    if (c.family == ModelFamily::GPT || c.seqLen > newPositions)
      c.seqLen = newPositions;
  }
  // Derived sizes follow the new dimensions unless given.
  if (hidden.getNumOccurrences() && !ffn.getNumOccurrences())
    c.ffnHidden = getDefaultFeedForward(c.family, c.hidden);
  if (heads.getNumOccurrences() && !kvHeads.getNumOccurrences() && multiHead)
    c.kvHeads = c.heads;
  if ((hidden.getNumOccurrences() || heads.getNumOccurrences()) &&
      c.family != ModelFamily::T5)
    c.headDimension = 0;
  if (dropout.getNumOccurrences())
    if (llvm::Error error = setDropout(c, dropout))
      return std::move(error);
  if (!changed.empty())
    c.name += "(" + llvm::join(changed, ", ") + ")";
  if (std::string problem = checkModelConfig(c); !problem.empty())
    return makeError(c.name + ": " + problem);
  return result;
}
