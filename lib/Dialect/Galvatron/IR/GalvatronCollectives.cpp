//===- GalvatronCollectives.cpp - Collectives on device groups ------------===//
//
// Syntax and verification of the device groups, shape rules of the
// collectives and their gradient rules.
//
//===----------------------------------------------------------------------===//

#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"
#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"

#include "llvm/ADT/DenseSet.h"

using namespace mlir;
using namespace mlir::galvatron;

//===----------------------------------------------------------------------===//
// Device groups
//===----------------------------------------------------------------------===//

ParseResult mlir::galvatron::parseDeviceGroups(OpAsmParser &parser,
                                               ArrayAttr &groups) {
  SmallVector<SmallVector<int64_t>> lists;
  auto parseGroup = [&]() -> ParseResult {
    SmallVector<int64_t> &members = lists.emplace_back();
    return parser.parseCommaSeparatedList(
        AsmParser::Delimiter::Square, [&]() -> ParseResult {
          return parser.parseInteger(members.emplace_back());
        });
  };
  if (parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, parseGroup))
    return failure();
  groups = buildDeviceGroups(parser.getContext(), lists);
  return success();
}

void mlir::galvatron::printDeviceGroups(OpAsmPrinter &printer, Operation *,
                                        ArrayAttr groups) {
  printer << '[';
  llvm::interleaveComma(groups, printer, [&](Attribute group) {
    printer << '[';
    llvm::interleaveComma(cast<DenseI64ArrayAttr>(group).asArrayRef(), printer);
    printer << ']';
  });
  printer << ']';
}

ArrayAttr
mlir::galvatron::buildDeviceGroups(MLIRContext *context,
                                   ArrayRef<SmallVector<int64_t>> groups) {
  SmallVector<Attribute> attrs;
  for (const SmallVector<int64_t> &group : groups)
    attrs.push_back(DenseI64ArrayAttr::get(context, group));
  return ArrayAttr::get(context, attrs);
}

std::string MeshAxes::name() const {
  std::string text = "g";
  for (auto [size, stride] : axes)
    text += "_" + std::to_string(size) + "x" + std::to_string(stride);
  return text;
}

FailureOr<MeshAxes> mlir::galvatron::getMeshAxes(ArrayAttr groups,
                                                 std::string &error) {
  if (groups.empty()) {
    error = "has no device groups";
    return failure();
  }
  ArrayRef<int64_t> first = cast<DenseI64ArrayAttr>(groups[0]).asArrayRef();
  int64_t members = int64_t(first.size());
  // Peel axes from the fastest: the first `span` members repeat `size`
  // times, each copy `stride` ranks further.
  MeshAxes mesh;
  for (int64_t span = 1; span < members;) {
    int64_t stride = first[span] - first[0];
    int64_t size = 1;
    while ((size + 1) * span <= members &&
           first[size * span] == first[0] + size * stride)
      ++size;
    bool repeats = stride > 0 && members % (size * span) == 0;
    for (int64_t copy = 0; repeats && copy < size; ++copy)
      for (int64_t i = 0; repeats && i < span; ++i)
        repeats = first[copy * span + i] == first[i] + copy * stride;
    if (!repeats) {
      error = "has groups that are not a mesh pattern (group 0 lists " +
              std::to_string(first[span]) + " after " +
              std::to_string(first[span - 1]) + ")";
      return failure();
    }
    mesh.axes.insert(mesh.axes.begin(), {size, stride});
    span *= size;
  }
  // Coordinates may not overlap: each stride is a multiple of the extent
  // of the axes below it.
  SmallVector<std::pair<int64_t, int64_t>> byStride(mesh.axes);
  llvm::sort(byStride, [](auto a, auto b) { return a.second < b.second; });
  for (size_t a = 1; a < byStride.size(); ++a)
    if (byStride[a].second % (byStride[a - 1].first * byStride[a - 1].second)) {
      error = "has groups whose mesh axes overlap";
      return failure();
    }
  // Every group is the first moved to a rank whose coordinates are 0.
  for (Attribute attr : groups) {
    ArrayRef<int64_t> group = cast<DenseI64ArrayAttr>(attr).asArrayRef();
    int64_t base = group.front();
    bool matches = int64_t(group.size()) == members;
    for (auto [size, stride] : mesh.axes)
      matches &= base / stride % size == 0;
    for (int64_t i = 0; matches && i < members; ++i)
      matches = group[i] - base == first[i] - first[0];
    if (!matches) {
      error = "has group [" + std::to_string(base) +
              ", ...] that does not follow the mesh axes of group 0";
      return failure();
    }
  }
  return mesh;
}

