//===- Cluster.cpp - Cluster descriptions ---------------------------------===//

#include "galvatron/Cluster/Cluster.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>
#include <limits>

using namespace mlir;
using namespace mlir::galvatron;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

static constexpr double kGB = 1e9;
static constexpr double kGiB = double(1ull << 30);
static constexpr double kTera = 1e12;
static constexpr double kMicro = 1e-6;

static std::string formatNumber(double value) {
  return llvm::formatv("{0}", value).str();
}

static Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

StringRef mlir::galvatron::stringifyCollective(Collective collective) {
  switch (collective) {
  case Collective::AllReduce:
    return "all_reduce";
  case Collective::AllGather:
    return "all_gather";
  case Collective::ReduceScatter:
    return "reduce_scatter";
  case Collective::AllToAll:
    return "all_to_all";
  case Collective::PointToPoint:
    return "p2p";
  }
  llvm_unreachable("unknown collective");
}

LinkCost CollectiveTable::lookup(int64_t groupSize) const {
  auto it = bySize.find(groupSize);
  if (it == bySize.end())
    return defaults;
  LinkCost cost = it->second;
  if (cost.busBandwidth == 0)
    cost.busBandwidth = defaults.busBandwidth;
  if (cost.latency == 0)
    cost.latency = defaults.latency;
  if (cost.hopLatency == 0)
    cost.hopLatency = defaults.hopLatency;
  return cost;
}

//===----------------------------------------------------------------------===//
// Groups and collective times
//===----------------------------------------------------------------------===//

GroupShape mlir::galvatron::getGroupShape(const ClusterSpec &cluster,
                                          int64_t first, int64_t stride,
                                          int64_t size) {
  GroupShape shape;
  shape.size = size;
  shape.consecutive = stride == 1 || size == 1;
  int64_t firstNode = first / cluster.devicesPerNode, onFirst = 0;
  int64_t nodes = 0, previousNode = -1;
  for (int64_t i = 0; i < size; ++i) {
    int64_t node = (first + i * stride) / cluster.devicesPerNode;
    if (node != previousNode)
      ++nodes;
    previousNode = node;
    if (node == firstNode)
      ++onFirst;
  }
  shape.nodes = nodes;
  shape.perNode = onFirst;
  return shape;
}

LinkCost mlir::galvatron::getLinkCost(const ClusterSpec &cluster,
                                      Collective collective,
                                      const GroupShape &group) {
  unsigned index = static_cast<unsigned>(collective);
  const CollectiveTable &intra = cluster.intraNode[index];
  LinkCost cost = group.nodes <= 1 ? intra.lookup(group.size)
                                   : cluster.interNode[index].lookup(group.size);
  if (group.nodes > 1) {
    if (cost.busBandwidth == 0) {
      cost.busBandwidth = cluster.nodeNetworkBandwidth * group.perNode /
                          cluster.devicesPerNode;
      if (group.perNode > 1)
        cost.busBandwidth = std::min(
            cost.busBandwidth, intra.lookup(group.perNode).busBandwidth);
    }
    if (cost.latency == 0)
      cost.latency = intra.lookup(group.size).latency;
    if (cost.hopLatency == 0)
      cost.hopLatency = intra.lookup(group.size).hopLatency;
  }
  // Galvatron's measurements describe the profiled cluster directly.
  bool allReduceFamily = collective == Collective::AllReduce ||
                         collective == Collective::AllGather ||
                         collective == Collective::ReduceScatter;
  if (allReduceFamily) {
    auto fit = cluster.measuredAllReduceFit.find(group.size);
    if (fit != cluster.measuredAllReduceFit.end())
      cost = fit->second; // the fitted intercept covers every step
    auto measured =
        cluster.measuredAllReduce.find({group.size, group.consecutive});
    if (measured != cluster.measuredAllReduce.end())
      cost.busBandwidth = measured->second;
  } else if (collective == Collective::AllToAll) {
    auto fit = cluster.measuredAllToAllFit.find(group.size);
    if (fit != cluster.measuredAllToAllFit.end())
      cost = fit->second;
  }
  return cost;
}

