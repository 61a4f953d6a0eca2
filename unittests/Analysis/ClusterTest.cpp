//===- ClusterTest.cpp - Cluster descriptions and profiles ----------------===//

#include "galvatron/Cluster/Cluster.h"

#include "gtest/gtest.h"

using namespace mlir::galvatron;

namespace {

TEST(ClusterTest, PresetsAreValid) {
  for (const ClusterPresetInfo &info : getClusterPresets()) {
    auto cluster = getClusterPreset(info.name, 4);
    ASSERT_TRUE(bool(cluster)) << llvm::toString(cluster.takeError());
    EXPECT_EQ(cluster->getDevices(), 32);
    EXPECT_GT(cluster->getPeakFlops(ComputePrecision::BF16), 1e14);
  }
  auto missing = getClusterPreset("tpu-v5");
  ASSERT_FALSE(bool(missing));
  EXPECT_NE(llvm::toString(missing.takeError()).find("unknown cluster 'tpu-v5'"),
            std::string::npos);
}

TEST(ClusterTest, GroupShapes) {
  ClusterSpec cluster = *getClusterPreset("h100-80gb", 4);
  GroupShape tp = getGroupShape(cluster, 8, 1, 4);
  EXPECT_EQ(tp.nodes, 1);
  EXPECT_TRUE(tp.consecutive);
  GroupShape dp = getGroupShape(cluster, 0, 4, 8);
  EXPECT_EQ(dp.nodes, 4);
  EXPECT_EQ(dp.perNode, 2);
  EXPECT_FALSE(dp.consecutive);
  // Across nodes each group gets its share of a node's adapters.
  LinkCost cost = getLinkCost(cluster, Collective::AllReduce, dp);
  EXPECT_DOUBLE_EQ(cost.busBandwidth, 360e9 * 2 / 8);
}

TEST(ClusterTest, OwnFormatRoundTrips) {
  ClusterSpec original = *getClusterPreset("a100-40gb-pcie", 2);
  original.intraNode[0].bySize[2] = {25e9, 5e-6};
  std::string text;
  llvm::raw_string_ostream(text) << llvm::json::Value(original.toJSON());
  auto parsed = parseClusterJSON(text, "round-trip.json");
  ASSERT_TRUE(bool(parsed)) << llvm::toString(parsed.takeError());
  EXPECT_EQ(parsed->nodes, 2);
  EXPECT_EQ(parsed->devicesPerNode, 8);
  EXPECT_DOUBLE_EQ(parsed->memory, original.memory);
  EXPECT_DOUBLE_EQ(parsed->nodeNetworkBandwidth, original.nodeNetworkBandwidth);
  EXPECT_DOUBLE_EQ(parsed->intraNode[0].lookup(2).busBandwidth, 25e9);
  EXPECT_DOUBLE_EQ(parsed->intraNode[0].lookup(4).busBandwidth, 20e9);
  EXPECT_DOUBLE_EQ(parsed->efficiency.gemm, original.efficiency.gemm);
}

std::string errorOf(llvm::StringRef text) {
  auto parsed = parseClusterJSON(text, "c.json");
  if (parsed)
    return "";
  return llvm::toString(parsed.takeError());
}

TEST(ClusterTest, OwnFormatErrors) {
  EXPECT_NE(errorOf("{").find("c.json: malformed JSON"), std::string::npos);
  EXPECT_NE(errorOf(R"({"devices_per_node": 8})")
                .find("c.json: 'device' is missing"),
            std::string::npos);
  std::string valid = R"({"devices_per_node": 4, "device": {"memory_gib": 24,
      "memory_bandwidth_gbps": 1000, "peak_tflops": {"fp32": 80, "fp16": 160,
      "bf16": 160}}, "intra_node": {"all_reduce": {"bandwidth_gbps": 20}}})";
  EXPECT_EQ(errorOf(valid), "");
  std::string unknown = valid;
  unknown.insert(1, R"("gpus": 4, )");
  EXPECT_NE(errorOf(unknown).find("unknown key 'gpus'"), std::string::npos);
  std::string negative = valid;
  negative.replace(negative.find("\"bandwidth_gbps\": 20"), 20,
                   "\"bandwidth_gbps\": -1");
  EXPECT_NE(errorOf(negative)
                .find("'intra_node.all_reduce.bandwidth_gbps' must be a "
                      "positive number"),
            std::string::npos);
}

