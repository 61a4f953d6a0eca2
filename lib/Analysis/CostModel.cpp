//===- CostModel.cpp - Time and memory of hybrid-parallel plans -----------===//
//
// Prices layers, layout changes, pipeline transfers and whole plans. The
// formulas are listed in docs/architecture.md ("Cost model").
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/CostModel.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <cmath>

using namespace mlir;
using namespace mlir::galvatron;

//===----------------------------------------------------------------------===//
// Precision
//===----------------------------------------------------------------------===//

double StageContext::activationBytes() const {
  return precision == Precision::fp32 ? 4.0 : 2.0;
}

static ComputePrecision getComputePrecision(Precision precision) {
  switch (precision) {
  case Precision::fp32:
    return ComputePrecision::FP32;
  case Precision::fp16:
    return ComputePrecision::FP16;
  case Precision::bf16:
    return ComputePrecision::BF16;
  }
  llvm_unreachable("unknown precision");
}

namespace {
/// Bytes per parameter of each model state.
struct StateBytes {
  double param, grad, optimizer;
};
} // namespace

/// What weights and gradients move as in data-parallel communication:
/// 16-bit under mixed precision (ZeRO's accounting).
static StateBytes getStateBytes(Precision precision) {
  if (precision == Precision::fp32)
    return {4, 4, 8};
  return {2, 2, 12};
}

/// What the training step stores, in every precision: the f32 master
/// weights are the only stored weights (mixed precision casts each read to
/// 16 bits, per layer), gradients accumulate in f32, Adam's m and v are f32.
static constexpr StateBytes kStoredStateBytes = {4, 4, 8};

/// Adam's step reads the gradient and reads and writes the master weight,
/// m and v: 28 bytes per element it updates (4 + 8 + 8 + 8, all f32).
static constexpr double kOptimizerStepBytes = 28.0;

//===----------------------------------------------------------------------===//
// Groups and overlap
//===----------------------------------------------------------------------===//

namespace {
struct Groups {
  GroupShape tp, dp;
};
/// Where a device sits in a stage's tp x dp grid.
struct GridPosition {
  int64_t tpRank, dpRank;
};
} // namespace

static bool tpIsConsecutive(int64_t tp, int64_t dp, bool consecutive) {
  return consecutive || tp == 1 || dp == 1;
}

static Groups getGroups(const StageContext &context, int64_t tp,
                        bool consecutive) {
  int64_t dp = context.devicesPerStage / tp;
  bool tpFirst = tpIsConsecutive(tp, dp, consecutive);
  return {getGroupShape(*context.cluster, context.firstDevice,
                        tpFirst ? 1 : dp, tp),
          getGroupShape(*context.cluster, context.firstDevice,
                        tpFirst ? tp : 1, dp)};
}

static GridPosition getGridPosition(int64_t device, int64_t tp, int64_t dp,
                                    bool consecutive) {
  if (tpIsConsecutive(tp, dp, consecutive))
    return {device % tp, device / tp};
  return {device / dp, device % dp};
}

static int64_t getDevice(GridPosition position, int64_t tp, int64_t dp,
                         bool consecutive) {
  if (tpIsConsecutive(tp, dp, consecutive))
    return position.dpRank * tp + position.tpRank;
  return position.tpRank * dp + position.dpRank;
}

/// Extra time of `communication` overlapped with `compute` beyond the
/// compute itself: max(c, d) + (k - 1)·min(c, d) - c.
static double exposedOverlap(double compute, double communication,
                             double overlap) {
  if (communication <= 0)
    return 0;
  return std::max(compute, communication) +
         (overlap - 1.0) * std::min(compute, communication) - compute;
}

//===----------------------------------------------------------------------===//
// One layer
//===----------------------------------------------------------------------===//

static bool keepsTensor(const LayerProfile::Tensor &tensor, bool materialized) {
  return tensor.attentionMode == 0 ||
         tensor.attentionMode == (materialized ? 1 : 2);
}

