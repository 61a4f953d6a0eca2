//===- GalvatronStrategy.cpp - Galvatron's strategy JSON ------------------===//

#include "galvatron/Analysis/GalvatronStrategy.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::galvatron;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

static constexpr const char *kKeys[] = {
    "pp_deg",     "tp_sizes_enc", "tp_consecutive_flags", "dp_types_enc",
    "use_sp",     "checkpoint",   "global_bsz",           "chunks",
    "pp_division", "pipeline_type", "default_dp_type",    "vtp",
    "vsp",        "embed_sdp"};

namespace {
/// Reads the fields of a strategy object with errors naming the key.
class Reader {
public:
  Reader(const llvm::json::Object &root, StringRef source)
      : root(root), source(source) {}

  llvm::Error error(StringRef key, const Twine &message) const {
    return makeError(source + ": '" + key + "' " + message);
  }

  /// An integer field in [minimum, maximum]; `fallback` when absent and
  /// not `required`.
  Expected<int64_t> integer(StringRef key, bool required, int64_t fallback,
                            int64_t minimum,
                            int64_t maximum = INT64_MAX) const {
    const llvm::json::Value *value = root.get(key);
    if (!value) {
      if (required)
        return error(key, "is missing");
      return fallback;
    }
    std::optional<int64_t> number = value->getAsInteger();
    if (!number) {
      // Galvatron writes some numbers as strings.
      if (auto text = value->getAsString()) {
        int64_t parsed;
        if (!text->trim().getAsInteger(10, parsed))
          number = parsed;
      }
    }
    if (!number || *number < minimum || *number > maximum)
      return error(key, maximum == INT64_MAX
                            ? "must be an integer >= " + Twine(minimum)
                            : "must be an integer in [" + Twine(minimum) +
                                  ", " + Twine(maximum) + "]");
    return *number;
  }

  /// A per-block list ("1,2,2" or [1, 2, 2]) of `count` integers in
  /// [minimum, maximum]; `fallback` repeated when absent.
  Expected<SmallVector<int64_t>> list(StringRef key, size_t count,
                                      int64_t fallback, int64_t minimum,
                                      int64_t maximum) const {
    SmallVector<int64_t> values;
    const llvm::json::Value *value = root.get(key);
    if (!value) {
      values.assign(count, fallback);
      return values;
    }
    auto invalid = [&]() {
      return error(key, "must list integers in [" + Twine(minimum) + ", " +
                            Twine(maximum) + "] separated by commas");
    };
    if (auto text = value->getAsString()) {
      SmallVector<StringRef> parts;
      text->split(parts, ',', -1, /*KeepEmpty=*/false);
      for (StringRef part : parts) {
        int64_t number;
        if (part.trim().getAsInteger(10, number))
          return invalid();
        values.push_back(number);
      }
    } else if (auto array = value->getAsArray()) {
      for (const llvm::json::Value &element : *array) {
        std::optional<int64_t> number = element.getAsInteger();
        if (!number)
          return invalid();
        values.push_back(*number);
      }
    } else {
      return invalid();
    }
    for (int64_t number : values)
      if (number < minimum || number > maximum)
        return invalid();
    if (values.size() != count)
      return error(key, "has " + Twine(values.size()) +
                            " entries but the model has " + Twine(count) +
                            " transformer blocks");
    return values;
  }

  Expected<std::string> string(StringRef key, StringRef fallback) const {
    const llvm::json::Value *value = root.get(key);
    if (!value)
      return fallback.str();
    auto text = value->getAsString();
    if (!text)
      return error(key, "must be a string");
    return text->str();
  }

private:
  const llvm::json::Object &root;
  StringRef source;
};
} // namespace