//===----------------------------------------------------------------------===//
// Parameter shards
//===----------------------------------------------------------------------===//

SmallVector<int64_t> ParameterShard::partShape() const {
  SmallVector<int64_t> block(fullShape);
  for (const Split &split : splits)
    block[split.dim] /= cast<DenseI64ArrayAttr>(split.groups[0]).size();
  return block;
}

DictionaryAttr ParameterShard::toAttr(MLIRContext *context) const {
  Builder b(context);
  SmallVector<Attribute> list;
  for (const Split &split : splits)
    list.push_back(b.getDictionaryAttr(
        {b.getNamedAttr("dim", b.getI64IntegerAttr(split.dim)),
         b.getNamedAttr("groups", split.groups)}));
  SmallVector<NamedAttribute> entries = {
      b.getNamedAttr("full_shape", b.getDenseI64ArrayAttr(fullShape)),
      b.getNamedAttr("splits", b.getArrayAttr(list))};
  if (!sourceShape.empty())
    entries.push_back(
        b.getNamedAttr("source_shape", b.getDenseI64ArrayAttr(sourceShape)));
  if (!unpaddedShape.empty())
    entries.push_back(b.getNamedAttr("unpadded_shape",
                                     b.getDenseI64ArrayAttr(unpaddedShape)));
  return b.getDictionaryAttr(entries);
}

FailureOr<ParameterShard> ParameterShard::fromAttr(Attribute attr,
                                                   std::string &error) {
  auto dict = dyn_cast<DictionaryAttr>(attr);
  auto fullShape = dict ? dict.getAs<DenseI64ArrayAttr>("full_shape")
                        : DenseI64ArrayAttr();
  auto splits = dict ? dict.getAs<ArrayAttr>("splits") : ArrayAttr();
  if (!fullShape || !splits) {
    error = "must be {full_shape = array<i64: ...>, splits = [...]}";
    return failure();
  }
  ParameterShard shard;
  shard.fullShape.assign(fullShape.asArrayRef().begin(),
                         fullShape.asArrayRef().end());
  if (auto unpadded = dict.getAs<DenseI64ArrayAttr>("unpadded_shape")) {
    shard.unpaddedShape.assign(unpadded.asArrayRef().begin(),
                               unpadded.asArrayRef().end());
    bool within = shard.unpaddedShape.size() == shard.fullShape.size();
    for (size_t d = 0; within && d < shard.fullShape.size(); ++d)
      within = shard.unpaddedShape[d] >= 1 &&
               shard.unpaddedShape[d] <= shard.fullShape[d];
    if (!within) {
      error = "has an unpadded_shape that the full shape does not contain";
      return failure();
    }
  }
  SmallVector<int64_t> block(shard.fullShape);
  for (Attribute entry : splits) {
    auto split = dyn_cast<DictionaryAttr>(entry);
    auto dim = split ? split.getAs<IntegerAttr>("dim") : IntegerAttr();
    auto groups = split ? split.getAs<ArrayAttr>("groups") : ArrayAttr();
    if (!dim || !groups || groups.empty() ||
        !llvm::all_of(groups, llvm::IsaPred<DenseI64ArrayAttr>)) {
      error = "needs splits of the form {dim = d, groups = [array<i64: ...>, "
              "...]}";
      return failure();
    }
    int64_t d = dim.getInt();
    int64_t members = cast<DenseI64ArrayAttr>(groups[0]).size();
    if (d < 0 || d >= int64_t(block.size()) || members == 0 ||
        block[d] % members != 0) {
      error = "cannot split dimension " + std::to_string(d) + " of the " +
              "remaining block among " + std::to_string(members) + " members";
      return failure();
    }
    block[d] /= members;
    shard.splits.push_back({d, groups});
  }
  if (auto source = dict.getAs<DenseI64ArrayAttr>("source_shape")) {
    shard.sourceShape.assign(source.asArrayRef().begin(),
                             source.asArrayRef().end());
    if (ShapedType::getNumElements(shard.getUnpaddedShape()) !=
        ShapedType::getNumElements(shard.sourceShape)) {
      error = "has a source_shape of another size than its full_shape";
      return failure();
    }
  }
  return shard;
}

