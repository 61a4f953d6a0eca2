//===- CostModelTest.cpp - Cost formulas against hand-computed values -----===//

#include "galvatron/Analysis/CostFormulas.h"
#include "galvatron/Analysis/CostModel.h"
#include "galvatron/Models/ModelPresets.h"

#include "mlir/IR/MLIRContext.h"
#include "gtest/gtest.h"

using namespace mlir;
using namespace mlir::galvatron;
namespace f = mlir::galvatron::formulas;

namespace {

// s = 2048, b = 1, h = 12288, a = 96 (GPT-3 175B): 5as/h = 80.
TEST(CostFormulasTest, MegatronActivationFormula) {
  double sbh = 2048.0 * 12288.0;
  EXPECT_DOUBLE_EQ(f::megatronActivationBytes(2048, 1, 12288, 96), sbh * 114);
  // t = 8: 10 + 24/8 + 80/8 = 23.
  EXPECT_DOUBLE_EQ(f::megatronActivationBytes(2048, 1, 12288, 96, 8),
                   sbh * 23);
  // Sequence parallelism divides everything: 114 / 8.
  EXPECT_DOUBLE_EQ(f::megatronActivationBytes(2048, 1, 12288, 96, 8, true),
                   sbh * 114 / 8);
  EXPECT_DOUBLE_EQ(f::megatronRecomputeActivationBytes(2048, 4, 12288),
                   2 * 4 * sbh);
}

TEST(CostFormulasTest, ZeroModelStates) {
  // psi = 1e9 parameters on d = 64: 16, 4 + 12/64, 2 + 14/64, 16/64 GB.
  EXPECT_DOUBLE_EQ(f::zeroModelStateBytes(1e9, 64, 0), 16e9);
  EXPECT_DOUBLE_EQ(f::zeroModelStateBytes(1e9, 64, 1), 4e9 + 0.1875e9);
  EXPECT_DOUBLE_EQ(f::zeroModelStateBytes(1e9, 64, 2), 2e9 + 0.21875e9);
  EXPECT_DOUBLE_EQ(f::zeroModelStateBytes(1e9, 64, 3), 0.25e9);
}

TEST(CostFormulasTest, PipelineBubble) {
  EXPECT_DOUBLE_EQ(f::pipelineBubbleFraction(4, 16), 3.0 / 16);
  EXPECT_DOUBLE_EQ(f::pipelineBubbleFraction(8, 32, 4), 7.0 / 128);
}

TEST(CostFormulasTest, GptFlopsAndParameters) {
  // GPT-3 175B: 12·96·12288²·(1 + 13/(12·12288) + (50257+2048)/(12·96·12288))
  double params = f::gptParameters(96, 12288, 50257, 2048);
  EXPECT_NEAR(params, 174.6e9, 0.1e9);
  // 72·B·s·l·h²·(1 + s/6h + V/12lh) with B = 1, s = 2048.
  double flops = f::gptTrainingFlops(1, 2048, 96, 12288, 50257);
  EXPECT_DOUBLE_EQ(flops, 72.0 * 2048 * 96 * 12288.0 * 12288 *
                              (1 + 2048.0 / (6 * 12288) +
                               50257.0 / (12.0 * 96 * 12288)));
}

//===----------------------------------------------------------------------===//
// The IR-derived model
//===----------------------------------------------------------------------===//

struct Fixture {
  MLIRContext context;
  ModelProfile model;
  ClusterSpec cluster;

  Fixture(ModelConfig config, int64_t seq, int64_t nodes = 1) {
    auto module = buildModel(&context, config, {1, seq});
    EXPECT_TRUE(bool(module));
    auto profile = ModelProfile::build(**module);
    EXPECT_TRUE(bool(profile));
    model = std::move(*profile);
    cluster = *getClusterPreset("a100-80gb", nodes);
  }