TEST(ClusterTest, GalvatronHardwareProfiles) {
  ClusterSpec cluster = *getClusterPreset("a100-80gb", 2);
  ASSERT_FALSE(bool(applyGalvatronHardwareProfile(
      cluster,
      R"({"allreduce_size_8_consec_1": 154.0, "allreduce_size_16_consec_1": 44.7,
          "allreduce_size_4_consec_0": 150.0})",
      "allreduce_bandwidth_2nodes_8gpus_per_node.json")));
  GroupShape node = getGroupShape(cluster, 0, 1, 8);
  EXPECT_DOUBLE_EQ(getLinkCost(cluster, Collective::AllReduce, node).busBandwidth,
                   154e9);
  EXPECT_DOUBLE_EQ(getLinkCost(cluster, Collective::AllGather,
                               getGroupShape(cluster, 0, 1, 16))
                       .busBandwidth,
                   44.7e9);
  // Consecutive groups of four were not measured: the model stands.
  EXPECT_DOUBLE_EQ(getLinkCost(cluster, Collective::AllReduce,
                               getGroupShape(cluster, 0, 1, 4))
                       .busBandwidth,
                   230e9);
  ASSERT_FALSE(bool(applyGalvatronHardwareProfile(
      cluster, R"({"pp_size_2": 8.0})", "p2p_bandwidth.json")));
  EXPECT_DOUBLE_EQ(getPointToPointTime(cluster, 2, true, 8e9),
                   25e-6 + 3e-6 + 1.0);
  ASSERT_FALSE(bool(applyGalvatronHardwareProfile(
      cluster, R"({"overlap_coe": 1.1256})", "overlap_coefficient.json")));
  EXPECT_DOUBLE_EQ(cluster.efficiency.overlap, 1.1256);
  // Message-size sweeps fit latency and bandwidth: 1 ms + size / (bus
  // bandwidth / 2(g-1)/g) for g = 2 at 100 GB/s bus bandwidth.
  std::string sweep = "{";
  for (int mb : {1, 2, 4, 8, 16}) {
    double seconds = 1e-3 + mb * double(1 << 20) / 100e9;
    sweep += (mb == 1 ? "" : ", ") + std::string("\"allreduce_size_2_") +
             std::to_string(mb) + "MB_time\": " + std::to_string(seconds * 1e3);
  }
  sweep += "}";
  ASSERT_FALSE(bool(applyGalvatronHardwareProfile(cluster, sweep, "sp.json")));
  LinkCost fitted = cluster.measuredAllReduceFit.at(2);
  EXPECT_NEAR(fitted.busBandwidth, 100e9, 1e6);
  EXPECT_NEAR(fitted.latency, 1e-3, 1e-8);

  llvm::Error unknown = applyGalvatronHardwareProfile(
      cluster, R"({"allgather_size_8": 1.0})", "x.json");
  ASSERT_TRUE(bool(unknown));
  EXPECT_NE(llvm::toString(std::move(unknown))
                .find("x.json: unrecognized key 'allgather_size_8'"),
            std::string::npos);
}

TEST(ClusterTest, CostProfileOverridesFactors) {
  EfficiencyFactors factors;
  auto profile = llvm::json::parse(
      R"({"gemm_efficiency": 0.6, "attention_kernel": "materialized",
          "runtime_memory_gib": 2})");
  ASSERT_TRUE(bool(profile));
  ASSERT_FALSE(bool(applyCostProfile(factors, *profile->getAsObject(), "p")));
  EXPECT_DOUBLE_EQ(factors.gemm, 0.6);
  EXPECT_TRUE(factors.materializedAttention);
  EXPECT_DOUBLE_EQ(factors.runtimeMemory, 2.0 * (1ull << 30));
  auto bad = llvm::json::parse(R"({"attention_kernel": "flash"})");
  llvm::Error error = applyCostProfile(factors, *bad->getAsObject(), "p");
  ASSERT_TRUE(bool(error));
  EXPECT_NE(llvm::toString(std::move(error)).find("'attention_kernel' must be"),
            std::string::npos);
}

TEST(ClusterTest, MemorySizes) {
  EXPECT_DOUBLE_EQ(*parseMemorySize("80"), 80.0 * (1ull << 30));
  EXPECT_DOUBLE_EQ(*parseMemorySize("80GB"), 80e9);
  EXPECT_DOUBLE_EQ(*parseMemorySize("512MiB"), 512.0 * (1 << 20));
  auto bad = parseMemorySize("80 bytes");
  ASSERT_FALSE(bool(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("invalid memory unit"),
            std::string::npos);
}

} // namespace