/// Megatron's f and g (and their sequence-parallel forms), gathers and
/// scatters, and the vocabulary-parallel loss, on the TP group.
static void addTensorParallelTime(const LayerProfile &layer,
                                  const LayerStrategy &strategy,
                                  const ClusterSpec &cluster,
                                  const GroupShape &group, double samples,
                                  double activation, LayerCost &cost) {
  bool sp = strategy.sp;
  for (const LayerProfile::Comm &comm : layer.comms) {
    double bytes = comm.bytes.at(activation) * (comm.batched ? samples : 1.0);
    auto time = [&](Collective collective) {
      return getCollectiveTime(cluster, collective, group, bytes);
    };
    bool sequence = sp && comm.sequence;
    switch (comm.kind) {
    case TPCommPoint::ReducePartial:
      if (sequence) {
        cost.tpForward += time(Collective::ReduceScatter);
        cost.tpBackward += time(Collective::AllGather);
      } else {
        cost.tpForward += time(Collective::AllReduce);
      }
      break;
    case TPCommPoint::ReplicatedInput:
      if (sequence) {
        cost.tpForward += time(Collective::AllGather);
        if (comm.gradient)
          cost.tpBackward += time(Collective::ReduceScatter);
        // The input is stored split; the weight gradient gathers it again
        // unless recomputation already did.
        if (!strategy.ckpt)
          cost.tpBackward += time(Collective::AllGather);
      } else if (comm.gradient) {
        cost.tpBackward += time(Collective::AllReduce);
      }
      break;
    case TPCommPoint::GatherShards:
      cost.tpForward += time(Collective::AllGather);
      break;
    case TPCommPoint::ScatterReplicated:
      if (comm.gradient)
        cost.tpBackward += time(Collective::AllGather);
      break;
    case TPCommPoint::VocabParallelLoss:
      cost.tpForward += time(Collective::AllReduce);
      break;
    }
  }
}

/// Ulysses' all-to-alls (and their reverse for the gradient), gathers of
/// split values needed whole, and the gradient gathers of whole values
/// taken split, on the Ulysses group.
static void addUlyssesTime(const LayerProfile &layer,
                           const ClusterSpec &cluster, const GroupShape &group,
                           double samples, double activation,
                           LayerCost &cost) {
  using Comm = LayerProfile::UlyssesComm;
  for (const Comm &comm : layer.ulyssesComms) {
    double bytes = comm.bytes.at(activation) * (comm.batched ? samples : 1.0);
    auto time = [&](Collective collective) {
      return getCollectiveTime(cluster, collective, group, bytes);
    };
    switch (comm.kind) {
    case Comm::AllToAll:
      cost.tpForward += time(Collective::AllToAll);
      if (comm.gradient)
        cost.tpBackward += time(Collective::AllToAll);
      break;
    case Comm::Gather:
      cost.tpForward += time(Collective::AllGather);
      break;
    case Comm::Scatter:
      if (comm.gradient)
        cost.tpBackward += time(Collective::AllGather);
      break;
    }
  }
}

