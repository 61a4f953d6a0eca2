//===- ModelBuilder.cpp - Build galvatron IR for model presets ------------===//
//
// Emits the forward graph of a preset as layers of galvatron ops. Parameter
// names follow the Hugging Face checkpoints of each family so weights load by
// name.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Models/ModelPresets.h"
#include "galvatron/Support/Error.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/Twine.h"

#include <cmath>

using namespace mlir;
using namespace mlir::galvatron;

namespace {

/// Builds one model: declares parameters at module level and emits ops into
/// the layer currently being built.
class ModelBuilder {
public:
  ModelBuilder(MLIRContext *context, const ModelConfig &config, int64_t batch,
               int64_t seq)
      : config(config), batch(batch), seq(seq), builder(context),
        loc(NameLoc::get(StringAttr::get(context, config.name))),
        f32(builder.getF32Type()), i64(builder.getI64Type()) {
    module = ModuleOp::create(loc);
    (*module)->setAttr(GalvatronDialect::getModelAttrName(),
                       builder.getStringAttr(config.name));
  }

  OwningOpRef<ModuleOp> build();

private:
  //===--------------------------------------------------------------------===//
  // Types, parameters and common sub-graphs
  //===--------------------------------------------------------------------===//

  RankedTensorType tensor(ArrayRef<int64_t> shape, Type element = {}) {
    return RankedTensorType::get(shape, element ? element : f32);
  }
  RankedTensorType hiddenType() { return tensor({batch, seq, config.hidden}); }

  InitAttr normal(double initStd) {
    return InitAttr::get(builder.getContext(), InitKind::normal, 0.0, initStd);
  }
  InitAttr zeros() {
    return InitAttr::get(builder.getContext(), InitKind::zeros);
  }
  InitAttr ones() {
    return InitAttr::get(builder.getContext(), InitKind::ones);
  }

  /// Reads parameter `name`, declaring it on first use.
  Value param(const Twine &name, ArrayRef<int64_t> shape, InitAttr init) {
    std::string symbol = name.str();
    RankedTensorType type = tensor(shape);
    if (!module->lookupSymbol(symbol)) {
      OpBuilder::InsertionGuard guard(builder);
      builder.setInsertionPoint(mainFunction);
      ParameterOp::create(builder, loc, symbol, type, init,
                          /*external=*/ExternalDataAttr());
    }
    return ParamOp::create(builder, loc, type, symbol);
  }

  Value constant(float value) {
    auto type = tensor({});
    return ConstantOp::create(builder, loc, type,
                              DenseElementsAttr::get(type, value));
  }

  /// x·W (+ b). `torchLayout` stores W as [out, in] (torch.nn.Linear),
  /// otherwise [in, out] (Hugging Face Conv1D).
  Value linear(Value x, const Twine &prefix, int64_t in, int64_t out, bool bias,
               bool torchLayout, double initStd = 0.02) {
    Value weight = torchLayout
                       ? param(prefix + ".weight", {out, in}, normal(initStd))
                       : param(prefix + ".weight", {in, out}, normal(initStd));
    Value b = bias ? param(prefix + ".bias", {out}, zeros()) : Value();
    return LinearOp::create(builder, loc, x, weight, b, torchLayout);
  }

  Value layerNorm(Value x, const Twine &prefix, int64_t features) {
    Value weight = param(prefix + ".weight", {features}, ones());
    Value bias = param(prefix + ".bias", {features}, zeros());
    return LayerNormOp::create(builder, loc, x.getType(), x, weight, bias,
                               builder.getF64FloatAttr(config.normEpsilon));
  }

  Value rmsNorm(Value x, const Twine &name, int64_t features) {
    Value weight = param(name, {features}, ones());
    return RMSNormOp::create(builder, loc, x.getType(), x, weight,
                             builder.getF64FloatAttr(config.normEpsilon));
  }

  Value add(Value a, Value b) { return AddOp::create(builder, loc, a, b); }

  Value activate(Value x) {
    switch (config.getActivation()) {
    case Activation::gelu_tanh:
      return GeluOp::create(builder, loc, x, GeluApproximation::tanh);
    case Activation::gelu:
      return GeluOp::create(builder, loc, x, GeluApproximation::none);
    case Activation::relu:
      return ReluOp::create(builder, loc, x);
    case Activation::silu:
      return SiluOp::create(builder, loc, x);
    }
    llvm_unreachable("unknown activation");
  }

