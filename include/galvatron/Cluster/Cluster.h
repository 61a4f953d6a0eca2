//===- Cluster.h - Cluster descriptions -------------------------*- C++ -*-===//
//
// What the cost model knows about the machines a plan runs on: nodes, devices
// per node, device memory, peak FLOP/s per precision, memory bandwidth, and
// the bandwidth and latency of each collective by group size within and
// across nodes; plus the explicit efficiency factors that turn peaks into
// predicted times. Built-in presets, a JSON format of our own, and readers
// for Galvatron's hardware profile files. Plain C++ on LLVM Support.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_CLUSTER_CLUSTER_H
#define GALVATRON_CLUSTER_CLUSTER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/JSON.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>

namespace mlir::galvatron {

/// Numeric precision of training; indexes peak FLOP/s.
enum class ComputePrecision { FP32 = 0, FP16 = 1, BF16 = 2 };

enum class Collective {
  AllReduce = 0,
  AllGather,
  ReduceScatter,
  AllToAll,
  PointToPoint,
};
constexpr unsigned kNumCollectives = 5;

llvm::StringRef stringifyCollective(Collective collective);

/// Achieved bus bandwidth and latency of one collective.
struct LinkCost {
  /// Bytes per second of bus bandwidth (nccl-tests' busbw); 0 = not given.
  double busBandwidth = 0;
  /// Seconds to start, and per ring step (g - 1 steps for all-gather,
  /// reduce-scatter and all-to-all, 2(g - 1) for all-reduce).
  double latency = 0;
  double hopLatency = 0;
};

/// A collective's cost for every group size: `defaults`, overridden per size.
struct CollectiveTable {
  LinkCost defaults;
  std::map<int64_t, LinkCost> bySize;

  LinkCost lookup(int64_t groupSize) const;
};

/// The explicit efficiency factors of the cost model. Every predicted time
/// is a peak (FLOP/s, bytes/s) scaled by one of these; all are overridable
/// from a profile file (`readCostProfile`), which the runtime can produce
/// from measurements.
struct EfficiencyFactors {
  /// Fraction of peak FLOP/s that large GEMMs (linear, matmul) reach.
  double gemm = 0.75;
  /// Fraction of peak FLOP/s that the attention op's matrix work reaches.
  double attention = 0.55;
  /// Fraction of memory bandwidth that memory-bound ops (norms,
  /// elementwise, softmax, copies, the optimizer step) reach.
  double memoryBound = 0.7;
  /// Seconds of launch overhead per kernel (per op doing work).
  double kernelOverhead = 4e-6;
  /// Slowdown when communication overlaps computation: overlapping c of
  /// compute with d of communication takes max(c, d) + (k - 1)·min(c, d).
  /// 1 = perfect overlap, 2 = none. Galvatron's `overlap_coe`.
  double overlap = 1.15;
  /// Backward work relative to forward, for FLOPs (dX and dW) and bytes.
  double backwardFlops = 2.0;
  double backwardBytes = 2.0;
  /// Device memory the runtime keeps for itself (CUDA context, NCCL and
  /// cuBLAS workspaces), bytes.
  double runtimeMemory = 1.0 * (1ull << 30);
  /// Fraction of the budget lost to allocator fragmentation.
  double fragmentation = 0.05;
  /// The attention op materializes the score matrix (Megatron before
  /// FlashAttention) instead of running fused (FlashAttention-style). It
  /// changes the saved activations and the memory traffic.
  bool materializedAttention = false;

  llvm::json::Object toJSON() const;
};

/// Sizes a cluster description may give: beyond any machine built, and
/// small enough that device counts and products of them stay exact.
constexpr int64_t kMaxDevicesPerNode = 4096;
constexpr int64_t kMaxDevices = int64_t(1) << 20;

struct ClusterSpec {
  std::string name;
  int64_t nodes = 1;
  int64_t devicesPerNode = 8;
  /// Bytes of memory per device.
  double memory = 0;
  /// Dense peak FLOP/s per ComputePrecision (fp32 means TF32 tensor cores
  /// where the hardware has them, as PyTorch uses for fp32 matmuls).
  double peakFlops[3] = {0, 0, 0};
  /// Bytes per second of device memory bandwidth.
  double memoryBandwidth = 0;
  CollectiveTable intraNode[kNumCollectives];
  CollectiveTable interNode[kNumCollectives];
  /// Bytes per second leaving a node over all its network adapters; groups
  /// spanning nodes share it (see `busBandwidth`).
  double nodeNetworkBandwidth = 0;
  /// Measured all-reduce bus bandwidth by (group size, consecutive ranks),
  /// from Galvatron's `allreduce_bandwidth_*.json`; used for all-reduce,
  /// all-gather and reduce-scatter when present.
  std::map<std::pair<int64_t, bool>, double> measuredAllReduce;
  /// Measured point-to-point bandwidth by pipeline degree
  /// (`p2p_bandwidth_*.json`).
  std::map<int64_t, double> measuredP2P;
  /// Measured (latency, bus bandwidth) per group size fitted from
  /// Galvatron's `sp_time_*.json` message-size sweeps.
  std::map<int64_t, LinkCost> measuredAllReduceFit;
  std::map<int64_t, LinkCost> measuredAllToAllFit;
  EfficiencyFactors efficiency;