LayerCost mlir::galvatron::evaluateLayer(const LayerProfile &layer,
                                         unsigned layerIndex,
                                         const LayerStrategy &strategy,
                                         const StageContext &context) {
  const ClusterSpec &cluster = *context.cluster;
  const EfficiencyFactors &efficiency = cluster.efficiency;
  LayerCost cost;
  double activation = context.activationBytes();
  int64_t dp = context.devicesPerStage / strategy.tp;
  int64_t tp = strategy.tp;
  bool ulysses = strategy.usesUlysses();
  ShareContext shares{tp, strategy.sp && tp > 1 && !ulysses, ulysses,
                      layer.sequenceLength, context.vocabDivisor};
  auto shareOf = [&](const Split &split) { return split.share(shares); };
  // Weights are split by TP only; under Ulysses every rank of the stage
  // holds them whole and data parallelism spans the Ulysses group too.
  int64_t weightSplit = strategy.getWeightSplit();
  int64_t divisor = context.vocabDivisor;
  int64_t paramDp = ulysses ? context.devicesPerStage : dp;
  // Samples each device processes per micro-batch.
  double samples =
      static_cast<double>(context.microBatch) / static_cast<double>(dp);
  double peak = cluster.getPeakFlops(getComputePrecision(context.precision));
  double bandwidth = cluster.memoryBandwidth * efficiency.memoryBound;
  bool materialized = efficiency.materializedAttention;

  // Compute: a roofline per op, forward and backward.
  for (const LayerProfile::Op &op : layer.ops) {
    double share = shareOf(op.split);
    double scale = op.batched ? samples : 1.0;
    double flops = op.flops * share * scale;
    ByteCount perSample = op.bytes;
    if (materialized)
      perSample += op.materializedBytes;
    double bytes =
        (perSample.at(activation) * scale + op.callBytes.at(activation)) *
        share;
    double rate = peak * (op.attention ? efficiency.attention : efficiency.gemm);
    // The fused kernel draws its dropout mask in the forward and again in
    // the backward (materialized attention reads it: `bytes`).
    double maskOps = materialized ? 0.0 : op.fusedMaskOps * share * scale;
    cost.forward += std::max((flops + maskOps) / rate, bytes / bandwidth) +
                    efficiency.kernelOverhead;
    cost.backward +=
        std::max((efficiency.backwardFlops * flops + maskOps) / rate,
                 efficiency.backwardBytes * bytes / bandwidth) +
        2.0 * efficiency.kernelOverhead;
  }
  cost.forward *= layer.computeScale;
  cost.backward *= layer.computeScale;
  if (strategy.ckpt)
    cost.recompute = cost.forward;

  // Tensor (and sequence) parallel communication, not overlapped.
  Groups groups = getGroups(context, strategy.tp, strategy.consecutive);
  if (ulysses)
    addUlyssesTime(layer, cluster, groups.tp, samples, activation, cost);
  else if (tp > 1)
    addTensorParallelTime(layer, strategy, cluster, groups.tp, samples,
                          activation, cost);
  if (strategy.ckpt)
    cost.tpRecompute = cost.tpForward;

  // Model states. A parameter owned by an earlier layer of the same stage is
  // stored once, by its owner; one owned on an earlier stage is a copy.
  // ZeRO leaves whole what the partitioner does: ZeRO-3 a weight several
  // layers read, ZeRO-1/2 one several stages read (its gradient syncs
  // across them; a weight several layers read in a pipeline is taken to be
  // the tied embedding and LM head, on the first and last stage).
  StateBytes stateBytes = getStateBytes(context.precision);
  DataParallelType type =
      paramDp > 1 ? strategy.dpType : DataParallelType::ddp;
  double local = 0, copied = 0, whole = 0, staged = 0;
  for (const LayerProfile::Parameter &param : layer.parameters) {
    if (param.owner != layerIndex && param.owner >= context.firstLayer)
      continue;
    double elements = param.localElements(weightSplit, divisor);
    local += elements;
    // ZeRO splits a weight's first dimension dp divides; another one makes
    // the lowering stage its gradient's per-micro-batch reduce-scatter
    // (ZeRO-2) in a transposed copy.
    if (type == DataParallelType::zero2 &&
        param.localLeading(weightSplit, divisor) % paramDp != 0)
      staged = std::max(staged, elements);
    if (param.owner != layerIndex)
      copied += elements;
    if (type == DataParallelType::zero3
            ? param.readers > 1
            : param.owner != layerIndex ||
                  (param.readers > 1 && context.pp > 1))
      whole += elements;
  }
  bool shardOptimizer = type != DataParallelType::ddp;
  bool shardGrads =
      type == DataParallelType::zero2 || type == DataParallelType::zero3;
  bool shardParams = type == DataParallelType::zero3;
  double d = static_cast<double>(paramDp);
  // Elements per device of a state ZeRO shards or not.
  auto held = [&](bool sharded) {
    return sharded ? (local - whole) / d + whole : local;
  };
  cost.params = held(shardParams) * kStoredStateBytes.param;
  cost.grads = held(shardGrads) * kStoredStateBytes.grad;
  // ZeRO-1 reduce-scatters the accumulated gradients in the last backward
  // (where a backend can overlap it); their 1/dp parts wait for the step.
  // Without a pipeline that backward holds as many activations as any
  // (one micro-batch's); on a pipeline stage it comes after the peak.
  if (type == DataParallelType::zero1 && context.pp == 1)
    cost.grads += (local - whole) / d * kStoredStateBytes.grad;
  cost.optimizerStates = held(shardOptimizer) * kStoredStateBytes.optimizer;
  cost.optimizer = kOptimizerStepBytes * held(shardOptimizer) / bandwidth;

  // Data-parallel communication.
  double gradBytes = local * stateBytes.grad;
  double paramBytes = local * stateBytes.param;
  double backwardCompute = cost.backward + cost.recompute;
  double overlap = efficiency.overlap;
  GroupShape paramGroup =
      ulysses ? getGroupShape(cluster, context.firstDevice, 1,
                              context.devicesPerStage)
              : groups.dp;
  auto dpTime = [&](Collective collective, double bytes) {
    return getCollectiveTime(cluster, collective, paramGroup, bytes);
  };
  if (paramDp > 1) {
    switch (type) {
    case DataParallelType::ddp:
      // Gradients are accumulated over micro-batches and all-reduced once,
      // overlapped with the last backward.
      cost.dpIteration += exposedOverlap(
          backwardCompute, dpTime(Collective::AllReduce, gradBytes), overlap);
      break;
    case DataParallelType::zero1:
      cost.dpIteration +=
          exposedOverlap(backwardCompute,
                         dpTime(Collective::ReduceScatter, gradBytes),
                         overlap) +
          dpTime(Collective::AllGather, paramBytes);
      break;
    case DataParallelType::zero2:
      // Gradients are reduce-scattered into their shards every micro-batch.
      cost.dpMicroBatch += exposedOverlap(
          backwardCompute, dpTime(Collective::ReduceScatter, gradBytes),
          overlap);
      cost.dpIteration += dpTime(Collective::AllGather, paramBytes);
      break;
    case DataParallelType::zero3:
      // Weights are gathered for the forward and again for the backward.
      cost.dpMicroBatch +=
          exposedOverlap(cost.forward, dpTime(Collective::AllGather, paramBytes),
                         overlap) +
          exposedOverlap(backwardCompute,
                         dpTime(Collective::AllGather, paramBytes) +
                             dpTime(Collective::ReduceScatter, gradBytes),
                         overlap);
      break;
    }
  }
  if (copied > 0) {
    // A weight tied to a layer on another stage: the two copies' gradients
    // are all-reduced once per iteration.
    GroupShape pair{2, context.firstDevice >= cluster.devicesPerNode ? 2 : 1,
                    1, false};
    cost.dpIteration += getCollectiveTime(cluster, Collective::AllReduce, pair,
                                          copied * stateBytes.grad);
  }

  // Activations.
  auto stored = [&](ArrayRef<LayerProfile::Tensor> tensors) {
    double total = 0;
    for (const LayerProfile::Tensor &tensor : tensors)
      if (keepsTensor(tensor, materialized))
        total += tensor.bytes.at(activation) * shareOf(tensor.split) * samples;
    return total;
  };
  double full = stored(layer.saved);
  cost.activations = strategy.ckpt ? stored(layer.checkpointed) : full;
  cost.activations *= layer.activationScale;
  // Measured activations with (1) or without (0) Megatron SP, either at
  // tp = 1; Galvatron's checkpointed ones divide by tp under SP.
  for (int index : {shares.sp ? 1 : 0, tp == 1 ? 1 : -1}) {
    if (index < 0)
      continue;
    const std::map<int64_t, double> &measured =
        layer.measuredActivations[index];
    if (auto it = measured.find(strategy.ckpt ? 0 : tp); it != measured.end()) {
      cost.activations = it->second * samples /
                         (strategy.ckpt && shares.sp ? double(tp) : 1.0);
      break;
    }
  }
  if (strategy.ckpt)
    cost.transient += full;
  // The backward at its busiest op.
  double backward = 0;
  for (const LayerProfile::BackwardPoint &point : layer.backwardPoints) {
    double bytes = stored(point.activations);
    for (const LayerProfile::Tensor &weight : point.weights)
      bytes += weight.bytes.at(activation) * shareOf(weight.split);
    backward = std::max(backward, bytes);
  }
  cost.transient += backward + staged * kStoredStateBytes.grad;
  if (shardParams)
    // The gathered weights of this layer and of the next, prefetched.
    cost.transient += 2.0 * (local - whole) * stateBytes.param;
  return cost;
}

