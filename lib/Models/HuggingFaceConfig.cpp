//===- HuggingFaceConfig.cpp - Models from Hugging Face configs -----------===//
//
// Field names, defaults and meanings follow the configuration classes of
// Hugging Face transformers (GPT2Config, LlamaConfig, MistralConfig,
// Qwen2Config, BertConfig, T5Config, ViTConfig).
//
//===----------------------------------------------------------------------===//

#include "galvatron/Models/HuggingFaceConfig.h"
#include "galvatron/Support/Error.h"
#include "galvatron/Cluster/Cluster.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/WithColor.h"

using namespace mlir;
using namespace mlir::galvatron;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

static constexpr StringRef kArchitectures[] = {
    "GPT2LMHeadModel",  "LlamaForCausalLM",
    "MistralForCausalLM", "Qwen2ForCausalLM",
    "BertModel",        "BertForMaskedLM",
    "T5ForConditionalGeneration", "ViTModel",
    "ViTForImageClassification"};

ArrayRef<StringRef> mlir::galvatron::getHuggingFaceArchitectures() {
  return kArchitectures;
}

/// Fields of every configuration that do not describe the network:
/// identifiers, token ids, labels, dtypes, generation and output settings.
static constexpr StringRef kMetadata[] = {
    "_name_or_path", "architectures", "model_type", "transformers_version",
    "torch_dtype", "dtype", "use_cache", "bos_token_id", "eos_token_id",
    "pad_token_id", "sep_token_id", "decoder_start_token_id", "id2label",
    "label2id", "problem_type", "finetuning_task", "task_specific_params",
    "prefix", "output_hidden_states", "output_attentions", "return_dict",
    "torchscript", "use_bfloat16", "tf_legacy_loss", "tokenizer_class",
    "gradient_checkpointing", "chunk_size_feed_forward",
    "tie_encoder_decoder", "cross_attention_hidden_size", "max_length",
    "min_length", "do_sample", "early_stopping", "num_beams",
    "num_beam_groups", "diversity_penalty", "temperature", "top_k", "top_p",
    "typical_p", "repetition_penalty", "length_penalty",
    "no_repeat_ngram_size", "encoder_no_repeat_ngram_size", "bad_words_ids",
    "num_return_sequences", "output_scores", "return_dict_in_generate",
    "forced_bos_token_id", "forced_eos_token_id", "remove_invalid_values",
    "exponential_decay_length_penalty", "suppress_tokens",
    "begin_suppress_tokens", "output_past", "n_ctx", "pretraining_tp",
    "reorder_and_upcast_attn", "summary_type", "summary_use_proj",
    "summary_activation", "summary_proj_to_labels", "summary_first_dropout",
    "encoder_stride",
    "use_return_dict"};

namespace {
/// Reads the fields of a config.json; every key must be read or be
/// metadata. JSON null reads as absent (Hugging Face's None).
class FieldReader {
public:
  FieldReader(const llvm::json::Object &root, StringRef source,
              StringRef architecture)
      : root(root), source(source), architecture(architecture) {}

  Error error(StringRef key, const Twine &message) const {
    return makeError(source + ": '" + key + "' " + message);
  }

  const llvm::json::Value *get(StringRef key) {
    read.insert(key);
    const llvm::json::Value *value = root.get(key);
    return value && value->kind() != llvm::json::Value::Null ? value : nullptr;
  }
  bool has(StringRef key) { return get(key) != nullptr; }
  /// Present and null (Hugging Face's None, which may differ from the
  /// default).
  bool isNull(StringRef key) {
    read.insert(key);
    const llvm::json::Value *value = root.get(key);
    return value && value->kind() == llvm::json::Value::Null;
  }

  /// A positive integer (`minimum` 0 allows zero).
  Expected<int64_t> integer(StringRef key, int64_t fallback,
                            int64_t minimum = 1) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return fallback;
    std::optional<int64_t> number = value->getAsInteger();
    if (!number || *number < minimum)
      return error(key, minimum ? "must be a positive integer"
                                : "must be a non-negative integer");
    return *number;
  }