std::optional<ParameterShard>
mlir::galvatron::getParameterShard(Operation *parameter) {
  Attribute attr = parameter->getAttr(ParameterShard::getAttrName());
  if (!attr)
    return std::nullopt;
  std::string error;
  FailureOr<ParameterShard> shard = ParameterShard::fromAttr(attr, error);
  if (failed(shard))
    return std::nullopt;
  return *shard;
}

DictionaryAttr DataParallelSync::toAttr(MLIRContext *context) const {
  Builder b(context);
  return b.getDictionaryAttr(
      {b.getNamedAttr("groups", groups),
       b.getNamedAttr("zero", b.getI64IntegerAttr(zeroStage)),
       b.getNamedAttr("dim", b.getI64IntegerAttr(dim))});
}

FailureOr<DataParallelSync>
DataParallelSync::fromAttr(Attribute attr, ArrayRef<int64_t> shape,
                           std::string &error) {
  auto dict = dyn_cast<DictionaryAttr>(attr);
  auto groups = dict ? dict.getAs<ArrayAttr>("groups") : ArrayAttr();
  auto zero = dict ? dict.getAs<IntegerAttr>("zero") : IntegerAttr();
  auto dim = dict ? dict.getAs<IntegerAttr>("dim") : IntegerAttr();
  if (!groups || groups.empty() || !zero || !dim ||
      !llvm::all_of(groups, llvm::IsaPred<DenseI64ArrayAttr>)) {
    error = "must be {groups = [array<i64: ...>, ...], zero = 0|1|2, dim = d}";
    return failure();
  }
  DataParallelSync sync{groups, zero.getInt(), dim.getInt()};
  int64_t members = cast<DenseI64ArrayAttr>(groups[0]).size();
  if (sync.zeroStage < 0 || sync.zeroStage > 2) {
    error = "zero stage " + std::to_string(sync.zeroStage) +
            " is not 0 (DDP), 1 or 2";
    return failure();
  }
  if (sync.zeroStage > 0 &&
      (sync.dim < 0 || sync.dim >= int64_t(shape.size()) || members == 0 ||
       shape[sync.dim] % members != 0)) {
    error = "cannot shard dimension " + std::to_string(sync.dim) +
            " of the parameter among " + std::to_string(members) + " members";
    return failure();
  }
  return sync;
}

ParameterShard DataParallelSync::stateShard(Operation *parameter,
                                            ArrayRef<int64_t> shape) const {
  ParameterShard shard;
  if (std::optional<ParameterShard> own = getParameterShard(parameter))
    shard = *own;
  else
    shard.fullShape.assign(shape.begin(), shape.end());
  shard.splits.push_back({dim, groups});
  return shard;
}

std::optional<DataParallelSync>
mlir::galvatron::getDataParallelSync(Operation *parameter) {
  auto declaration = dyn_cast<ParameterOp>(parameter);
  Attribute attr = parameter->getAttr(DataParallelSync::getAttrName());
  if (!declaration || !attr)
    return std::nullopt;
  std::string error;
  FailureOr<DataParallelSync> sync = DataParallelSync::fromAttr(
      attr, declaration.getTensorType().getShape(), error);
  if (failed(sync))
    return std::nullopt;
  return *sync;
}