//===----------------------------------------------------------------------===//
// Layout changes and pipeline transfers
//===----------------------------------------------------------------------===//

namespace {
/// The part of a [batch, sequence] activation a device holds, as fractions.
struct HeldRegion {
  double batchLo, batchHi, seqLo, seqHi;
};
} // namespace

static HeldRegion getRegion(int64_t device, int64_t devices,
                        const LayerStrategy &strategy) {
  int64_t tp = strategy.tp, dp = devices / tp;
  GridPosition position = getGridPosition(device, tp, dp, strategy.consecutive);
  HeldRegion region{double(position.dpRank) / dp, double(position.dpRank + 1) / dp,
                0.0, 1.0};
  if (strategy.splitsSequence()) {
    region.seqLo = double(position.tpRank) / tp;
    region.seqHi = double(position.tpRank + 1) / tp;
  }
  return region;
}

static double overlapLength(double lo1, double hi1, double lo2, double hi2) {
  return std::max(0.0, std::min(hi1, hi2) - std::max(lo1, lo2));
}

/// Same layout: equal degrees, and equal consecutiveness and sequence split
/// where they matter.
static bool sameLayout(const LayerStrategy &a, const LayerStrategy &b,
                       int64_t devices) {
  if (a.tp != b.tp)
    return false;
  int64_t dp = devices / a.tp;
  return tpIsConsecutive(a.tp, dp, a.consecutive) ==
             tpIsConsecutive(b.tp, dp, b.consecutive) &&
         a.splitsSequence() == b.splitsSequence();
}