  Expected<double> number(StringRef key, double fallback) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return fallback;
    std::optional<double> number = value->getAsNumber();
    if (!number || !(*number > 0))
      return error(key, "must be a positive number");
    return *number;
  }

  Expected<bool> boolean(StringRef key, bool fallback) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return fallback;
    std::optional<bool> flag = value->getAsBoolean();
    if (!flag)
      return error(key, "must be true or false");
    return *flag;
  }

  Expected<std::string> string(StringRef key, StringRef fallback) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return fallback.str();
    std::optional<StringRef> text = value->getAsString();
    if (!text)
      return error(key, "must be a string");
    return text->str();
  }

  /// A field whose only supported value is `supported` (absent is fine).
  Error require(StringRef key, bool supported, const Twine &why) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return Error::success();
    std::optional<bool> flag = value->getAsBoolean();
    if (!flag)
      return error(key, "must be true or false");
    if (*flag != supported)
      return error(key, "= " + Twine(*flag ? "true" : "false") +
                            " is not supported for " + architecture + ": " +
                            why);
    return Error::success();
  }

  /// Reads a dropout probability (`fallback` when absent).
  Expected<double> probability(StringRef key, double fallback) {
    const llvm::json::Value *value = get(key);
    if (!value)
      return fallback;
    std::optional<double> p = value->getAsNumber();
    if (!p || *p < 0 || *p >= 1)
      return error(key, "must be a probability in [0, 1)");
    return *p;
  }

  /// Every key must have been read or be metadata.
  Error finish() const {
    SmallVector<std::string> unknown;
    for (const auto &entry : root)
      if (!read.contains(entry.first) &&
          !llvm::is_contained(kMetadata, StringRef(entry.first)))
        unknown.push_back(entry.first.str());
    if (unknown.empty())
      return Error::success();
    llvm::sort(unknown);
    return makeError(source + ": unknown field" +
                     (unknown.size() > 1 ? "s '" : " '") +
                     llvm::join(unknown, "', '") + "' for " + architecture +
                     ": it may change the model, which is built without it; "
                     "remove it if it does not");
  }

private:
  const llvm::json::Object &root;
  StringRef source;
  StringRef architecture;
  llvm::StringSet<> read;
};
} // namespace

/// Hugging Face's activation names (ACT2FN) that the IR has.
static Expected<Activation> readActivation(FieldReader &reader, StringRef key,
                                           StringRef fallback) {
  auto name = reader.string(key, fallback);
  if (!name)
    return name.takeError();
  if (*name == "gelu_new" || *name == "gelu_pytorch_tanh" ||
      *name == "gelu_fast")
    return Activation::gelu_tanh;
  if (*name == "gelu" || *name == "gelu_python")
    return Activation::gelu;
  if (*name == "relu")
    return Activation::relu;
  if (*name == "silu" || *name == "swish")
    return Activation::silu;
  return reader.error(key, "= \"" + *name +
                               "\" is not supported (gelu, gelu_new, "
                               "gelu_pytorch_tanh, gelu_fast, relu, silu)");
}

/// Checks `model_type` against the architecture when present.
static Error checkModelType(FieldReader &reader, StringRef expected) {
  auto type = reader.string("model_type", expected);
  if (!type)
    return type.takeError();
  if (*type != expected)
    return reader.error("model_type", "is \"" + *type + "\" but " +
                                          "the architecture needs \"" +
                                          expected + "\"");
  return Error::success();
}

// Each family reads its fields into `config`; `error` propagates the first
// failure of an Expected read.
#define READ(variable, expression)                                             \
  auto variable = (expression);                                                \
  if (!variable)                                                               \
    return variable.takeError();
#define CHECK(expression)                                                      \
  if (Error e = (expression))                                                  \
    return e;