/// Groups are non-empty, of one size, and disjoint sets of world ranks.
LogicalResult mlir::galvatron::verifyDeviceGroups(Operation *op,
                                                 ArrayAttr groups) {
  if (groups.empty())
    return op->emitOpError() << "needs at least one device group";
  llvm::DenseSet<int64_t> seen;
  int64_t size = -1;
  for (Attribute attr : groups) {
    ArrayRef<int64_t> group = cast<DenseI64ArrayAttr>(attr).asArrayRef();
    if (group.empty())
      return op->emitOpError() << "has an empty device group";
    if (size >= 0 && int64_t(group.size()) != size)
      return op->emitOpError()
             << "device groups must have one size, got " << size << " and "
             << group.size();
    size = group.size();
    for (int64_t rank : group) {
      if (rank < 0)
        return op->emitOpError() << "has negative rank " << rank;
      if (!seen.insert(rank).second)
        return op->emitOpError()
               << "rank " << rank << " appears in more than one place of the "
               << "device groups";
    }
  }
  return success();
}

LogicalResult mlir::galvatron::verifyVocabBlocks(Operation *op,
                                                ArrayAttr groups,
                                                IntegerAttr vocabSize,
                                                int64_t local) {
  if (groups && failed(verifyDeviceGroups(op, groups)))
    return failure();
  if (!vocabSize)
    return success();
  if (!groups)
    return op->emitOpError() << "has a vocab_size but no vocab_groups";
  int64_t blocks = cast<DenseI64ArrayAttr>(groups[0]).size() * local;
  if (vocabSize.getInt() > blocks)
    return op->emitOpError() << "vocab_size " << vocabSize.getInt()
                             << " exceeds the " << blocks
                             << " rows of the blocks together";
  return success();
}

/// `whole` is `part` with dimension `dim` multiplied by the group size.
static LogicalResult verifyParts(Operation *op, int64_t dim, int64_t members,
                                 RankedTensorType part,
                                 RankedTensorType whole) {
  if (part.getElementType() != whole.getElementType() ||
      part.getRank() != whole.getRank())
    return op->emitOpError() << "part " << part << " and whole " << whole
                             << " differ in element type or rank";
  if (dim >= whole.getRank())
    return op->emitOpError() << "dimension " << dim << " is out of range for "
                             << whole;
  for (int64_t d = 0; d < whole.getRank(); ++d) {
    int64_t expected = d == dim ? part.getDimSize(d) * members
                                : part.getDimSize(d);
    if (whole.getDimSize(d) != expected)
      return op->emitOpError()
             << "expects dimension " << dim << " of " << whole << " to be "
             << members << " x that of the part " << part;
  }
  return success();
}

LogicalResult AllReduceOp::verify() {
  return verifyDeviceGroups(*this, getGroups());
}

LogicalResult ReplicateOp::verify() {
  return verifyDeviceGroups(*this, getGroups());
}

LogicalResult AllGatherOp::verify() {
  if (failed(verifyDeviceGroups(*this, getGroups())))
    return failure();
  return verifyParts(*this, getDim(), getGroupSize(), getInput().getType(),
                     getResult().getType());
}

LogicalResult ReduceScatterOp::verify() {
  if (failed(verifyDeviceGroups(*this, getGroups())))
    return failure();
  if (getReduce() == CollectiveReduction::max)
    return emitOpError() << "supports sum and avg";
  return verifyParts(*this, getDim(), getGroupSize(), getResult().getType(),
                     getInput().getType());
}

LogicalResult ShardOp::verify() {
  if (failed(verifyDeviceGroups(*this, getGroups())))
    return failure();
  return verifyParts(*this, getDim(), getGroupSize(), getResult().getType(),
                     getInput().getType());
}