/// Seconds for every device to fetch the part of the activation it needs in
/// layout `to` and does not hold in layout `from`, from the nearest holder
/// (same node when one exists). Devices of one node stand for all.
static double getOneWayLayoutTime(const LayerStrategy &from,
                                  const LayerStrategy &to, double bytes,
                                  const StageContext &context) {
  int64_t devices = context.devicesPerStage;
  if (bytes <= 0 || sameLayout(from, to, devices))
    return 0;
  const ClusterSpec &cluster = *context.cluster;
  int64_t perNode = cluster.devicesPerNode;
  int64_t fromTp = from.tp, fromDp = devices / fromTp;
  bool fromSp = from.splitsSequence();
  LinkCost intra = cluster.intraNode[static_cast<unsigned>(Collective::AllGather)]
                       .lookup(std::min(devices, perNode));
  double interBandwidth = cluster.nodeNetworkBandwidth / perNode;
  double worst = 0;
  for (int64_t r = 0; r < std::min(devices, perNode); ++r) {
    HeldRegion need = getRegion(r, devices, to);
    GridPosition own = getGridPosition(r, fromTp, fromDp, from.consecutive);
    int64_t node = (context.firstDevice + r) / perNode;
    double intraFraction = 0, interFraction = 0;
    int64_t firstBlock = static_cast<int64_t>(std::floor(need.batchLo * fromDp));
    for (int64_t j = firstBlock; j < fromDp && double(j) / fromDp < need.batchHi;
         ++j) {
      double batch = overlapLength(need.batchLo, need.batchHi, double(j) / fromDp,
                                   double(j + 1) / fromDp);
      if (batch <= 0)
        continue;
      int64_t pieces = fromSp ? fromTp : 1;
      for (int64_t k = 0; k < pieces; ++k) {
        double seqLo = fromSp ? double(k) / fromTp : 0.0;
        double seqHi = fromSp ? double(k + 1) / fromTp : 1.0;
        double seq = overlapLength(need.seqLo, need.seqHi, seqLo, seqHi);
        if (seq <= 0)
          continue;
        if (own.dpRank == j && (!fromSp || own.tpRank == k))
          continue; // already held
        // Holders: the device with (j, k), or every TP rank of block j.
        bool onNode = false;
        for (int64_t t = fromSp ? k : 0; t < (fromSp ? k + 1 : fromTp); ++t) {
          int64_t holder = getDevice({t, j}, fromTp, fromDp, from.consecutive);
          if ((context.firstDevice + holder) / perNode == node)
            onNode = true;
        }
        (onNode ? intraFraction : interFraction) += batch * seq;
      }
    }
    if (intraFraction + interFraction <= 0)
      continue;
    double latency = intra.latency;
    if (interFraction > 0)
      latency = std::max(
          latency,
          cluster.interNode[static_cast<unsigned>(Collective::AllGather)]
              .defaults.latency);
    double time = latency +
                  bytes * (intraFraction / intra.busBandwidth +
                           interFraction / interBandwidth);
    worst = std::max(worst, time);
  }
  return worst;
}

double mlir::galvatron::getLayoutChangeTime(const LayerStrategy &from,
                                            const LayerStrategy &to,
                                            const ByteCount &bytesPerSample,
                                            const StageContext &context) {
  double bytes = bytesPerSample.at(context.activationBytes()) *
                 static_cast<double>(context.microBatch);
  // The forward change of the activation and the reverse change of its
  // gradient.
  return getOneWayLayoutTime(from, to, bytes, context) +
         getOneWayLayoutTime(to, from, bytes, context);
}

double mlir::galvatron::getStageBoundaryTime(const LayerStrategy &strategy,
                                             const ByteCount &bytesPerSample,
                                             const StageContext &context) {
  // Boundary activations travel split evenly over the stage's devices: the
  // sequence-parallel layout of the layer's own tp x dp grid.
  LayerStrategy split = strategy;
  split.sp = true;
  double bytes = bytesPerSample.at(context.activationBytes()) *
                 static_cast<double>(context.microBatch);
  return getOneWayLayoutTime(split, strategy, bytes, context);
}