  /// The feed-forward block: up (and gate), activation, dropout of
  /// `innerDropout` (T5's), down.
  Value feedForward(Value x, const Twine &up, const Twine &gate,
                    const Twine &down, bool torchLayout, double initStd,
                    double downStd, double innerDropout = 0.0) {
    int64_t h = config.hidden, f = config.ffnHidden;
    bool bias = config.hasMlpBias();
    Value hidden = activate(linear(x, config.isGated() ? gate : up, h, f,
                                   bias, torchLayout, initStd));
    if (config.isGated())
      hidden = mul(hidden, linear(x, up, h, f, bias, torchLayout, initStd));
    return linear(dropout(hidden, innerDropout), down, f, h, bias, torchLayout,
                  downStd);
  }
  Value mul(Value a, Value b) { return MulOp::create(builder, loc, a, b); }

  Value reshape(Value x, ArrayRef<int64_t> shape) {
    auto type = cast<RankedTensorType>(x.getType());
    return ReshapeOp::create(builder, loc, tensor(shape, type.getElementType()),
                             x);
  }

  Value transpose(Value x, ArrayRef<int64_t> perm) {
    return TransposeOp::create(builder, loc, x, perm);
  }

  /// [B, S, n·d] -> [B, n, S, d].
  Value splitHeads(Value x, int64_t heads) {
    auto shape = cast<RankedTensorType>(x.getType()).getShape();
    int64_t headDim = shape[2] / heads;
    return transpose(reshape(x, {shape[0], shape[1], heads, headDim}),
                     {0, 2, 1, 3});
  }

  /// [B, n, S, d] -> [B, S, n·d].
  Value mergeHeads(Value x) {
    auto shape = cast<RankedTensorType>(x.getType()).getShape();
    return reshape(transpose(x, {0, 2, 1, 3}),
                   {shape[0], shape[2], shape[1] * shape[3]});
  }

  /// Dropout of probability `p` (none at 0); each site of the model draws
  /// its own stream, numbered in program order.
  Value dropout(Value x, double p) {
    if (p == 0.0)
      return x;
    return DropoutOp::create(builder, loc, x, p, nextStream++).getResult();
  }

  /// Attention whose probabilities drop out with probability `dropout`
  /// (a site of its own when non-zero, as `dropout` above).
  Value attention(Value q, Value k, Value v, Value mask, bool causal,
                  std::optional<double> scale = std::nullopt,
                  double dropout = 0.0) {
    auto op = AttentionOp::create(builder, loc, q, k, v, mask, causal,
                                  scale ? builder.getF64FloatAttr(*scale)
                                        : FloatAttr());
    if (dropout != 0.0) {
      op.setDropout(APFloat(dropout));
      op.setStream(nextStream++);
    }
    return op.getResult();
  }

  /// Opens a layer whose body receives `inputs` as block arguments; returns
  /// the block arguments. Close it with `endLayer`.
  SmallVector<Value> beginLayer(LayerKind kind, const Twine &name,
                                ValueRange inputs, TypeRange resultTypes) {
    auto layer =
        LayerOp::create(builder, loc, resultTypes, name.str(), kind, inputs);
    pendingLayer = layer;
    builder.setInsertionPointToStart(&layer.getBodyBlock());
    return SmallVector<Value>(layer.getBodyBlock().getArguments());
  }

  SmallVector<Value> endLayer(ValueRange results) {
    YieldOp::create(builder, loc, results);
    builder.setInsertionPointAfter(pendingLayer);
    return SmallVector<Value>(pendingLayer.getResults());
  }

  Value endLayer(Value result) { return endLayer(ValueRange{result})[0]; }

  //===--------------------------------------------------------------------===//
  // Families
  //===--------------------------------------------------------------------===//

  void buildGPT();
  void buildLLaMA();
  void buildBERT();
  void buildT5();
  void buildViT();

  /// Starts `@main` with the given inputs; returns its arguments.
  SmallVector<Value> beginMain(ArrayRef<std::pair<StringRef, Type>> inputs);
  void endMain(ArrayRef<std::pair<StringRef, Value>> outputs);