double mlir::galvatron::getCollectiveTime(const ClusterSpec &cluster,
                                          Collective collective,
                                          const GroupShape &group,
                                          double bytes) {
  if (group.size <= 1 || bytes <= 0)
    return 0;
  LinkCost cost = getLinkCost(cluster, collective, group);
  double g = static_cast<double>(group.size);
  double factor = 1.0, steps = 1.0;
  switch (collective) {
  case Collective::AllReduce:
    factor = 2.0 * (g - 1.0) / g;
    steps = 2.0 * (g - 1.0);
    break;
  case Collective::AllGather:
  case Collective::ReduceScatter:
  case Collective::AllToAll:
    factor = (g - 1.0) / g;
    steps = g - 1.0;
    break;
  case Collective::PointToPoint:
    break;
  }
  return cost.latency + steps * cost.hopLatency +
         factor * bytes / cost.busBandwidth;
}

double mlir::galvatron::getPointToPointTime(const ClusterSpec &cluster,
                                            int64_t pp, bool acrossNodes,
                                            double bytes) {
  if (bytes <= 0)
    return 0;
  unsigned index = static_cast<unsigned>(Collective::PointToPoint);
  LinkCost cost = acrossNodes ? cluster.interNode[index].lookup(2)
                              : cluster.intraNode[index].lookup(2);
  if (acrossNodes && cost.busBandwidth == 0)
    // Every device of a stage sends at once, each over its share of the
    // node's adapters.
    cost.busBandwidth =
        cluster.nodeNetworkBandwidth / cluster.devicesPerNode;
  if (acrossNodes && cost.latency == 0)
    cost.latency = cluster.intraNode[index].lookup(2).latency;
  if (acrossNodes && cost.hopLatency == 0)
    cost.hopLatency = cluster.intraNode[index].lookup(2).hopLatency;
  auto measured = cluster.measuredP2P.find(pp);
  if (measured != cluster.measuredP2P.end())
    cost.busBandwidth = measured->second;
  return cost.latency + cost.hopLatency + bytes / cost.busBandwidth;
}

//===----------------------------------------------------------------------===//
// Validation and JSON output
//===----------------------------------------------------------------------===//

Error ClusterSpec::validate() const {
  auto bad = [&](const Twine &what) {
    return makeError("cluster '" + name + "': " + what);
  };
  if (nodes < 1)
    return bad("nodes must be positive, got " + Twine(nodes));
  if (devicesPerNode < 1)
    return bad("devices_per_node must be positive, got " +
               Twine(devicesPerNode));
  if (devicesPerNode > kMaxDevicesPerNode)
    return bad("devices_per_node = " + Twine(devicesPerNode) +
               " exceeds the largest supported node (" +
               Twine(kMaxDevicesPerNode) + " devices)");
  if (nodes > kMaxDevices / devicesPerNode)
    return bad(Twine(nodes) + " nodes of " + Twine(devicesPerNode) +
               " devices exceed the largest supported cluster (" +
               Twine(kMaxDevices) + " devices)");
  if (!(memory > 0))
    return bad("device memory must be positive");
  for (double peak : peakFlops)
    if (!(peak > 0))
      return bad("every peak_tflops entry (fp32, fp16, bf16) must be "
                 "positive");
  if (!(memoryBandwidth > 0))
    return bad("memory_bandwidth_gbps must be positive");
  for (unsigned i = 0; i < kNumCollectives; ++i)
    if (!(intraNode[i].defaults.busBandwidth > 0))
      return bad("intra_node." +
                 stringifyCollective(static_cast<Collective>(i)) +
                 " needs a positive bandwidth_gbps");
  if (nodes > 1 && !(nodeNetworkBandwidth > 0))
    return bad("a cluster of several nodes needs a positive "
               "inter_node.node_bandwidth_gbps");
  const EfficiencyFactors &e = efficiency;
  for (auto [value, key] :
       {std::pair{e.gemm, "gemm_efficiency"},
        {e.attention, "attention_efficiency"},
        {e.memoryBound, "memory_bound_efficiency"}})
    if (!(value > 0 && value <= 1))
      return bad(Twine(key) + " must lie in (0, 1], got " +
                 formatNumber(value));
  if (!(e.overlap >= 1 && e.overlap <= 2))
    return bad("overlap_coefficient must lie in [1, 2], got " +
               formatNumber(e.overlap));
  if (!(e.fragmentation >= 0 && e.fragmentation < 1))
    return bad("allocator_fragmentation must lie in [0, 1)");
  if (!(e.kernelOverhead >= 0) || !(e.runtimeMemory >= 0) ||
      !(e.backwardFlops > 0) || !(e.backwardBytes > 0))
    return bad("kernel_overhead_us and runtime_memory_gib must be "
               "non-negative and the backward ratios positive");
  return Error::success();
}