double mlir::galvatron::getPipelineTransferTime(int64_t stage,
                                                const ByteCount &bytesPerSample,
                                                const StageContext &context) {
  const ClusterSpec &cluster = *context.cluster;
  int64_t devices = context.devicesPerStage;
  int64_t first = stage * devices;
  auto node = [&](int64_t device) { return device / cluster.devicesPerNode; };
  bool acrossNodes = node(first) != node(first + devices) ||
                     node(first + devices - 1) != node(first + 2 * devices - 1);
  double bytes = bytesPerSample.at(context.activationBytes()) *
                 static_cast<double>(context.microBatch) /
                 static_cast<double>(devices);
  return getPointToPointTime(cluster, context.pp, acrossNodes, bytes);
}

//===----------------------------------------------------------------------===//
// Plans
//===----------------------------------------------------------------------===//

int64_t ParallelPlan::getInFlight(int64_t stage) const {
  if (schedule == PipelineSchedule::gpipe)
    return microBatches;
  return std::min(microBatches, pp - stage);
}

llvm::Error ParallelPlan::validate(const ModelProfile &model) const {
  if (devices < 1 || devicesPerNode < 1 || pp < 1 || microBatches < 1 ||
      globalBatch < 1)
    return makeError("devices, devices per node, pp, micro-batches and the "
                     "global batch must be positive");
  if (devices % pp != 0)
    return makeError("pipeline degree " + llvm::Twine(pp) +
                     " does not divide " + llvm::Twine(devices) + " devices");
  if (globalBatch % microBatches != 0)
    return makeError("global batch " + llvm::Twine(globalBatch) +
                     " does not split into " + llvm::Twine(microBatches) +
                     " equal micro-batches");
  if (layers.size() != model.layers.size())
    return makeError("the plan has " + llvm::Twine(layers.size()) +
                     " layer strategies but the model has " +
                     llvm::Twine(model.layers.size()) + " layers");
  int64_t stageDevices = getDevicesPerStage();
  int64_t previousStage = 0;
  SmallVector<bool> used(pp, false);
  for (auto [index, strategy] : llvm::enumerate(layers)) {
    const LayerProfile &layer = model.layers[index];
    auto bad = [&](const llvm::Twine &text) {
      std::string full = ("'" + layer.name + "': " + text).str();
      return layer.location ? makeError(Location(layer.location), full)
                            : makeError(full);
    };
    if (strategy.stage < 0 || strategy.stage >= pp)
      return bad("stage " + llvm::Twine(strategy.stage) +
                 " is outside [0, " + llvm::Twine(pp) + ")");
    if (strategy.stage < previousStage)
      return bad("stage " + llvm::Twine(strategy.stage) +
                 " follows a layer on stage " + llvm::Twine(previousStage) +
                 ": stages must not decrease along the model");
    previousStage = strategy.stage;
    used[strategy.stage] = true;
    if (strategy.tp < 1 || stageDevices % strategy.tp != 0)
      return bad("tp " + llvm::Twine(strategy.tp) +
                 " does not divide the stage's " + llvm::Twine(stageDevices) +
                 " devices");
    int64_t dp = getDp(strategy);
    if (getMicroBatchSize() % dp != 0)
      return bad("a micro-batch of " + llvm::Twine(getMicroBatchSize()) +
                 " sequences does not divide among dp = " + llvm::Twine(dp) +
                 " replicas");
    if (strategy.usesUlysses()) {
      if (strategy.sp)
        return bad("uses both Megatron and Ulysses sequence parallelism");
      if (std::string reason = layer.getUlyssesFailure(strategy.tp);
          !reason.empty())
        return bad("cannot run Ulysses on " + llvm::Twine(strategy.tp) +
                   " ranks: " + reason);
    } else if (std::string reason = layer.getTPFailure(strategy.tp);
               !reason.empty()) {
      return bad("cannot run with tp = " + llvm::Twine(strategy.tp) + ": " +
                 reason);
    }
    if (strategy.sp && strategy.tp > 1 && !layer.sequenceParallel)
      return bad("cannot use sequence parallelism: " +
                 layer.sequenceParallelFailure);
    // Weights tied to an earlier layer of the same stage are stored once,
    // split the owner's way.
    for (const LayerProfile::Parameter &param : layer.parameters) {
      if (param.owner == index)
        continue;
      const LayerStrategy &owner = layers[param.owner];
      auto weights = [](const LayerStrategy &s) {
        return LayerStrategy{0, s.getWeightSplit(), s.consecutive};
      };
      if (owner.stage == strategy.stage &&
          !sameLayout(weights(owner), weights(strategy), stageDevices))
        return bad("shares @" + param.name + " with '" +
                   model.layers[param.owner].name + "' on stage " +
                   llvm::Twine(strategy.stage) +
                   " and must split it as that layer does (tp " +
                   llvm::Twine(owner.getWeightSplit()) +
                   ", consecutiveness and Ulysses alike)");
    }
  }
  for (auto [stage, isUsed] : llvm::enumerate(used))
    if (!isUsed)
      return makeError("pipeline stage " + llvm::Twine(stage) + " of " +
                       llvm::Twine(pp) + " has no layer");
  return llvm::Error::success();
}