  StageContext context8(int64_t microBatch, Precision precision =
                                                Precision::fp16) {
    StageContext stage;
    stage.cluster = &cluster;
    stage.precision = precision;
    stage.devicesPerStage = cluster.getDevices();
    stage.microBatch = microBatch;
    return stage;
  }
};

ModelConfig gptConfig(int64_t layers, int64_t hidden, int64_t heads,
                      int64_t seq, int64_t vocab) {
  return ModelConfig{"gpt", ModelFamily::GPT, layers, hidden, heads,
                     heads, 4 * hidden, vocab, seq, seq, true, 1e-5};
}

const LayerProfile &firstBlock(const ModelProfile &model, unsigned &index) {
  for (unsigned i = 0; i < model.layers.size(); ++i)
    if (model.layers[i].isTransformerBlock()) {
      index = i;
      return model.layers[i];
    }
  llvm_unreachable("no block");
}

// What the backward pass keeps for a GPT layer, derived from the IR, against
// hand counts in 16-bit: the LayerNorm inputs (2sbh each) and outputs feeding
// the QKV and first MLP linears (2sbh each), Q, K, V (6sbh), the attention
// output feeding the projection (2sbh), the GELU input and output (8sbh
// each): 32·sbh, plus fp32 mean and deviation of two LayerNorms (16·sb).
// Materialized attention adds the softmax probabilities (2·a·s²·b); fused
// attention keeps the fp32 log-sum-exp (4·a·s·b) instead. Megatron's
// s·b·h·(34 + 5as/h) counts dropout masks and outputs the IR does not have:
// 2sbh of masks and 3as²b (mask and output after the softmax).
TEST(CostModelTest, GptLayerActivationsMatchHandCount) {
  const double s = 256, h = 512, a = 8;
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  for (double b : {1.0, 4.0}) {
    for (bool materialized : {true, false}) {
      f.cluster.efficiency.materializedAttention = materialized;
      // One device: no parallelism.
      f.cluster.devicesPerNode = 1;
      StageContext stage = f.context8(b);
      stage.devicesPerStage = 1;
      LayerCost cost = evaluateLayer(block, index, {}, stage);
      double expected = 32 * s * b * h + 16 * s * b +
                        (materialized ? 2 * a * s * s * b : 4 * a * s * b);
      EXPECT_DOUBLE_EQ(cost.activations, expected)
          << "b " << b << " materialized " << materialized;
      if (materialized) {
        double megatron = f::megatronActivationBytes(s, b, h, a);
        EXPECT_DOUBLE_EQ(megatron - cost.activations,
                         2 * s * b * h + 3 * a * s * s * b - 16 * s * b);
      }
      LayerStrategy checkpointed;
      checkpointed.ckpt = true;
      EXPECT_DOUBLE_EQ(evaluateLayer(block, index, checkpointed, stage)
                           .activations,
                       f::megatronRecomputeActivationBytes(s, b, h));
    }
  }
}

// With dropout where GPT-2 has it (both residual branches and the
// attention probabilities), materialized attention keeps what Megatron's
// s·b·h·(34 + 5as/h) counts: the 1-byte masks of the residual dropouts
// (2sbh) and the attention's mask and dropped probabilities (3as²b), plus
// the fp32 LayerNorm statistics (16sb) Megatron leaves out. The fused
// kernel keeps no attention mask (its backward draws it again): its
// activations are those without attention dropout, its time grows by the
// draws.
TEST(CostModelTest, GptLayerWithDropoutMatchesMegatron) {
  const double s = 256, h = 512, a = 8, b = 2;
  ModelConfig config = gptConfig(2, 512, 8, 256, 1000);
  config.hiddenDropout = 0.1;
  Fixture residual(config, 256, 1);
  config.attentionDropout = 0.1;
  Fixture full(config, 256, 1);
  unsigned index;
  for (bool materialized : {true, false}) {
    LayerCost costs[2];
    for (Fixture *f : {&residual, &full}) {
      f->cluster.efficiency.materializedAttention = materialized;
      f->cluster.devicesPerNode = 1;
      StageContext stage = f->context8(b);
      stage.devicesPerStage = 1;
      costs[f == &full] =
          evaluateLayer(firstBlock(f->model, index), index, {}, stage);
    }
    SCOPED_TRACE(materialized);
    EXPECT_DOUBLE_EQ(costs[0].activations,
                     34 * s * b * h + 16 * s * b +
                         (materialized ? 2 * a * s * s * b : 4 * a * s * b));
    if (materialized)
      EXPECT_DOUBLE_EQ(costs[1].activations,
                       f::megatronActivationBytes(s, b, h, a) + 16 * s * b);
    else
      EXPECT_DOUBLE_EQ(costs[1].activations, costs[0].activations);
    EXPECT_GT(costs[1].forward, costs[0].forward);
    EXPECT_GT(costs[1].backward, costs[0].backward);
  }
}

// Dropout keeps its mask for the backward, one byte per element: a model
// built with dropout keeps, in every layer, exactly the bytes of its
// layer's masks more than without (the dropped values replace the values
// the next op kept before), in any precision. Hand counts of the sites per
// layer, in elements of the hidden state (b·s·h) or of the feed-forward's
// activation (b·s·f).
TEST(CostModelTest, DropoutAddsExactlyItsMasks) {
  const double s = 16, b = 2;
  for (const char *name : {"gpt-tiny", "bert-tiny", "t5-tiny", "vit-tiny"}) {
    ModelConfig config = *findModelPreset(name);
    bool vit = config.family == ModelFamily::ViT;
    double tokens = b * (vit ? config.seqLen : s);
    double hiddenMask = tokens * config.hidden;
    double ffnMask = tokens * config.ffnHidden;
    // Sites per layer: embeddings 1; GPT, BERT, ViT blocks 2 (both
    // residual branches); T5 blocks one per residual branch (2 encoder,
    // 3 decoder) and the feed-forward's activation, each stack's final
    // norm 1 (the decoder's in the head).
    auto expectedMasks = [&](const LayerProfile &layer) -> double {
      switch (layer.kind) {
      case LayerKind::embedding:
        return hiddenMask;
      case LayerKind::encoder:
      case LayerKind::decoder: {
        if (config.family != ModelFamily::T5)
          return 2 * hiddenMask;
        double branches = layer.kind == LayerKind::decoder ? 3 : 2;
        return branches * hiddenMask + ffnMask;
      }
      case LayerKind::head:
      case LayerKind::other:
        return config.family == ModelFamily::T5 ? hiddenMask : 0;
      }
      llvm_unreachable("unknown layer kind");
    };
    int64_t seq = vit ? 0 : int64_t(s);
    Fixture without(config, seq);
    ASSERT_FALSE(llvm::errorToBool(setDropout(config, 0.1)));
    Fixture with(config, seq);
    ASSERT_EQ(with.model.layers.size(), without.model.layers.size());
    double total = 0;
    for (Precision precision : {Precision::fp32, Precision::bf16}) {
      for (unsigned i = 0; i < with.model.layers.size(); ++i) {
        StageContext stage = with.context8(b, precision);
        stage.devicesPerStage = 1;
        const LayerProfile &layer = with.model.layers[i];
        double difference =
            evaluateLayer(layer, i, {}, stage).activations -
            evaluateLayer(without.model.layers[i], i, {}, stage).activations;
        EXPECT_DOUBLE_EQ(difference, expectedMasks(layer))
            << name << " layer " << layer.name;
        total += difference;
      }
    }
    EXPECT_GT(total, 0) << name;
  }
}

// With the residual branches' dropout built, what Megatron's
// s·b·h·(34 + 5as/h) counts beyond ours is its attention dropout (3as²b)
// less our fp32 LayerNorm statistics (16sb): its 2sbh of masks are ours.
TEST(CostModelTest, GptLayerDropoutMasksMatchMegatron) {
  const double s = 256, h = 512, a = 8, b = 2;
  ModelConfig config = gptConfig(2, 512, 8, 256, 1000);
  config.hiddenDropout = 0.1;
  Fixture f(config, 256, 1);
  f.cluster.efficiency.materializedAttention = true;
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  StageContext stage = f.context8(b);
  stage.devicesPerStage = 1;
  LayerCost cost = evaluateLayer(block, index, {}, stage);
  EXPECT_DOUBLE_EQ(f::megatronActivationBytes(s, b, h, a) - cost.activations,
                   3 * a * s * s * b - 16 * s * b);
}

// With TP t, the replicated part (LayerNorm inputs and outputs: 8sbh and the
// fp32 statistics) stays whole and the rest divides by t; with sequence
// parallelism everything divides by t (Megatron's 10 + 24/t and /t).
TEST(CostModelTest, GptLayerActivationsUnderTensorAndSequenceParallelism) {
  const double s = 256, h = 512, a = 8, t = 4;
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  f.cluster.efficiency.materializedAttention = true;
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  // 8 devices, tp 4, dp 2: a micro-batch of 2 gives each device 1 sample.
  StageContext stage = f.context8(2);
  LayerStrategy strategy;
  strategy.tp = 4;
  LayerCost cost = evaluateLayer(block, index, strategy, stage);
  double b = 1;
  EXPECT_DOUBLE_EQ(cost.activations, 8 * s * b * h + 24 * s * b * h / t +
                                         2 * a * s * s * b / t + 16 * s * b);
  strategy.sp = true;
  cost = evaluateLayer(block, index, strategy, stage);
  EXPECT_DOUBLE_EQ(cost.activations, (32 * s * b * h + 2 * a * s * s * b +
                                      16 * s * b) /
                                         t);
}

// Model states per device for psi TP-local parameters (the block's weights
// split by tp, LayerNorm weights and row-parallel biases whole), as the
// training step stores them in every precision: f32 master weights (the
// only stored weights; 16-bit copies are cast per layer), f32 gradients,
// f32 Adam m and v. ZeRO's published mixed-precision totals (16-bit weights
// and gradients beside the f32 master) agree for DDP and ZeRO-3 only.
TEST(CostModelTest, ModelStatesFollowZero) {
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  StageContext stage = f.context8(8);
  double h = 512;
  for (int64_t tp : {1, 2}) {
    // Whole: 12h² + 13h. Split by tp: 12h² + 9h (QKV, FC weights and
    // biases, projections' weights); whole: 4h (two LayerNorms) + 2h
    // (row-parallel biases)... minus what the split holds.
    double split = 12 * h * h + 3 * h + 4 * h;
    double whole = 4 * h + 2 * h;
    double psi = split / tp + whole;
    double d = 8 / tp;
    for (int zero = 0; zero <= 3; ++zero) {
      LayerStrategy strategy;
      strategy.tp = tp;
      strategy.dpType = static_cast<DataParallelType>(zero);
      LayerCost cost = evaluateLayer(block, index, strategy, stage);
      // ZeRO-1 also holds the reduce-scattered 1/dp gradient parts (f32)
      // from the last backward to the step.
      double stored[] = {16 * psi, 8 * psi + 8 * psi / d + 4 * psi / d,
                         4 * psi + 12 * psi / d, 16 * psi / d};
      EXPECT_DOUBLE_EQ(cost.getStates(), stored[zero])
          << "tp " << tp << " zero " << zero;
      if (zero == 0 || zero == 3)
        EXPECT_DOUBLE_EQ(cost.getStates(),
                         f::zeroModelStateBytes(psi, d, zero));
    }
  }
  // fp32 training: the same 4 + 4 + 8 bytes per parameter.
  LayerCost cost = evaluateLayer(block, index, {}, f.context8(8, Precision::fp32));
  EXPECT_DOUBLE_EQ(cost.getStates(), 16 * (12 * h * h + 13 * h));
}

// ZeRO leaves a tied weight whole where the partitioner does: ZeRO-3 any
// weight several layers read (GPT's wte, read by the embedding and the LM
// head), ZeRO-1/2 one read on several pipeline stages.
TEST(CostModelTest, ZeroLeavesTiedWeightsWhole) {
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  const LayerProfile &embedding = f.model.layers.front();
  ASSERT_EQ(embedding.parameters.front().readers, 2u);
  double wte = 1000 * 512, wpe = 256 * 512, d = 8;
  StageContext stage = f.context8(8, Precision::fp32);
  LayerStrategy strategy;
  strategy.dpType = DataParallelType::zero3;
  LayerCost cost = evaluateLayer(embedding, 0, strategy, stage);
  EXPECT_DOUBLE_EQ(cost.params, 4 * (wte + wpe / d));
  strategy.dpType = DataParallelType::zero1;
  EXPECT_DOUBLE_EQ(evaluateLayer(embedding, 0, strategy, stage).optimizerStates,
                   8 * (wte + wpe) / d);
  stage.pp = 2;
  EXPECT_DOUBLE_EQ(evaluateLayer(embedding, 0, strategy, stage).optimizerStates,
                   8 * (wte + wpe / d));
}

// An odd vocabulary does not divide among dp along its first dimension, so
// ZeRO-2's per-micro-batch reduce-scatter of the embedding's gradient runs
// along the second, staged in a transposed copy the transient counts.
TEST(CostModelTest, ZeroTwoStagesGradientsSplitAlongAnotherDimension) {
  Fixture f(gptConfig(2, 512, 8, 256, 1001), 256, 1);
  const LayerProfile &embedding = f.model.layers.front();
  StageContext stage = f.context8(8, Precision::fp32);
  LayerStrategy strategy;
  strategy.dpType = DataParallelType::zero1;
  double zero1 = evaluateLayer(embedding, 0, strategy, stage).transient;
  strategy.dpType = DataParallelType::zero2;
  double zero2 = evaluateLayer(embedding, 0, strategy, stage).transient;
  EXPECT_DOUBLE_EQ(zero2 - zero1, 4.0 * 1001 * 512);
}

TEST(CostModelTest, TrainingFlopsMatchClosedForms) {
  const int64_t l = 4, h = 256, a = 4, s = 128, V = 1000, B = 16;
  Fixture f(gptConfig(l, h, a, s, V), s, 1);
  EXPECT_DOUBLE_EQ(f.model.getTrainingFlops(B, 2),
                   f::gptTrainingFlops(B, s, l, h, V));
  // GPT-2 counts its final LayerNorm, the formula does not.
  EXPECT_EQ(f.model.getParameterCount(),
            static_cast<int64_t>(f::gptParameters(l, h, V, s)) + 2 * h);
  // Checkpointing every block counts each block's forward again: Megatron's
  // 96·B·s·l·h²·(1 + s/6h + V/16lh).
  ParallelPlan plan;
  plan.devices = 8;
  plan.devicesPerNode = 8;
  plan.microBatches = 2;
  plan.globalBatch = B;
  plan.precision = Precision::fp16;
  ASSERT_EQ(assignStages(plan, f.model, {}), "");
  for (auto [index, strategy] : llvm::enumerate(plan.layers))
    strategy.ckpt = f.model.layers[index].isTransformerBlock();
  ASSERT_EQ(plan.check(f.model), "");
  PlanEvaluation evaluation = evaluatePlan(f.model, plan, f.cluster, 80e9);
  EXPECT_DOUBLE_EQ(evaluation.hardwareFlops,
                   f::gptTrainingFlopsWithRecompute(B, s, l, h, V));
}

// Ring collectives: latency + 2(g-1)/g · bytes / bus bandwidth for
// all-reduce, (g-1)/g for all-gather; across nodes each group gets its
// share of the node's adapters.
TEST(CostModelTest, CollectiveTimes) {
  ClusterSpec cluster = *getClusterPreset("a100-80gb", 2);
  GroupShape node = getGroupShape(cluster, 0, 1, 8);
  EXPECT_EQ(node.nodes, 1);
  EXPECT_EQ(node.perNode, 8);
  // 10 us to start and 0.5 us per ring step in a node.
  EXPECT_DOUBLE_EQ(getCollectiveTime(cluster, Collective::AllReduce, node, 1e9),
                   10e-6 + 14 * 0.5e-6 + 2.0 * 7 / 8 * 1e9 / 230e9);
  EXPECT_DOUBLE_EQ(getCollectiveTime(cluster, Collective::AllGather, node, 1e9),
                   10e-6 + 7 * 0.5e-6 + 7.0 / 8 * 1e9 / 230e9);
  // dp across two nodes, one device per node (stride 8): 180 GB/s / 8.
  GroupShape across = getGroupShape(cluster, 0, 8, 2);
  EXPECT_EQ(across.nodes, 2);
  EXPECT_EQ(across.perNode, 1);
  // 25 us and 3 us per step across nodes.
  EXPECT_DOUBLE_EQ(
      getCollectiveTime(cluster, Collective::AllReduce, across, 1e9),
      25e-6 + 2 * 3e-6 + 1.0 * 1e9 / (180e9 / 8));
  // All 16 devices: 8 per node share all adapters.
  GroupShape all = getGroupShape(cluster, 0, 1, 16);
  EXPECT_DOUBLE_EQ(getCollectiveTime(cluster, Collective::AllReduce, all, 1e9),
                   25e-6 + 30 * 3e-6 + 2.0 * 15 / 16 * 1e9 / 180e9);
  EXPECT_EQ(getCollectiveTime(cluster, Collective::AllReduce,
                              getGroupShape(cluster, 0, 1, 1), 1e9),
            0);
}

// A GPT block under tp = 2: Megatron's two forward all-reduces (after the
// attention and MLP projections) and two backward ones (the inputs of the
// QKV and first MLP linears), each of the b·s·h activation; with sequence
// parallelism each becomes a reduce-scatter plus an all-gather, and the
// backward gathers the stored inputs again for the weight gradients.
TEST(CostModelTest, TensorParallelCommunication) {
  const double s = 256, h = 512;
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  StageContext stage = f.context8(8); // dp 4: 2 samples per device
  LayerStrategy strategy;
  strategy.tp = 2;
  GroupShape group = getGroupShape(f.cluster, 0, 1, 2);
  double bytes = 2 * s * h * 2; // 2 samples, fp16
  auto time = [&](Collective c) {
    return getCollectiveTime(f.cluster, c, group, bytes);
  };
  LayerCost cost = evaluateLayer(block, index, strategy, stage);
  EXPECT_DOUBLE_EQ(cost.tpForward, 2 * time(Collective::AllReduce));
  EXPECT_DOUBLE_EQ(cost.tpBackward, 2 * time(Collective::AllReduce));
  strategy.sp = true;
  cost = evaluateLayer(block, index, strategy, stage);
  EXPECT_DOUBLE_EQ(cost.tpForward, 2 * time(Collective::ReduceScatter) +
                                       2 * time(Collective::AllGather));
  EXPECT_DOUBLE_EQ(cost.tpBackward, 2 * time(Collective::AllGather) +
                                        2 * time(Collective::ReduceScatter) +
                                        2 * time(Collective::AllGather));
  strategy.ckpt = true;
  cost = evaluateLayer(block, index, strategy, stage);
  EXPECT_DOUBLE_EQ(cost.tpRecompute, cost.tpForward);
}

// Data parallelism: ddp all-reduces the fp16 gradients once per iteration,
// overlapped with the last backward: max(c, d) + (k - 1)·min(c, d) - c.
TEST(CostModelTest, DataParallelOverlap) {
  Fixture f(gptConfig(2, 512, 8, 256, 1000), 256, 1);
  unsigned index;
  const LayerProfile &block = firstBlock(f.model, index);
  StageContext stage = f.context8(8);
  LayerCost cost = evaluateLayer(block, index, {}, stage);
  double psi = 12.0 * 512 * 512 + 13 * 512;
  double comm = getCollectiveTime(f.cluster, Collective::AllReduce,
                                  getGroupShape(f.cluster, 0, 1, 8), 2 * psi);
  double compute = cost.backward;
  double k = f.cluster.efficiency.overlap;
  EXPECT_DOUBLE_EQ(cost.dpIteration, std::max(compute, comm) +
                                         (k - 1) * std::min(compute, comm) -
                                         compute);
  EXPECT_EQ(cost.dpMicroBatch, 0);
  // The optimizer reads and writes 28 bytes per parameter it updates.
  EXPECT_DOUBLE_EQ(cost.optimizer,
                   28 * psi / (f.cluster.memoryBandwidth *
                               f.cluster.efficiency.memoryBound));
}

// The pipeline: T = sum_k t_k + (m - 1)·max_k t_k, and each stage idles
// T - m·t_k; 1F1B keeps min(m, pp - k) micro-batches on stage k, GPipe m.
TEST(CostModelTest, PipelineTimeAndBubble) {
  Fixture f(gptConfig(8, 256, 4, 128, 1000), 128, 1);
  ParallelPlan plan;
  plan.devices = 8;
  plan.devicesPerNode = 8;
  plan.pp = 4;
  plan.microBatches = 16;
  plan.globalBatch = 32;
  ASSERT_EQ(assignStages(plan, f.model, {}), "");
  ASSERT_EQ(plan.check(f.model), "");
  PlanEvaluation evaluation = evaluatePlan(f.model, plan, f.cluster, 80e9);
  double sum = 0, slowest = 0;
  for (const StageEvaluation &stage : evaluation.stages) {
    sum += stage.microBatchTime;
    slowest = std::max(slowest, stage.microBatchTime);
  }
  EXPECT_DOUBLE_EQ(evaluation.iterationTime, sum + 15 * slowest);
  for (auto [k, stage] : llvm::enumerate(evaluation.stages)) {
    EXPECT_NEAR(stage.bubble, evaluation.iterationTime - 16 * stage.microBatchTime,
                1e-12);
    EXPECT_NEAR(stage.compute + stage.tensorParallel + stage.dataParallel +
                    stage.pipeline + stage.bubble,
                evaluation.iterationTime, 1e-9 * evaluation.iterationTime);
    EXPECT_EQ(stage.inFlight, 4 - static_cast<int64_t>(k));
  }
  plan.schedule = PipelineSchedule::gpipe;
  PlanEvaluation gpipe = evaluatePlan(f.model, plan, f.cluster, 80e9);
  EXPECT_DOUBLE_EQ(gpipe.iterationTime, evaluation.iterationTime);
  EXPECT_EQ(gpipe.stages[0].inFlight, 16);
  EXPECT_GT(gpipe.peakMemory, evaluation.peakMemory);
}

// The batch the IR was built for is only a unit: the same model built for
// batch 1 and 4 prices plans identically.
TEST(CostModelTest, IRBatchIsAUnit) {
  MLIRContext context;
  ModelConfig config = *findModelPreset("llama-tiny");
  auto one = buildModel(&context, config, {1, 0});
  auto four = buildModel(&context, config, {4, 0});
  auto a = ModelProfile::build(**one), b = ModelProfile::build(**four);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->irBatch, 1);
  EXPECT_EQ(b->irBatch, 4);
  ClusterSpec cluster = *getClusterPreset("h100-80gb", 1);
  ParallelPlan plan;
  plan.devices = 8;
  plan.devicesPerNode = 8;
  plan.pp = 2;
  plan.microBatches = 4;
  plan.globalBatch = 64;
  ASSERT_EQ(assignStages(plan, *a, {}), "");
  for (LayerStrategy &strategy : plan.layers)
    strategy.tp = 2;
  ASSERT_EQ(plan.check(*a), "");
  PlanEvaluation x = evaluatePlan(*a, plan, cluster, 80e9);
  PlanEvaluation y = evaluatePlan(*b, plan, cluster, 80e9);
  EXPECT_NEAR(x.iterationTime, y.iterationTime, 1e-12 * x.iterationTime);
  EXPECT_NEAR(x.peakMemory, y.peakMemory, 1e-9 * x.peakMemory);
}

TEST(CostModelTest, PlanCheckNamesTheProblem) {
  Fixture f(gptConfig(2, 256, 4, 128, 1000), 128, 1);
  ParallelPlan plan;
  plan.devices = 8;
  plan.devicesPerNode = 8;
  plan.microBatches = 2;
  plan.globalBatch = 8;
  ASSERT_EQ(assignStages(plan, f.model, {}), "");
  // A micro-batch of 4 does not split among 8 replicas.
  EXPECT_NE(plan.check(f.model).find("does not divide among dp = 8"),
            std::string::npos)
      << plan.check(f.model);
  plan.globalBatch = 16;
  EXPECT_EQ(plan.check(f.model), "");
  plan.layers[1].tp = 8;
  // 4 heads do not divide among 8 ranks.
  EXPECT_NE(plan.check(f.model).find("4 heads do not divide among 8 ranks"),
            std::string::npos)
      << plan.check(f.model);
  plan.layers[1].tp = 1;
  // The tied head must follow the embedding's tp on one stage.
  plan.layers.back().tp = 2;
  EXPECT_NE(plan.check(f.model).find("must split it as that layer does"),
            std::string::npos)
      << plan.check(f.model);
}

} // namespace