  const ModelConfig &config;
  int64_t batch, seq;
  OpBuilder builder;
  Location loc;
  Type f32, i64;
  OwningOpRef<ModuleOp> module;
  func::FuncOp mainFunction;
  LayerOp pendingLayer;
  int64_t nextStream = 0;
};

} // namespace

SmallVector<Value>
ModelBuilder::beginMain(ArrayRef<std::pair<StringRef, Type>> inputs) {
  builder.setInsertionPointToEnd(module->getBody());
  SmallVector<Type> types;
  for (auto &input : inputs)
    types.push_back(input.second);
  mainFunction = func::FuncOp::create(builder, loc, "main",
                                      builder.getFunctionType(types, {}));
  for (auto [index, input] : llvm::enumerate(inputs))
    mainFunction.setArgAttr(index, GalvatronDialect::getNameAttrName(),
                            builder.getStringAttr(input.first));
  Block *entry = mainFunction.addEntryBlock();
  builder.setInsertionPointToStart(entry);
  return SmallVector<Value>(entry->getArguments());
}

void ModelBuilder::endMain(ArrayRef<std::pair<StringRef, Value>> outputs) {
  SmallVector<Value> values;
  SmallVector<Type> types;
  for (auto &output : outputs) {
    values.push_back(output.second);
    types.push_back(output.second.getType());
  }
  func::ReturnOp::create(builder, loc, values);
  mainFunction.setFunctionType(builder.getFunctionType(
      mainFunction.getFunctionType().getInputs(), types));
  for (auto [index, output] : llvm::enumerate(outputs))
    mainFunction.setResultAttr(index, GalvatronDialect::getNameAttrName(),
                               builder.getStringAttr(output.first));
}

void ModelBuilder::buildGPT() {
  int64_t h = config.hidden, v = config.vocab, layers = config.layers;
  double initStd = config.initStd;
  Value ids = beginMain({{"input_ids", tensor({batch, seq}, i64)}})[0];

  Value x = beginLayer(LayerKind::embedding, "transformer.embeddings", ids,
                       hiddenType())[0];
  Value wte = param("transformer.wte.weight", {v, h}, normal(initStd));
  Value wpe =
      param("transformer.wpe.weight", {config.maxPositions, h}, normal(0.01));
  Value tokens = EmbeddingOp::create(builder, loc, wte, x);
  Value positions =
      SliceOp::create(builder, loc, wpe, ArrayRef<int64_t>{0, 0},
                      ArrayRef<int64_t>{seq, h}, ArrayRef<int64_t>{1, 1});
  Value hidden =
      endLayer(dropout(add(tokens, positions), config.embeddingDropout));

  // GPT-2 scales the residual projections' init by 1/sqrt(2·layers).
  double residualStd = initStd / std::sqrt(2.0 * layers);
  double headScale = 1.0 / std::sqrt(double(config.headDim()));
  for (int64_t i = 0; i < layers; ++i) {
    std::string p = ("transformer.h." + Twine(i)).str();
    Value in = beginLayer(LayerKind::decoder, p, hidden, hiddenType())[0];
    Value n1 = layerNorm(in, p + ".ln_1", h);
    Value qkv =
        linear(n1, p + ".attn.c_attn", h, 3 * h, config.hasQkvBias(), false,
               initStd);
    auto split =
        SplitOp::create(builder, loc, qkv, 2, ArrayRef<int64_t>{h, h, h});
    Value q = splitHeads(split.getResult(0), config.heads);
    Value k = splitHeads(split.getResult(1), config.heads);
    Value val = splitHeads(split.getResult(2), config.heads);
    std::optional<double> scale;
    if (!config.scaleAttention || config.scaleByInverseLayer)
      scale = (config.scaleAttention ? headScale : 1.0) /
              (config.scaleByInverseLayer ? double(i + 1) : 1.0);
    Value attn = mergeHeads(attention(q, k, val, Value(), /*causal=*/true,
                                      scale, config.attentionDropout));
    Value proj = linear(attn, p + ".attn.c_proj", h, h, config.hasOutputBias(),
                        false, residualStd);
    Value r1 = add(in, dropout(proj, config.hiddenDropout));
    Value n2 = layerNorm(r1, p + ".ln_2", h);
    Value mlp = feedForward(n2, p + ".mlp.c_fc", "", p + ".mlp.c_proj", false,
                            initStd, residualStd);
    hidden = endLayer(add(r1, dropout(mlp, config.hiddenDropout)));
  }

  Value out = beginLayer(LayerKind::head, "lm_head", hidden,
                         tensor({batch, seq, v}))[0];
  Value normed = layerNorm(out, "transformer.ln_f", h);
  Value head = config.tiedHead
                   ? param("transformer.wte.weight", {v, h}, normal(initStd))
                   : param("lm_head.weight", {v, h}, normal(initStd));
  Value logits = LinearOp::create(builder, loc, normed, head, Value(), true);
  endMain({{"logits", endLayer(logits)}});
}