LogicalResult AllToAllOp::verify() {
  if (failed(verifyDeviceGroups(*this, getGroups())))
    return failure();
  RankedTensorType input = getInput().getType(), result = getType();
  int64_t split = getSplitDim(), concat = getConcatDim();
  int64_t members = getGroupSize();
  if (split >= input.getRank() || concat >= input.getRank() || split == concat)
    return emitOpError() << "needs two different dimensions of " << input
                         << ", got split " << split << " and concat "
                         << concat;
  SmallVector<int64_t> expected(input.getShape());
  if (expected[split] % members != 0)
    return emitOpError() << "dimension " << split << " of " << input
                         << " does not split among " << members << " members";
  expected[split] /= members;
  expected[concat] *= members;
  if (result != RankedTensorType::get(expected, input.getElementType()))
    return emitOpError() << "result must be "
                         << RankedTensorType::get(expected,
                                                  input.getElementType())
                         << ", got " << result;
  return success();
}

//===----------------------------------------------------------------------===//
// Gradient rules
//===----------------------------------------------------------------------===//

/// `gradient` · 1/n.
static Value averaged(VJPBuilder &vjp, Value gradient, int64_t members) {
  auto type = cast<RankedTensorType>(gradient.getType());
  Value scale = vjp.scalar(1.0 / double(members), type.getElementType());
  return MulOp::create(vjp.getBuilder(), vjp.getLoc(), gradient, scale);
}

void AllReduceOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult AllReduceOp::buildVJP(VJPBuilder &vjp) {
  Value gradient = vjp.resultGradient(0);
  if (!gradient)
    return success();
  switch (getReduce()) {
  case CollectiveReduction::sum:
    vjp.setGradient(0, gradient);
    return success();
  case CollectiveReduction::avg:
    vjp.setGradient(0, averaged(vjp, gradient, getGroupSize()));
    return success();
  case CollectiveReduction::max:
    break;
  }
  return emitOpError() << "max has no gradient; it serves statistics only";
}

void ReplicateOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult ReplicateOp::buildVJP(VJPBuilder &vjp) {
  if (Value gradient = vjp.resultGradient(0))
    vjp.setGradient(0, AllReduceOp::create(vjp.getBuilder(), vjp.getLoc(),
                                           gradient, CollectiveReduction::sum,
                                           getGroups()));
  return success();
}

void AllGatherOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult AllGatherOp::buildVJP(VJPBuilder &vjp) {
  Value gradient = vjp.resultGradient(0);
  if (!gradient)
    return success();
  Type part = getInput().getType();
  if (getReduceGrad())
    vjp.setGradient(0, ReduceScatterOp::create(
                           vjp.getBuilder(), vjp.getLoc(), part, gradient,
                           CollectiveReduction::sum, getDim(), getGroups()));
  else
    vjp.setGradient(0, ShardOp::create(vjp.getBuilder(), vjp.getLoc(), part,
                                       gradient, getDim(), getGroups()));
  return success();
}

void ReduceScatterOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult ReduceScatterOp::buildVJP(VJPBuilder &vjp) {
  Value gradient = vjp.resultGradient(0);
  if (!gradient)
    return success();
  Value whole = AllGatherOp::create(vjp.getBuilder(), vjp.getLoc(),
                                    getInput().getType(), gradient, getDim(),
                                    getGroups(), /*reduce_grad=*/false);
  if (getReduce() == CollectiveReduction::avg)
    whole = averaged(vjp, whole, getGroupSize());
  vjp.setGradient(0, whole);
  return success();
}

void AllToAllOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult AllToAllOp::buildVJP(VJPBuilder &vjp) {
  if (Value gradient = vjp.resultGradient(0))
    vjp.setGradient(0, AllToAllOp::create(vjp.getBuilder(), vjp.getLoc(),
                                          getInput().getType(), gradient,
                                          getConcatDim(), getSplitDim(),
                                          getGroups()));
  return success();
}

void ShardOp::getVJPPrimals(ArrayRef<bool>, SmallVectorImpl<Value> &) {}

LogicalResult ShardOp::buildVJP(VJPBuilder &vjp) {
  if (Value gradient = vjp.resultGradient(0))
    vjp.setGradient(0, AllGatherOp::create(vjp.getBuilder(), vjp.getLoc(),
                                           getInput().getType(), gradient,
                                           getDim(), getGroups(),
                                           /*reduce_grad=*/false));
  return success();
}

//===----------------------------------------------------------------------===//
// Vocabulary parallelism
//===----------------------------------------------------------------------===//

