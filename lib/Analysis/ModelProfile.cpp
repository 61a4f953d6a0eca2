//===- ModelProfile.cpp - Strategy-independent layer costs from the IR ----===//
//
// One walk over a model function turns each layer into a LayerProfile: the
// work of its ops, the activations its backward pass needs, its
// tensor-parallel communication and parameters, all per sample.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Analysis/CostModel.h"
#include "galvatron/Analysis/UlyssesAnalysis.h"
#include "galvatron/Support/Error.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SmallVectorExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mlir;
using namespace mlir::galvatron;

double Split::share(const ShareContext &context) const {
  int64_t tp = context.tp;
  if (tp <= 1)
    return 1.0;
  // Ulysses divides the sequence and the heads, which the degree divides.
  if (context.ulysses)
    return ulysses ? 1.0 / static_cast<double>(tp) : 1.0;
  if (tpSize > 0) {
    int64_t held =
        vocabulary ? padVocabulary(tpSize, tp, context.vocabDivisor) : tpSize;
    return static_cast<double>((held + tp - 1) / tp) /
           static_cast<double>(tpSize);
  }
  int64_t length = context.sequenceLength;
  if (sequence && context.sp && length > 0)
    return static_cast<double>((length + tp - 1) / tp) /
           static_cast<double>(length);
  return 1.0;
}

double LayerProfile::Parameter::localElements(int64_t tp,
                                              int64_t vocabDivisor) const {
  if (segments.empty() || tp <= 1)
    return static_cast<double>(elements);
  int64_t total = 0, local = 0;
  for (int64_t size : segments) {
    total += size;
    int64_t held = vocabulary ? padVocabulary(size, tp, vocabDivisor) : size;
    local += (held + tp - 1) / tp;
  }
  return static_cast<double>(elements) / static_cast<double>(total) *
         static_cast<double>(local);
}

int64_t LayerProfile::Parameter::localLeading(int64_t tp,
                                              int64_t vocabDivisor) const {
  if (!splitsLeading || tp <= 1)
    return leading;
  return (vocabulary ? padVocabulary(leading, tp, vocabDivisor) : leading) /
         tp;
}

bool LayerProfile::supportsTP(int64_t tp) const {
  return getTPFailure(tp).empty();
}

bool LayerProfile::supportsUlysses(int64_t degree) const {
  return getUlyssesFailure(degree).empty();
}

std::string LayerProfile::getUlyssesFailure(int64_t degree) const {
  if (degree == 1)
    return "";
  if (!ulyssesFailure.empty())
    return ulyssesFailure;
  for (int64_t size : ulyssesDivisors)
    if (size % degree != 0)
      return ("Ulysses splits a sequence or head count of " +
              llvm::Twine(size) + ", which does not divide among " +
              llvm::Twine(degree) + " ranks")
          .str();
  return "";
}

std::string LayerProfile::getTPFailure(int64_t tp) const {
  if (tp == 1)
    return "";
  if (!tpFailure.empty())
    return tpFailure;
  for (int64_t size : tpDivisors)
    if (size % tp != 0)
      return (llvm::Twine(size) + " heads do not divide among " +
              llvm::Twine(tp) + " ranks")
          .str();
  for (int64_t size : weightSplits)
    if (size % tp != 0)
      return ("a weight dimension of " + llvm::Twine(size) +
              " does not divide among " + llvm::Twine(tp) + " ranks")
          .str();
  return "";
}

//===----------------------------------------------------------------------===//
// Tensor sizes
//===----------------------------------------------------------------------===//

namespace {
/// Sizes of values per sample (batched) or in total (unbatched).
class Sizer {
public:
  Sizer(const TensorParallelAnalysis &analysis, int64_t irBatch,
        const UlyssesAnalysis *ulysses = nullptr)
      : analysis(analysis), irBatch(irBatch), ulysses(ulysses) {}

  ByteCount bytes(Value value) const {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type)
      return {};
    double elements = static_cast<double>(type.getNumElements());
    if (analysis.isBatched(value))
      elements /= static_cast<double>(irBatch);
    Type element = type.getElementType();
    if (isa<FloatType>(element))
      return {elements, 0};
    // Whole bytes per element: the runtime stores i1 (masks) as bytes.
    return {0, elements * ((element.getIntOrFloatBitWidth() + 7) / 8)};
  }