static Error readGPT2(FieldReader &reader, HuggingFaceModel &result) {
  ModelConfig &c = result.config;
  c.family = ModelFamily::GPT;
  CHECK(checkModelType(reader, "gpt2"));
  READ(vocab, reader.integer("vocab_size", 50257));
  READ(positions, reader.integer("n_positions", 1024));
  READ(hidden, reader.integer("n_embd", 768));
  READ(layers, reader.integer("n_layer", 12));
  READ(heads, reader.integer("n_head", 12));
  READ(inner, reader.integer("n_inner", 4 * *hidden));
  READ(activation, readActivation(reader, "activation_function", "gelu_new"));
  READ(epsilon, reader.number("layer_norm_epsilon", 1e-5));
  READ(std, reader.number("initializer_range", 0.02));
  READ(scale, reader.boolean("scale_attn_weights", true));
  READ(inverse, reader.boolean("scale_attn_by_inverse_layer_idx", false));
  READ(tied, reader.boolean("tie_word_embeddings", true));
  CHECK(reader.require("add_cross_attention", false,
                       "GPT2LMHeadModel is built without cross-attention"));
  READ(residualDropout, reader.probability("resid_pdrop", 0.1));
  READ(embeddingDropout, reader.probability("embd_pdrop", 0.1));
  READ(attentionDropout, reader.probability("attn_pdrop", 0.1));
  c.vocab = *vocab;
  c.maxPositions = *positions;
  c.seqLen = *positions;
  c.hidden = *hidden;
  c.layers = *layers;
  c.heads = c.kvHeads = *heads;
  c.ffnHidden = *inner;
  c.activation = *activation;
  c.normEpsilon = *epsilon;
  c.initStd = *std;
  c.scaleAttention = *scale;
  c.scaleByInverseLayer = *inverse;
  c.tiedHead = *tied;
  c.hiddenDropout = *residualDropout;
  c.embeddingDropout = *embeddingDropout;
  c.attentionDropout = *attentionDropout;
  return Error::success();
}

/// The default sequence length of a model with rotary positions: its
/// context, at most 4096 tokens (give --seq-len for longer).
static int64_t rotarySequence(int64_t positions) {
  return std::min<int64_t>(positions, 4096);
}

static Error readLlamaFamily(FieldReader &reader, StringRef architecture,
                             HuggingFaceModel &result) {
  ModelConfig &c = result.config;
  c.family = ModelFamily::LLaMA;
  bool mistral = architecture == "MistralForCausalLM";
  bool qwen2 = architecture == "Qwen2ForCausalLM";
  CHECK(checkModelType(reader, mistral ? "mistral" : qwen2 ? "qwen2" : "llama"));
  READ(vocab, reader.integer("vocab_size", qwen2 ? 151936 : 32000));
  READ(hidden, reader.integer("hidden_size", 4096));
  READ(ffn, reader.integer("intermediate_size",
                           mistral ? 14336 : qwen2 ? 22016 : 11008));
  READ(layers, reader.integer("num_hidden_layers", 32));
  READ(heads, reader.integer("num_attention_heads", 32));
  READ(kvHeads,
       reader.integer("num_key_value_heads", mistral ? 8 : *heads));
  READ(headDim, reader.integer("head_dim", 0, 0));
  READ(positions, reader.integer("max_position_embeddings",
                                 mistral ? 4096 * 32
                                 : qwen2 ? 32768
                                         : 2048));
  READ(epsilon, reader.number("rms_norm_eps", 1e-6));
  READ(theta, reader.number("rope_theta", 10000.0));
  READ(std, reader.number("initializer_range", 0.02));
  READ(tied, reader.boolean("tie_word_embeddings", false));
  READ(activation, readActivation(reader, "hidden_act", "silu"));
  if (reader.has("rope_scaling"))
    return reader.error("rope_scaling",
                        "is not supported: scaled rotary embeddings change "
                        "the positions' frequencies (only null)");
  READ(attentionDropout,
       reader.probability("attention_dropout", 0.0));
  if (mistral || qwen2) {
    // Qwen2 applies its window only with use_sliding_window, above its
    // first max_window_layers layers.
    bool windowed = mistral;
    if (qwen2) {
      READ(use, reader.boolean("use_sliding_window", false));
      READ(windowLayers, reader.integer("max_window_layers", 28, 0));
      windowed = *use && *windowLayers < *layers;
    }
    READ(window, reader.integer("sliding_window", 4096));
    if (windowed && !reader.isNull("sliding_window"))
      c.slidingWindow = *window;
  } else {
    READ(attentionBias, reader.boolean("attention_bias", false));
    READ(mlpBias, reader.boolean("mlp_bias", false));
    c.qkvBias = c.outputBias = *attentionBias;
    c.mlpBias = *mlpBias;
  }
  if (qwen2) {
    c.qkvBias = true;
    c.outputBias = false;
  }
  c.vocab = *vocab;
  c.hidden = *hidden;
  c.ffnHidden = *ffn;
  c.layers = *layers;
  c.heads = *heads;
  c.kvHeads = *kvHeads;
  c.headDimension = *headDim;
  c.maxPositions = 0;
  c.seqLen = rotarySequence(*positions);
  c.normEpsilon = *epsilon;
  c.ropeTheta = *theta;
  c.initStd = *std;
  c.tiedHead = *tied;
  c.activation = *activation;
  c.attentionDropout = *attentionDropout;
  return Error::success();
}

