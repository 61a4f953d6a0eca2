//===- GalvatronProfiles.cpp - Galvatron's model profiles -----------------===//

#include "galvatron/Analysis/GalvatronProfiles.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <map>
#include <set>

using namespace mlir;
using namespace mlir::galvatron;
using llvm::StringRef;
using llvm::Twine;

static constexpr double kMB = double(1 << 20);

/// `<pp>_<tp>_<dp>[_vtp][_c][_sp]`: a raw memory measurement of one
/// parallel setting.
static bool isRawMemoryKey(StringRef key) {
  SmallVector<StringRef> parts;
  key.split(parts, '_');
  if (parts.size() < 3)
    return false;
  for (auto [index, part] : llvm::enumerate(parts))
    if (index < 3 ? part.empty() || !llvm::all_of(part, llvm::isDigit)
                  : !llvm::is_contained({"vtp", "c", "sp"}, part))
      return false;
  return true;
}

bool mlir::galvatron::isGalvatronModelProfile(const llvm::json::Object &root) {
  return llvm::any_of(root, [](const auto &entry) {
    StringRef key = entry.first;
    return key.starts_with("layertype_") || key.starts_with("layernum") ||
           key.starts_with("other_memory_") || key == "model_config" ||
           isRawMemoryKey(key);
  });
}

namespace {
/// A computation-profile key: `layertype_<t|other>_bsz<b>_seq<s>` or
/// `layernum<n>_bsz<b>_seq<s>` (n as `[2]`, `2`, or `[2, 2]`).
struct TimeKey {
  bool raw = false;
  /// Block type, -1 for the layers outside the blocks; blocks for raw keys.
  int64_t type = 0;
  int64_t batch = 0, sequence = 0;
};
} // namespace

static std::optional<TimeKey> parseTimeKey(StringRef key) {
  TimeKey parsed;
  StringRef rest = key;
  auto integer = [](StringRef text, int64_t &value) {
    return !text.empty() && !text.getAsInteger(10, value);
  };
  if (rest.consume_front("layertype_")) {
    auto [type, tail] = rest.split('_');
    if (type == "other")
      parsed.type = -1;
    else if (!integer(type, parsed.type))
      return std::nullopt;
    rest = tail;
  } else if (rest.consume_front("layernum")) {
    parsed.raw = true;
    size_t end = rest.find("_bsz");
    if (end == StringRef::npos)
      return std::nullopt;
    StringRef counts = rest.take_front(end).trim("[]");
    SmallVector<StringRef> parts;
    counts.split(parts, counts.contains(',') ? ',' : '_');
    // One block type: the count of blocks of the profiled model.
    if (parts.size() != 1 || !integer(parts[0].trim(), parsed.type))
      return std::nullopt;
    rest = rest.drop_front(end + 1);
  } else {
    return std::nullopt;
  }
  auto [batch, sequence] = rest.split('_');
  if (!batch.consume_front("bsz") || !sequence.consume_front("seq") ||
      !integer(batch, parsed.batch) || !integer(sequence, parsed.sequence) ||
      parsed.batch < 1)
    return std::nullopt;
  return parsed;
}

namespace {
/// Prices layers of `model` on one device, tp = 1, for the profiles'
/// comparisons.
struct OneDevice {
  const ModelProfile &model;
  const ClusterSpec &cluster;
  Precision precision;

  LayerCost cost(unsigned index, int64_t batch) const {
    StageContext context;
    context.cluster = &cluster;
    context.precision = precision;
    context.microBatch = batch;
    context.firstLayer = 0;
    return evaluateLayer(model.layers[index], index, LayerStrategy{},
                         context);
  }
  /// Forward seconds per sequence of the layers `selected` picks.
  template <typename Select>
  double forward(Select selected, int64_t batch) const {
    double seconds = 0;
    for (unsigned index = 0; index < model.layers.size(); ++index)
      if (selected(index))
        seconds += cost(index, batch).forward;
    return seconds / double(batch);
  }
};

/// Which block type (0, 1) each layer is, -1 outside the blocks.
SmallVector<int64_t> blockTypes(const ModelProfile &model) {
  SmallVector<int64_t> types;
  std::optional<LayerKind> first;
  for (const LayerProfile &layer : model.layers) {
    if (!layer.isTransformerBlock()) {
      types.push_back(-1);
      continue;
    }
    if (!first)
      first = layer.kind;
    types.push_back(layer.kind == *first ? 0 : 1);
  }
  return types;
}
} // namespace

/// Least-squares factor f with measured ≈ f x predicted.
static double fitFactor(ArrayRef<std::pair<double, double>> samples) {
  double products = 0, squares = 0;
  for (auto [measured, predicted] : samples) {
    products += measured * predicted;
    squares += predicted * predicted;
  }
  return squares > 0 ? products / squares : 1.0;
}

