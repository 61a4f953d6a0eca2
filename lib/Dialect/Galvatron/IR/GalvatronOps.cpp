//===- GalvatronOps.cpp - Galvatron operations ----------------------------===//

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Dialect/Galvatron/IR/DeviceGroups.h"

#include "mlir/Dialect/Traits.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/IR/PatternMatch.h"
#include "llvm/ADT/STLExtras.h"

#include <cstdio>
#include <numeric>

using namespace mlir;
using namespace mlir::galvatron;

#include "galvatron/Dialect/Galvatron/IR/GalvatronInterfaces.cpp.inc"

//===----------------------------------------------------------------------===//
// Shared helpers
//===----------------------------------------------------------------------===//

/// Maps a possibly negative axis into [0, rank); fails when out of range.
static FailureOr<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return failure();
  return axis < 0 ? axis + rank : axis;
}

static RankedTensorType rankedType(Value value) {
  return cast<RankedTensorType>(value.getType());
}

static std::string shapeString(ArrayRef<int64_t> shape) {
  std::string text;
  llvm::raw_string_ostream os(text);
  os << "[";
  llvm::interleaveComma(shape, os);
  os << "]";
  return text;
}

/// Checks that each of `arrays` has one entry per dimension of a rank-`rank`
/// tensor (slice starts/limits/strides, pad low/high/interior).
static LogicalResult verifyPerDimension(std::optional<Location> location,
                                        int64_t rank,
                                        ArrayRef<ArrayRef<int64_t>> arrays,
                                        StringRef what) {
  for (ArrayRef<int64_t> array : arrays)
    if (static_cast<int64_t>(array.size()) != rank)
      return emitOptionalError(location, what, " for each of the ", rank,
                               " dimensions");
  return success();
}

/// Result type of a NumPy-broadcasting elementwise op.
static LogicalResult inferBroadcastType(std::optional<Location> location,
                                        ArrayRef<Type> operandTypes,
                                        Type elementType,
                                        SmallVectorImpl<Type> &results) {
  SmallVector<int64_t> shape;
  for (Type type : operandTypes) {
    auto tensor = cast<RankedTensorType>(type);
    SmallVector<int64_t> next;
    if (!OpTrait::util::getBroadcastedShape(shape, tensor.getShape(), next))
      return emitOptionalError(location, "shapes ", shapeString(shape), " and ",
                               shapeString(tensor.getShape()),
                               " do not broadcast");
    shape = std::move(next);
  }
  results.push_back(RankedTensorType::get(shape, elementType));
  return success();
}

/// Result type of a reduction over `axes`.
static LogicalResult inferReductionType(std::optional<Location> location,
                                        RankedTensorType input,
                                        ArrayRef<int64_t> axes, bool keepDims,
                                        SmallVectorImpl<Type> &results) {
  int64_t rank = input.getRank();
  SmallVector<bool> reduced(rank, false);
  for (int64_t axis : axes) {
    FailureOr<int64_t> normalized = normalizeAxis(axis, rank);
    if (failed(normalized))
      return emitOptionalError(location, "reduction axis ", axis,
                               " is out of range for rank ", rank);
    if (reduced[*normalized])
      return emitOptionalError(location, "reduction axis ", axis,
                               " is repeated");
    reduced[*normalized] = true;
  }
  SmallVector<int64_t> shape;
  for (int64_t dim = 0; dim < rank; ++dim) {
    if (!reduced[dim])
      shape.push_back(input.getDimSize(dim));
    else if (keepDims)
      shape.push_back(1);
  }
  results.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

/// Shared check of a normalization op's weight: a vector the size of the
/// normalized (last) dimension.
static LogicalResult verifyNormWeight(Operation *op, RankedTensorType input,
                                      Value weight, StringRef what) {
  if (!weight)
    return success();
  auto type = rankedType(weight);
  int64_t features = input.getRank() ? input.getShape().back() : 1;
  if (type.getRank() != 1 || type.getDimSize(0) != features)
    return op->emitOpError() << what << " must be [" << features
                             << "] to match the last dimension, got "
                             << shapeString(type.getShape());
  return success();
}

//===----------------------------------------------------------------------===//
// ParameterOp / ParamOp
//===----------------------------------------------------------------------===//

LogicalResult ParameterOp::verify() {
  if (!getInit() && !getExternal())
    return emitOpError() << "@" << getSymName()
                         << " needs an initializer or external data";
  return success();
}

LogicalResult ParamOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto parameter =
      symbolTable.lookupNearestSymbolFrom<ParameterOp>(*this, getNameAttr());
  if (!parameter)
    return emitOpError() << "refers to '" << getName()
                         << "', which is not a galvatron.parameter";
  if (parameter.getType() != getType())
    return emitOpError() << "type " << getType() << " does not match @"
                         << getName() << "'s declared type "
                         << parameter.getType();
  return success();
}

//===----------------------------------------------------------------------===//
// StateOp / ReadStateOp / AssignOp
//===----------------------------------------------------------------------===//

LogicalResult StateOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  if (!getParameterAttr())
    return success();
  auto parameter = symbolTable.lookupNearestSymbolFrom<ParameterOp>(
      *this, getParameterAttr());
  if (!parameter)
    return emitOpError() << "@" << getSymName() << " belongs to '"
                         << *getParameter()
                         << "', which is not a galvatron.parameter";
  // ZeRO-1/2 state is a slice of the whole its parameter (or the
  // parameter's shard) stands for.
  if (std::optional<ParameterShard> shard = getParameterShard(*this)) {
    std::optional<ParameterShard> own = getParameterShard(parameter);
    ArrayRef<int64_t> whole =
        own ? ArrayRef<int64_t>(own->fullShape)
            : parameter.getTensorType().getShape();
    if (ArrayRef<int64_t>(shard->fullShape) != whole)
      return emitOpError() << "@" << getSymName() << " is a slice of "
                           << shapeString(shard->fullShape)
                           << " but its parameter @" << *getParameter()
                           << " stands for " << shapeString(whole);
    return success();
  }
  if (parameter.getTensorType().getShape() != getTensorType().getShape())
    return emitOpError() << "@" << getSymName() << " has shape "
                         << shapeString(getTensorType().getShape())
                         << " but its parameter @" << *getParameter()
                         << " has shape "
                         << shapeString(parameter.getTensorType().getShape());
  return success();
}

LogicalResult
ReadStateOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto state =
      symbolTable.lookupNearestSymbolFrom<StateOp>(*this, getNameAttr());
  if (!state)
    return emitOpError() << "refers to '" << getName()
                         << "', which is not a galvatron.state";
  if (state.getType() != getType())
    return emitOpError() << "type " << getType() << " does not match @"
                         << getName() << "'s declared type " << state.getType();
  return success();
}