void ModelBuilder::buildLLaMA() {
  int64_t h = config.hidden, v = config.vocab, d = config.headDim();
  int64_t inner = config.heads * d, kv = config.kvHeads * d;
  double initStd = config.initStd;
  Value ids = beginMain({{"input_ids", tensor({batch, seq}, i64)}})[0];

  Value x = beginLayer(LayerKind::embedding, "model.embed_tokens", ids,
                       hiddenType())[0];
  Value table = param("model.embed_tokens.weight", {v, h}, normal(initStd));
  Value hidden = endLayer(EmbeddingOp::create(builder, loc, table, x));

  auto rotary = [&](Value t) {
    return RotaryOp::create(builder, loc, t.getType(), t,
                            builder.getI64IntegerAttr(2),
                            builder.getF64FloatAttr(config.ropeTheta),
                            IntegerAttr(), builder.getBoolAttr(false));
  };
  bool qkvBias = config.hasQkvBias();
  for (int64_t i = 0; i < config.layers; ++i) {
    std::string p = ("model.layers." + Twine(i)).str();
    Value in = beginLayer(LayerKind::decoder, p, hidden, hiddenType())[0];
    Value n1 = rmsNorm(in, p + ".input_layernorm.weight", h);
    Value q = splitHeads(
        linear(n1, p + ".self_attn.q_proj", h, inner, qkvBias, true, initStd),
        config.heads);
    Value k = splitHeads(
        linear(n1, p + ".self_attn.k_proj", h, kv, qkvBias, true, initStd),
        config.kvHeads);
    Value val = splitHeads(
        linear(n1, p + ".self_attn.v_proj", h, kv, qkvBias, true, initStd),
        config.kvHeads);
    Value attn = mergeHeads(
        attention(rotary(q), rotary(k), val, Value(), /*causal=*/true,
                  std::nullopt, config.attentionDropout));
    Value r1 = add(in, linear(attn, p + ".self_attn.o_proj", inner, h,
                              config.hasOutputBias(), true, initStd));
    Value n2 = rmsNorm(r1, p + ".post_attention_layernorm.weight", h);
    hidden = endLayer(add(r1, feedForward(n2, p + ".mlp.up_proj",
                                          p + ".mlp.gate_proj",
                                          p + ".mlp.down_proj", true, initStd,
                                          initStd)));
  }

  Value out = beginLayer(LayerKind::head, "lm_head", hidden,
                         tensor({batch, seq, v}))[0];
  Value normed = rmsNorm(out, "model.norm.weight", h);
  Value weight = config.tiedHead
                     ? param("model.embed_tokens.weight", {v, h}, normal(initStd))
                     : param("lm_head.weight", {v, h}, normal(initStd));
  Value logits = LinearOp::create(builder, loc, normed, weight, Value(), true);
  endMain({{"logits", endLayer(logits)}});
}