static llvm::Error applyComputationProfile(
    ModelProfile &model, const llvm::json::Object &root, StringRef source,
    const OneDevice &device) {
  SmallVector<int64_t> types = blockTypes(model);
  // (type or raw block count) -> batch -> measured seconds per sequence.
  std::map<std::pair<bool, int64_t>, std::map<int64_t, double>> measured;
  std::set<int64_t> sequences;
  for (const auto &entry : root) {
    StringRef key = entry.first;
    std::optional<TimeKey> parsed = parseTimeKey(key);
    std::optional<double> value = entry.second.getAsNumber();
    if (!parsed)
      return makeError(source + ": unknown key '" + key +
                       "' (a computation profile has layertype_<type>_bsz<b>"
                       "_seq<s> and layernum<n>_bsz<b>_seq<s> entries)");
    if (!value || !(*value >= 0))
      return makeError(source + ": '" + key +
                       "' must be a non-negative number of milliseconds");
    sequences.insert(parsed->sequence);
    if (parsed->sequence != model.sequenceLength)
      continue;
    // Raw entries are milliseconds of a whole batch; the others per
    // sequence.
    double seconds = *value / 1000.0;
    if (parsed->raw)
      seconds /= double(parsed->batch);
    measured[{parsed->raw, parsed->type}][parsed->batch] = seconds;
  }
  if (measured.empty())
    return makeError(llvm::formatv(
        "{0}: no entry for the model's sequence length {1} (the profile has "
        "{2})",
        source, model.sequenceLength,
        llvm::join(llvm::map_range(sequences,
                                   [](int64_t s) { return std::to_string(s); }),
                   ", ")));
  auto scaleLayers = [&](int64_t type, double factor) {
    for (auto [index, layer] : llvm::enumerate(model.layers))
      if (types[index] == type)
        layer.computeScale = factor;
  };
  bool typed = llvm::any_of(measured, [](auto &e) { return !e.first.first; });
  if (typed) {
    for (auto &[key, byBatch] : measured) {
      if (key.first)
        continue;
      int64_t type = key.second;
      if (!llvm::is_contained(types, type))
        return makeError(llvm::formatv(
            "{0}: the profile times layer type {1}, which the model does not "
            "have",
            source, type));
      // One layer of the type; the layers outside the blocks together.
      unsigned one = llvm::find(types, type) - types.begin();
      SmallVector<std::pair<double, double>> samples;
      for (auto [batch, seconds] : byBatch)
        samples.push_back(
            {seconds, type < 0 ? device.forward(
                                     [&](unsigned i) { return types[i] < 0; },
                                     batch)
                               : device.forward(
                                     [&](unsigned i) { return i == one; },
                                     batch)});
      scaleLayers(type, fitFactor(samples));
    }
    return llvm::Error::success();
  }
  // Raw totals of models of n blocks: with two block counts, the blocks'
  // share is their difference; with one, every layer takes one factor.
  unsigned firstBlock = llvm::find(types, 0) - types.begin();
  SmallVector<int64_t> counts;
  for (auto &[key, byBatch] : measured)
    counts.push_back(key.second);
  std::map<int64_t, double> &low = measured[{true, counts.front()}];
  std::map<int64_t, double> &high = measured[{true, counts.back()}];
  SmallVector<std::pair<double, double>> blocks, others;
  for (auto [batch, total] : low) {
    double block = device.forward(
        [&](unsigned i) { return i == firstBlock; }, batch);
    double other =
        device.forward([&](unsigned i) { return types[i] < 0; }, batch);
    if (counts.size() == 1) {
      blocks.push_back({total, double(counts.front()) * block + other});
      continue;
    }
    auto it = high.find(batch);
    if (it == high.end())
      continue;
    double perBlock =
        (it->second - total) / double(counts.back() - counts.front());
    blocks.push_back({perBlock, block});
    others.push_back({total - double(counts.front()) * perBlock, other});
  }
  double blockFactor = fitFactor(blocks);
  scaleLayers(0, blockFactor);
  scaleLayers(1, blockFactor);
  scaleLayers(-1, counts.size() == 1 ? blockFactor : fitFactor(others));
  return llvm::Error::success();
}