llvm::json::Object EfficiencyFactors::toJSON() const {
  return llvm::json::Object{
      {"gemm_efficiency", gemm},
      {"attention_efficiency", attention},
      {"memory_bound_efficiency", memoryBound},
      {"kernel_overhead_us", kernelOverhead / kMicro},
      {"overlap_coefficient", overlap},
      {"backward_flops_ratio", backwardFlops},
      {"backward_bytes_ratio", backwardBytes},
      {"runtime_memory_gib", runtimeMemory / kGiB},
      {"allocator_fragmentation", fragmentation},
      {"attention_kernel", materializedAttention ? "materialized" : "fused"},
  };
}

static llvm::json::Object linkToJSON(const LinkCost &cost) {
  llvm::json::Object object;
  if (cost.busBandwidth > 0)
    object["bandwidth_gbps"] = cost.busBandwidth / kGB;
  if (cost.latency > 0)
    object["latency_us"] = cost.latency / kMicro;
  if (cost.hopLatency > 0)
    object["hop_latency_us"] = cost.hopLatency / kMicro;
  return object;
}

static llvm::json::Object tableToJSON(const CollectiveTable &table) {
  llvm::json::Object object = linkToJSON(table.defaults);
  if (!table.bySize.empty()) {
    llvm::json::Object sizes;
    for (auto &[size, cost] : table.bySize)
      sizes[std::to_string(size)] = linkToJSON(cost);
    object["by_size"] = std::move(sizes);
  }
  return object;
}

llvm::json::Object ClusterSpec::toJSON() const {
  llvm::json::Object intra, inter;
  for (unsigned i = 0; i < kNumCollectives; ++i) {
    StringRef key = stringifyCollective(static_cast<Collective>(i));
    intra[key] = tableToJSON(intraNode[i]);
    llvm::json::Object interTable = tableToJSON(interNode[i]);
    if (!interTable.empty())
      inter[key] = std::move(interTable);
  }
  inter["node_bandwidth_gbps"] = nodeNetworkBandwidth / kGB;
  return llvm::json::Object{
      {"name", name},
      {"nodes", nodes},
      {"devices_per_node", devicesPerNode},
      {"device",
       llvm::json::Object{
           {"memory_gib", memory / kGiB},
           {"peak_tflops",
            llvm::json::Object{{"fp32", peakFlops[0] / kTera},
                               {"fp16", peakFlops[1] / kTera},
                               {"bf16", peakFlops[2] / kTera}}},
           {"memory_bandwidth_gbps", memoryBandwidth / kGB}}},
      {"intra_node", std::move(intra)},
      {"inter_node", std::move(inter)},
      {"efficiency", efficiency.toJSON()},
  };
}

//===----------------------------------------------------------------------===//
// Presets
//===----------------------------------------------------------------------===//

namespace {
/// Bandwidths in GB/s and latencies in microseconds, as people quote them.
struct PresetNumbers {
  const char *name;
  const char *description;
  double memoryGiB, fp32Tflops, halfTflops, hbmGBps;
  double intraBus[kNumCollectives];
  double intraLatencyUs, intraHopUs, nodeNetworkGBps, interLatencyUs,
      interHopUs;
};
} // namespace

// Sources: NVIDIA A100 / H100 datasheets (dense peaks, HBM bandwidth);
// nccl-tests bus bandwidth on DGX A100 (~230 GB/s, NVLink 3) and DGX H100
// (~370 GB/s, NVLink 4); DGX nodes carry 8 HDR (200 Gb/s) or NDR
// (400 Gb/s) adapters, of which ~90% is achieved. The PCIe box is 8 A100
// 40GB PCIe cards behind PCIe 4.0 switches (~20 GB/s bus bandwidth) with
// 100 Gb/s Ethernet between boxes.
static const PresetNumbers kPresets[] = {
    {"a100-80gb",
     "nodes of 8 A100-SXM4-80GB, NVLink 3 (NVSwitch), 8x200 Gb/s InfiniBand "
     "(DGX A100)",
     80, 156, 312, 2039, {230, 230, 230, 200, 230}, 10, 0.5, 180, 25, 3},
    {"h100-80gb",
     "nodes of 8 H100-SXM5-80GB, NVLink 4 (NVSwitch), 8x400 Gb/s InfiniBand "
     "(DGX H100)",
     80, 495, 989, 3350, {370, 370, 370, 300, 370}, 8, 0.5, 360, 20, 2.5},
    {"a100-40gb-pcie",
     "boxes of 8 A100-PCIe-40GB on PCIe 4.0 switches, no NVLink, 100 Gb/s "
     "Ethernet",
     40, 156, 312, 1555, {20, 20, 20, 15, 20}, 15, 1.5, 11, 30, 5},
};

