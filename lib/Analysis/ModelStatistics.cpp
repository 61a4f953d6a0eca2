//===- ModelStatistics.cpp - Parameter and FLOP counts --------------------===//

#include "galvatron/Analysis/ModelStatistics.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/Format.h"

using namespace mlir;
using namespace mlir::galvatron;

/// Adds the parameters and FLOPs of `root` and everything nested in it to
/// `entry`. `owned` holds the parameters some layer already counts; `readHere`
/// the ones this entry already read, so reading a weight twice in one layer
/// does not make it shared with itself.
static void accumulate(Operation *root, LayerStatistics &entry,
                       llvm::StringSet<> &owned, llvm::StringSet<> &readHere) {
  root->walk([&](Operation *op) {
    if (auto param = dyn_cast<ParamOp>(op)) {
      if (!readHere.insert(param.getName()).second)
        return;
      int64_t elements = param.getType().getNumElements();
      if (owned.insert(param.getName()).second)
        entry.parameters += elements;
      else
        entry.sharedParameters += elements;
    } else if (auto flops = dyn_cast<FlopCountOpInterface>(op)) {
      entry.flops += flops.getFlops();
    }
  });
}

ModelStatistics ModelStatistics::compute(func::FuncOp function) {
  ModelStatistics stats;
  stats.function = function.getSymName().str();
  stats.outsideLayers.name = "(outside layers)";
  stats.outsideLayers.kind = LayerKind::other;
  llvm::StringSet<> owned, readOutside;
  for (Operation &op : function.getBody().getOps()) {
    auto layer = dyn_cast<LayerOp>(op);
    if (!layer) {
      accumulate(&op, stats.outsideLayers, owned, readOutside);
      continue;
    }
    LayerStatistics &entry = stats.layers.emplace_back();
    entry.name = layer.getLayerName().str();
    entry.kind = layer.getKind();
    llvm::StringSet<> readHere;
    accumulate(layer, entry, owned, readHere);
  }
  for (const LayerStatistics &layer : stats.layers) {
    stats.totalParameters += layer.parameters;
    stats.totalFlops += layer.flops;
  }
  stats.totalParameters += stats.outsideLayers.parameters;
  stats.totalFlops += stats.outsideLayers.flops;
  return stats;
}

static llvm::json::Object layerToJSON(const LayerStatistics &layer) {
  return llvm::json::Object{
      {"name", layer.name},
      {"kind", stringifyLayerKind(layer.kind)},
      {"parameters", layer.parameters},
      {"shared_parameters", layer.sharedParameters},
      {"flops", layer.flops},
  };
}

llvm::json::Value ModelStatistics::toJSON() const {
  llvm::json::Array layerArray;
  for (const LayerStatistics &layer : layers)
    layerArray.push_back(layerToJSON(layer));
  llvm::json::Object object{
      {"function", function},
      {"layers", std::move(layerArray)},
      {"total_parameters", totalParameters},
      {"total_flops", totalFlops},
  };
  if (outsideLayers.parameters || outsideLayers.flops)
    object["outside_layers"] = layerToJSON(outsideLayers);
  return object;
}

/// 1234567 -> "1.23 M"; keeps tables readable for 10^9..10^18 values.
static std::string humanReadable(int64_t value) {
  static const char *suffixes[] = {"", " K", " M", " G", " T", " P", " E"};
  double scaled = static_cast<double>(value);
  unsigned index = 0;
  while (scaled >= 1000.0 && index + 1 < std::size(suffixes)) {
    scaled /= 1000.0;
    ++index;
  }
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::format("%.2f", scaled) << suffixes[index];
  return text;
}

void ModelStatistics::print(llvm::raw_ostream &os) const {
  os << "model statistics for @" << function << "\n";
  os << llvm::format("%-40s %-10s %16s %16s %24s\n", "layer", "kind",
                     "parameters", "shared", "forward FLOPs");
  auto row = [&](const LayerStatistics &layer) {
    os << llvm::format("%-40s %-10s %16lld %16lld %24lld\n", layer.name.c_str(),
                       stringifyLayerKind(layer.kind).str().c_str(),
                       static_cast<long long>(layer.parameters),
                       static_cast<long long>(layer.sharedParameters),
                       static_cast<long long>(layer.flops));
  };
  for (const LayerStatistics &layer : layers)
    row(layer);
  if (outsideLayers.parameters || outsideLayers.flops)
    row(outsideLayers);
  os << "layers: " << layers.size() << "\n";
  os << "total parameters: " << totalParameters << " ("
     << humanReadable(totalParameters) << ")\n";
  os << "total forward FLOPs: " << totalFlops << " ("
     << humanReadable(totalFlops) << "FLOP)\n";
}