Expected<ParallelPlan> mlir::galvatron::parseGalvatronStrategy(
    StringRef text, StringRef source, const ModelProfile &model,
    int64_t devices, int64_t devicesPerNode, Precision precision,
    bool megatronSequenceParallel) {
  auto parsedRoot = parseJSONObject(text, source, "a Galvatron strategy");
  if (!parsedRoot)
    return parsedRoot.takeError();
  const llvm::json::Object *root = &*parsedRoot;
  for (const auto &entry : *root)
    if (!llvm::is_contained(kKeys, entry.first.str()))
      return makeError(source + ": unknown key '" + entry.first.str() +
                       "' (Galvatron strategy keys: " +
                       llvm::join(ArrayRef<const char *>(kKeys), ", ") + ")");
  Reader reader(*root, source);
  size_t blocks = llvm::count_if(model.layers, [](const LayerProfile &layer) {
    return layer.isTransformerBlock();
  });
  auto pp = reader.integer("pp_deg", true, 1, 1);
  if (!pp)
    return pp.takeError();
  auto tp = reader.list("tp_sizes_enc", blocks, 1, 1, 1 << 20);
  if (!tp)
    return tp.takeError();
  auto consecutive = reader.list("tp_consecutive_flags", blocks, 1, 0, 1);
  if (!consecutive)
    return consecutive.takeError();
  auto zero3 = reader.list("dp_types_enc", blocks, 0, 0, 1);
  if (!zero3)
    return zero3.takeError();
  auto sp = reader.list("use_sp", blocks, 0, 0, 1);
  if (!sp)
    return sp.takeError();
  auto checkpoint = reader.list("checkpoint", blocks, 0, 0, 1);
  if (!checkpoint)
    return checkpoint.takeError();
  auto batch = reader.integer("global_bsz", true, 1, 1, kMaxGlobalBatch);
  if (!batch)
    return batch.takeError();
  auto chunks = reader.integer("chunks", false, 1, 1);
  if (!chunks)
    return chunks.takeError();
  auto vtp = reader.integer("vtp", false, blocks ? (*tp)[0] : 1, 1);
  if (!vtp)
    return vtp.takeError();
  auto vsp = reader.integer("vsp", false, 0, 0, 1);
  if (!vsp)
    return vsp.takeError();
  auto embedSdp = reader.integer("embed_sdp", false, 0, 0, 1);
  if (!embedSdp)
    return embedSdp.takeError();
  auto pipeline = reader.string("pipeline_type", "pipedream_flush");
  if (!pipeline)
    return pipeline.takeError();
  auto defaultType = reader.string("default_dp_type", "ddp");
  if (!defaultType)
    return defaultType.takeError();

  ParallelPlan plan;
  plan.devices = devices;
  plan.devicesPerNode = devicesPerNode;
  plan.pp = *pp;
  plan.microBatches = *chunks;
  plan.globalBatch = *batch;
  plan.precision = precision;
  std::optional<PipelineSchedule> schedule =
      symbolizePipelineSchedule(*pipeline);
  if (!schedule)
    return reader.error("pipeline_type", "must be \"gpipe\" or "
                                         "\"pipedream_flush\", got \"" +
                                             *pipeline + "\"");
  plan.schedule = *schedule;
  std::optional<DataParallelType> type = symbolizeDataParallelType(*defaultType);
  if (!type)
    return reader.error("default_dp_type",
                        "must be ddp, zero1, zero2 or zero3, got \"" +
                            *defaultType + "\"");
  if (devices % plan.pp != 0)
    return reader.error("pp_deg", "(" + Twine(plan.pp) +
                                      ") does not divide the " +
                                      Twine(devices) + " devices");

  SmallVector<int64_t> division;
  if (root->get("pp_division")) {
    auto parts = reader.list("pp_division", plan.pp, 0, 0, 1 << 20);
    if (!parts) {
      // The count differs from the blocks: report it against pp_deg.
      llvm::consumeError(parts.takeError());
      return reader.error("pp_division",
                          "must list the transformer blocks of each of the " +
                              Twine(plan.pp) + " stages");
    }
    division = *parts;
  }
  if (std::string error = assignStages(plan, model, division); !error.empty())
    return reader.error("pp_division", "does not fit the model: " + error);

  size_t block = 0;
  for (auto [index, layer] : llvm::enumerate(model.layers)) {
    LayerStrategy &strategy = plan.layers[index];
    // use_sp and vsp make the layer's group of tp ranks run Ulysses.
    if (layer.isTransformerBlock()) {
      strategy.tp = (*tp)[block];
      strategy.consecutive = (*consecutive)[block] != 0;
      strategy.dpType = (*zero3)[block] ? DataParallelType::zero3 : *type;
      strategy.ulysses = (*sp)[block] != 0 && strategy.tp > 1;
      strategy.ckpt = (*checkpoint)[block] != 0;
      ++block;
    } else {
      strategy.tp = *vtp;
      strategy.dpType = *embedSdp ? DataParallelType::zero3 : *type;
      strategy.ulysses = *vsp != 0 && strategy.tp > 1;
    }
    strategy.sp = megatronSequenceParallel && strategy.tp > 1 &&
                  !strategy.ulysses;
  }
  if (llvm::Error error = plan.validate(model))
    return withContext(std::move(error),
                       source + ": the strategy does not suit the model: ");
  return plan;
}