ArrayRef<ClusterPresetInfo> mlir::galvatron::getClusterPresets() {
  static const std::vector<ClusterPresetInfo> infos = [] {
    std::vector<ClusterPresetInfo> result;
    for (const PresetNumbers &preset : kPresets)
      result.push_back({preset.name, preset.description});
    return result;
  }();
  return infos;
}

Expected<ClusterSpec> mlir::galvatron::getClusterPreset(StringRef name,
                                                        int64_t nodes) {
  for (const PresetNumbers &preset : kPresets) {
    if (name != preset.name)
      continue;
    ClusterSpec spec;
    spec.name = preset.name;
    spec.nodes = nodes > 0 ? nodes : 1;
    spec.devicesPerNode = 8;
    spec.memory = preset.memoryGiB * kGiB;
    spec.peakFlops[0] = preset.fp32Tflops * kTera;
    spec.peakFlops[1] = spec.peakFlops[2] = preset.halfTflops * kTera;
    spec.memoryBandwidth = preset.hbmGBps * kGB;
    for (unsigned i = 0; i < kNumCollectives; ++i) {
      spec.intraNode[i].defaults = {preset.intraBus[i] * kGB,
                                    preset.intraLatencyUs * kMicro,
                                    preset.intraHopUs * kMicro};
      spec.interNode[i].defaults = {0, preset.interLatencyUs * kMicro,
                                    preset.interHopUs * kMicro};
    }
    spec.nodeNetworkBandwidth = preset.nodeNetworkGBps * kGB;
    if (Error error = spec.validate())
      return std::move(error);
    return spec;
  }
  std::string known;
  for (const PresetNumbers &preset : kPresets)
    known += (known.empty() ? "" : ", ") + std::string(preset.name);
  return makeError("unknown cluster '" + name + "' (presets: " + known +
                   "; or give the path of a cluster JSON file)");
}

//===----------------------------------------------------------------------===//
// Strict JSON reading
//===----------------------------------------------------------------------===//

namespace {
/// Reads a JSON object field by field, rejecting unknown keys, with errors
/// naming the source and the key path.
class StrictObject {
public:
  StrictObject(const llvm::json::Object &object, StringRef source,
               std::string path)
      : object(object), source(source), path(std::move(path)) {}

  std::string keyPath(StringRef key) const {
    return path.empty() ? key.str() : path + "." + key.str();
  }

  Error error(StringRef key, const Twine &message) const {
    return makeError(source + ": '" + keyPath(key) + "' " + message);
  }

  /// Reads a number; `found` tells whether the key was present.
  Error number(StringRef key, double &value, bool *found = nullptr,
               bool positive = true) {
    seen.push_back(key.str());
    const llvm::json::Value *entry = object.get(key);
    if (found)
      *found = entry != nullptr;
    if (!entry)
      return Error::success();
    std::optional<double> number = entry->getAsNumber();
    if (!number || (positive && !(*number > 0)) || (!positive && *number < 0))
      return error(key, positive ? "must be a positive number"
                                 : "must be a non-negative number");
    value = *number;
    return Error::success();
  }

  Error integer(StringRef key, int64_t &value, bool required) {
    seen.push_back(key.str());
    const llvm::json::Value *entry = object.get(key);
    if (!entry)
      return required ? error(key, "is missing") : Error::success();
    std::optional<int64_t> number = entry->getAsInteger();
    if (!number || *number < 1)
      return error(key, "must be a positive integer");
    value = *number;
    return Error::success();
  }