void ModelBuilder::buildBERT() {
  int64_t h = config.hidden, v = config.vocab;
  double initStd = config.initStd;
  // BertModel's own names have no prefix; the task models nest it as "bert".
  std::string base = config.head == ModelHead::pooler ? "" : "bert.";
  auto inputs = beginMain({{"input_ids", tensor({batch, seq}, i64)},
                           {"token_type_ids", tensor({batch, seq}, i64)},
                           {"attention_mask", tensor({batch, seq}, i64)}});
  RankedTensorType maskType = tensor({batch, 1, 1, seq});

  std::string e = base + "embeddings";
  auto embedIn = beginLayer(LayerKind::embedding, e, inputs,
                            {hiddenType(), maskType});
  auto wordTable = [&]() {
    return param(e + ".word_embeddings.weight", {v, h}, normal(initStd));
  };
  Value words = EmbeddingOp::create(builder, loc, wordTable(), embedIn[0]);
  Value positionTable = param(e + ".position_embeddings.weight",
                              {config.maxPositions, h}, normal(initStd));
  Value positions =
      SliceOp::create(builder, loc, positionTable, ArrayRef<int64_t>{0, 0},
                      ArrayRef<int64_t>{seq, h}, ArrayRef<int64_t>{1, 1});
  Value types = EmbeddingOp::create(builder, loc,
                                    param(e + ".token_type_embeddings.weight",
                                          {config.tokenTypes, h}, normal(initStd)),
                                    embedIn[1]);
  Value embedded = dropout(
      layerNorm(add(add(words, positions), types), e + ".LayerNorm", h),
      config.embeddingDropout);
  // Additive padding mask: 0 where attended, -10000 where padded.
  Value keep = CastOp::create(builder, loc, tensor({batch, seq}), embedIn[2]);
  Value mask = mul(SubOp::create(builder, loc, keep, constant(1.0f)),
                   constant(10000.0f));
  auto embedOut = endLayer({embedded, reshape(mask, {batch, 1, 1, seq})});
  Value hidden = embedOut[0], attnMask = embedOut[1];

  int64_t inner = config.heads * config.headDim();
  bool qkvBias = config.hasQkvBias();
  for (int64_t i = 0; i < config.layers; ++i) {
    std::string p = (base + "encoder.layer." + Twine(i)).str();
    auto in =
        beginLayer(LayerKind::encoder, p, {hidden, attnMask}, hiddenType());
    std::string a = p + ".attention.self";
    Value q = splitHeads(linear(in[0], a + ".query", h, inner, qkvBias, true,
                                initStd),
                         config.heads);
    Value k = splitHeads(
        linear(in[0], a + ".key", h, inner, qkvBias, true, initStd), config.heads);
    Value val = splitHeads(
        linear(in[0], a + ".value", h, inner, qkvBias, true, initStd),
        config.heads);
    Value attn = mergeHeads(attention(q, k, val, in[1], /*causal=*/false,
                                      std::nullopt, config.attentionDropout));
    Value a1 = layerNorm(
        add(in[0], dropout(linear(attn, p + ".attention.output.dense", inner,
                                  h, config.hasOutputBias(), true, initStd),
                           config.hiddenDropout)),
        p + ".attention.output.LayerNorm", h);
    Value o = feedForward(a1, p + ".intermediate.dense", "",
                          p + ".output.dense", true, initStd, initStd);
    hidden = endLayer(layerNorm(add(a1, dropout(o, config.hiddenDropout)),
                                p + ".output.LayerNorm", h));
  }

  // The pooler: tanh(dense(first token)).
  auto pool = [&](Value x, const std::string &name) {
    Value first =
        reshape(SliceOp::create(builder, loc, x, ArrayRef<int64_t>{0, 0, 0},
                                ArrayRef<int64_t>{batch, 1, h},
                                ArrayRef<int64_t>{1, 1, 1}),
                {batch, h});
    return TanhOp::create(builder, loc,
                          linear(first, name, h, h, true, true, initStd));
  };
  switch (config.head) {
  case ModelHead::standard: {
    auto out = beginLayer(LayerKind::head, "bert.head", hidden,
                          {tensor({batch, seq, v}), tensor({batch, h})})[0];
    // Masked-token logits through the tied word embedding.
    Value logits = LinearOp::create(builder, loc, out, wordTable(), Value(),
                                    true);
    auto results = endLayer({logits, pool(out, "bert.pooler.dense")});
    endMain({{"logits", results[0]}, {"pooler_output", results[1]}});
    return;
  }
  case ModelHead::pooler: {
    auto out = beginLayer(LayerKind::head, "pooler", hidden,
                          {hiddenType(), tensor({batch, h})})[0];
    auto results = endLayer({out, pool(out, "pooler.dense")});
    endMain({{"last_hidden_state", results[0]},
             {"pooler_output", results[1]}});
    return;
  }
  case ModelHead::maskedLM: {
    Value out = beginLayer(LayerKind::head, "cls", hidden,
                           tensor({batch, seq, v}))[0];
    std::string c = "cls.predictions";
    Value transformed = layerNorm(
        activate(linear(out, c + ".transform.dense", h, h, true, true, initStd)),
        c + ".transform.LayerNorm", h);
    Value logits = LinearOp::create(builder, loc, transformed, wordTable(),
                                    param(c + ".bias", {v}, zeros()), true);
    endMain({{"logits", endLayer(logits)}});
    return;
  }
  }
}