  /// How TP / SP divide `value`.
  Split split(Value value) const {
    Split result;
    TPSharding sharding = analysis.getSharding(value);
    if (sharding.kind == TPSharding::Sharded) {
      result.tpSize =
          cast<RankedTensorType>(value.getType()).getDimSize(sharding.dim);
      result.vocabulary = analysis.isVocabularyValue(value);
    } else if (analysis.isSequenceParallelValue(value))
      result.sequence = true;
    result.ulysses = ulysses && ulysses->getLayout(value).isSplit();
    return result;
  }

  /// How TP divides a weight read by `param` (and its gradient).
  Split weightSplit(ParamOp param) const {
    Split result;
    for (const TPParameterSharding &entry : analysis.getParameters())
      if (entry.op == param && entry.dim >= 0) {
        result.tpSize =
            cast<RankedTensorType>(param.getType()).getDimSize(entry.dim);
        result.vocabulary = entry.vocabulary;
      }
    return result;
  }

private:
  const TensorParallelAnalysis &analysis;
  int64_t irBatch;
  const UlyssesAnalysis *ulysses;
};
} // namespace

/// Storage a value shares with: views (reshape, transpose, slice, split,
/// broadcast) keep their source's storage for the backward pass.
static Value storageRoot(Value value) {
  while (Operation *def = value.getDefiningOp()) {
    if (!isa<ReshapeOp, TransposeOp, SliceOp, SplitOp, BroadcastOp>(def))
      break;
    value = def->getOperand(0);
  }
  return value;
}

/// Ops that only re-describe their input.
static bool isView(Operation *op) {
  return isa<ReshapeOp, SliceOp, SplitOp, BroadcastOp, ParamOp, ConstantOp,
             YieldOp>(op);
}

/// The forward values `op`'s backward reads: the primals its VJP rule
/// declares for the operands that need gradients (the values the autodiff
/// engine saves). Ops whose results need no gradient run no rule.
static SmallVector<Value> getSavedValues(Operation *op,
                                         const TensorParallelAnalysis &analysis) {
  SmallVector<Value> values;
  auto rule = dyn_cast<VJPOpInterface>(op);
  if (!rule || llvm::none_of(op->getResults(), [&](Value result) {
        return analysis.needsGradient(result);
      }))
    return values;
  SmallVector<bool> wanted = llvm::map_to_vector(
      op->getOperands(),
      [&](Value operand) { return analysis.needsGradient(operand); });
  rule.getVJPPrimals(wanted, values);
  return values;
}