  Error string(StringRef key, std::string &value) {
    seen.push_back(key.str());
    const llvm::json::Value *entry = object.get(key);
    if (!entry)
      return Error::success();
    std::optional<StringRef> text = entry->getAsString();
    if (!text)
      return error(key, "must be a string");
    value = text->str();
    return Error::success();
  }

  /// The sub-object at `key`, or null when absent.
  Expected<const llvm::json::Object *> child(StringRef key) {
    seen.push_back(key.str());
    const llvm::json::Value *entry = object.get(key);
    if (!entry)
      return nullptr;
    const llvm::json::Object *child = entry->getAsObject();
    if (!child)
      return error(key, "must be an object");
    return child;
  }

  /// Every key must have been read.
  Error finish() const {
    for (auto &entry : object)
      if (!llvm::is_contained(seen, entry.first.str()))
        return makeError(source + ": unknown key '" +
                         keyPath(entry.first.str()) + "'");
    return Error::success();
  }

private:
  const llvm::json::Object &object;
  StringRef source;
  std::string path;
  std::vector<std::string> seen;
};
} // namespace

static Error readLink(StrictObject &reader, LinkCost &cost) {
  double gbps = 0, us = 0, hopUs = 0;
  bool hasBandwidth = false, hasLatency = false, hasHop = false;
  if (Error e = reader.number("bandwidth_gbps", gbps, &hasBandwidth))
    return e;
  if (Error e = reader.number("latency_us", us, &hasLatency,
                              /*positive=*/false))
    return e;
  if (Error e = reader.number("hop_latency_us", hopUs, &hasHop,
                              /*positive=*/false))
    return e;
  if (hasBandwidth)
    cost.busBandwidth = gbps * kGB;
  if (hasLatency)
    cost.latency = us * kMicro;
  if (hasHop)
    cost.hopLatency = hopUs * kMicro;
  return Error::success();
}

static Error readTable(const llvm::json::Object &object, StringRef source,
                       const std::string &path, CollectiveTable &table) {
  StrictObject reader(object, source, path);
  if (Error e = readLink(reader, table.defaults))
    return e;
  auto sizes = reader.child("by_size");
  if (!sizes)
    return sizes.takeError();
  if (*sizes) {
    for (auto &entry : **sizes) {
      int64_t size = 0;
      std::string key = path + ".by_size." + entry.first.str();
      if (!llvm::to_integer(entry.first.str(), size) || size < 1)
        return makeError(source + ": '" + key +
                         "' must be keyed by a positive group size");
      const llvm::json::Object *costObject = entry.second.getAsObject();
      if (!costObject)
        return makeError(source + ": '" + key + "' must be an object");
      StrictObject costReader(*costObject, source, key);
      LinkCost cost;
      if (Error e = readLink(costReader, cost))
        return e;
      if (Error e = costReader.finish())
        return e;
      table.bySize[size] = cost;
    }
  }
  return reader.finish();
}

/// Reads the collective tables of `intra_node` or `inter_node`. A missing
/// collective inherits all_reduce's entry.
static Error readLinks(const llvm::json::Object &object, StringRef source,
                       StringRef path, CollectiveTable (&tables)[kNumCollectives],
                       double *nodeBandwidth) {
  StrictObject reader(object, source, path.str());
  if (nodeBandwidth) {
    double gbps = 0;
    bool found = false;
    if (Error e = reader.number("node_bandwidth_gbps", gbps, &found))
      return e;
    if (found)
      *nodeBandwidth = gbps * kGB;
  }
  bool present[kNumCollectives] = {};
  for (unsigned i = 0; i < kNumCollectives; ++i) {
    StringRef key = stringifyCollective(static_cast<Collective>(i));
    auto table = reader.child(key);
    if (!table)
      return table.takeError();
    if (!*table)
      continue;
    present[i] = true;
    tables[i] = CollectiveTable();
    if (Error e = readTable(**table, source, reader.keyPath(key), tables[i]))
      return e;
  }
  for (unsigned i = 1; i < kNumCollectives; ++i)
    if (!present[i] && present[0])
      tables[i] = tables[0];
  return reader.finish();
}