/// What BertConfig and ViTConfig share, with the same defaults but for
/// dropout (`defaultDropout`: BERT 0.1, ViT 0).
static Error readEncoder(FieldReader &reader, HuggingFaceModel &result,
                         double defaultDropout) {
  ModelConfig &c = result.config;
  READ(hidden, reader.integer("hidden_size", 768));
  READ(layers, reader.integer("num_hidden_layers", 12));
  READ(heads, reader.integer("num_attention_heads", 12));
  READ(ffn, reader.integer("intermediate_size", 3072));
  READ(activation, readActivation(reader, "hidden_act", "gelu"));
  READ(epsilon, reader.number("layer_norm_eps", 1e-12));
  READ(std, reader.number("initializer_range", 0.02));
  READ(hiddenDropout,
       reader.probability("hidden_dropout_prob", defaultDropout));
  READ(attentionDropout,
       reader.probability("attention_probs_dropout_prob", defaultDropout));
  c.hidden = *hidden;
  c.layers = *layers;
  c.heads = c.kvHeads = *heads;
  c.ffnHidden = *ffn;
  c.activation = *activation;
  c.normEpsilon = *epsilon;
  c.initStd = *std;
  c.embeddingDropout = c.hiddenDropout = *hiddenDropout;
  c.attentionDropout = *attentionDropout;
  return Error::success();
}

static Error readBERT(FieldReader &reader, StringRef architecture,
                      HuggingFaceModel &result) {
  ModelConfig &c = result.config;
  c.family = ModelFamily::BERT;
  c.head = architecture == "BertModel" ? ModelHead::pooler
                                       : ModelHead::maskedLM;
  CHECK(checkModelType(reader, "bert"));
  CHECK(readEncoder(reader, result, /*defaultDropout=*/0.1));
  READ(vocab, reader.integer("vocab_size", 30522));
  READ(positions, reader.integer("max_position_embeddings", 512));
  READ(types, reader.integer("type_vocab_size", 2));
  READ(tied, reader.boolean("tie_word_embeddings", true));
  READ(positionType, reader.string("position_embedding_type", "absolute"));
  if (*positionType != "absolute")
    return reader.error("position_embedding_type",
                        "= \"" + *positionType +
                            "\" is not supported (only \"absolute\")");
  if (!*tied && c.head == ModelHead::maskedLM)
    return reader.error("tie_word_embeddings",
                        "= false is not supported: BertForMaskedLM is built "
                        "with its decoder tied to the word embeddings");
  CHECK(reader.require("is_decoder", false,
                       "BERT is built as a bidirectional encoder"));
  CHECK(reader.require("add_cross_attention", false,
                       "BERT is built without cross-attention"));
  if (const llvm::json::Value *pruned = reader.get("pruned_heads")) {
    const llvm::json::Object *heads = pruned->getAsObject();
    if (!heads || !heads->empty())
      return reader.error("pruned_heads",
                          "is not supported: pruned heads change the "
                          "attention's shapes (only {})");
  }
  // Only sequence-classification heads, which are not built, use it.
  CHECK(reader.probability("classifier_dropout", 0.0).takeError());
  c.vocab = *vocab;
  c.maxPositions = *positions;
  c.seqLen = *positions;
  c.tokenTypes = *types;
  c.tiedHead = true;
  return Error::success();
}

