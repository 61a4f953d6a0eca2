//===- CostModel.h - Time and memory of hybrid-parallel plans ---*- C++ -*-===//
//
// The cost model, computed from the IR. `ModelProfile::build` walks a model
// function once and extracts, per layer, everything a strategy's cost
// depends on: the work of each op (FLOPs from FlopCountOpInterface, memory
// traffic from tensor sizes) and how tensor parallelism divides it, the
// tensors the backward pass needs, the tensor-parallel communication points,
// the parameters and their splits, and the activations crossing into the
// layer. `evaluateLayer` prices one layer under one strategy on a cluster;
// `evaluatePlan` prices a whole plan (pipeline included). The search and the
// plan report use exactly these functions. docs/architecture.md lists every
// formula and factor.
//
// Batch convention: the IR may be built for any batch B_ir (dimension 0 of
// the function's inputs). Batched tensors and ops scale linearly with the
// batch, so the profile stores them per sample and the plan's global batch
// (not the IR's) sets the work: a device runs micro-batches of
// global_batch / micro_batches / dp samples.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_ANALYSIS_COSTMODEL_H
#define GALVATRON_ANALYSIS_COSTMODEL_H

#include "galvatron/Analysis/TensorParallelAnalysis.h"
#include "galvatron/Cluster/Cluster.h"
#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/Support/Error.h"

#include <map>
#include <string>
#include <vector>

namespace mlir::galvatron {

/// Bytes that depend on the activation precision: `floats` elements stored
/// at the activation width plus `fixed` bytes (integers, fp32 statistics).
struct ByteCount {
  double floats = 0;
  double fixed = 0;

  double at(double activationBytes) const {
    return floats * activationBytes + fixed;
  }
  ByteCount &operator+=(const ByteCount &other) {
    floats += other.floats;
    fixed += other.fixed;
    return *this;
  }
  bool operator==(const ByteCount &other) const {
    return floats == other.floats && fixed == other.fixed;
  }
};

/// Megatron-LM's default `--make-vocab-size-divisible-by`.
constexpr int64_t kDefaultVocabDivisor = 128;

/// What decides the share of a split one rank holds: the size of the
/// layer's model-parallel group (tp, or the Ulysses degree), its kind of
/// sequence parallelism, and the vocabulary padding.
struct ShareContext {
  int64_t tp = 1;
  /// Megatron sequence parallelism.
  bool sp = false;
  /// DeepSpeed-Ulysses: the group splits the sequence, weights stay whole.
  bool ulysses = false;
  int64_t sequenceLength = 0;
  int64_t vocabDivisor = kDefaultVocabDivisor;
};

/// How tensor / sequence parallelism divides a tensor or an op's work.
struct Split {
  /// Size of the dimension TP splits (ceil(size / tp) per rank), 0 if none.
  int64_t tpSize = 0;
  /// Split along the sequence under sequence parallelism.
  bool sequence = false;
  /// The TP-split dimension is the vocabulary, padded to a multiple of
  /// vocabDivisor x tp (padVocabulary).
  bool vocabulary = false;
  /// Split 1/u under Ulysses (by the sequence, or by heads around
  /// attention).
  bool ulysses = false;

  /// The fraction one rank holds or does.
  double share(const ShareContext &context) const;
  bool operator==(const Split &other) const {
    return tpSize == other.tpSize && sequence == other.sequence &&
           vocabulary == other.vocabulary && ulysses == other.ulysses;
  }
};

/// Everything about one layer that its cost under any strategy depends on.
/// Batched quantities are per sample; unbatched ones per micro-batch.
struct LayerProfile {
  std::string name;
  /// Where the layer is defined (its galvatron.layer), for errors about it;
  /// null in profiles not read from IR.
  LocationAttr location;
  LayerKind kind = LayerKind::other;
  /// Layers with equal profiles (the repeated transformer blocks) share a
  /// signature, so their costs are computed once.
  unsigned signature = 0;

  struct Op {
    /// Forward FLOPs (multiply-add = 2).
    double flops = 0;
    /// Forward memory traffic per sample: batched operands read and
    /// results written (views such as reshape and slice move nothing).
    ByteCount bytes;
    /// Traffic per call: unbatched operands of a batched op (weights).
    ByteCount callBytes;
    /// Extra traffic when attention materializes its score matrix.
    ByteCount materializedBytes;
    /// Integer work per sample of drawing attention's dropout mask inside
    /// the fused kernel, once in the forward and again in the backward.
    double fusedMaskOps = 0;
    Split split;
    bool batched = true;
    bool attention = false;
  };
  SmallVector<Op> ops;