Error mlir::galvatron::applyCostProfile(EfficiencyFactors &factors,
                                        const llvm::json::Object &profile,
                                        StringRef source) {
  StrictObject reader(profile, source, "");
  double kernelUs = factors.kernelOverhead / kMicro;
  double runtimeGiB = factors.runtimeMemory / kGiB;
  std::string kernel;
  struct Field {
    const char *key;
    double *value;
    bool positive;
  };
  for (const Field &field : {
           Field{"gemm_efficiency", &factors.gemm, true},
           {"attention_efficiency", &factors.attention, true},
           {"memory_bound_efficiency", &factors.memoryBound, true},
           {"kernel_overhead_us", &kernelUs, false},
           {"overlap_coefficient", &factors.overlap, true},
           {"backward_flops_ratio", &factors.backwardFlops, true},
           {"backward_bytes_ratio", &factors.backwardBytes, true},
           {"runtime_memory_gib", &runtimeGiB, false},
           {"allocator_fragmentation", &factors.fragmentation, false},
       })
    if (Error e =
            reader.number(field.key, *field.value, nullptr, field.positive))
      return e;
  if (Error e = reader.string("attention_kernel", kernel))
    return e;
  if (!kernel.empty()) {
    if (kernel != "fused" && kernel != "materialized")
      return reader.error("attention_kernel",
                          "must be \"fused\" or \"materialized\", got \"" +
                              kernel + "\"");
    factors.materializedAttention = kernel == "materialized";
  }
  factors.kernelOverhead = kernelUs * kMicro;
  factors.runtimeMemory = runtimeGiB * kGiB;
  return reader.finish();
}

/// The byte at which `text` nests arrays and objects deeper than
/// `maxDepth`, if it does (strings skipped; the rest is the parser's).
static std::optional<size_t> findDeepNesting(StringRef text,
                                             unsigned maxDepth) {
  unsigned depth = 0;
  bool inString = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (inString) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        inString = false;
    } else if (c == '"') {
      inString = true;
    } else if (c == '[' || c == '{') {
      if (++depth > maxDepth)
        return i;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

Expected<llvm::json::Object>
mlir::galvatron::parseJSONObject(StringRef text, StringRef source,
                                 StringRef what) {
  // llvm::json::parse recurses once per level: a hostile file must not
  // exhaust the stack.
  constexpr unsigned kMaxDepth = 64;
  if (std::optional<size_t> at = findDeepNesting(text, kMaxDepth))
    return makeError(source + ": malformed JSON: nested deeper than " +
                     Twine(kMaxDepth) + " levels (at byte " + Twine(*at) + ")");
  Expected<llvm::json::Value> parsed = llvm::json::parse(text);
  if (!parsed)
    return makeError(source + ": malformed JSON: " +
                     llvm::toString(parsed.takeError()));
  llvm::json::Object *object = parsed->getAsObject();
  if (!object)
    return makeError(source + ": " + what + " must be a JSON object");
  return std::move(*object);
}

Expected<ClusterSpec> mlir::galvatron::parseClusterJSON(StringRef text,
                                                        StringRef source) {
  auto parsedRoot = parseJSONObject(text, source, "a cluster description");
  if (!parsedRoot)
    return parsedRoot.takeError();
  const llvm::json::Object *root = &*parsedRoot;
  ClusterSpec spec;
  StrictObject reader(*root, source, "");
  if (Error e = reader.string("name", spec.name))
    return std::move(e);
  if (spec.name.empty())
    spec.name = llvm::sys::path::filename(source).str();
  if (Error e = reader.integer("nodes", spec.nodes, /*required=*/false))
    return std::move(e);
  if (Error e = reader.integer("devices_per_node", spec.devicesPerNode,
                               /*required=*/true))
    return std::move(e);

  auto device = reader.child("device");
  if (!device)
    return device.takeError();
  if (!*device)
    return reader.error("device", "is missing");
  StrictObject deviceReader(**device, source, "device");
  double memoryGiB = 0, hbm = 0;
  if (Error e = deviceReader.number("memory_gib", memoryGiB))
    return std::move(e);
  if (Error e = deviceReader.number("memory_bandwidth_gbps", hbm))
    return std::move(e);
  auto peaks = deviceReader.child("peak_tflops");
  if (!peaks)
    return peaks.takeError();
  if (!*peaks)
    return deviceReader.error("peak_tflops", "is missing");
  StrictObject peakReader(**peaks, source, "device.peak_tflops");
  const char *precisions[] = {"fp32", "fp16", "bf16"};
  for (unsigned i = 0; i < 3; ++i) {
    bool found = false;
    if (Error e = peakReader.number(precisions[i], spec.peakFlops[i], &found))
      return std::move(e);
    if (!found)
      return peakReader.error(precisions[i], "is missing");
    spec.peakFlops[i] *= kTera;
  }
  if (Error e = peakReader.finish())
    return std::move(e);
  if (Error e = deviceReader.finish())
    return std::move(e);
  spec.memory = memoryGiB * kGiB;
  spec.memoryBandwidth = hbm * kGB;

  auto intra = reader.child("intra_node");
  if (!intra)
    return intra.takeError();
  if (!*intra)
    return reader.error("intra_node", "is missing");
  if (Error e = readLinks(**intra, source, "intra_node", spec.intraNode,
                          nullptr))
    return std::move(e);
  auto inter = reader.child("inter_node");
  if (!inter)
    return inter.takeError();
  if (*inter)
    if (Error e = readLinks(**inter, source, "inter_node", spec.interNode,
                            &spec.nodeNetworkBandwidth))
      return std::move(e);
  auto efficiency = reader.child("efficiency");
  if (!efficiency)
    return efficiency.takeError();
  if (*efficiency)
    if (Error e = applyCostProfile(spec.efficiency, **efficiency,
                                   (source + ": efficiency").str()))
      return std::move(e);
  if (Error e = reader.finish())
    return std::move(e);
  if (Error e = spec.validate())
    return makeError(source + ": " + llvm::toString(std::move(e)));
  return spec;
}

static Expected<std::string> readFile(StringRef path) {
  auto buffer = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buffer)
    return makeError("cannot read '" + path +
                     "': " + buffer.getError().message());
  return (*buffer)->getBuffer().str();
}