static Error readT5(FieldReader &reader, HuggingFaceModel &result) {
  ModelConfig &c = result.config;
  c.family = ModelFamily::T5;
  CHECK(checkModelType(reader, "t5"));
  READ(vocab, reader.integer("vocab_size", 32128));
  READ(hidden, reader.integer("d_model", 512));
  READ(headDim, reader.integer("d_kv", 64));
  READ(ffn, reader.integer("d_ff", 2048));
  READ(layers, reader.integer("num_layers", 6));
  READ(decoderLayers, reader.integer("num_decoder_layers", *layers));
  READ(heads, reader.integer("num_heads", 8));
  READ(buckets, reader.integer("relative_attention_num_buckets", 32));
  READ(distance, reader.integer("relative_attention_max_distance", 128));
  READ(epsilon, reader.number("layer_norm_epsilon", 1e-6));
  READ(tied, reader.boolean("tie_word_embeddings", true));
  READ(positions, reader.integer("n_positions", 512));
  READ(projection, reader.string("feed_forward_proj", "relu"));
  // "gated-gelu" is T5 v1.1's GELU-gated feed-forward with gelu_new.
  StringRef act = *projection;
  bool gated = act.consume_front("gated-");
  if (act == "gelu" && gated)
    act = "gelu_new";
  std::optional<Activation> activation;
  if (act == "relu")
    activation = Activation::relu;
  else if (act == "gelu_new" || act == "gelu_pytorch_tanh")
    activation = Activation::gelu_tanh;
  else if (act == "gelu")
    activation = Activation::gelu;
  else if (act == "silu")
    activation = Activation::silu;
  else
    return reader.error("feed_forward_proj",
                        "= \"" + *projection +
                            "\" is not supported (relu, gelu, silu, "
                            "optionally \"gated-\")");
  // Newer files also store what feed_forward_proj implies.
  READ(isGated, reader.boolean("is_gated_act", gated));
  if (*isGated != gated)
    return reader.error("is_gated_act", "contradicts feed_forward_proj");
  READ(denseAct, reader.string("dense_act_fn", act));
  if (*denseAct != act)
    return reader.error("dense_act_fn", "contradicts feed_forward_proj");
  READ(factor, reader.number("initializer_factor", 1.0));
  if (*decoderLayers != *layers)
    return reader.error("num_decoder_layers",
                        "(" + Twine(*decoderLayers) +
                            ") differs from num_layers (" + Twine(*layers) +
                            "): T5 is built with equal stacks");
  CHECK(reader.require("is_encoder_decoder", true,
                       "T5ForConditionalGeneration has an encoder and a "
                       "decoder"));
  // dropout_rate drops out everywhere, the attention probabilities too.
  READ(dropout,
       reader.probability("dropout_rate", 0.1));
  c.vocab = *vocab;
  c.hidden = *hidden;
  c.headDimension = *headDim;
  c.ffnHidden = *ffn;
  c.layers = *layers;
  c.heads = c.kvHeads = *heads;
  c.relativeBuckets = *buckets;
  c.relativeMaxDistance = *distance;
  c.normEpsilon = *epsilon;
  c.tiedHead = *tied;
  c.maxPositions = 0;
  c.seqLen = *positions;
  c.activation = activation;
  c.gatedFeedForward = gated;
  c.embeddingDropout = c.hiddenDropout = c.attentionDropout = *dropout;
  return Error::success();
}