/// The backward pass holds a value's gradient from the backward of its last
/// user to that of its definition, so the gradients live at op k's backward
/// are those of the values live across k in the forward; activations saved
/// only for ops after k are free by then. Records, per op, those gradients
/// less the freed activations, and the weight gradients the op forms (views
/// share their source's gradient).
static void
addBackwardPoints(LayerOp layer, const TensorParallelAnalysis &analysis,
                  const Sizer &sizer,
                  const llvm::MapVector<Value, int64_t> &firstSaver,
                  LayerProfile &entry) {
  Block &body = layer.getBodyBlock();
  llvm::DenseMap<Operation *, int64_t> position;
  for (auto [index, op] : llvm::enumerate(body))
    position[&op] = static_cast<int64_t>(index);
  struct Interval {
    LayerProfile::Tensor gradient;
    int64_t def, lastUse;
  };
  SmallVector<Interval> gradients;
  auto consider = [&](Value value, int64_t def) {
    auto type = dyn_cast<RankedTensorType>(value.getType());
    if (!type || !isa<FloatType>(type.getElementType()) ||
        !analysis.isBatched(value) || !analysis.needsGradient(value))
      return;
    int64_t lastUse = def;
    for (Operation *user : value.getUsers())
      lastUse = std::max(lastUse, position.lookup(user));
    gradients.push_back(
        {{sizer.bytes(value), sizer.split(value), 0}, def, lastUse});
  };
  for (BlockArgument argument : body.getArguments())
    consider(argument, -1);
  for (Operation &op : body)
    if (!isView(&op))
      for (Value result : op.getResults())
        consider(result, position[&op]);

  // Sums by split, so a point has an entry per way TP divides its tensors.
  auto addTo = [](SmallVector<LayerProfile::Tensor> &tensors,
                  const LayerProfile::Tensor &tensor, double sign) {
    auto it = llvm::find_if(tensors, [&](const LayerProfile::Tensor &t) {
      return t.split == tensor.split;
    });
    if (it == tensors.end())
      it = tensors.insert(tensors.end(), {{}, tensor.split, 0});
    it->bytes.floats += sign * tensor.bytes.floats;
    it->bytes.fixed += sign * tensor.bytes.fixed;
  };
  for (Operation &op : body) {
    int64_t k = position[&op];
    LayerProfile::BackwardPoint point;
    for (const Interval &interval : gradients)
      if (interval.def <= k && k <= interval.lastUse)
        addTo(point.activations, interval.gradient, 1.0);
    for (auto [root, saver] : firstSaver)
      if (saver > k)
        addTo(point.activations, {sizer.bytes(root), sizer.split(root), 0},
              -1.0);
    for (Value operand : op.getOperands())
      if (auto param = operand.getDefiningOp<ParamOp>();
          param && analysis.needsGradient(operand))
        addTo(point.weights,
              {sizer.bytes(operand), sizer.weightSplit(param), 0}, 1.0);
    entry.backwardPoints.push_back(std::move(point));
  }
}

//===----------------------------------------------------------------------===//
// Building the profile
//===----------------------------------------------------------------------===//

/// Serializes everything costs depend on, for signatures.
static std::string fingerprint(const LayerProfile &layer, unsigned index) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << static_cast<int>(layer.kind) << "|";
  auto bytes = [&](const ByteCount &b) { os << b.floats << "," << b.fixed; };
  auto split = [&](const Split &s) {
    os << "/" << s.tpSize << s.sequence << s.vocabulary << s.ulysses;
  };
  for (const LayerProfile::Op &op : layer.ops) {
    os << "o" << op.flops << "," << op.fusedMaskOps << ",";
    bytes(op.bytes);
    bytes(op.callBytes);
    bytes(op.materializedBytes);
    split(op.split);
    os << op.batched << op.attention;
  }
  SmallVector<const SmallVector<LayerProfile::Tensor> *> lists = {
      &layer.saved, &layer.checkpointed};
  for (const LayerProfile::BackwardPoint &point : layer.backwardPoints) {
    lists.push_back(&point.activations);
    lists.push_back(&point.weights);
  }
  for (const SmallVector<LayerProfile::Tensor> *list : lists)
    for (const LayerProfile::Tensor &tensor : *list) {
      os << "t";
      bytes(tensor.bytes);
      split(tensor.split);
      os << int(tensor.attentionMode);
    }
  for (const LayerProfile::Comm &comm : layer.comms) {
    os << "c" << int(comm.kind);
    bytes(comm.bytes);
    os << comm.batched << comm.sequence << comm.gradient;
  }
  for (const LayerProfile::Parameter &param : layer.parameters) {
    os << "p" << param.elements << ":";
    for (int64_t size : param.segments)
      os << size << ",";
    os << (param.owner == index ? 0 : static_cast<int64_t>(index) -
                                          static_cast<int64_t>(param.owner))
       << "r" << param.readers << "l" << param.leading << param.splitsLeading
       << param.vocabulary;
  }
  os << "d";
  for (int64_t d : layer.tpDivisors)
    os << d << ",";
  os << "w";
  for (int64_t d : layer.weightSplits)
    os << d << ",";
  os << layer.tpFailure << "|" << layer.sequenceParallel << "|"
     << layer.sequenceLength << "|" << layer.ulyssesFailure << "|";
  for (int64_t d : layer.ulyssesDivisors)
    os << d << ",";
  for (const LayerProfile::UlyssesComm &comm : layer.ulyssesComms) {
    os << "u" << int(comm.kind);
    bytes(comm.bytes);
    os << comm.batched << comm.gradient;
  }
  bytes(layer.inputCut);
  os << "|" << layer.batchedFlops << "," << layer.unbatchedFlops;
  return text;
}