Expected<ClusterSpec> mlir::galvatron::loadCluster(StringRef nameOrPath,
                                                   int64_t nodes) {
  bool looksLikeFile = nameOrPath.ends_with(".json") ||
                       nameOrPath.contains('/');
  if (!looksLikeFile)
    return getClusterPreset(nameOrPath, nodes);
  Expected<std::string> text = readFile(nameOrPath);
  if (!text)
    return text.takeError();
  Expected<ClusterSpec> spec = parseClusterJSON(*text, nameOrPath);
  if (spec && nodes > 0) {
    spec->nodes = nodes;
    if (Error e = spec->validate())
      return std::move(e);
  }
  return spec;
}

//===----------------------------------------------------------------------===//
// Galvatron hardware profiles
//===----------------------------------------------------------------------===//

/// Fits time = latency + bytes · factor / bandwidth by least squares.
static std::optional<LinkCost>
fitLinkCost(ArrayRef<std::pair<double, double>> bytesAndSeconds,
            double factor) {
  size_t n = bytesAndSeconds.size();
  if (n < 2)
    return std::nullopt;
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (auto [x, y] : bytesAndSeconds) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double denominator = n * sxx - sx * sx;
  if (!(denominator > 0))
    return std::nullopt;
  double slope = (n * sxy - sx * sy) / denominator;
  double intercept = (sy - slope * sx) / n;
  if (!(slope > 0))
    return std::nullopt;
  return LinkCost{factor / slope, std::max(0.0, intercept)};
}