static Error readViT(FieldReader &reader, StringRef architecture,
                     HuggingFaceModel &result) {
  ModelConfig &c = result.config;
  c.family = ModelFamily::ViT;
  c.head = architecture == "ViTModel" ? ModelHead::pooler
                                      : ModelHead::standard;
  CHECK(checkModelType(reader, "vit"));
  CHECK(readEncoder(reader, result, /*defaultDropout=*/0.0));
  READ(image, reader.integer("image_size", 224));
  READ(patch, reader.integer("patch_size", 16));
  READ(channels, reader.integer("num_channels", 3));
  READ(qkvBias, reader.boolean("qkv_bias", true));
  READ(poolerSize, reader.integer("pooler_output_size", c.hidden));
  if (*poolerSize != c.hidden)
    return reader.error("pooler_output_size",
                        "(" + Twine(*poolerSize) +
                            ") differs from hidden_size: not supported");
  READ(poolerAct, reader.string("pooler_act", "tanh"));
  if (*poolerAct != "tanh")
    return reader.error("pooler_act", "= \"" + *poolerAct +
                                          "\" is not supported (only tanh)");
  // The label count: id2label's size, else num_labels, else 2.
  int64_t classes = 2;
  if (const llvm::json::Value *labels = reader.get("id2label")) {
    const llvm::json::Object *map = labels->getAsObject();
    if (!map || map->empty())
      return reader.error("id2label", "must be a non-empty object");
    classes = map->size();
  }
  READ(numLabels, reader.integer("num_labels", classes));
  if (reader.has("id2label") && *numLabels != classes)
    return reader.error("num_labels", "(" + Twine(*numLabels) +
                                          ") differs from id2label's " +
                                          Twine(classes) + " labels");
  if (*patch <= 0 || *image % *patch != 0)
    return reader.error("patch_size", "(" + Twine(*patch) +
                                          ") must divide image_size (" +
                                          Twine(*image) + ")");
  int64_t tokens = (*image / *patch) * (*image / *patch) + 1;
  c.imageSize = *image;
  c.patchSize = *patch;
  c.channels = *channels;
  c.classes = *numLabels;
  c.qkvBias = *qkvBias;
  c.vocab = 0;
  c.maxPositions = tokens;
  c.seqLen = tokens;
  c.tiedHead = false;
  return Error::success();
}

#undef READ
#undef CHECK

Expected<HuggingFaceModel>
mlir::galvatron::parseHuggingFaceConfig(StringRef text, StringRef source,
                                        StringRef name) {
  auto root = parseJSONObject(text, source, "a Hugging Face config");
  if (!root)
    return root.takeError();
  const llvm::json::Value *list = root->get("architectures");
  std::string supported =
      llvm::join(ArrayRef<StringRef>(kArchitectures), ", ");
  if (!list)
    return makeError(source + ": 'architectures' is missing: it names the "
                              "model class (supported: " +
                     supported + ")");
  const llvm::json::Array *names = list->getAsArray();
  std::optional<StringRef> architecture =
      names && names->size() == 1 ? (*names)[0].getAsString() : std::nullopt;
  if (!architecture)
    return makeError(source +
                     ": 'architectures' must list one model class");
  if (!llvm::is_contained(kArchitectures, *architecture))
    return makeError(source + ": architecture '" + *architecture +
                     "' is not supported (supported: " + supported + ")");

  HuggingFaceModel result;
  ModelConfig &config = result.config;
  config.name = name.str();
  FieldReader reader(*root, source, *architecture);
  Error error = Error::success();
  if (*architecture == "GPT2LMHeadModel")
    error = readGPT2(reader, result);
  else if (architecture->ends_with("ForCausalLM"))
    error = readLlamaFamily(reader, *architecture, result);
  else if (architecture->starts_with("Bert"))
    error = readBERT(reader, *architecture, result);
  else if (architecture->starts_with("T5"))
    error = readT5(reader, result);
  else
    error = readViT(reader, *architecture, result);
  if (error)
    return std::move(error);
  if (Error unknown = reader.finish())
    return std::move(unknown);
  if (std::string problem = checkModelConfig(config); !problem.empty())
    return makeError(source + ": " + problem);
  return result;
}

Expected<HuggingFaceModel>
mlir::galvatron::loadHuggingFaceConfig(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return makeError("cannot read '" + path +
                     "': " + buffer.getError().message());
  StringRef file = llvm::sys::path::filename(path);
  StringRef name = llvm::sys::path::stem(path);
  if (file == "config.json") {
    StringRef directory =
        llvm::sys::path::filename(llvm::sys::path::parent_path(path));
    if (!directory.empty() && directory != "." && directory != "..")
      name = directory;
  }
  return parseHuggingFaceConfig((*buffer)->getBuffer(), path, name);
}