LogicalResult AssignOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  Operation *target = symbolTable.lookupNearestSymbolFrom(*this, getNameAttr());
  Type declared;
  if (auto parameter = dyn_cast_if_present<ParameterOp>(target))
    declared = parameter.getType();
  else if (auto state = dyn_cast_if_present<StateOp>(target))
    declared = state.getType();
  else
    return emitOpError() << "refers to '" << getName()
                         << "', which is neither a galvatron.parameter nor a "
                            "galvatron.state";
  if (declared != getValue().getType())
    return emitOpError() << "assigns " << getValue().getType() << " to @"
                         << getName() << " of type " << declared;
  return success();
}

//===----------------------------------------------------------------------===//
// LayerOp
//===----------------------------------------------------------------------===//

void LayerOp::build(OpBuilder &builder, OperationState &state,
                    TypeRange resultTypes, StringRef name, LayerKind kind,
                    ValueRange inputs) {
  state.addTypes(resultTypes);
  state.addOperands(inputs);
  state.getOrAddProperties<Properties>().layer_name =
      builder.getStringAttr(name);
  state.getOrAddProperties<Properties>().kind =
      LayerKindAttr::get(builder.getContext(), kind);
  Region *body = state.addRegion();
  Block *block = new Block();
  body->push_back(block);
  for (Value input : inputs)
    block->addArgument(input.getType(), input.getLoc());
}

ParseResult LayerOp::parse(OpAsmParser &parser, OperationState &result) {
  MLIRContext *context = parser.getContext();
  StringRef kindKeyword;
  llvm::SMLoc kindLoc = parser.getCurrentLocation();
  if (parser.parseKeyword(&kindKeyword))
    return failure();
  std::optional<LayerKind> kind = symbolizeLayerKind(kindKeyword);
  if (!kind)
    return parser.emitError(kindLoc)
           << "unknown layer kind '" << kindKeyword
           << "' (expected embedding, encoder, decoder, head or other)";
  if (succeeded(parser.parseOptionalKeyword("backward")))
    result.addAttribute("backward", UnitAttr::get(context));
  std::string name;
  if (parser.parseString(&name))
    return failure();

  // (%arg = %operand : type, ...)
  SmallVector<OpAsmParser::Argument> arguments;
  SmallVector<OpAsmParser::UnresolvedOperand> operands;
  auto parseBinding = [&]() -> ParseResult {
    OpAsmParser::Argument &argument = arguments.emplace_back();
    OpAsmParser::UnresolvedOperand &operand = operands.emplace_back();
    if (parser.parseArgument(argument) || parser.parseEqual() ||
        parser.parseOperand(operand) || parser.parseColonType(argument.type))
      return failure();
    return success();
  };
  if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Paren,
                                     parseBinding))
    return failure();
  for (auto [argument, operand] : llvm::zip(arguments, operands))
    if (parser.resolveOperand(operand, argument.type, result.operands))
      return failure();

  if (parser.parseOptionalArrowTypeList(result.types) ||
      parser.parseOptionalAttrDictWithKeyword(result.attributes))
    return failure();
  result.addAttribute("layer_name", StringAttr::get(context, name));
  result.addAttribute("kind", LayerKindAttr::get(context, *kind));

  Region *body = result.addRegion();
  if (parser.parseRegion(*body, arguments))
    return failure();
  LayerOp::ensureTerminator(*body, parser.getBuilder(), result.location);
  return success();
}

void LayerOp::print(OpAsmPrinter &printer) {
  printer << " " << stringifyLayerKind(getKind()) << " ";
  if (getBackward())
    printer << "backward ";
  printer.printString(getLayerName());
  printer << " (";
  llvm::interleaveComma(llvm::zip(getBodyBlock().getArguments(), getInputs()),
                        printer, [&](auto pair) {
                          auto [argument, input] = pair;
                          printer.printRegionArgument(argument, /*argAttrs=*/{},
                                                      /*omitType=*/true);
                          printer << " = " << input << " : " << input.getType();
                        });
  printer << ")";
  if (!getResults().empty()) {
    printer << " -> ";
    if (getNumResults() == 1)
      printer << getResult(0).getType();
    else
      printer << "(" << getResultTypes() << ")";
  }
  printer.printOptionalAttrDictWithKeyword((*this)->getAttrs(),
                                           {"layer_name", "kind", "backward"});
  printer << " ";
  printer.printRegion(getBody(), /*printEntryBlockArgs=*/false);
}

LogicalResult LayerOp::verify() {
  if ((*this)->getParentOfType<LayerOp>())
    return emitOpError() << "'" << getLayerName()
                         << "' is nested in another layer; layers must be "
                            "direct parts of a function";
  if (getStrategy()) {
    auto module = (*this)->getParentOfType<ModuleOp>();
    if (!module || !getPlan(module))
      return emitOpError() << "'" << getLayerName()
                           << "' has a #galvatron.strategy but the enclosing "
                              "module has no #galvatron.plan";
  }
  return success();
}

LogicalResult LayerOp::verifyRegions() {
  Block &block = getBodyBlock();
  if (block.getNumArguments() != getInputs().size())
    return emitOpError() << "body has " << block.getNumArguments()
                         << " arguments for " << getInputs().size()
                         << " inputs";
  for (auto [index, pair] :
       llvm::enumerate(llvm::zip(block.getArgumentTypes(), getInputs())))
    if (std::get<0>(pair) != std::get<1>(pair).getType())
      return emitOpError() << "body argument #" << index << " has type "
                           << std::get<0>(pair) << " but input is "
                           << std::get<1>(pair).getType();
  auto yield = cast<YieldOp>(block.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError() << "yields (" << yield.getValues().getTypes()
                         << ") but the layer returns (" << getResultTypes()
                         << ")";
  return success();
}

//===----------------------------------------------------------------------===//
// ConstantOp / CastOp
//===----------------------------------------------------------------------===//

OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

LogicalResult ConstantOp::verify() {
  int64_t count = getType().getNumElements();
  if (count > kMaxElements)
    return emitOpError() << "holds " << count << " elements; constants hold at "
                         << "most " << kMaxElements
                         << " (declare weights with galvatron.parameter)";
  return success();
}

OpFoldResult CastOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType())
    return getInput();
  return {};
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

#define GALVATRON_BROADCAST_INFERENCE(OP)                                      \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> location, Adaptor adaptor,        \
      SmallVectorImpl<Type> &results) {                                        \
    Type lhs = adaptor.getLhs().getType(), rhs = adaptor.getRhs().getType();   \
    return inferBroadcastType(location, {lhs, rhs},                            \
                              cast<RankedTensorType>(lhs).getElementType(),    \
                              results);                                        \
  }
GALVATRON_BROADCAST_INFERENCE(AddOp)
GALVATRON_BROADCAST_INFERENCE(SubOp)
GALVATRON_BROADCAST_INFERENCE(MulOp)
GALVATRON_BROADCAST_INFERENCE(DivOp)
GALVATRON_BROADCAST_INFERENCE(PowOp)
GALVATRON_BROADCAST_INFERENCE(MaxOp)
GALVATRON_BROADCAST_INFERENCE(MinOp)
#undef GALVATRON_BROADCAST_INFERENCE