void ModelBuilder::buildT5() {
  int64_t h = config.hidden, v = config.vocab, heads = config.heads;
  int64_t inner = heads * config.headDim();
  auto inputs = beginMain({{"input_ids", tensor({batch, seq}, i64)},
                           {"decoder_input_ids", tensor({batch, seq}, i64)}});
  RankedTensorType biasType = tensor({1, heads, seq, seq});
  double embedStd = 1.0, projStd = 1.0 / std::sqrt(double(h));

  // Relative position bias [1, heads, S, S] from T5's bucketed positions.
  auto positionBias = [&](const Twine &name, bool bidirectional) {
    Value buckets = RelativePositionBucketOp::create(
        builder, loc, tensor({seq, seq}, i64), config.relativeBuckets,
        config.relativeMaxDistance, bidirectional);
    Value table = param(name, {config.relativeBuckets, heads}, normal(projStd));
    Value bias = EmbeddingOp::create(builder, loc, table, buckets);
    return reshape(transpose(bias, {2, 0, 1}), {1, heads, seq, seq});
  };
  auto embed = [&](Value ids) {
    return dropout(
        EmbeddingOp::create(builder, loc,
                            param("shared.weight", {v, h}, normal(embedStd)),
                            ids),
        config.embeddingDropout);
  };
  auto project = [&](Value x, const std::string &name, int64_t in,
                     int64_t out) {
    return linear(x, name, in, out, false, true, projStd);
  };
  auto selfAttention = [&](Value x, Value bias, const std::string &p,
                           bool causal) {
    Value n = rmsNorm(x, p + ".layer_norm.weight", h);
    std::string a = p + ".SelfAttention";
    Value q = splitHeads(project(n, a + ".q", h, inner), heads);
    Value k = splitHeads(project(n, a + ".k", h, inner), heads);
    Value val = splitHeads(project(n, a + ".v", h, inner), heads);
    Value o = mergeHeads(attention(q, k, val, bias, causal, 1.0,
                                       config.attentionDropout));
    return add(x, dropout(project(o, a + ".o", inner, h), config.hiddenDropout));
  };
  auto feedForwardLayer = [&](Value x, const std::string &p) {
    Value n = rmsNorm(x, p + ".layer_norm.weight", h);
    std::string d = p + ".DenseReluDense";
    return add(x, dropout(feedForward(n,
                                      config.isGated() ? d + ".wi_1"
                                                       : d + ".wi",
                                      d + ".wi_0", d + ".wo", true, projStd,
                                      projStd, config.hiddenDropout),
                          config.hiddenDropout));
  };

  // Encoder.
  auto encIn = beginLayer(LayerKind::embedding, "encoder.embeddings", inputs[0],
                          {hiddenType(), biasType});
  auto encEmbed = endLayer(
      {embed(encIn[0]),
       positionBias(
           "encoder.block.0.layer.0.SelfAttention.relative_attention_bias."
           "weight",
           /*bidirectional=*/true)});
  Value hidden = encEmbed[0];
  for (int64_t i = 0; i < config.layers; ++i) {
    std::string p = ("encoder.block." + Twine(i)).str();
    auto in =
        beginLayer(LayerKind::encoder, p, {hidden, encEmbed[1]}, hiddenType());
    Value x = selfAttention(in[0], in[1], p + ".layer.0", /*causal=*/false);
    hidden = endLayer(feedForwardLayer(x, p + ".layer.1"));
  }
  Value encIn2 = beginLayer(LayerKind::other, "encoder.final_layer_norm",
                            hidden, hiddenType())[0];
  Value encoded = endLayer(
      dropout(rmsNorm(encIn2, "encoder.final_layer_norm.weight", h),
              config.hiddenDropout));

  // Decoder.
  auto decIn = beginLayer(LayerKind::embedding, "decoder.embeddings", inputs[1],
                          {hiddenType(), biasType});
  auto decEmbed = endLayer(
      {embed(decIn[0]),
       positionBias(
           "decoder.block.0.layer.0.SelfAttention.relative_attention_bias."
           "weight",
           /*bidirectional=*/false)});
  hidden = decEmbed[0];
  for (int64_t i = 0; i < config.layers; ++i) {
    std::string p = ("decoder.block." + Twine(i)).str();
    auto in = beginLayer(LayerKind::decoder, p, {hidden, encoded, decEmbed[1]},
                         hiddenType());
    Value x = selfAttention(in[0], in[2], p + ".layer.0", /*causal=*/true);
    // Cross-attention: queries from the decoder, keys/values from the encoder.
    std::string c = p + ".layer.1";
    Value n = rmsNorm(x, c + ".layer_norm.weight", h);
    std::string a = c + ".EncDecAttention";
    Value q = splitHeads(project(n, a + ".q", h, inner), heads);
    Value k = splitHeads(project(in[1], a + ".k", h, inner), heads);
    Value val = splitHeads(project(in[1], a + ".v", h, inner), heads);
    Value o = mergeHeads(attention(q, k, val, Value(), false, 1.0,
                                       config.attentionDropout));
    x = add(x, dropout(project(o, a + ".o", inner, h), config.hiddenDropout));
    hidden = endLayer(feedForwardLayer(x, p + ".layer.2"));
  }

  Value out = beginLayer(LayerKind::head, "lm_head", hidden,
                         tensor({batch, seq, v}))[0];
  Value normed = dropout(rmsNorm(out, "decoder.final_layer_norm.weight", h),
                         config.hiddenDropout);
  Value logits;
  if (config.tiedHead) {
    // The tied head rescales by d_model^-0.5 (T5 v1.0).
    Value scaled = mul(normed, constant(1.0f / std::sqrt(float(h))));
    logits = LinearOp::create(
        builder, loc, scaled,
        param("shared.weight", {v, h}, normal(embedStd)), Value(), true);
  } else {
    logits = LinearOp::create(builder, loc, normed,
                              param("lm_head.weight", {v, h}, normal(projStd)),
                              Value(), true);
  }
  endMain({{"logits", endLayer(logits)}});
}