  struct Tensor {
    ByteCount bytes;
    Split split;
    /// Present only with materialized (1) or only with fused (2) attention;
    /// 0 = always.
    uint8_t attentionMode = 0;
  };
  /// Activations the backward pass needs when the layer is not
  /// checkpointed (batched tensors, deduplicated by storage).
  SmallVector<Tensor> saved;
  /// What a checkpointed layer keeps: its batched inputs (plus model
  /// outputs kept for the loss, which both lists carry).
  SmallVector<Tensor> checkpointed;
  /// What the backward of one op holds besides the stored activations: the
  /// activation gradients live there less the saved activations already
  /// freed (per sample, summed by split; may be negative), and the weight
  /// gradients the op forms (per micro-batch).
  struct BackwardPoint {
    SmallVector<Tensor> activations;
    SmallVector<Tensor> weights;
  };
  SmallVector<BackwardPoint> backwardPoints;

  struct Comm {
    TPCommPoint::Kind kind;
    ByteCount bytes;
    bool batched = true;
    /// Sequence-shaped: the sequence-parallel variant applies.
    bool sequence = false;
    /// The communicated value has a gradient (backward collectives).
    bool gradient = true;
  };
  SmallVector<Comm> comms;

  struct Parameter {
    std::string name;
    int64_t elements = 0;
    /// Segments of the TP-split dimension (one segment = the whole
    /// dimension); empty = replicated.
    SmallVector<int64_t> segments;
    /// Index of the layer that first reads it (the owner); a later reader
    /// holds its own copy only when the owner is on another stage.
    unsigned owner = 0;
    /// How many layers read it (2 for a tied embedding and LM head).
    unsigned readers = 1;
    /// Size of its first dimension, and whether TP splits that one.
    int64_t leading = 1;
    bool splitsLeading = false;
    /// TP splits the vocabulary (padded, see padVocabulary).
    bool vocabulary = false;

    /// Elements one of `tp` ranks holds.
    double localElements(int64_t tp, int64_t vocabDivisor) const;
    /// The size of its first dimension one of `tp` ranks holds.
    int64_t localLeading(int64_t tp, int64_t vocabDivisor) const;
  };
  SmallVector<Parameter> parameters;

  /// Head counts that must divide among TP ranks.
  SmallVector<int64_t> tpDivisors;
  /// Sizes of the split weight dimensions other than the vocabulary's:
  /// they must divide among TP ranks too.
  SmallVector<int64_t> weightSplits;
  /// Why TP cannot shard this layer (empty when it can).
  std::string tpFailure;
  bool sequenceParallel = false;
  std::string sequenceParallelFailure;
  /// Length of the sequence dimension sequence parallelism splits.
  int64_t sequenceLength = 0;
  /// DeepSpeed-Ulysses: why it cannot run (empty when it can), the sizes
  /// its degree must divide (heads, the sequence), and its communication:
  /// all-to-alls between sequence and head splits, gathers of split values
  /// needed whole, slices of whole values needed split.
  std::string ulyssesFailure;
  SmallVector<int64_t> ulyssesDivisors;
  struct UlyssesComm {
    enum Kind : uint8_t { AllToAll, Gather, Scatter };
    Kind kind;
    ByteCount bytes;
    bool batched = true;
    bool gradient = true;
  };
  SmallVector<UlyssesComm> ulyssesComms;
  /// Bytes per sample of the activations crossing into this layer from
  /// earlier layers (what a pipeline boundary before it sends).
  ByteCount inputCut;
  /// Forward FLOPs per sample (batched) and per micro-batch (unbatched).
  double batchedFlops = 0, unbatchedFlops = 0;
  /// Measured overrides (Galvatron's model profiles): a factor on the
  /// IR-derived compute time, and the stored activations per sequence on a
  /// device by TP degree (0: checkpointed), without and with Megatron
  /// sequence parallelism, or else a factor on the IR-derived ones.
  double computeScale = 1, activationScale = 1;
  std::map<int64_t, double> measuredActivations[2];

  bool supportsTP(int64_t tp) const;
  /// Why the layer cannot run with `tp` ranks (empty when it can).
  std::string getTPFailure(int64_t tp) const;
  bool supportsUlysses(int64_t degree) const;
  std::string getUlyssesFailure(int64_t degree) const;
  bool isTransformerBlock() const {
    return kind == LayerKind::encoder || kind == LayerKind::decoder;
  }
};

struct ModelProfile {
  std::string model;
  /// The batch the IR was built for (dimension 0 of its inputs).
  int64_t irBatch = 1;
  /// Sequence length (dimension 1 of the inputs; 0 when there is none).
  int64_t sequenceLength = 0;
  std::vector<LayerProfile> layers;
  /// Distinct signatures (layers.signature < signatureCount).
  unsigned signatureCount = 0;