LogicalResult SelectOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> location,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto lhs = cast<RankedTensorType>(adaptor.getLhs().getType());
  auto rhs = cast<RankedTensorType>(adaptor.getRhs().getType());
  if (lhs.getElementType() != rhs.getElementType())
    return emitOptionalError(location,
                             "select operands have different "
                             "element types ",
                             lhs.getElementType(), " and ",
                             rhs.getElementType());
  return inferBroadcastType(location,
                            {adaptor.getCondition().getType(), lhs, rhs},
                            lhs.getElementType(), results);
}

LogicalResult CompareOp::inferReturnTypes(MLIRContext *context,
                                          std::optional<Location> location,
                                          Adaptor adaptor,
                                          SmallVectorImpl<Type> &results) {
  return inferBroadcastType(
      location, {adaptor.getLhs().getType(), adaptor.getRhs().getType()},
      IntegerType::get(context, 1), results);
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

/// The (batch, M, K, N) decomposition of a matmul, with batch dims broadcast.
struct MatmulDims {
  SmallVector<int64_t> batch;
  int64_t m, k, n;
};

static FailureOr<MatmulDims>
getMatmulDims(std::optional<Location> location, RankedTensorType lhs,
              RankedTensorType rhs, bool transposeLhs, bool transposeRhs) {
  if (lhs.getRank() < 2 || rhs.getRank() < 2)
    return emitOptionalError(location,
                             "matmul operands must have rank >= 2, "
                             "got ",
                             lhs.getRank(), " and ", rhs.getRank());
  ArrayRef<int64_t> l = lhs.getShape(), r = rhs.getShape();
  int64_t lr = l.size(), rr = r.size();
  MatmulDims dims;
  dims.m = transposeLhs ? l[lr - 1] : l[lr - 2];
  int64_t lk = transposeLhs ? l[lr - 2] : l[lr - 1];
  int64_t rk = transposeRhs ? r[rr - 1] : r[rr - 2];
  dims.n = transposeRhs ? r[rr - 2] : r[rr - 1];
  if (lk != rk)
    return emitOptionalError(location, "contracting dimensions differ: ", lk,
                             " vs ", rk);
  dims.k = lk;
  if (!OpTrait::util::getBroadcastedShape(l.drop_back(2), r.drop_back(2),
                                          dims.batch))
    return emitOptionalError(location, "batch dimensions ",
                             shapeString(l.drop_back(2)), " and ",
                             shapeString(r.drop_back(2)), " do not broadcast");
  return dims;
}

LogicalResult MatmulOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> location,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto lhs = cast<RankedTensorType>(adaptor.getLhs().getType());
  FailureOr<MatmulDims> dims = getMatmulDims(
      location, lhs, cast<RankedTensorType>(adaptor.getRhs().getType()),
      adaptor.getTransposeLhs(), adaptor.getTransposeRhs());
  if (failed(dims))
    return failure();
  SmallVector<int64_t> shape = dims->batch;
  shape.append({dims->m, dims->n});
  results.push_back(RankedTensorType::get(shape, lhs.getElementType()));
  return success();
}

int64_t MatmulOp::getFlops() {
  FailureOr<MatmulDims> dims =
      getMatmulDims(std::nullopt, getLhs().getType(), getRhs().getType(),
                    getTransposeLhs(), getTransposeRhs());
  int64_t batch = 1;
  for (int64_t size : dims->batch)
    batch *= size;
  return 2 * batch * dims->m * dims->n * dims->k;
}

LogicalResult LinearOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> location,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  auto weight = cast<RankedTensorType>(adaptor.getWeight().getType());
  if (input.getRank() < 1)
    return emitOptionalError(location, "linear input must have rank >= 1");
  if (weight.getRank() != 2)
    return emitOptionalError(location, "linear weight must have rank 2, got ",
                             weight.getRank());
  bool transposed = adaptor.getTransposeWeight();
  int64_t in = weight.getDimSize(transposed ? 1 : 0);
  int64_t out = weight.getDimSize(transposed ? 0 : 1);
  if (input.getShape().back() != in)
    return emitOptionalError(location, "input features ",
                             input.getShape().back(),
                             " do not match the weight's ", in);
  if (Value bias = adaptor.getBias()) {
    auto biasType = cast<RankedTensorType>(bias.getType());
    if (biasType.getRank() != 1 || biasType.getDimSize(0) != out)
      return emitOptionalError(location, "bias must be [", out, "], got ",
                               shapeString(biasType.getShape()));
  }
  SmallVector<int64_t> shape(input.getShape());
  shape.back() = out;
  results.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

int64_t LinearOp::getFlops() {
  int64_t rows = getInput().getType().getNumElements() / getInFeatures();
  return 2 * rows * getInFeatures() * getOutFeatures();
}