/// Index of the layer containing `op`'s user, or `end` for a return.
static unsigned userLayerIndex(Operation *user,
                               const llvm::DenseMap<Operation *, unsigned> &index,
                               unsigned end) {
  while (user && !isa<LayerOp>(user) && !isa<func::ReturnOp>(user))
    user = user->getParentOp();
  if (!user || isa<func::ReturnOp>(user))
    return end;
  return index.lookup(user);
}

llvm::Expected<ModelProfile> ModelProfile::build(func::FuncOp function) {
  ModelProfile profile;
  if (auto module = function->getParentOfType<ModuleOp>())
    if (auto name = module->getAttrOfType<StringAttr>(
            GalvatronDialect::getModelAttrName()))
      profile.model = name.str();
  if (profile.model.empty())
    profile.model = function.getSymName().str();

  // The batch the IR was built for: dimension 0 of every input.
  for (BlockArgument argument : function.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(argument.getType());
    if (!type || type.getRank() < 1)
      return makeError(function, "@" + function.getSymName() + ": input " +
                       llvm::Twine(argument.getArgNumber()) +
                       " has no batch dimension");
    int64_t batch = type.getDimSize(0);
    if (argument.getArgNumber() == 0)
      profile.irBatch = batch;
    else if (batch != profile.irBatch)
      return makeError(function, "@" + function.getSymName() +
                       ": inputs disagree on the batch dimension (" +
                       llvm::Twine(profile.irBatch) + " vs " +
                       llvm::Twine(batch) + ")");
  }

  SmallVector<LayerOp> layerOps;
  llvm::DenseMap<Operation *, unsigned> layerIndex;
  for (Operation &op : function.getBody().getOps()) {
    if (auto layer = dyn_cast<LayerOp>(op)) {
      layerIndex[layer] = layerOps.size();
      layerOps.push_back(layer);
      continue;
    }
    if (!isa<func::ReturnOp>(op))
      return makeError(&op, "@" + function.getSymName() + ": '" +
                       op.getName().getStringRef() +
                       "' sits outside every layer; the cost model needs "
                       "every op inside a galvatron.layer");
  }
  if (layerOps.empty())
    return makeError(function,
                     "@" + function.getSymName() + " has no galvatron.layer");
  unsigned end = layerOps.size();

  std::vector<TensorParallelAnalysis> analyses =
      TensorParallelAnalysis::analyzeFunction(function);
  llvm::StringMap<unsigned> owners;
  llvm::DenseMap<StringAttr, unsigned> readers =
      countParameterReaders(analyses);

  // Activations crossing each layer boundary: results of earlier layers
  // used at or after it (data inputs are read where needed, not sent).
  SmallVector<ByteCount> cuts(end + 1);
  for (auto [producer, layer] : llvm::enumerate(layerOps)) {
    auto yield = cast<YieldOp>(layer.getBodyBlock().getTerminator());
    const TensorParallelAnalysis &analysis = analyses[producer];
    Sizer sizer(analysis, profile.irBatch);
    for (auto [output, yielded] :
         llvm::zip(layer.getResults(), yield.getValues())) {
      if (!analysis.isBatched(yielded))
        continue;
      unsigned last = producer;
      for (Operation *user : output.getUsers())
        last = std::max(last, userLayerIndex(user, layerIndex, end));
      for (unsigned boundary = producer + 1; boundary <= last && boundary < end;
           ++boundary)
        cuts[boundary] += sizer.bytes(yielded);
    }
  }

  llvm::StringMap<unsigned> signatures;
  for (auto [index, layer] : llvm::enumerate(layerOps)) {
    const TensorParallelAnalysis &analysis = analyses[index];
    UlyssesAnalysis ulysses(analysis);
    Sizer sizer(analysis, profile.irBatch, &ulysses);
    LayerProfile &entry = profile.layers.emplace_back();
    entry.name = layer.getLayerName().str();
    entry.location = layer.getLoc();
    entry.kind = layer.getKind();
    entry.tpFailure = analysis.getFailure().str();
    entry.sequenceParallel = analysis.supportsSequenceParallel();
    entry.sequenceParallelFailure =
        analysis.isShardable() ? analysis.getSequenceParallelFailure().str()
                               : entry.tpFailure;
    entry.tpDivisors.assign(analysis.getDivisibilityConstraints().begin(),
                            analysis.getDivisibilityConstraints().end());
    llvm::sort(entry.tpDivisors);
    entry.tpDivisors.erase(
        std::unique(entry.tpDivisors.begin(), entry.tpDivisors.end()),
        entry.tpDivisors.end());
    entry.weightSplits.assign(analysis.getWeightSplitSizes().begin(),
                              analysis.getWeightSplitSizes().end());
    entry.ulyssesFailure = ulysses.getFailure().str();
    entry.ulyssesDivisors.assign(ulysses.getDivisors().begin(),
                                 ulysses.getDivisors().end());
    for (const UlyssesConversion &conversion : ulysses.getConversions()) {
      // The loss consumes split model outputs where they are.
      if (conversion.modelOutput)
        continue;
      Value value = conversion.getValue();
      using Comm = LayerProfile::UlyssesComm;
      Comm::Kind kind = !conversion.to.isSplit()     ? Comm::Gather
                        : !conversion.from.isSplit() ? Comm::Scatter
                                                     : Comm::AllToAll;
      entry.ulyssesComms.push_back({kind, sizer.bytes(value),
                                    analysis.isBatched(value),
                                    analysis.needsGradient(value)});
    }
    entry.inputCut = cuts[index];
    entry.sequenceLength = analysis.getSequenceLength();
    profile.sequenceLength =
        std::max(profile.sequenceLength,
                 layer.isTransformerBlock() ? entry.sequenceLength : 0);

    auto operandSplit = [&](Operation *op) {
      Split split;
      split.tpSize = analysis.getSplitSize(op);
      split.vocabulary = split.tpSize > 0 && analysis.isVocabularySplit(op);
      if (split.tpSize == 0) {
        auto isSP = [&](Value v) {
          return analysis.isSequenceParallelValue(v);
        };
        split.sequence = llvm::any_of(op->getOperands(), isSP) ||
                         llvm::any_of(op->getResults(), isSP);
      }
      split.ulysses = ulysses.isSplitWork(op);
      return split;
    };

    // Work.
    llvm::DenseMap<Value, size_t> savedIndex;
    // The first op (in forward order) whose backward needs each saved
    // storage: the backward frees it after that op's.
    llvm::MapVector<Value, int64_t> firstSaver;
    int64_t opIndex = 0;
    // Records that the backward pass needs `value`'s storage; a tensor
    // needed by any op is kept whatever the attention kernel.
    auto save = [&](Value value, uint8_t attentionMode) {
      Value root = storageRoot(value);
      if (!analysis.isBatched(root))
        return;
      firstSaver.insert({root, opIndex});
      auto [it, inserted] = savedIndex.insert({root, entry.saved.size()});
      if (!inserted) {
        if (attentionMode == 0)
          entry.saved[it->second].attentionMode = 0;
        return;
      }
      entry.saved.push_back({sizer.bytes(root), sizer.split(root),
                             attentionMode});
    };
    for (auto [index, op] : llvm::enumerate(layer.getBodyBlock())) {
      opIndex = static_cast<int64_t>(index);
      bool opBatched =
          llvm::any_of(op.getResults(),
                       [&](Value v) { return analysis.isBatched(v); }) ||
          llvm::any_of(op.getOperands(),
                       [&](Value v) { return analysis.isBatched(v); });
      LayerProfile::Op cost;
      cost.batched = opBatched;
      if (auto flops = dyn_cast<FlopCountOpInterface>(op)) {
        cost.flops = static_cast<double>(flops.getFlops());
        if (opBatched)
          cost.flops /= static_cast<double>(profile.irBatch);
      }
      if (!isView(&op)) {
        for (Value v : op.getOperands()) {
          ByteCount b = sizer.bytes(v);
          if (analysis.isBatched(v) || !opBatched)
            cost.bytes += b;
          else
            cost.callBytes += b;
        }
        for (Value v : op.getResults())
          cost.bytes += sizer.bytes(v);
      }
      if (auto attention = dyn_cast<AttentionOp>(op)) {
        cost.attention = true;
        ArrayRef<int64_t> q = attention.getQuery().getType().getShape();
        ArrayRef<int64_t> k = attention.getKey().getType().getShape();
        double scores = static_cast<double>(q[0] * q[1] * q[2] * k[2]);
        if (opBatched)
          scores /= static_cast<double>(profile.irBatch);
        // Materialized: scores written, read and written by softmax, read
        // by the second product.
        cost.materializedBytes = {4.0 * scores, 0};
        if (attention.dropsElements()) {
          // Materialized dropout reads the probabilities and writes the
          // dropped ones and the 1-byte mask; the fused kernel draws the
          // mask from the counter instead (two SplitMix64 finalizers:
          // about 24 operations per score).
          cost.materializedBytes += ByteCount{2.0 * scores, scores};
          cost.fusedMaskOps = 24.0 * scores;
        }
      }
      cost.split = operandSplit(&op);
      if (cost.flops > 0 || cost.bytes.floats > 0 || cost.bytes.fixed > 0 ||
          cost.callBytes.floats > 0) {
        if (cost.batched)
          entry.batchedFlops += cost.flops;
        else
          entry.unbatchedFlops += cost.flops;
        entry.ops.push_back(cost);
      }

      // Activations the backward pass keeps, and the fp32 statistics per
      // row that fused norm and attention kernels keep besides.
      for (Value value : getSavedValues(&op, analysis))
        save(value, 0);
      if (auto norm = dyn_cast<LayerNormOp>(op)) {
        // Mean and reciprocal deviation per row, fp32.
        ByteCount input = sizer.bytes(norm.getInput());
        double rows = input.floats / norm.getInput().getType().getShape().back();
        entry.saved.push_back({{0, 8.0 * rows}, sizer.split(norm.getInput()), 0});
      } else if (auto norm = dyn_cast<RMSNormOp>(op)) {
        ByteCount input = sizer.bytes(norm.getInput());
        double rows = input.floats / norm.getInput().getType().getShape().back();
        entry.saved.push_back({{0, 4.0 * rows}, sizer.split(norm.getInput()), 0});
      } else if (auto attention = dyn_cast<AttentionOp>(op)) {
        if (analysis.isBatched(attention.getResult())) {
          ArrayRef<int64_t> q = attention.getQuery().getType().getShape();
          ArrayRef<int64_t> k = attention.getKey().getType().getShape();
          Split heads = sizer.split(attention.getResult());
          double scores = static_cast<double>(q[0] * q[1] * q[2] * k[2]) /
                          static_cast<double>(profile.irBatch);
          // Materialized: the softmax probabilities, and with dropout the
          // dropped probabilities and the 1-byte mask (Megatron's 3as²b).
          // The fused kernel keeps no mask: its backward draws it again.
          entry.saved.push_back({{scores, 0}, heads, 1});
          if (attention.dropsElements())
            entry.saved.push_back({{scores, scores}, heads, 1});
          // Fused: the output and the fp32 log-sum-exp per query row.
          save(attention.getResult(), 2);
          double rows = static_cast<double>(q[0] * q[1] * q[2]) /
                        static_cast<double>(profile.irBatch);
          entry.saved.push_back({{0, 4.0 * rows}, heads, 2});
        }
      }
    }

    // A checkpointed layer keeps its batched inputs.
    for (BlockArgument argument : layer.getBodyBlock().getArguments())
      if (analysis.isBatched(argument))
        entry.checkpointed.push_back(
            {sizer.bytes(argument), sizer.split(argument), 0});
    // Model outputs are kept in fp32 for the loss either way.
    auto yield = cast<YieldOp>(layer.getBodyBlock().getTerminator());
    for (auto [output, yielded] :
         llvm::zip(layer.getResults(), yield.getValues())) {
      bool modelOutput = llvm::any_of(output.getUsers(), [](Operation *user) {
        return isa<func::ReturnOp>(user);
      });
      if (!modelOutput || !analysis.isBatched(yielded))
        continue;
      ByteCount bytes = sizer.bytes(yielded);
      LayerProfile::Tensor kept{{0, 4.0 * bytes.floats + bytes.fixed},
                                sizer.split(yielded), 0};
      entry.saved.push_back(kept);
      entry.checkpointed.push_back(kept);
      // The loss's backward, before the layer's, is their last use.
      firstSaver.insert({storageRoot(yielded), opIndex + 1});
    }

    addBackwardPoints(layer, analysis, sizer, firstSaver, entry);

    // Tensor-parallel communication.
    for (const TPCommPoint &point : analysis.getCommPoints()) {
      LayerProfile::Comm comm;
      comm.kind = point.kind;
      comm.batched = analysis.isBatched(point.value);
      comm.sequence = analysis.isSequenceShaped(point.value);
      comm.gradient = analysis.needsGradient(point.value);
      if (point.kind == TPCommPoint::VocabParallelLoss) {
        ByteCount logits = sizer.bytes(point.value);
        double rows = (logits.floats + logits.fixed) /
                      cast<RankedTensorType>(point.value.getType())
                          .getShape()
                          .back();
        comm.bytes = {0, 3.0 * 4.0 * rows};
      } else {
        comm.bytes = sizer.bytes(point.value);
      }
      entry.comms.push_back(comm);
    }

    // Parameters, each once per layer; the first layer reading one owns it.
    llvm::StringMap<bool> seen;
    for (const TPParameterSharding &sharding : analysis.getParameters()) {
      ParamOp param = sharding.op;
      StringRef name = param.getName();
      if (!seen.insert({name, true}).second)
        continue;
      LayerProfile::Parameter parameter;
      parameter.name = name.str();
      auto type = cast<RankedTensorType>(param.getType());
      parameter.elements = type.getNumElements();
      parameter.leading = type.getRank() ? type.getDimSize(0) : 1;
      parameter.splitsLeading = sharding.dim == 0;
      parameter.vocabulary = sharding.vocabulary;
      if (sharding.dim >= 0) {
        if (sharding.segments.empty())
          parameter.segments.push_back(type.getDimSize(sharding.dim));
        else
          parameter.segments.assign(sharding.segments.begin(),
                                    sharding.segments.end());
      }
      parameter.owner = owners.insert({name, index}).first->second;
      parameter.readers = readers.lookup(param.getNameAttr().getAttr());
      entry.parameters.push_back(std::move(parameter));
    }

    std::string key = fingerprint(entry, index);
    auto inserted = signatures.insert({key, signatures.size()});
    entry.signature = inserted.first->second;
  }
  profile.signatureCount = signatures.size();
  return profile;
}

llvm::Expected<ModelProfile> ModelProfile::build(ModuleOp module) {
  func::FuncOp chosen;
  for (auto function : module.getOps<func::FuncOp>()) {
    if (function.getOps<LayerOp>().empty())
      continue;
    if (function.getSymName() == "main")
      return build(function);
    if (chosen)
      return makeError("the module has several functions with layers and none "
                       "is @main");
    chosen = function;
  }
  if (!chosen)
    return makeError("the module has no function with galvatron.layer ops");
  return build(chosen);
}

double ModelProfile::getTrainingFlops(int64_t globalBatch,
                                      int64_t microBatches) const {
  double forward = 0;
  for (const LayerProfile &layer : layers)
    forward += layer.batchedFlops * static_cast<double>(globalBatch) +
               layer.unbatchedFlops * static_cast<double>(microBatches);
  return 3.0 * forward;
}

int64_t ModelProfile::getParameterCount() const {
  int64_t count = 0;
  for (auto [index, layer] : llvm::enumerate(layers))
    for (const LayerProfile::Parameter &param : layer.parameters)
      if (param.owner == index)
        count += param.elements;
  return count;
}