  /// Extracts the profile of `function`. Fails with a message naming the
  /// cause (no layers, ops outside layers, inputs disagreeing on the batch).
  static llvm::Expected<ModelProfile> build(func::FuncOp function);
  /// The module's `@main` (or its only function with layers).
  static llvm::Expected<ModelProfile> build(ModuleOp module);

  /// Model FLOPs per iteration at `globalBatch`: forward and backward
  /// (3x forward), no recomputation.
  double getTrainingFlops(int64_t globalBatch, int64_t microBatches) const;
  int64_t getParameterCount() const;
};

//===----------------------------------------------------------------------===//
// Strategies and plans
//===----------------------------------------------------------------------===//

/// One layer's strategy; dp follows from the plan (devices / pp / tp).
/// `tp` is the size of the layer's model-parallel group: Megatron tensor
/// parallelism (with `sp`, Megatron sequence parallelism), or with `ulysses`
/// DeepSpeed-Ulysses sequence parallelism (Galvatron's tp_sizes_enc with
/// use_sp).
struct LayerStrategy {
  int64_t stage = 0;
  int64_t tp = 1;
  bool consecutive = true;
  DataParallelType dpType = DataParallelType::ddp;
  bool sp = false;
  bool ckpt = false;
  bool ulysses = false;

  bool operator==(const LayerStrategy &other) const {
    return stage == other.stage && tp == other.tp &&
           consecutive == other.consecutive && dpType == other.dpType &&
           sp == other.sp && ckpt == other.ckpt && ulysses == other.ulysses;
  }
  bool usesUlysses() const { return ulysses && tp > 1; }
  /// Whether the layer's boundary activations are split along the sequence
  /// (Megatron SP or Ulysses).
  bool splitsSequence() const { return (sp || ulysses) && tp > 1; }
  /// The degree TP splits the weights by (1 under Ulysses).
  int64_t getWeightSplit() const { return ulysses ? 1 : tp; }
};

/// The largest global batch a plan may have (sequences): far beyond any
/// run, and small enough that token counts stay exact.
constexpr int64_t kMaxGlobalBatch = int64_t(1) << 30;

struct ParallelPlan {
  int64_t devices = 1;
  int64_t devicesPerNode = 1;
  int64_t pp = 1;
  int64_t microBatches = 1;
  int64_t globalBatch = 1;
  PipelineSchedule schedule = PipelineSchedule::pipedream_flush;
  Precision precision = Precision::bf16;
  /// Split vocabularies are padded to a multiple of vocabDivisor x tp.
  int64_t vocabDivisor = kDefaultVocabDivisor;
  SmallVector<LayerStrategy> layers;

  int64_t getDevicesPerStage() const { return devices / pp; }
  int64_t getMicroBatchSize() const { return globalBatch / microBatches; }
  int64_t getDp(const LayerStrategy &strategy) const {
    return getDevicesPerStage() / strategy.tp;
  }
  /// Ranks a layer's weights are data-parallel over: dp, or under Ulysses
  /// the whole stage.
  int64_t getParamDp(const LayerStrategy &strategy) const {
    return strategy.usesUlysses() ? getDevicesPerStage() : getDp(strategy);
  }
  /// Micro-batches whose activations stage `stage` holds at its peak: all
  /// of them under GPipe, min(m, pp - stage) under 1F1B.
  int64_t getInFlight(int64_t stage) const;
  /// The first inconsistency with the model and cluster (the dialect's
  /// verifyPlan rules plus TP support per layer), at the layer it concerns
  /// when it concerns one.
  llvm::Error validate(const ModelProfile &model) const;
  /// validate's message, or empty.
  std::string check(const ModelProfile &model) const {
    return llvm::toString(validate(model));
  }
};

/// Puts `blocksPerStage[k]` transformer blocks on stage k of `plan` (which
/// has pp entries); a layer outside the blocks joins the stage of the block
/// before it, except that layers before the first block go on the first
/// stage and layers after the last block on the last stage (Galvatron's
/// placement of embeddings and the head). An empty
/// `blocksPerStage` splits the blocks as evenly as possible, the remainder
/// going to the last stages. Returns an error message, or "".
std::string assignStages(ParallelPlan &plan, const ModelProfile &model,
                         ArrayRef<int64_t> blocksPerStage);

/// What a layer's cost depends on besides its strategy.
struct StageContext {
  const ClusterSpec *cluster = nullptr;
  Precision precision = Precision::bf16;
  int64_t pp = 1;
  int64_t devicesPerStage = 1;
  /// Device id of the stage's first device.
  int64_t firstDevice = 0;
  /// Sequences per micro-batch (before the data-parallel split).
  int64_t microBatch = 1;
  /// Index of the stage's first layer: parameters owned before it are held
  /// as copies.
  unsigned firstLayer = 0;
  /// Split vocabularies are padded to a multiple of vocabDivisor x tp.
  int64_t vocabDivisor = kDefaultVocabDivisor;