Error mlir::galvatron::applyGalvatronHardwareProfile(ClusterSpec &cluster,
                                                     StringRef text,
                                                     StringRef source) {
  auto parsedRoot = parseJSONObject(text, source, "a Galvatron profile");
  if (!parsedRoot)
    return parsedRoot.takeError();
  const llvm::json::Object *root = &*parsedRoot;
  std::map<int64_t, std::vector<std::pair<double, double>>> allReduceTimes,
      allToAllTimes;
  for (auto &entry : *root) {
    StringRef key = entry.first;
    std::optional<double> value = entry.second.getAsNumber();
    if (!value || !(*value > 0))
      return makeError(source + ": '" + key + "' must be a positive number");
    llvm::SmallVector<StringRef> parts;
    key.split(parts, '_');
    int64_t size = 0, flag = 0, megabytes = 0;
    // allreduce_size_N_consec_C: bus bandwidth in GB/s.
    if (parts.size() == 5 && parts[0] == "allreduce" && parts[1] == "size" &&
        parts[3] == "consec" && !parts[2].getAsInteger(10, size) &&
        !parts[4].getAsInteger(10, flag) && size >= 1 && flag >= 0 &&
        flag <= 1) {
      cluster.measuredAllReduce[{size, flag == 1}] = *value * kGB;
      continue;
    }
    // pp_size_N: point-to-point bandwidth in GB/s.
    if (parts.size() == 3 && parts[0] == "pp" && parts[1] == "size" &&
        !parts[2].getAsInteger(10, size) && size >= 1) {
      cluster.measuredP2P[size] = *value * kGB;
      continue;
    }
    if (key == "overlap_coe") {
      cluster.efficiency.overlap = *value;
      continue;
    }
    // {allreduce,all2all}_size_N_{M}MB_time: milliseconds.
    if (parts.size() == 5 && (parts[0] == "allreduce" || parts[0] == "all2all") &&
        parts[1] == "size" && parts[4] == "time" &&
        !parts[2].getAsInteger(10, size) && parts[3].ends_with("MB") &&
        !parts[3].drop_back(2).getAsInteger(10, megabytes) && size >= 1 &&
        megabytes >= 1) {
      auto &times = parts[0] == "allreduce" ? allReduceTimes : allToAllTimes;
      times[size].push_back({megabytes * double(1 << 20), *value * 1e-3});
      continue;
    }
    return makeError(source + ": unrecognized key '" + key +
                     "' (expected Galvatron's allreduce_size_N_consec_C, "
                     "pp_size_N, overlap_coe, allreduce_size_N_MMB_time or "
                     "all2all_size_N_MMB_time)");
  }
  for (auto &[size, times] : allReduceTimes) {
    double g = double(size);
    if (auto fit = fitLinkCost(times, 2.0 * (g - 1.0) / g))
      cluster.measuredAllReduceFit[size] = *fit;
    else
      return makeError(source + ": cannot fit a bandwidth to the all-reduce "
                                "times of group size " +
                       Twine(size) + " (need two or more increasing points)");
  }
  for (auto &[size, times] : allToAllTimes) {
    double g = double(size);
    if (auto fit = fitLinkCost(times, (g - 1.0) / g))
      cluster.measuredAllToAllFit[size] = *fit;
    else
      return makeError(source + ": cannot fit a bandwidth to the all-to-all "
                                "times of group size " +
                       Twine(size) + " (need two or more increasing points)");
  }
  return cluster.validate();
}

Error mlir::galvatron::applyProfileFile(ClusterSpec &cluster, StringRef path) {
  Expected<std::string> text = readFile(path);
  if (!text)
    return text.takeError();
  auto parsedRoot = parseJSONObject(*text, path, "a profile");
  if (!parsedRoot)
    return parsedRoot.takeError();
  const llvm::json::Object *root = &*parsedRoot;
  bool galvatron = llvm::any_of(*root, [](const auto &entry) {
    StringRef key = entry.first;
    return key.starts_with("allreduce_size_") ||
           key.starts_with("all2all_size_") || key.starts_with("pp_size_") ||
           key == "overlap_coe";
  });
  if (galvatron)
    return applyGalvatronHardwareProfile(cluster, *text, path);
  if (Error e = applyCostProfile(cluster.efficiency, *root, path))
    return e;
  return cluster.validate();
}

Expected<double> mlir::galvatron::parseMemorySize(StringRef text) {
  StringRef trimmed = text.trim();
  size_t split = trimmed.find_first_not_of("0123456789.");
  StringRef number = trimmed.substr(0, split);
  StringRef unit = split == StringRef::npos ? "" : trimmed.substr(split).trim();
  double value = 0;
  if (number.empty() || number.getAsDouble(value) || !(value > 0))
    return makeError("invalid memory size '" + text +
                     "' (expected e.g. 80, 80GiB, 80GB, 81920MiB)");
  double scale = 0;
  std::string lower = unit.lower();
  if (lower.empty() || lower == "gib" || lower == "g")
    scale = kGiB;
  else if (lower == "gb")
    scale = kGB;
  else if (lower == "mib" || lower == "m")
    scale = double(1 << 20);
  else if (lower == "mb")
    scale = 1e6;
  else if (lower == "tib" || lower == "t")
    scale = kGiB * 1024;
  else if (lower == "tb")
    scale = 1e12;
  else
    return makeError("invalid memory unit '" + unit + "' in '" + text +
                     "' (use GiB, GB, MiB, MB, TiB or TB)");
  return value * scale;
}