void ModelBuilder::buildViT() {
  int64_t h = config.hidden, p = config.patchSize, c = config.channels;
  int64_t tokens = config.maxPositions;
  double initStd = config.initStd;
  seq = tokens;
  // ViTModel's own names have no prefix; the classifier nests it as "vit".
  std::string base = config.head == ModelHead::pooler ? "" : "vit.";
  Value pixels =
      beginMain({{"pixel_values",
                  tensor({batch, c, config.imageSize, config.imageSize})}})[0];

  std::string e = base + "embeddings";
  Value image = beginLayer(LayerKind::embedding, e, pixels, hiddenType())[0];
  Value flat = ExtractPatchesOp::create(builder, loc, image, p);
  Value kernel = param(e + ".patch_embeddings.projection.weight", {h, c, p, p},
                       normal(initStd));
  Value projected = LinearOp::create(
      builder, loc, flat, reshape(kernel, {h, c * p * p}),
      param(e + ".patch_embeddings.projection.bias", {h}, zeros()), true);
  Value cls =
      BroadcastOp::create(builder, loc, tensor({batch, 1, h}),
                          param(e + ".cls_token", {1, 1, h}, normal(initStd)));
  Value joined = ConcatOp::create(builder, loc, ValueRange{cls, projected}, 1);
  assert(cast<RankedTensorType>(projected.getType()).getDimSize(1) ==
         tokens - 1);
  Value hidden = endLayer(dropout(
      add(joined,
          param(e + ".position_embeddings", {1, tokens, h}, normal(initStd))),
      config.embeddingDropout));

  int64_t inner = config.heads * config.headDim();
  bool qkvBias = config.hasQkvBias();
  for (int64_t i = 0; i < config.layers; ++i) {
    std::string l = (base + "encoder.layer." + Twine(i)).str();
    Value in = beginLayer(LayerKind::encoder, l, hidden, hiddenType())[0];
    Value n1 = layerNorm(in, l + ".layernorm_before", h);
    std::string a = l + ".attention.attention";
    Value q = splitHeads(linear(n1, a + ".query", h, inner, qkvBias, true, initStd),
                         config.heads);
    Value k = splitHeads(linear(n1, a + ".key", h, inner, qkvBias, true, initStd),
                         config.heads);
    Value val = splitHeads(
        linear(n1, a + ".value", h, inner, qkvBias, true, initStd), config.heads);
    Value attn = mergeHeads(attention(q, k, val, Value(), false,
                                      std::nullopt, config.attentionDropout));
    Value r1 = add(in, dropout(linear(attn, l + ".attention.output.dense",
                                      inner, h, config.hasOutputBias(), true,
                                      initStd),
                               config.hiddenDropout));
    Value n2 = layerNorm(r1, l + ".layernorm_after", h);
    Value mlp = feedForward(n2, l + ".intermediate.dense", "",
                            l + ".output.dense", true, initStd, initStd);
    hidden = endLayer(add(r1, dropout(mlp, config.hiddenDropout)));
  }

  auto first = [&](Value x) {
    return reshape(SliceOp::create(builder, loc, x, ArrayRef<int64_t>{0, 0, 0},
                                   ArrayRef<int64_t>{batch, 1, h},
                                   ArrayRef<int64_t>{1, 1, 1}),
                   {batch, h});
  };
  if (config.head == ModelHead::pooler) {
    Value out = beginLayer(LayerKind::head, "pooler", hidden,
                           {hiddenType(), tensor({batch, h})})[0];
    Value normed = layerNorm(out, "layernorm", h);
    Value pooled = TanhOp::create(
        builder, loc, linear(first(normed), "pooler.dense", h, h, true, true,
                             initStd));
    auto results = endLayer({normed, pooled});
    endMain({{"last_hidden_state", results[0]},
             {"pooler_output", results[1]}});
    return;
  }
  Value out = beginLayer(LayerKind::head, "classifier", hidden,
                         tensor({batch, config.classes}))[0];
  Value normed = layerNorm(out, base + "layernorm", h);
  Value logits =
      linear(first(normed), "classifier", h, config.classes, true, true, initStd);
  endMain({{"logits", endLayer(logits)}});
}