  double activationBytes() const;
};

/// Seconds per micro-batch and bytes per device of one layer.
struct LayerCost {
  double forward = 0, backward = 0, recompute = 0; // compute
  double tpForward = 0, tpBackward = 0, tpRecompute = 0;
  /// Exposed ZeRO communication per micro-batch.
  double dpMicroBatch = 0;
  /// Once per iteration: exposed gradient synchronization and parameter
  /// gathers, and the optimizer step.
  double dpIteration = 0, optimizer = 0;
  double params = 0, grads = 0, optimizerStates = 0;
  /// Stored activations per in-flight micro-batch.
  double activations = 0;
  /// Transient peak while the layer runs backward: recomputed activations
  /// of a checkpointed layer, ZeRO-3's gathered weights.
  double transient = 0;

  double getStates() const { return params + grads + optimizerStates; }
  /// The layer's share of a stage's per-micro-batch time: its work plus
  /// 1/m of its once-per-iteration work.
  double getMicroBatchTime(int64_t microBatches) const {
    return forward + backward + recompute + tpForward + tpBackward +
           tpRecompute + dpMicroBatch +
           (dpIteration + optimizer) / static_cast<double>(microBatches);
  }
  double getMemory(int64_t inFlight) const {
    return getStates() + static_cast<double>(inFlight) * activations;
  }
};

/// Prices layer `layerIndex` of a model under `strategy` on a stage: the
/// formulas of docs/architecture.md, "Cost model".
LayerCost evaluateLayer(const LayerProfile &layer, unsigned layerIndex,
                        const LayerStrategy &strategy,
                        const StageContext &context);

/// Seconds per micro-batch to change the layout of `bytesPerSample` of
/// activations from `from` to `to` (the forward change plus the backward
/// change of the gradient).
double getLayoutChangeTime(const LayerStrategy &from, const LayerStrategy &to,
                           const ByteCount &bytesPerSample,
                           const StageContext &context);
/// Seconds per micro-batch to bring a stage boundary's activations, which
/// arrive split evenly over the stage's devices, into `strategy`'s layout
/// (forward at a stage's first layer, backward at its last).
double getStageBoundaryTime(const LayerStrategy &strategy,
                            const ByteCount &bytesPerSample,
                            const StageContext &context);
/// Seconds per micro-batch of point-to-point traffic between stage
/// `stage` and `stage + 1` in one direction.
double getPipelineTransferTime(int64_t stage, const ByteCount &bytesPerSample,
                               const StageContext &context);

struct StageEvaluation {
  unsigned firstLayer = 0, endLayer = 0;
  int64_t inFlight = 1;
  /// Seconds per micro-batch (t_k).
  double microBatchTime = 0;
  /// Iteration seconds by category; they sum to the iteration time.
  double compute = 0, tensorParallel = 0, dataParallel = 0, pipeline = 0,
         bubble = 0;
  /// Bytes per device.
  double params = 0, grads = 0, optimizerStates = 0, activations = 0,
         buffers = 0;
  double getMemory() const {
    return params + grads + optimizerStates + activations + buffers;
  }
};

struct PlanEvaluation {
  SmallVector<LayerCost> layers;
  SmallVector<StageEvaluation> stages;
  double iterationTime = 0;
  double tokensPerSecond = 0;
  /// Hardware FLOPs (recomputation counted) per second per device, the
  /// Megatron convention, and model FLOPs utilization (no recomputation).
  double tflopsPerDevice = 0;
  double mfu = 0;
  double modelFlops = 0, hardwareFlops = 0;
  /// Bytes per device: the most any stage needs, and what the runtime
  /// leaves usable of `memoryBudget`.
  double peakMemory = 0;
  double memoryBudget = 0, usableMemory = 0;
  bool fits() const { return peakMemory <= usableMemory; }
};

/// Memory a plan may use of `budget` bytes per device after the runtime's
/// reserve and fragmentation (EfficiencyFactors).
double getUsableMemory(const ClusterSpec &cluster, double budget);
/// Fails when `budget` bytes per device leave nothing for the model.
llvm::Error checkMemoryBudget(const ClusterSpec &cluster, double budget);
/// Bytes for messages: "12.50 GiB", "310.25 MiB", "96.00 KiB".
std::string formatBytes(double bytes);

/// Prices `plan` (which must pass `plan.check(model)`).
PlanEvaluation evaluatePlan(const ModelProfile &model, const ParallelPlan &plan,
                            const ClusterSpec &cluster, double memoryBudget);

} // namespace mlir::galvatron

#endif // GALVATRON_ANALYSIS_COSTMODEL_H