std::string mlir::galvatron::assignStages(ParallelPlan &plan,
                                         const ModelProfile &model,
                                         ArrayRef<int64_t> blocksPerStage) {
  int64_t blocks = llvm::count_if(model.layers, [](const LayerProfile &layer) {
    return layer.isTransformerBlock();
  });
  SmallVector<int64_t> division(blocksPerStage.begin(), blocksPerStage.end());
  if (division.empty()) {
    for (int64_t k = 0; k < plan.pp; ++k)
      division.push_back(blocks / plan.pp +
                         (k >= plan.pp - blocks % plan.pp ? 1 : 0));
  }
  if (static_cast<int64_t>(division.size()) != plan.pp)
    return (llvm::Twine("the stage division has ") +
            llvm::Twine(division.size()) + " entries but pp is " +
            llvm::Twine(plan.pp))
        .str();
  int64_t total = 0;
  for (int64_t count : division) {
    if (count < 0)
      return "the stage division has a negative entry";
    total += count;
  }
  if (total != blocks)
    return (llvm::Twine("the stage division covers ") + llvm::Twine(total) +
            " transformer blocks but the model has " + llvm::Twine(blocks))
        .str();
  plan.layers.resize(model.layers.size());
  int64_t stage = 0, placed = 0, lastBlock = -1;
  for (auto [index, layer] : llvm::enumerate(model.layers))
    if (layer.isTransformerBlock())
      lastBlock = index;
  for (auto [index, layer] : llvm::enumerate(model.layers)) {
    if (layer.isTransformerBlock()) {
      while (stage + 1 < plan.pp && placed == division[stage]) {
        ++stage;
        placed = 0;
      }
      ++placed;
    } else if (static_cast<int64_t>(index) > lastBlock) {
      // The head and what follows the blocks end the pipeline.
      stage = plan.pp - 1;
    }
    plan.layers[index].stage = stage;
  }
  return "";
}

double mlir::galvatron::getUsableMemory(const ClusterSpec &cluster,
                                        double budget) {
  const EfficiencyFactors &efficiency = cluster.efficiency;
  return budget * (1.0 - efficiency.fragmentation) - efficiency.runtimeMemory;
}

llvm::Error mlir::galvatron::checkMemoryBudget(const ClusterSpec &cluster,
                                               double budget) {
  if (getUsableMemory(cluster, budget) > 0)
    return llvm::Error::success();
  return makeError("a budget of " + formatBytes(budget) +
                   " per device leaves nothing after the runtime's " +
                   formatBytes(cluster.efficiency.runtimeMemory) +
                   " and fragmentation");
}

std::string mlir::galvatron::formatBytes(double bytes) {
  static constexpr std::pair<double, const char *> kUnits[] = {
      {double(1ull << 30), "GiB"},
      {double(1ull << 20), "MiB"},
      {1024.0, "KiB"}};
  for (auto [size, unit] : kUnits)
    if (std::abs(bytes) >= size)
      return llvm::formatv("{0:F2} {1}", bytes / size, unit).str();
  return llvm::formatv("{0:F0} bytes", bytes).str();
}