  int64_t getDevices() const { return nodes * devicesPerNode; }
  double getPeakFlops(ComputePrecision precision) const {
    return peakFlops[static_cast<int>(precision)];
  }

  /// Checks that the description is usable; the message names the field.
  llvm::Error validate() const;

  llvm::json::Object toJSON() const;
};

/// Where a communication group's members sit: `size` ranks, `perNode` of
/// them on each of `nodes` nodes, `consecutive` when the ranks are adjacent
/// device ids.
struct GroupShape {
  int64_t size = 1;
  int64_t nodes = 1;
  int64_t perNode = 1;
  bool consecutive = true;
};

/// Shape of the group {first + i·stride : i < size} on `cluster`.
GroupShape getGroupShape(const ClusterSpec &cluster, int64_t first,
                         int64_t stride, int64_t size);

/// Bus bandwidth (bytes/s) and latency of `collective` on `group`. Groups
/// inside a node use the intra-node table; groups spanning nodes use the
/// inter-node table when it gives a bandwidth for that size, else the node
/// network shared by the groups running at once:
///   min(intra-node bandwidth for perNode ranks,
///       nodeNetworkBandwidth · perNode / devicesPerNode).
/// Galvatron's measured tables take precedence where they have an entry.
LinkCost getLinkCost(const ClusterSpec &cluster, Collective collective,
                     const GroupShape &group);

/// Seconds `collective` takes on `group` for a buffer of `bytes`: the full
/// buffer for all-reduce, all-gather (output) and reduce-scatter (input),
/// the per-rank buffer for all-to-all, the message for point-to-point.
/// latency + steps · hopLatency + factor · bytes / busBandwidth with
/// factor 2(g-1)/g and 2(g-1) steps for all-reduce, (g-1)/g and g-1 steps
/// for the others, 1 and one step for point-to-point. A group of one costs
/// nothing.
double getCollectiveTime(const ClusterSpec &cluster, Collective collective,
                         const GroupShape &group, double bytes);

/// Seconds to send `bytes` from a device to the same device of the next
/// pipeline stage in a pipeline of `pp` stages, `acrossNodes` when the two
/// sit on different nodes.
double getPointToPointTime(const ClusterSpec &cluster, int64_t pp,
                           bool acrossNodes, double bytes);

//===----------------------------------------------------------------------===//
// Presets and files
//===----------------------------------------------------------------------===//

struct ClusterPresetInfo {
  const char *name;
  const char *description;
};

/// Names and one-line descriptions of the built-in clusters.
llvm::ArrayRef<ClusterPresetInfo> getClusterPresets();

/// The preset `name` with `nodes` nodes (0 = the preset's default), or an
/// error listing the presets.
llvm::Expected<ClusterSpec> getClusterPreset(llvm::StringRef name,
                                             int64_t nodes = 0);

/// Parses our own JSON cluster format (see docs/architecture.md).
llvm::Expected<ClusterSpec> parseClusterJSON(llvm::StringRef text,
                                             llvm::StringRef source);

/// A preset name or the path of a cluster JSON file.
llvm::Expected<ClusterSpec> loadCluster(llvm::StringRef nameOrPath,
                                        int64_t nodes = 0);

/// Applies one of Galvatron's hardware profile files to `cluster`:
/// `allreduce_bandwidth_*` (keys `allreduce_size_N_consec_C`, GB/s),
/// `p2p_bandwidth_*` (`pp_size_N`, GB/s), `overlap_coefficient`
/// (`overlap_coe`) or `sp_time_*` (`allreduce_size_N_MMB_time`,
/// `all2all_size_N_MMB_time`, milliseconds). The kind is recognized from
/// the keys; an unrecognized key is an error.
llvm::Error applyGalvatronHardwareProfile(ClusterSpec &cluster,
                                          llvm::StringRef text,
                                          llvm::StringRef source);

/// Overrides efficiency factors from a cost profile (a JSON object with
/// the keys of `EfficiencyFactors::toJSON`); unknown keys are errors.
llvm::Error applyCostProfile(EfficiencyFactors &factors,
                             const llvm::json::Object &profile,
                             llvm::StringRef source);

/// Reads `path` and applies it: a Galvatron hardware profile or our cost
/// profile, told apart by their keys.
llvm::Error applyProfileFile(ClusterSpec &cluster, llvm::StringRef path);

/// Parses `text` as a JSON object; errors name `source` and say that
/// `what` ("a cluster description") must be one.
llvm::Expected<llvm::json::Object> parseJSONObject(llvm::StringRef text,
                                                   llvm::StringRef source,
                                                   llvm::StringRef what);

/// Parses "80", "80GB", "80GiB", "81920MiB", "1.5TB" into bytes (a bare
/// number is GiB).
llvm::Expected<double> parseMemorySize(llvm::StringRef text);

} // namespace mlir::galvatron

#endif // GALVATRON_CLUSTER_CLUSTER_H