OwningOpRef<ModuleOp> ModelBuilder::build() {
  switch (config.family) {
  case ModelFamily::GPT:
    buildGPT();
    break;
  case ModelFamily::LLaMA:
    buildLLaMA();
    break;
  case ModelFamily::BERT:
    buildBERT();
    break;
  case ModelFamily::T5:
    buildT5();
    break;
  case ModelFamily::ViT:
    buildViT();
    break;
  }
  return std::move(module);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::galvatron::buildModel(MLIRContext *context, const ModelConfig &config,
                            ModelShape shape) {
  auto error = [&](const Twine &message) {
    return makeError(config.name + ": " + message);
  };
  if (std::string problem = checkModelConfig(config); !problem.empty())
    return error(problem);
  if (shape.batch < 1)
    return error("batch must be positive, got " + Twine(shape.batch));
  int64_t seq = shape.seqLen ? shape.seqLen : config.seqLen;
  if (config.family == ModelFamily::ViT && shape.seqLen &&
      shape.seqLen != config.seqLen)
    return error("the sequence length of a ViT is fixed by its image (" +
                 Twine(config.seqLen) + " tokens)");
  if (seq < 1)
    return error("sequence length must be positive, got " + Twine(seq));
  if (config.maxPositions && seq > config.maxPositions)
    return error("sequence length " + Twine(seq) + " exceeds the " +
                 Twine(config.maxPositions) + " learned positions");
  // Within the window, sliding-window attention is plain causal attention.
  if (config.slidingWindow && seq > config.slidingWindow)
    return error("sequence length " + Twine(seq) +
                 " exceeds the sliding window of " +
                 Twine(config.slidingWindow) +
                 " tokens (sliding_window): sliding-window attention is not "
                 "supported; use --seq-len <= " +
                 Twine(config.slidingWindow));

  context->loadDialect<GalvatronDialect, func::FuncDialect>();
  OwningOpRef<ModuleOp> module =
      ModelBuilder(context, config, shape.batch, seq).build();
  if (failed(verify(*module)))
    return error("generated IR failed to verify");
  return std::move(module);
}