/// `{<seq>: value}`: the value at the model's sequence length.
static llvm::Expected<const llvm::json::Object *>
atSequence(const llvm::json::Value &value, StringRef source, StringRef key,
           int64_t sequence) {
  const llvm::json::Object *bySequence = value.getAsObject();
  if (!bySequence)
    return makeError(source + ": '" + key +
                     "' must map sequence lengths to objects");
  const llvm::json::Value *entry = bySequence->get(std::to_string(sequence));
  const llvm::json::Object *object = entry ? entry->getAsObject() : nullptr;
  if (!object)
    return makeError(llvm::formatv(
        "{0}: '{1}' has no entry for the model's sequence length {2}", source,
        key, sequence));
  return object;
}

/// `{tp: MB}` (and "checkpoint" as 0) as bytes.
static llvm::Expected<std::map<int64_t, double>>
bytesByDegree(const llvm::json::Object *object, StringRef source,
              StringRef key) {
  std::map<int64_t, double> bytes;
  for (const auto &[name, value] : *object) {
    int64_t tp = 0;
    std::optional<double> megabytes = value.getAsNumber();
    if ((name != "checkpoint" && StringRef(name).getAsInteger(10, tp)) ||
        tp < 0 || !megabytes || !(*megabytes >= 0))
      return makeError(source + ": '" + key +
                       "' maps TP degrees (and \"checkpoint\") to megabytes, "
                       "got '" + StringRef(name) + "'");
    bytes[tp] = *megabytes * kMB;
  }
  return bytes;
}

static llvm::Error applyMemoryProfile(ModelProfile &model,
                                      const llvm::json::Object &root,
                                      StringRef source,
                                      const OneDevice &device) {
  SmallVector<int64_t> types = blockTypes(model);
  bool processed = false;
  for (const auto &[name, value] : root) {
    StringRef key = name;
    if (key == "model_config" || isRawMemoryKey(key))
      continue;
    bool sp = key.consume_back("_sp");
    if (key.consume_front("layertype_")) {
      int64_t type = 0;
      if (key.getAsInteger(10, type) || !llvm::is_contained(types, type))
        return makeError(source + ": '" + StringRef(name) +
                         "' names no block type of the model");
      auto object = atSequence(value, source, name, model.sequenceLength);
      if (!object)
        return object.takeError();
      const llvm::json::Object *dict =
          (*object)->getObject("tp_activation_per_bsz_dict");
      if (!dict)
        return makeError(source + ": '" + StringRef(name) +
                         "' has no tp_activation_per_bsz_dict");
      auto bytes = bytesByDegree(dict, source, "tp_activation_per_bsz_dict");
      if (!bytes)
        return bytes.takeError();
      for (auto [index, layer] : llvm::enumerate(model.layers))
        if (types[index] == type)
          layer.measuredActivations[sp ? 1 : 0] = *bytes;
      processed = true;
      continue;
    }
    if (key == "other_memory_pp_off") {
      // The other layers' activations per sequence at tp = 1 scale ours.
      auto object = atSequence(value, source, name, model.sequenceLength);
      if (!object)
        return object.takeError();
      const llvm::json::Object *activation = (*object)->getObject("activation");
      if (!activation)
        return makeError(source + ": '" + StringRef(name) +
                         "' has no activation entry");
      auto bytes = bytesByDegree(activation, source, "activation");
      if (!bytes)
        return bytes.takeError();
      auto measured = bytes->find(1);
      double predicted = 0;
      for (auto [index, layer] : llvm::enumerate(model.layers))
        if (types[index] < 0)
          predicted += device.cost(index, 1).activations;
      if (measured != bytes->end() && predicted > 0)
        for (auto [index, layer] : llvm::enumerate(model.layers))
          if (types[index] < 0)
            layer.activationScale = measured->second / predicted;
      processed = true;
      continue;
    }
    if (key == "other_memory_pp_on_first" || key == "other_memory_pp_on_last")
      continue;
    return makeError(source + ": unknown key '" + StringRef(name) +
                     "' (a memory profile has layertype_<type>[_sp] and "
                     "other_memory_* entries)");
  }
  if (!processed)
    return makeError(source + ": holds only raw measurements; Galvatron's "
                              "profiler turns them into layertype_* and "
                              "other_memory_* entries");
  return llvm::Error::success();
}

llvm::Error mlir::galvatron::applyGalvatronModelProfile(
    ModelProfile &model, const llvm::json::Object &root, StringRef source,
    const ClusterSpec &cluster, Precision precision) {
  OneDevice device{model, cluster, precision};
  bool memory = llvm::any_of(root, [](const auto &entry) {
    StringRef key = entry.first;
    return key.starts_with("other_memory_") || key == "model_config" ||
           isRawMemoryKey(key) ||
           (key.starts_with("layertype_") && !key.contains("_bsz"));
  });
  if (memory)
    return applyMemoryProfile(model, root, source, device);
  return applyComputationProfile(model, root, source, device);
}