PlanEvaluation mlir::galvatron::evaluatePlan(const ModelProfile &model,
                                             const ParallelPlan &plan,
                                             const ClusterSpec &cluster,
                                             double memoryBudget) {
  PlanEvaluation result;
  int64_t stageDevices = plan.getDevicesPerStage();
  double m = static_cast<double>(plan.microBatches);
  result.stages.resize(plan.pp);
  for (int64_t k = 0; k < plan.pp; ++k) {
    result.stages[k].firstLayer = model.layers.size();
    result.stages[k].inFlight = plan.getInFlight(k);
  }
  for (auto [index, strategy] : llvm::enumerate(plan.layers)) {
    StageEvaluation &stage = result.stages[strategy.stage];
    stage.firstLayer = std::min<unsigned>(stage.firstLayer, index);
    stage.endLayer = index + 1;
  }

  double hardwareExtra = 0;
  for (int64_t k = 0; k < plan.pp; ++k) {
    StageEvaluation &stage = result.stages[k];
    StageContext context;
    context.cluster = &cluster;
    context.precision = plan.precision;
    context.pp = plan.pp;
    context.devicesPerStage = stageDevices;
    context.firstDevice = k * stageDevices;
    context.microBatch = plan.getMicroBatchSize();
    context.firstLayer = stage.firstLayer;
    context.vocabDivisor = plan.vocabDivisor;

    double perMicroBatch = 0, compute = 0, tensor = 0, data = 0, transfer = 0;
    double transient = 0;
    for (unsigned index = stage.firstLayer; index < stage.endLayer; ++index) {
      const LayerProfile &layer = model.layers[index];
      const LayerStrategy &strategy = plan.layers[index];
      LayerCost cost = evaluateLayer(layer, index, strategy, context);
      perMicroBatch += cost.getMicroBatchTime(plan.microBatches);
      compute += m * (cost.forward + cost.backward + cost.recompute) +
                 cost.optimizer;
      tensor += m * (cost.tpForward + cost.tpBackward + cost.tpRecompute);
      data += m * cost.dpMicroBatch + cost.dpIteration;
      stage.params += cost.params;
      stage.grads += cost.grads;
      stage.optimizerStates += cost.optimizerStates;
      stage.activations += static_cast<double>(stage.inFlight) * cost.activations;
      transient = std::max(transient, cost.transient);
      if (strategy.ckpt)
        hardwareExtra += layer.batchedFlops * plan.globalBatch +
                         layer.unbatchedFlops * m;
      if (index > stage.firstLayer) {
        double change = getLayoutChangeTime(plan.layers[index - 1], strategy,
                                            layer.inputCut, context);
        perMicroBatch += change;
        tensor += m * change;
      }
      result.layers.push_back(cost);
    }
    stage.buffers = transient;
    auto boundary = [&](unsigned layerIndex, const ByteCount &cut,
                        int64_t transferStage) {
      double relayout =
          getStageBoundaryTime(plan.layers[layerIndex], cut, context);
      double send = getPipelineTransferTime(transferStage, cut, context);
      perMicroBatch += relayout + send;
      tensor += m * relayout;
      transfer += m * send;
    };
    if (k > 0)
      boundary(stage.firstLayer, model.layers[stage.firstLayer].inputCut, k - 1);
    if (k + 1 < plan.pp)
      boundary(stage.endLayer - 1, model.layers[stage.endLayer].inputCut, k);
    stage.microBatchTime = perMicroBatch;
    stage.compute = compute;
    stage.tensorParallel = tensor;
    stage.dataParallel = data;
    stage.pipeline = transfer;
  }

  double sum = 0, slowest = 0;
  for (const StageEvaluation &stage : result.stages) {
    sum += stage.microBatchTime;
    slowest = std::max(slowest, stage.microBatchTime);
  }
  result.iterationTime = sum + (m - 1.0) * slowest;
  for (StageEvaluation &stage : result.stages) {
    stage.bubble = std::max(0.0, result.iterationTime - m * stage.microBatchTime);
    result.peakMemory = std::max(result.peakMemory, stage.getMemory());
  }
  result.memoryBudget = memoryBudget;
  result.usableMemory = getUsableMemory(cluster, memoryBudget);
  result.modelFlops = model.getTrainingFlops(plan.globalBatch, plan.microBatches);
  result.hardwareFlops = result.modelFlops + hardwareExtra;
  double devices = static_cast<double>(plan.devices);
  double tokensPerSample =
      static_cast<double>(std::max<int64_t>(1, model.sequenceLength));
  result.tokensPerSecond =
      static_cast<double>(plan.globalBatch) * tokensPerSample /
      result.iterationTime;
  result.tflopsPerDevice =
      result.hardwareFlops / result.iterationTime / devices / 1e12;
  result.mfu = result.modelFlops /
               (result.iterationTime * devices *
                cluster.getPeakFlops(getComputePrecision(plan.precision)));
  return result;
}