LogicalResult EmbeddingOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> location,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  auto table = cast<RankedTensorType>(adaptor.getTable().getType());
  auto indices = cast<RankedTensorType>(adaptor.getIndices().getType());
  if (table.getRank() != 2)
    return emitOptionalError(location,
                             "embedding table must have rank 2, "
                             "got ",
                             table.getRank());
  SmallVector<int64_t> shape(indices.getShape());
  shape.push_back(table.getDimSize(1));
  results.push_back(RankedTensorType::get(shape, table.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Normalization and softmax
//===----------------------------------------------------------------------===//

LogicalResult LayerNormOp::verify() {
  auto input = getInput().getType();
  if (input.getRank() < 1)
    return emitOpError() << "input must have rank >= 1";
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError() << "epsilon must be positive";
  if (failed(verifyNormWeight(*this, input, getWeight(), "weight")))
    return failure();
  return verifyNormWeight(*this, input, getBias(), "bias");
}

LogicalResult RMSNormOp::verify() {
  auto input = getInput().getType();
  if (input.getRank() < 1)
    return emitOpError() << "input must have rank >= 1";
  if (getEpsilon().convertToDouble() <= 0.0)
    return emitOpError() << "epsilon must be positive";
  return verifyNormWeight(*this, input, getWeight(), "weight");
}

LogicalResult SoftmaxOp::verify() {
  int64_t axis = getAxis();
  if (failed(normalizeAxis(axis, getType().getRank())))
    return emitOpError() << "axis " << axis << " is out of range for rank "
                         << getType().getRank();
  return success();
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

LogicalResult ReshapeOp::verify() {
  int64_t in = getInput().getType().getNumElements();
  int64_t out = getType().getNumElements();
  if (in != out)
    return emitOpError() << "cannot reshape " << in << " elements into "
                         << shapeString(getType().getShape()) << " (" << out
                         << " elements)";
  return success();
}

OpFoldResult ReshapeOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  if (auto elements =
          dyn_cast_if_present<DenseElementsAttr>(adaptor.getInput()))
    return elements.reshape(getType());
  // reshape(reshape(x)) folds into one reshape of x.
  if (auto producer = getInput().getDefiningOp<ReshapeOp>()) {
    getInputMutable().assign(producer.getInput());
    if (getInput().getType() == getType())
      return getInput();
    return getResult();
  }
  return {};
}

LogicalResult TransposeOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> location,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> perm = adaptor.getPerm();
  if (static_cast<int64_t>(perm.size()) != input.getRank())
    return emitOptionalError(location, "permutation has ", perm.size(),
                             " entries for rank ", input.getRank());
  SmallVector<bool> seen(perm.size(), false);
  SmallVector<int64_t> shape;
  for (int64_t dim : perm) {
    if (dim < 0 || dim >= input.getRank() || seen[dim])
      return emitOptionalError(location, "invalid permutation ",
                               shapeString(perm));
    seen[dim] = true;
    shape.push_back(input.getDimSize(dim));
  }
  results.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

OpFoldResult TransposeOp::fold(FoldAdaptor) {
  auto isIdentity = [](ArrayRef<int64_t> perm) {
    for (auto [index, dim] : llvm::enumerate(perm))
      if (static_cast<int64_t>(index) != dim)
        return false;
    return true;
  };
  if (isIdentity(getPerm()))
    return getInput();
  // transpose(transpose(x, inner), outer) is transpose(x, inner ∘ outer).
  if (auto producer = getInput().getDefiningOp<TransposeOp>()) {
    ArrayRef<int64_t> inner = producer.getPerm();
    SmallVector<int64_t> composed;
    for (int64_t dim : getPerm())
      composed.push_back(inner[dim]);
    if (isIdentity(composed))
      return producer.getInput();
    getInputMutable().assign(producer.getInput());
    setPerm(composed);
    return getResult();
  }
  return {};
}

LogicalResult SliceOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> location,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> starts = adaptor.getStarts(), limits = adaptor.getLimits(),
                    strides = adaptor.getStrides();
  int64_t rank = input.getRank();
  if (failed(verifyPerDimension(location, rank, {starts, limits, strides},
                                "slice needs a start, limit and stride")))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t dim = 0; dim < rank; ++dim) {
    int64_t size = input.getDimSize(dim);
    if (strides[dim] < 1)
      return emitOptionalError(location,
                               "slice stride must be positive in "
                               "dimension ",
                               dim);
    if (starts[dim] < 0 || starts[dim] > limits[dim] || limits[dim] > size)
      return emitOptionalError(location, "slice [", starts[dim], ", ",
                               limits[dim],
                               ") is out of bounds for "
                               "dimension ",
                               dim, " of size ", size);
    shape.push_back((limits[dim] - starts[dim] + strides[dim] - 1) /
                    strides[dim]);
  }
  results.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

OpFoldResult SliceOp::fold(FoldAdaptor) {
  if (getInput().getType() == getType() &&
      llvm::all_of(getStrides(), [](int64_t s) { return s == 1; }))
    return getInput();
  return {};
}

LogicalResult ConcatOp::inferReturnTypes(MLIRContext *,
                                         std::optional<Location> location,
                                         Adaptor adaptor,
                                         SmallVectorImpl<Type> &results) {
  if (adaptor.getInputs().empty())
    return emitOptionalError(location, "concat needs at least one input");
  auto first = cast<RankedTensorType>(adaptor.getInputs()[0].getType());
  int64_t requestedAxis = adaptor.getAxis();
  FailureOr<int64_t> axis = normalizeAxis(requestedAxis, first.getRank());
  if (failed(axis))
    return emitOptionalError(location, "concat axis ", requestedAxis,
                             " is out of range for rank ", first.getRank());
  SmallVector<int64_t> shape(first.getShape());
  shape[*axis] = 0;
  for (Value input : adaptor.getInputs()) {
    auto type = cast<RankedTensorType>(input.getType());
    if (type.getRank() != first.getRank())
      return emitOptionalError(location, "concat inputs differ in rank");
    for (int64_t dim = 0; dim < type.getRank(); ++dim)
      if (dim != *axis && type.getDimSize(dim) != first.getDimSize(dim))
        return emitOptionalError(location,
                                 "concat inputs differ in "
                                 "dimension ",
                                 dim, " (", first.getDimSize(dim), " vs ",
                                 type.getDimSize(dim), ")");
    shape[*axis] += type.getDimSize(*axis);
  }
  results.push_back(RankedTensorType::get(shape, first.getElementType()));
  return success();
}

OpFoldResult ConcatOp::fold(FoldAdaptor) {
  if (getInputs().size() == 1)
    return getInputs()[0];
  return {};
}

LogicalResult SplitOp::inferReturnTypes(MLIRContext *,
                                        std::optional<Location> location,
                                        Adaptor adaptor,
                                        SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  int64_t requestedAxis = adaptor.getAxis();
  FailureOr<int64_t> axis = normalizeAxis(requestedAxis, input.getRank());
  if (failed(axis))
    return emitOptionalError(location, "split axis ", requestedAxis,
                             " is out of range for rank ", input.getRank());
  int64_t total = 0;
  for (int64_t size : adaptor.getSizes()) {
    if (size < 1)
      return emitOptionalError(location, "split sizes must be positive");
    total += size;
    SmallVector<int64_t> shape(input.getShape());
    shape[*axis] = size;
    results.push_back(RankedTensorType::get(shape, input.getElementType()));
  }
  if (total != input.getDimSize(*axis))
    return emitOptionalError(location, "split sizes add up to ", total,
                             " but dimension ", *axis, " has size ",
                             input.getDimSize(*axis));
  return success();
}

LogicalResult BroadcastOp::verify() {
  ArrayRef<int64_t> in = getInput().getType().getShape();
  ArrayRef<int64_t> out = getType().getShape();
  SmallVector<int64_t> shape;
  if (in.size() > out.size() ||
      !OpTrait::util::getBroadcastedShape(in, out, shape) ||
      ArrayRef<int64_t>(shape) != out)
    return emitOpError() << "cannot broadcast " << shapeString(in) << " to "
                         << shapeString(out);
  return success();
}

OpFoldResult BroadcastOp::fold(FoldAdaptor adaptor) {
  if (getInput().getType() == getType())
    return getInput();
  // Folding a splat into a constant is only allowed while the constant stays
  // small: broadcast zeros of a weight's size stay a broadcast.
  if (auto splat = dyn_cast_if_present<SplatElementsAttr>(adaptor.getInput()))
    if (getType().getNumElements() <= ConstantOp::kMaxElements)
      return splat.resizeSplat(getType());
  return {};
}

LogicalResult PadOp::inferReturnTypes(MLIRContext *,
                                      std::optional<Location> location,
                                      Adaptor adaptor,
                                      SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  ArrayRef<int64_t> low = adaptor.getLow(), high = adaptor.getHigh(),
                    interior = adaptor.getInterior();
  int64_t rank = input.getRank();
  if (failed(verifyPerDimension(location, rank, {low, high, interior},
                                "pad needs low, high and interior padding")))
    return failure();
  SmallVector<int64_t> shape;
  for (int64_t dim = 0; dim < rank; ++dim) {
    if (low[dim] < 0 || high[dim] < 0 || interior[dim] < 0)
      return emitOptionalError(location,
                               "padding must be non-negative in "
                               "dimension ",
                               dim);
    int64_t size = input.getDimSize(dim);
    shape.push_back(low[dim] + size +
                    std::max<int64_t>(size - 1, 0) * interior[dim] + high[dim]);
  }
  results.push_back(RankedTensorType::get(shape, input.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

#define GALVATRON_REDUCTION_INFERENCE(OP)                                      \
  LogicalResult OP::inferReturnTypes(                                          \
      MLIRContext *, std::optional<Location> location, Adaptor adaptor,        \
      SmallVectorImpl<Type> &results) {                                        \
    return inferReductionType(                                                 \
        location, cast<RankedTensorType>(adaptor.getInput().getType()),        \
        adaptor.getAxes(), adaptor.getKeepDims(), results);                    \
  }
GALVATRON_REDUCTION_INFERENCE(ReduceSumOp)
GALVATRON_REDUCTION_INFERENCE(ReduceMeanOp)
GALVATRON_REDUCTION_INFERENCE(ReduceMaxOp)
#undef GALVATRON_REDUCTION_INFERENCE

//===----------------------------------------------------------------------===//
// Transformer ops
//===----------------------------------------------------------------------===//

LogicalResult RotaryOp::verify() {
  auto type = getInput().getType();
  if (type.getRank() < 2)
    return emitOpError() << "input must have rank >= 2";
  int64_t requestedAxis = getSeqAxis();
  FailureOr<int64_t> seqAxis = normalizeAxis(requestedAxis, type.getRank());
  if (failed(seqAxis) || *seqAxis == type.getRank() - 1)
    return emitOpError() << "sequence axis " << requestedAxis
                         << " must name a dimension other than the last";
  int64_t features = type.getShape().back();
  int64_t rotary = getEffectiveRotaryDim();
  if (rotary < 2 || rotary % 2 != 0 || rotary > features)
    return emitOpError() << "rotary dimension " << rotary
                         << " must be even, at least 2 and at most the "
                            "feature size "
                         << features;
  if (getTheta().convertToDouble() <= 0.0)
    return emitOpError() << "theta must be positive";
  return success();
}

/// The result type of an attention over `query`, `key`, `value` and the
/// optional `mask`, shared by the op and its gradient.
static FailureOr<RankedTensorType>
inferAttentionType(std::optional<Location> location, Value query, Value key,
                   Value value, Value mask, bool causal) {
  auto q = cast<RankedTensorType>(query.getType());
  auto k = cast<RankedTensorType>(key.getType());
  auto v = cast<RankedTensorType>(value.getType());
  if (q.getRank() != 4 || k.getRank() != 4 || v.getRank() != 4)
    return emitOptionalError(location, "query, key and value must be "
                                       "[batch, heads, seq, head_dim]");
  if (q.getElementType() != k.getElementType() ||
      q.getElementType() != v.getElementType())
    return emitOptionalError(location, "query, key and value must share an "
                                       "element type");
  int64_t batch = q.getDimSize(0), heads = q.getDimSize(1),
          seq = q.getDimSize(2), headDim = q.getDimSize(3);
  if (k.getDimSize(0) != batch || v.getDimSize(0) != batch)
    return emitOptionalError(location, "batch sizes differ");
  int64_t kvHeads = k.getDimSize(1);
  if (v.getDimSize(1) != kvHeads)
    return emitOptionalError(location, "key has ", kvHeads,
                             " heads but value has ", v.getDimSize(1));
  if (heads % kvHeads != 0)
    return emitOptionalError(location, heads,
                             " query heads are not a "
                             "multiple of ",
                             kvHeads, " key/value heads");
  if (k.getDimSize(3) != headDim)
    return emitOptionalError(location, "query head size ", headDim,
                             " differs from key head size ", k.getDimSize(3));
  int64_t keyLen = k.getDimSize(2);
  if (v.getDimSize(2) != keyLen)
    return emitOptionalError(location, "key length ", keyLen,
                             " differs from value length ", v.getDimSize(2));
  if (causal && keyLen != seq)
    return emitOptionalError(location,
                             "causal attention needs equal query "
                             "and key lengths, got ",
                             seq, " and ", keyLen);
  if (mask) {
    auto maskType = cast<RankedTensorType>(mask.getType());
    SmallVector<int64_t> scores = {batch, heads, seq, keyLen}, shape;
    if (maskType.getRank() > 4 ||
        !OpTrait::util::getBroadcastedShape(maskType.getShape(), scores,
                                            shape) ||
        ArrayRef<int64_t>(shape) != ArrayRef<int64_t>(scores))
      return emitOptionalError(
          location, "mask ", shapeString(maskType.getShape()),
          " does not broadcast to the scores ", shapeString(scores));
  }
  return RankedTensorType::get({batch, heads, seq, v.getDimSize(3)},
                               q.getElementType());
}

LogicalResult AttentionOp::inferReturnTypes(MLIRContext *,
                                            std::optional<Location> location,
                                            Adaptor adaptor,
                                            SmallVectorImpl<Type> &results) {
  FailureOr<RankedTensorType> type = inferAttentionType(
      location, adaptor.getQuery(), adaptor.getKey(), adaptor.getValue(),
      adaptor.getMask(), adaptor.getCausal());
  if (failed(type))
    return failure();
  results.push_back(*type);
  return success();
}

int64_t AttentionOp::getFlops() {
  ArrayRef<int64_t> q = getQuery().getType().getShape();
  ArrayRef<int64_t> v = getValue().getType().getShape();
  int64_t scores = q[0] * q[1] * q[2] * v[2];
  return 2 * scores * q[3] + 2 * scores * v[3];
}

LogicalResult TrilMaskOp::verify() {
  if (getType().getRank() < 2)
    return emitOpError() << "result must have rank >= 2 ([..., rows, cols]), "
                            "got rank "
                         << getType().getRank();
  return success();
}

/// A dropout probability in [0, 1) and, after partitioning, a `shard`
/// whose parts are the op's masked tensor.
static LogicalResult verifyDropoutMask(Operation *op, StringRef name,
                                       double probability) {
  if (!(probability >= 0.0 && probability < 1.0))
    return op->emitOpError() << name << " must lie in [0, 1), got "
                             << probability;
  auto masked = cast<DropoutMaskOpInterface>(op);
  DictionaryAttr shardAttr = masked.getMaskShard();
  if (!shardAttr)
    return success();
  std::string error;
  FailureOr<ParameterShard> shard = ParameterShard::fromAttr(shardAttr, error);
  if (failed(shard))
    return op->emitOpError() << "shard " << error;
  SmallVector<int64_t> part = masked.getMaskedShape();
  if (ArrayRef<int64_t>(shard->partShape()) != ArrayRef<int64_t>(part))
    return op->emitOpError() << "shard parts are "
                             << shapeString(shard->partShape()) << ", not "
                             << shapeString(part);
  return success();
}

LogicalResult DropoutOp::verify() {
  if (getMask().getType().getShape() != getInput().getType().getShape())
    return emitOpError() << "mask " << getMask().getType()
                         << " must have the input's shape";
  return verifyDropoutMask(*this, "probability",
                           getProbability().convertToDouble());
}

bool DropoutOp::dropsElements() {
  return getProbability().convertToDouble() > 0.0;
}

// Masked shapes read the result where they can: the partitioner asks
// before it retypes the op, when operands may already be parts.
SmallVector<int64_t> DropoutOp::getMaskedShape() {
  return llvm::to_vector(getResult().getType().getShape());
}

/// The [B, Hq, S, T] probabilities of attention whose query (or output) is
/// `query` and key `key`.
static SmallVector<int64_t> attentionScores(Value query, Value key) {
  ArrayRef<int64_t> q = cast<RankedTensorType>(query.getType()).getShape();
  ArrayRef<int64_t> k = cast<RankedTensorType>(key.getType()).getShape();
  return {q[0], q[1], q[2], k[2]};
}

LogicalResult AttentionOp::verify() {
  return verifyDropoutMask(*this, "dropout", getDropout().convertToDouble());
}

bool AttentionOp::dropsElements() {
  return getDropout().convertToDouble() > 0.0;
}

SmallVector<int64_t> AttentionOp::getMaskedShape() {
  return attentionScores(getResult(), getKey());
}

bool AttentionGradOp::dropsElements() {
  return getDropout().convertToDouble() > 0.0;
}

SmallVector<int64_t> AttentionGradOp::getMaskedShape() {
  return attentionScores(getQuery(), getKey());
}

LogicalResult CrossEntropyOp::inferReturnTypes(MLIRContext *context,
                                               std::optional<Location> location,
                                               Adaptor adaptor,
                                               SmallVectorImpl<Type> &results) {
  auto logits = cast<RankedTensorType>(adaptor.getLogits().getType());
  auto labels = cast<RankedTensorType>(adaptor.getLabels().getType());
  if (logits.getRank() < 1 ||
      logits.getShape().drop_back() != labels.getShape())
    return emitOptionalError(location, "labels ",
                             shapeString(labels.getShape()),
                             " must match the logits' leading shape ",
                             shapeString(logits.getShape().drop_back()));
  results.push_back(RankedTensorType::get({}, Float32Type::get(context)));
  return success();
}

LogicalResult RelativePositionBucketOp::verify() {
  if (getType().getRank() != 2)
    return emitOpError() << "result must be [query_len, key_len]";
  int64_t buckets = getNumBuckets(), maxDistance = getMaxDistance();
  if (buckets < 2 || (getBidirectional() && buckets < 4))
    return emitOpError() << "needs at least " << (getBidirectional() ? 4 : 2)
                         << " buckets, got " << buckets;
  if (maxDistance < 1)
    return emitOpError() << "max_distance must be positive";
  return success();
}

LogicalResult ExtractPatchesOp::inferReturnTypes(
    MLIRContext *, std::optional<Location> location, Adaptor adaptor,
    SmallVectorImpl<Type> &results) {
  auto input = cast<RankedTensorType>(adaptor.getInput().getType());
  int64_t patch = static_cast<int64_t>(adaptor.getPatchSize());
  if (input.getRank() != 4)
    return emitOptionalError(location, "images must be [batch, channels, "
                                       "height, width]");
  if (patch < 1 || input.getDimSize(2) % patch != 0 ||
      input.getDimSize(3) % patch != 0)
    return emitOptionalError(location, "patch size ", patch,
                             " does not tile a ", input.getDimSize(2), "x",
                             input.getDimSize(3), " image");
  int64_t patches =
      (input.getDimSize(2) / patch) * (input.getDimSize(3) / patch);
  results.push_back(RankedTensorType::get(
      {input.getDimSize(0), patches, input.getDimSize(1) * patch * patch},
      input.getElementType()));
  return success();
}

//===----------------------------------------------------------------------===//
// Fused gradients
//===----------------------------------------------------------------------===//

/// Checks that `actual` is `expected`, naming `what` otherwise.
static LogicalResult verifyTypeIs(Operation *op, StringRef what, Type actual,
                                  Type expected) {
  if (actual != expected)
    return op->emitOpError()
           << what << " must be " << expected << ", got " << actual;
  return success();
}

/// Shared checks of the normalization gradients: the upstream gradient and
/// the input gradient match the input, the weight is [features], and every
/// parameter gradient matches the weight.
static LogicalResult verifyNormGrad(Operation *op, Value grad, Value input,
                                    Value weight, double epsilon,
                                    ValueRange inputGrads,
                                    ValueRange weightGrads) {
  auto inputType = rankedType(input);
  if (inputType.getRank() < 1)
    return op->emitOpError() << "input must have rank >= 1";
  if (epsilon <= 0.0)
    return op->emitOpError() << "epsilon must be positive";
  if (failed(verifyNormWeight(op, inputType, weight, "weight")) ||
      failed(verifyTypeIs(op, "the gradient", grad.getType(), inputType)))
    return failure();
  for (Value result : inputGrads)
    if (failed(verifyTypeIs(op, "the input gradient", result.getType(),
                            inputType)))
      return failure();
  for (Value result : weightGrads)
    if (failed(verifyTypeIs(op, "a parameter gradient", result.getType(),
                            weight.getType())))
      return failure();
  return success();
}

LogicalResult LayerNormGradOp::verify() {
  return verifyNormGrad(*this, getGrad(), getInput(), getWeight(),
                        getEpsilon().convertToDouble(), getInputGrad(),
                        {getWeightGrad(), getBiasGrad()});
}

LogicalResult RMSNormGradOp::verify() {
  return verifyNormGrad(*this, getGrad(), getInput(), getWeight(),
                        getEpsilon().convertToDouble(), getInputGrad(),
                        getWeightGrad());
}

LogicalResult AttentionGradOp::verify() {
  FailureOr<RankedTensorType> outputType = inferAttentionType(
      getLoc(), getQuery(), getKey(), getValue(), getMask(), getCausal());
  if (failed(outputType) ||
      failed(verifyTypeIs(*this, "the output gradient", getGrad().getType(),
                          *outputType)) ||
      failed(verifyTypeIs(*this, "the query gradient", getQueryGrad().getType(),
                          getQuery().getType())) ||
      failed(verifyTypeIs(*this, "the key gradient", getKeyGrad().getType(),
                          getKey().getType())) ||
      failed(verifyTypeIs(*this, "the value gradient", getValueGrad().getType(),
                          getValue().getType())))
    return failure();
  if (Value maskGrad = getMaskGrad()) {
    if (!getMask())
      return emitOpError() << "has a mask gradient but no mask";
    if (failed(verifyTypeIs(*this, "the mask gradient", maskGrad.getType(),
                            getMask().getType())))
      return failure();
  }
  return verifyDropoutMask(*this, "dropout", getDropout().convertToDouble());
}

LogicalResult EmbeddingGradOp::verify() {
  ArrayRef<int64_t> indices = getIndices().getType().getShape();
  ArrayRef<int64_t> grad = getGrad().getType().getShape();
  RankedTensorType table = getType();
  if (table.getRank() != 2)
    return emitOpError() << "the table gradient must have rank 2, got "
                         << table.getRank();
  if (failed(verifyVocabBlocks(*this, getVocabGroupsAttr(), getVocabSizeAttr(),
                               table.getDimSize(0))))
    return failure();
  if (table.getElementType() != getGrad().getType().getElementType())
    return emitOpError() << "the table gradient's element type "
                         << table.getElementType()
                         << " differs from the gradient's "
                         << getGrad().getType().getElementType();
  if (grad.drop_back() != indices || grad.empty() ||
      grad.back() != table.getDimSize(1))
    return emitOpError() << "gradient " << shapeString(grad)
                         << " must be the indices' shape "
                         << shapeString(indices) << " followed by ["
                         << table.getDimSize(1) << "]";
  return success();
}

LogicalResult CrossEntropyGradOp::verify() {
  auto logits = getLogits().getType();
  ArrayRef<int64_t> labels = getLabels().getType().getShape();
  if (logits.getRank() < 1 || logits.getShape().drop_back() != labels)
    return emitOpError() << "labels " << shapeString(labels)
                         << " must match the logits' leading shape "
                         << shapeString(logits.getShape().drop_back());
  return verifyTypeIs(*this, "the logits gradient", getType(), logits);
}

//===----------------------------------------------------------------------===//
// Optimizer
//===----------------------------------------------------------------------===//

LogicalResult LRScheduleOp::verify() {
  double lr = getLr().convertToDouble(), minLr = getMinLr().convertToDouble();
  if (lr < 0.0 || minLr < 0.0)
    return emitOpError() << "learning rates must be non-negative";
  if (static_cast<int64_t>(getWarmupSteps()) < 0 ||
      static_cast<int64_t>(getDecaySteps()) < 0)
    return emitOpError() << "step counts must be non-negative";
  return success();
}

/// Hyperparameters shared by the optimizer updates: each at least 0 and, for
/// decay rates, below 1.
static LogicalResult verifyHyperparameter(Operation *op, StringRef name,
                                          double value, bool belowOne) {
  if (value >= 0.0 && (!belowOne || value < 1.0))
    return success();
  char text[32];
  std::snprintf(text, sizeof(text), "%g", value);
  return op->emitOpError() << name << " must lie in "
                           << (belowOne ? "[0, 1)" : "[0, inf)") << ", got "
                           << text;
}

/// The gradient of a parameter has the parameter's shape.
static LogicalResult verifyUpdateGrad(Operation *op, Value param, Value grad) {
  if (rankedType(param).getShape() != rankedType(grad).getShape())
    return op->emitOpError()
           << "gradient " << shapeString(rankedType(grad).getShape())
           << " does not match the parameter "
           << shapeString(rankedType(param).getShape());
  return success();
}

LogicalResult AdamWUpdateOp::verify() {
  return failure(
      failed(verifyUpdateGrad(*this, getParam(), getGrad())) ||
      failed(verifyHyperparameter(*this, "beta1", getBeta1().convertToDouble(),
                                  true)) ||
      failed(verifyHyperparameter(*this, "beta2", getBeta2().convertToDouble(),
                                  true)) ||
      failed(verifyHyperparameter(*this, "epsilon",
                                  getEpsilon().convertToDouble(), false)) ||
      failed(verifyHyperparameter(*this, "weight_decay",
                                  getWeightDecay().convertToDouble(), false)));
}

LogicalResult SGDUpdateOp::verify() {
  return failure(
      failed(verifyUpdateGrad(*this, getParam(), getGrad())) ||
      failed(verifyHyperparameter(*this, "momentum",
                                  getMomentum().convertToDouble(), true)) ||
      failed(verifyHyperparameter(*this, "weight_decay",
                                  getWeightDecay().convertToDouble(), false)));
}

//===----------------------------------------------------------------------===//
// ScheduleOp
//===----------------------------------------------------------------------===//

/// `[2 x [forward 0], 1 x [optimizer]]`.
static ParseResult parseSchedulePhases(OpAsmParser &parser, ArrayAttr &phases) {
  MLIRContext *context = parser.getContext();
  SmallVector<Attribute> list, steps;
  auto parseStep = [&]() -> ParseResult {
    StringRef keyword;
    llvm::SMLoc loc = parser.getCurrentLocation();
    if (parser.parseKeyword(&keyword))
      return failure();
    std::optional<ScheduleStepKind> kind = symbolizeScheduleStepKind(keyword);
    if (!kind)
      return parser.emitError(loc)
             << "unknown schedule step '" << keyword
             << "' (expected forward, backward or optimizer)";
    int64_t microBatch = -1;
    if (*kind != ScheduleStepKind::optimizer && parser.parseInteger(microBatch))
      return failure();
    steps.push_back(ScheduleStepAttr::get(context, *kind, microBatch));
    return success();
  };
  auto parsePhase = [&]() -> ParseResult {
    int64_t iterations = 0;
    steps.clear();
    if (parser.parseInteger(iterations) || parser.parseKeyword("x") ||
        parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square,
                                       parseStep))
      return failure();
    list.push_back(SchedulePhaseAttr::get(context, iterations,
                                          ArrayAttr::get(context, steps)));
    return success();
  };
  if (parser.parseCommaSeparatedList(OpAsmParser::Delimiter::Square,
                                     parsePhase))
    return failure();
  phases = ArrayAttr::get(context, list);
  return success();
}

static void printSchedulePhases(OpAsmPrinter &printer, Operation *,
                                ArrayAttr phases) {
  printer << "[";
  llvm::interleaveComma(
      phases.getAsRange<SchedulePhaseAttr>(), printer,
      [&](SchedulePhaseAttr phase) {
        printer << phase.getIterations() << " x [";
        llvm::interleaveComma(
            phase.getSteps().getAsRange<ScheduleStepAttr>(), printer,
            [&](ScheduleStepAttr step) {
              printer << stringifyScheduleStepKind(step.getKind());
              if (step.getKind() != ScheduleStepKind::optimizer)
                printer << " " << step.getMicroBatch();
            });
        printer << "]";
      });
  printer << "]";
}

SmallVector<std::pair<ScheduleStepKind, int64_t>> ScheduleOp::expand() {
  SmallVector<std::pair<ScheduleStepKind, int64_t>> calls;
  for (auto phase : getPhases().getAsRange<SchedulePhaseAttr>())
    for (int64_t i = 0; i < phase.getIterations(); ++i)
      for (auto step : phase.getSteps().getAsRange<ScheduleStepAttr>())
        calls.emplace_back(step.getKind(),
                           step.getKind() == ScheduleStepKind::optimizer
                               ? -1
                               : step.getMicroBatch() + i);
  return calls;
}

LogicalResult ScheduleOp::verify() {
  int64_t microBatches = getMicroBatches();
  if (microBatches < 1)
    return emitOpError() << "needs at least one micro-batch, got "
                         << microBatches;
  // Bound the expansion before making it: each micro-batch has two calls.
  int64_t calls = 0;
  for (auto phase : getPhases().getAsRange<SchedulePhaseAttr>()) {
    int64_t steps = int64_t(phase.getSteps().size());
    if (phase.getIterations() < 1 || steps == 0 ||
        !llvm::all_of(phase.getSteps(), llvm::IsaPred<ScheduleStepAttr>))
      return emitOpError() << "needs phases of a positive iteration count "
                              "and at least one call";
    if (phase.getIterations() > 2 * microBatches + 1 ||
        (calls += phase.getIterations() * steps) > 2 * microBatches + 1)
      return emitOpError() << "makes more than the " << 2 * microBatches + 1
                           << " calls of " << microBatches
                           << " micro-batches";
  }
  SmallVector<int> forwardSeen(microBatches, 0), backwardSeen(microBatches, 0);
  int optimizerSteps = 0;
  for (auto [index, call] : llvm::enumerate(expand())) {
    auto [kind, micro] = call;
    if (optimizerSteps)
      return emitOpError() << "call " << index
                           << " comes after the optimizer step, which must be "
                              "last";
    if (kind == ScheduleStepKind::optimizer) {
      ++optimizerSteps;
      continue;
    }
    if (micro < 0 || micro >= microBatches)
      return emitOpError() << "call " << index << " names micro-batch " << micro
                           << " outside [0, " << microBatches << ")";
    bool isForward = kind == ScheduleStepKind::forward;
    if ((isForward ? forwardSeen : backwardSeen)[micro]++)
      return emitOpError() << "micro-batch " << micro << " has two "
                           << stringifyScheduleStepKind(kind) << " calls";
    if (!isForward && !forwardSeen[micro])
      return emitOpError() << "the backward call of micro-batch " << micro
                           << " comes before its forward call";
  }
  for (int64_t micro = 0; micro < microBatches; ++micro)
    if (!backwardSeen[micro])
      return emitOpError() << "micro-batch " << micro
                           << " has no forward and backward call";
  if (optimizerSteps != 1)
    return emitOpError() << "needs exactly one optimizer step, has "
                         << optimizerSteps;
  return success();
}

LogicalResult ScheduleOp::verifySymbolUses(SymbolTableCollection &symbolTable) {
  auto lookup = [&](FlatSymbolRefAttr name,
                    StringRef role) -> FailureOr<func::FuncOp> {
    auto function =
        symbolTable.lookupNearestSymbolFrom<func::FuncOp>(*this, name);
    if (!function)
      return emitOpError() << "the " << role << " function '" << name.getValue()
                           << "' does not exist";
    return function;
  };
  FailureOr<func::FuncOp> forward = lookup(getForwardAttr(), "forward");
  FailureOr<func::FuncOp> backward = lookup(getBackwardAttr(), "backward");
  FailureOr<func::FuncOp> optimizer = lookup(getOptimizerAttr(), "optimizer");
  if (failed(forward) || failed(backward) || failed(optimizer))
    return failure();
  if (forward->getResultTypes() != backward->getArgumentTypes())
    return emitOpError() << "the backward function takes ("
                         << backward->getArgumentTypes()
                         << ") but the forward function returns ("
                         << forward->getResultTypes() << ")";
  if (optimizer->getNumArguments() != 0)
    return emitOpError() << "the optimizer function must take no arguments";
  return success();
}

//===----------------------------------------------------------------------===//
// SendOp / RecvOp
//===----------------------------------------------------------------------===//

/// MPI guarantees tags up to 32767 on every implementation.
constexpr int64_t kMaxMessageTag = 32767;

/// The peer is another stage of the plan; the tag fits every MPI.
static LogicalResult verifyMessage(Operation *op, int64_t peer, int64_t tag) {
  if (peer < 0)
    return op->emitOpError() << "peer stage must be non-negative, got " << peer;
  if (tag < 0 || tag > kMaxMessageTag)
    return op->emitOpError() << "tag must lie in [0, " << kMaxMessageTag
                             << "], got " << tag;
  auto layer = op->getParentOfType<LayerOp>();
  StrategyAttr strategy = layer ? layer.getStrategyAttr() : StrategyAttr();
  if (!strategy)
    return success();
  if (peer == strategy.getStage())
    return op->emitOpError() << "peer stage " << peer
                             << " is the stage of its own layer '"
                             << layer.getLayerName() << "'";
  auto module = op->getParentOfType<ModuleOp>();
  if (PlanAttr plan = module ? getPlan(module) : PlanAttr();
      plan && peer >= plan.getPp())
    return op->emitOpError() << "peer stage " << peer
                             << " is outside the plan's " << plan.getPp()
                             << " pipeline stages";
  return success();
}

LogicalResult SendOp::verify() {
  return verifyMessage(*this, getPeer(), getTag());
}

LogicalResult RecvOp::verify() {
  if (getDifferentiable() && !isa<FloatType>(getType().getElementType()))
    return emitOpError() << "is differentiable but receives "
                         << getType() << ", not a float tensor";
  return verifyMessage(*this, getPeer(), getTag());
}

//===----------------------------------------------------------------------===//
// Runtime kernel attributes the ops derive (kernels never re-derive defaults)
//===----------------------------------------------------------------------===//

Attribute RotaryOp::getKernelAttribute(StringRef name) {
  if (name == "rotary_dim")
    return Builder(getContext()).getI64IntegerAttr(getEffectiveRotaryDim());
  return (*this)->getInherentAttr(name).value_or(Attribute());
}

Attribute AttentionOp::getKernelAttribute(StringRef name) {
  if (name == "scale")
    return Builder(getContext()).getF64FloatAttr(getEffectiveScale());
  return (*this)->getInherentAttr(name).value_or(Attribute());
}

Attribute AttentionGradOp::getKernelAttribute(StringRef name) {
  if (name != "scale")
    return (*this)->getInherentAttr(name).value_or(Attribute());
  double scale =
      getScale() ? getScale()->convertToDouble()
                 : 1.0 / std::sqrt(double(
                             getQuery().getType().getShape().back()));
  return Builder(getContext()).getF64FloatAttr(scale);
}

#define GET_OP_CLASSES
#include "galvatron/Dialect/Galvatron/IR/GalvatronOps.cpp.inc"