LogicalResult EmbeddingOp::verify() {
  RankedTensorType table = getTable().getType();
  return verifyVocabBlocks(*this, getVocabGroupsAttr(), getVocabSizeAttr(),
                           table.getRank() ? table.getDimSize(0) : 0);
}

/// `type` is `shape` of `elementType`, or an error naming `what`.
static LogicalResult expectTensor(Operation *op, StringRef what, Type type,
                                  ArrayRef<int64_t> shape, Type elementType) {
  auto expected = RankedTensorType::get(shape, elementType);
  if (type != expected)
    return op->emitOpError() << what << " must be " << expected << ", got "
                             << type;
  return success();
}

/// The checks the vocabulary-parallel cross-entropy ops share: the groups,
/// labels and the row maximum of the logits' leading shape, and the f32
/// statistics [..., 2] (when given).
static LogicalResult verifyVocabCrossEntropy(Operation *op, ArrayAttr groups,
                                             Value logits, Value max,
                                             Value labels, Value stats) {
  auto logitsType = cast<RankedTensorType>(logits.getType());
  if (logitsType.getRank() < 1)
    return op->emitOpError() << "logits must have rank >= 1";
  if (failed(verifyVocabBlocks(
          op, groups, op->getAttrOfType<IntegerAttr>("vocab_size"),
          logitsType.getShape().back())))
    return failure();
  ArrayRef<int64_t> rows = logitsType.getShape().drop_back();
  if (cast<RankedTensorType>(labels.getType()).getShape() != rows)
    return op->emitOpError() << "labels " << labels.getType()
                             << " must match the logits' leading shape";
  if (failed(expectTensor(op, "the row maximum", max.getType(), rows,
                          logitsType.getElementType())))
    return failure();
  if (!stats)
    return success();
  SmallVector<int64_t> statsShape(rows);
  statsShape.push_back(2);
  return expectTensor(op, "the statistics", stats.getType(), statsShape,
                      Float32Type::get(op->getContext()));
}

LogicalResult VocabCrossEntropyStatsOp::verify() {
  return verifyVocabCrossEntropy(*this, getVocabGroups(), getLogits(),
                                 getMax(), getLabels(), getResult());
}

LogicalResult VocabCrossEntropyOp::verify() {
  return verifyVocabCrossEntropy(*this, getVocabGroups(), getLogits(),
                                 getMax(), getLabels(), getStats());
}

LogicalResult VocabCrossEntropyGradOp::verify() {
  if (failed(verifyVocabCrossEntropy(*this, getVocabGroups(), getLogits(),
                                     getMax(), getLabels(), getStats())))
    return failure();
  if (getType() != getLogits().getType())
    return emitOpError() << "the logits gradient must be "
                         << getLogits().getType() << ", got " << getType();
  return success();
}

void VocabCrossEntropyStatsOp::getVJPPrimals(ArrayRef<bool>,
                                             SmallVectorImpl<Value> &) {}

LogicalResult VocabCrossEntropyStatsOp::buildVJP(VJPBuilder &vjp) {
  if (!vjp.resultGradient(0))
    return success();
  return emitOpError() << "has no gradient rule of its own; "
                          "galvatron.vocab_cross_entropy differentiates the "
                          "logits through it";
}

void VocabCrossEntropyOp::getVJPPrimals(ArrayRef<bool>,
                                        SmallVectorImpl<Value> &values) {
  values.append({getStats(), getLogits(), getMax(), getLabels()});
}

LogicalResult VocabCrossEntropyOp::buildVJP(VJPBuilder &vjp) {
  vjp.setGradient(1, VocabCrossEntropyGradOp::create(
                         vjp.getBuilder(), vjp.getLoc(), getLogits().getType(),
                         vjp.resultGradient(0), vjp.primal(getStats()),
                         vjp.primal(getLogits()), vjp.primal(getMax()),
                         vjp.primal(getLabels()), getVocabGroupsAttr(),
                         getIgnoreIndexAttr(), getReductionAttr(),
                         getVocabSizeAttr()));
  return success();
}