Expected<llvm::json::Object>
mlir::galvatron::writeGalvatronStrategy(const ParallelPlan &plan,
                                        const ModelProfile &model) {
  auto cannot = [](const Twine &message) {
    return makeError("Galvatron's strategy format cannot express this plan: " +
                     message);
  };
  // The data-parallel type of a layer whose weights are data-parallel at
  // all, and whether it is ZeRO-3.
  auto dpTypeOf = [&](const LayerStrategy &strategy) {
    return plan.getParamDp(strategy) > 1 ? strategy.dpType
                                         : DataParallelType::ddp;
  };
  auto isZero3 = [&](const LayerStrategy &strategy) {
    return dpTypeOf(strategy) == DataParallelType::zero3;
  };
  // One default_dp_type for the layers that are not ZeRO-3, one Galvatron's
  // runtime has (ddp or zero2).
  std::optional<DataParallelType> defaultType;
  for (auto [index, strategy] : llvm::enumerate(plan.layers)) {
    const std::string &name = model.layers[index].name;
    if (strategy.sp && strategy.tp > 1 && !strategy.usesUlysses())
      return cannot("'" + name +
                    "' uses Megatron sequence parallelism (the file's use_sp "
                    "and vsp mean Ulysses; Galvatron turns Megatron's on for "
                    "every TP layer with its runtime flag --sequence-parallel)");
    DataParallelType type = dpTypeOf(strategy);
    if (isZero3(strategy) || plan.getParamDp(strategy) == 1)
      continue;
    if (type == DataParallelType::zero1)
      return cannot("'" + name +
                    "' uses zero1, which Galvatron's runtime does not have "
                    "(default_dp_type is ddp, zero2 or zero3)");
    if (defaultType && *defaultType != type)
      return cannot("'" + name + "' uses " + stringifyDataParallelType(type) +
                    " but another layer " +
                    stringifyDataParallelType(*defaultType) +
                    " (one default_dp_type besides ZeRO-3)");
    defaultType = type;
  }
  SmallVector<std::string> tp, consecutive, zero3, ulysses, checkpoint;
  SmallVector<int64_t> division(plan.pp, 0);
  std::optional<LayerStrategy> outside;
  unsigned outsideIndex = 0;
  for (auto [index, strategy] : llvm::enumerate(plan.layers)) {
    const LayerProfile &layer = model.layers[index];
    if (layer.isTransformerBlock()) {
      tp.push_back(std::to_string(strategy.tp));
      consecutive.push_back(strategy.consecutive ? "1" : "0");
      zero3.push_back(isZero3(strategy) ? "1" : "0");
      ulysses.push_back(strategy.usesUlysses() ? "1" : "0");
      checkpoint.push_back(strategy.ckpt ? "1" : "0");
      ++division[strategy.stage];
      continue;
    }
    if (strategy.ckpt)
      return cannot("'" + layer.name +
                    "' is checkpointed (only blocks can be)");
    bool nonConsecutive = !strategy.consecutive && strategy.tp > 1 &&
                          plan.getDp(strategy) > 1;
    if (nonConsecutive)
      return cannot("'" + layer.name +
                    "' has non-consecutive TP ranks (only blocks can)");
    if (outside) {
      if (outside->tp != strategy.tp ||
          outside->usesUlysses() != strategy.usesUlysses() ||
          isZero3(*outside) != isZero3(strategy))
        return cannot("'" + layer.name + "' and '" +
                      model.layers[outsideIndex].name +
                      "' differ (one vtp, vsp and embed_sdp for every layer "
                      "outside the blocks)");
    } else {
      outside = strategy;
      outsideIndex = index;
    }
  }
  // Layers outside the blocks must sit where Galvatron puts them.
  ParallelPlan placed = plan;
  if (std::string error = assignStages(placed, model, division);
      !error.empty())
    return cannot(error);
  for (auto [index, strategy] : llvm::enumerate(plan.layers))
    if (placed.layers[index].stage != strategy.stage)
      return cannot("'" + model.layers[index].name + "' is on stage " +
                    Twine(strategy.stage) +
                    ", but layers outside the blocks go with the block "
                    "before them (stage " +
                    Twine(placed.layers[index].stage) + ")");
  SmallVector<std::string> divisionText;
  for (int64_t count : division)
    divisionText.push_back(std::to_string(count));
  llvm::json::Object result{
      {"pp_deg", plan.pp},
      {"tp_sizes_enc", llvm::join(tp, ",")},
      {"tp_consecutive_flags", llvm::join(consecutive, ",")},
      {"dp_types_enc", llvm::join(zero3, ",")},
      {"use_sp", llvm::join(ulysses, ",")},
      {"checkpoint", llvm::join(checkpoint, ",")},
      {"global_bsz", plan.globalBatch},
      {"chunks", plan.microBatches},
      {"pp_division", llvm::join(divisionText, ",")},
      {"pipeline_type", stringifyPipelineSchedule(plan.schedule)},
      {"default_dp_type",
       stringifyDataParallelType(defaultType.value_or(DataParallelType::ddp))},
      {"vtp", outside ? outside->tp : 1},
      {"vsp", outside && outside->usesUlysses() ? 1 : 0},
      {"embed_sdp", outside && isZero3(*outside) ? 1 : 0},
  };
  return result;
}
