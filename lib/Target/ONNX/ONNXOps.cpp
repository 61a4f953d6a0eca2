//===- ONNXOps.cpp - Converters from ONNX ops to galvatron ops ------------===//
//
// One converter per ONNX op type (semantics of opsets 13 to 17). Each first
// folds on the host when every input is known at import, then emits galvatron
// ops for run-time inputs. Inputs that define shapes (Reshape's shape, Slice's
// bounds, ...) must be known at import: the dialect has static shapes.
//
//===----------------------------------------------------------------------===//

#include "Importer.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::onnx_import;
using llvm::SmallVector;
using llvm::StringRef;
using llvm::Twine;

namespace {

/// The shape of a run-time value.
llvm::ArrayRef<int64_t> shapeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getShape();
}

Type elementTypeOf(Value value) {
  return cast<RankedTensorType>(value.getType()).getElementType();
}

NamedAttribute namedAttr(Importer &im, StringRef name, Attribute value) {
  return im.getBuilder().getNamedAttr(name, value);
}

LogicalResult bindResult(Importer &im, int index, FailureOr<Value> value) {
  if (failed(value))
    return failure();
  im.setOutput(index, *value);
  return success();
}

LogicalResult bindConstant(Importer &im, int index, HostResult contents) {
  im.setOutput(index, std::move(contents));
  return success();
}

/// Binds output 0 to `fold(input 0)` when input 0 is known at import, else to
/// `build(input 0)` emitted as IR.
template <typename FoldFn, typename BuildFn>
LogicalResult foldOrBuild(Importer &im, FoldFn fold, BuildFn build) {
  FailureOr<const HostTensor *> contents = im.constantInput(0);
  if (failed(contents))
    return failure();
  if (*contents)
    return bindConstant(im, 0, fold(**contents));
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  return bindResult(im, 0, build(*value));
}

/// Normalizes an axis attribute against `rank`, reporting errors.
FailureOr<int64_t> axisAttribute(Importer &im, StringRef name, int64_t fallback,
                                 int64_t rank) {
  FailureOr<int64_t> axis = im.intAttribute(name, fallback);
  if (failed(axis))
    return failure();
  llvm::Expected<int64_t> normalized = normalizeAxis(*axis, rank);
  if (!normalized)
    return im.fail(normalized.takeError());
  return *normalized;
}

/// Unwraps an Expected into a FailureOr, recording the error on the node.
template <typename T>
FailureOr<T> check(Importer &im, llvm::Expected<T> value) {
  if (!value)
    return im.fail(value.takeError());
  return std::move(*value);
}

//===----------------------------------------------------------------------===//
// Identity-like and constants
//===----------------------------------------------------------------------===//

LogicalResult convertIdentity(Importer &im) {
  im.aliasOutput(0, 0);
  im.separateWeight(0);
  return success();
}

LogicalResult convertDropout(Importer &im) {
  if (im.hasInput(2)) {
    FailureOr<const HostTensor *> training =
        im.requireConstant(2, "training_mode input");
    if (failed(training))
      return failure();
    if ((*training)->numel() != 1 || (*training)->getDouble(0) != 0.0)
      return im.fail("Dropout in training mode is not supported");
  }
  im.aliasOutput(0, 0);
  // Outside training, the mask keeps everything.
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  HostTensor keep = HostTensor::fromInts(DType::Bool, {}, {1});
  return bindConstant(im, 1, expandTensor(keep, type->shape));
}

LogicalResult convertConstant(Importer &im) {
  if (im.attribute("sparse_value") || im.attribute("value_string") ||
      im.attribute("value_strings"))
    return im.fail("sparse and string constants are not supported");
  FailureOr<std::shared_ptr<const HostTensor>> tensor =
      im.tensorAttribute("value");
  if (failed(tensor))
    return failure();
  if (*tensor) {
    im.setOutput(0, **tensor);
    return success();
  }
  if (const onnx::AttributeProto *attr = im.attribute("value_float")) {
    if (attr->type() != onnx::AttributeProto::FLOAT)
      return im.fail("attribute 'value_float' must be a float");
    im.setOutput(0, HostTensor::fromDoubles(DType::Float, {}, {attr->f()}));
    return success();
  }
  if (const onnx::AttributeProto *attr = im.attribute("value_floats")) {
    if (attr->type() != onnx::AttributeProto::FLOATS)
      return im.fail("attribute 'value_floats' must be a list of floats");
    SmallVector<double> values(attr->floats().begin(), attr->floats().end());
    im.setOutput(
        0, HostTensor::fromDoubles(
               DType::Float, {static_cast<int64_t>(values.size())}, values));
    return success();
  }
  if (im.attribute("value_int")) {
    FailureOr<int64_t> value = im.intAttribute("value_int", 0);
    if (failed(value))
      return failure();
    im.setOutput(0, HostTensor::fromInts(DType::Int64, {}, {*value}));
    return success();
  }
  if (im.attribute("value_ints")) {
    FailureOr<SmallVector<int64_t>> values = im.intsAttribute("value_ints");
    if (failed(values))
      return failure();
    im.setOutput(0, HostTensor::fromInts(DType::Int64,
                                         {static_cast<int64_t>(values->size())},
                                         *values));
    return success();
  }
  return im.fail("Constant has no value attribute");
}

LogicalResult convertConstantOfShape(Importer &im) {
  FailureOr<SmallVector<int64_t>> shape = im.requireInts(0, "shape input");
  FailureOr<std::shared_ptr<const HostTensor>> value =
      im.tensorAttribute("value");
  if (failed(shape) || failed(value))
    return failure();
  HostTensor fill = *value ? **value : HostTensor::zeros(DType::Float, {1});
  if (fill.numel() != 1)
    return im.fail("the value of ConstantOfShape must have one element");
  fill.shape.clear();
  return bindConstant(im, 0, expandTensor(fill, *shape));
}

LogicalResult convertShape(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<int64_t> start = im.intAttribute("start", 0);
  FailureOr<int64_t> end = im.intAttribute("end", INT64_MAX);
  if (failed(type) || failed(start) || failed(end))
    return failure();
  int64_t rank = type->shape.size();
  auto clampIndex = [&](int64_t index) {
    if (index < 0)
      index = index < -rank ? 0 : index + rank;
    return std::min(index, rank);
  };
  int64_t first = clampIndex(*start), last = std::max(first, clampIndex(*end));
  llvm::ArrayRef<int64_t> dims =
      llvm::ArrayRef<int64_t>(type->shape).slice(first, last - first);
  im.setOutput(0, HostTensor::fromInts(
                      DType::Int64, {static_cast<int64_t>(dims.size())}, dims));
  return success();
}

LogicalResult convertSize(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  FailureOr<int64_t> count = check(im, checkedNumel(type->shape));
  if (failed(count))
    return failure();
  im.setOutput(0, HostTensor::fromInts(DType::Int64, {}, {*count}));
  return success();
}

LogicalResult convertCastTo(Importer &im, int32_t code) {
  if (!isHostType(code))
    return im.fail("cannot cast to " + dtypeName(code));
  auto target = static_cast<DType>(code);
  Type elementType = getElementType(im.getContext(), target);
  return foldOrBuild(
      im, [&](const HostTensor &input) { return castTensor(input, target); },
      [&](Value value) -> FailureOr<Value> {
        if (!elementType)
          return im.fail("a cast to " + dtypeName(target) +
                         " is not supported at run time");
        return im.castTo(value, elementType);
      });
}

LogicalResult convertCast(Importer &im) {
  FailureOr<int64_t> to = im.intAttribute("to", 0);
  if (failed(to))
    return failure();
  return convertCastTo(im, static_cast<int32_t>(*to));
}

LogicalResult convertCastLike(Importer &im) {
  FailureOr<ONNXTensorType> target = im.inputType(1);
  if (failed(target))
    return failure();
  return convertCastTo(im, static_cast<int32_t>(target->type));
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

/// The run-time op for an elementwise kind, created on `operands`.
FailureOr<Value> createBinary(Importer &im, BinaryKind kind, Value lhs,
                              Value rhs) {
  switch (kind) {
  case BinaryKind::Add:
    return im.create<AddOp>({lhs, rhs});
  case BinaryKind::Sub:
    return im.create<SubOp>({lhs, rhs});
  case BinaryKind::Mul:
    return im.create<MulOp>({lhs, rhs});
  case BinaryKind::Div:
    return im.create<DivOp>({lhs, rhs});
  case BinaryKind::Pow:
    return im.create<PowOp>({lhs, rhs});
  case BinaryKind::Max:
    return im.create<MaxOp>({lhs, rhs});
  case BinaryKind::Min:
    return im.create<MinOp>({lhs, rhs});
  default:
    return im.fail("this operation needs inputs known at import; galvatron "
                   "has no run-time op for it");
  }
}

template <BinaryKind Kind> LogicalResult convertBinary(Importer &im) {
  FailureOr<bool> folded = im.allInputsConstant();
  if (failed(folded))
    return failure();
  FailureOr<int64_t> fmod = im.intAttribute("fmod", 0);
  if (failed(fmod))
    return failure();
  BinaryKind kind = Kind == BinaryKind::Mod && *fmod ? BinaryKind::FMod : Kind;
  if (*folded)
    return bindConstant(
        im, 0,
        evaluateBinary(kind, **im.constantInput(0), **im.constantInput(1)));
  FailureOr<Value> lhs = im.input(0);
  if (failed(lhs))
    return failure();
  // Pow's exponent may have another type than the base.
  if (kind == BinaryKind::Pow) {
    FailureOr<ONNXTensorType> exponentType = im.inputType(1);
    FailureOr<const HostTensor *> exponent = im.constantInput(1);
    if (failed(exponentType) || failed(exponent))
      return failure();
    DType baseType = getDType(elementTypeOf(*lhs));
    if (*exponent && exponentType->type != baseType) {
      HostResult converted = castTensor(**exponent, baseType);
      if (!converted)
        return im.fail(converted.takeError());
      FailureOr<Value> rhs = im.materialize(*converted);
      if (failed(rhs))
        return failure();
      return bindResult(im, 0, createBinary(im, kind, *lhs, *rhs));
    }
    FailureOr<Value> rhs = im.input(1);
    if (failed(rhs))
      return failure();
    rhs = im.castTo(*rhs, elementTypeOf(*lhs));
    if (failed(rhs))
      return failure();
    return bindResult(im, 0, createBinary(im, kind, *lhs, *rhs));
  }
  FailureOr<Value> rhs = im.input(1);
  if (failed(rhs))
    return failure();
  return bindResult(im, 0, createBinary(im, kind, *lhs, *rhs));
}

/// Max, Min, Sum and Mean take any number of inputs.
template <BinaryKind Kind, bool IsMean = false>
LogicalResult convertVariadic(Importer &im) {
  if (im.numInputs() < 1)
    return im.fail("needs at least one input");
  FailureOr<bool> folded = im.allInputsConstant();
  if (failed(folded))
    return failure();
  if (*folded) {
    HostTensor total = **im.constantInput(0);
    for (int index = 1; index < im.numInputs(); ++index) {
      HostResult next = evaluateBinary(Kind, total, **im.constantInput(index));
      if (!next)
        return im.fail(next.takeError());
      total = std::move(*next);
    }
    if (IsMean) {
      HostTensor count = HostTensor::fromInts(total.type, {}, {im.numInputs()});
      return bindConstant(im, 0, evaluateBinary(BinaryKind::Div, total, count));
    }
    im.setOutput(0, std::move(total));
    return success();
  }
  FailureOr<Value> total = im.input(0);
  for (int index = 1; index < im.numInputs() && succeeded(total); ++index) {
    FailureOr<Value> next = im.input(index);
    if (failed(next))
      return failure();
    total = createBinary(im, Kind, *total, *next);
  }
  if (failed(total))
    return failure();
  if (IsMean && im.numInputs() > 1) {
    FailureOr<Value> count = im.scalar(im.numInputs(), elementTypeOf(*total));
    if (failed(count))
      return failure();
    total = im.create<DivOp>({*total, *count});
  }
  return bindResult(im, 0, total);
}

LogicalResult convertWhere(Importer &im) {
  FailureOr<bool> folded = im.allInputsConstant();
  if (failed(folded))
    return failure();
  if (*folded)
    return bindConstant(im, 0,
                        evaluateWhere(**im.constantInput(0),
                                      **im.constantInput(1),
                                      **im.constantInput(2)));
  FailureOr<Value> condition = im.input(0);
  FailureOr<Value> lhs = im.input(1);
  FailureOr<Value> rhs = im.input(2);
  if (failed(condition) || failed(lhs) || failed(rhs))
    return failure();
  return bindResult(im, 0, im.create<SelectOp>({*condition, *lhs, *rhs}));
}

template <UnaryKind Kind, typename OpTy = void>
LogicalResult convertUnary(Importer &im) {
  return foldOrBuild(
      im, [](const HostTensor &input) { return evaluateUnary(Kind, input); },
      [&](Value value) -> FailureOr<Value> {
        if constexpr (std::is_void_v<OpTy>)
          return im.fail("this operation needs inputs known at import; "
                         "galvatron has no run-time op for it");
        else
          return im.create<OpTy>({value}, {}, {value.getType()});
      });
}

LogicalResult convertClip(Importer &im) {
  // min(x, high), then max(x, low); absent bounds do not clip.
  SmallVector<std::pair<int, BinaryKind>> bounds = {{2, BinaryKind::Min},
                                                    {1, BinaryKind::Max}};
  FailureOr<bool> folded = im.allInputsConstant();
  if (failed(folded))
    return failure();
  if (*folded) {
    HostTensor result = **im.constantInput(0);
    for (auto [index, kind] : bounds) {
      if (!im.hasInput(index))
        continue;
      HostResult next = evaluateBinary(kind, result, **im.constantInput(index));
      if (!next)
        return im.fail(next.takeError());
      result = std::move(*next);
    }
    im.setOutput(0, std::move(result));
    return success();
  }
  FailureOr<Value> value = im.input(0);
  for (auto [index, kind] : bounds) {
    if (failed(value))
      return failure();
    if (!im.hasInput(index))
      continue;
    FailureOr<Value> bound = im.input(index);
    if (failed(bound))
      return failure();
    value = createBinary(im, kind, *value, *bound);
  }
  return bindResult(im, 0, value);
}

//===----------------------------------------------------------------------===//
// Linear algebra
//===----------------------------------------------------------------------===//

LogicalResult convertMatMul(Importer &im) {
  FailureOr<Value> lhs = im.input(0);
  FailureOr<Value> rhs = im.input(1);
  if (failed(lhs) || failed(rhs))
    return failure();
  int64_t lhsRank = shapeOf(*lhs).size(), rhsRank = shapeOf(*rhs).size();
  if (!lhsRank || !rhsRank)
    return im.fail("MatMul operands must not be scalars");
  // NumPy semantics: a vector operand gains a unit dimension that the result
  // drops again.
  if (lhsRank == 1)
    lhs = im.reshape(*lhs, {1, shapeOf(*lhs)[0]});
  if (succeeded(lhs) && rhsRank == 1)
    rhs = im.reshape(*rhs, {shapeOf(*rhs)[0], 1});
  if (failed(lhs) || failed(rhs))
    return failure();
  FailureOr<Value> product = im.create<MatmulOp>({*lhs, *rhs});
  if (failed(product) || (lhsRank > 1 && rhsRank > 1))
    return bindResult(im, 0, product);
  SmallVector<int64_t> shape(shapeOf(*product));
  if (rhsRank == 1)
    shape.pop_back();
  if (lhsRank == 1)
    shape.erase(shape.end() - 1 - (rhsRank == 1 ? 0 : 1));
  return bindResult(im, 0, im.reshape(*product, shape));
}

LogicalResult convertGemm(Importer &im) {
  FailureOr<Value> a = im.input(0);
  FailureOr<Value> b = im.input(1);
  FailureOr<int64_t> transA = im.intAttribute("transA", 0);
  FailureOr<int64_t> transB = im.intAttribute("transB", 0);
  FailureOr<double> alpha = im.floatAttribute("alpha", 1.0);
  FailureOr<double> beta = im.floatAttribute("beta", 1.0);
  if (failed(a) || failed(b) || failed(transA) || failed(transB) ||
      failed(alpha) || failed(beta))
    return failure();
  if (shapeOf(*a).size() != 2 || shapeOf(*b).size() != 2)
    return im.fail("Gemm operands must be matrices");
  if (*transA)
    a = im.transpose(*a, {1, 0});
  if (failed(a))
    return failure();
  int64_t columns = shapeOf(*b)[*transB ? 0 : 1];
  Value bias;
  if (im.hasInput(2)) {
    FailureOr<Value> c = im.input(2);
    if (failed(c))
      return failure();
    bias = *c;
  }
  Type elementType = elementTypeOf(*a);
  auto biasShape = bias ? shapeOf(bias) : llvm::ArrayRef<int64_t>();
  bool vectorBias =
      !bias ||
      (*beta == 1.0 && !biasShape.empty() && biasShape.back() == columns &&
       llvm::all_of(biasShape.drop_back(), [](int64_t d) { return d == 1; }));
  if (*alpha == 1.0 && vectorBias) {
    // x·W + b with W [K, N] or, transposed, [N, K]: a fully connected layer.
    SmallVector<Value> operands = {*a, *b};
    if (bias) {
      FailureOr<Value> flat = im.reshape(bias, {columns});
      if (failed(flat))
        return failure();
      operands.push_back(*flat);
    }
    return bindResult(
        im, 0,
        im.create<LinearOp>(operands,
                            {namedAttr(im, "transpose_weight",
                                       im.getBuilder().getBoolAttr(*transB))}));
  }
  FailureOr<Value> product = im.create<MatmulOp>(
      {*a, *b},
      {namedAttr(im, "transpose_rhs", im.getBuilder().getBoolAttr(*transB))});
  auto scaleBy = [&](FailureOr<Value> value, double factor) {
    if (failed(value) || factor == 1.0)
      return value;
    FailureOr<Value> constant = im.scalar(factor, elementType);
    if (failed(constant))
      return constant;
    return im.create<MulOp>({*value, *constant});
  };
  product = scaleBy(product, *alpha);
  if (succeeded(product) && bias) {
    FailureOr<Value> scaled = scaleBy(bias, *beta);
    if (failed(scaled))
      return failure();
    product = im.create<AddOp>({*product, *scaled});
  }
  return bindResult(im, 0, product);
}

/// Conv with kernel = stride, no padding, dilation or groups: ViT's patch
/// embedding, a linear layer over non-overlapping patches.
LogicalResult convertConv(Importer &im) {
  FailureOr<ONNXTensorType> inputType = im.inputType(0);
  FailureOr<ONNXTensorType> kernelType = im.inputType(1);
  FailureOr<SmallVector<int64_t>> strides = im.intsAttribute("strides");
  FailureOr<SmallVector<int64_t>> pads = im.intsAttribute("pads");
  FailureOr<SmallVector<int64_t>> dilations = im.intsAttribute("dilations");
  FailureOr<SmallVector<int64_t>> kernelShape =
      im.intsAttribute("kernel_shape");
  FailureOr<int64_t> group = im.intAttribute("group", 1);
  FailureOr<std::string> autoPad = im.stringAttribute("auto_pad", "NOTSET");
  if (failed(inputType) || failed(kernelType) || failed(strides) ||
      failed(pads) || failed(dilations) || failed(kernelShape) ||
      failed(group) || failed(autoPad))
    return failure();
  llvm::ArrayRef<int64_t> x = inputType->shape, w = kernelType->shape;
  auto unsupported = [&]() {
    return im.fail("Conv is supported only as a patch embedding: 2-D, "
                   "square kernel, strides equal to the kernel, no padding, "
                   "dilation or groups");
  };
  if (x.size() != 4 || w.size() != 4 || w[2] != w[3] || w[2] < 1 ||
      *group != 1 || (*autoPad != "NOTSET" && *autoPad != "VALID"))
    return unsupported();
  int64_t patch = w[2];
  auto all = [](llvm::ArrayRef<int64_t> values, int64_t expected) {
    return llvm::all_of(values, [&](int64_t v) { return v == expected; });
  };
  if (strides->size() != 2 || !all(*strides, patch) || !all(*pads, 0) ||
      !all(*dilations, 1) ||
      (!kernelShape->empty() && !all(*kernelShape, patch)))
    return unsupported();
  if (x[1] != w[1])
    return im.fail("Conv input has " + Twine(x[1]) +
                   " channels but the "
                   "kernel expects " +
                   Twine(w[1]));
  FailureOr<Value> image = im.input(0);
  FailureOr<Value> kernel = im.input(1);
  if (failed(image) || failed(kernel))
    return failure();
  // Pixels beyond the last whole patch do not reach the output.
  int64_t rows = x[2] / patch, cols = x[3] / patch;
  if (rows * patch != x[2] || cols * patch != x[3]) {
    SliceSpec crop{
        {0, 0, 0, 0}, {1, 1, 1, 1}, {x[0], x[1], rows * patch, cols * patch}};
    image = im.slice(*image, crop);
    if (failed(image))
      return failure();
  }
  FailureOr<Value> patches = im.create<ExtractPatchesOp>(
      {*image},
      {namedAttr(im, "patch_size", im.getBuilder().getI64IntegerAttr(patch))});
  FailureOr<Value> weight = im.reshape(*kernel, {w[0], w[1] * patch * patch});
  if (failed(patches) || failed(weight))
    return failure();
  SmallVector<Value> operands = {*patches, *weight};
  if (im.hasInput(2)) {
    FailureOr<Value> bias = im.input(2);
    if (failed(bias))
      return failure();
    operands.push_back(*bias);
  }
  FailureOr<Value> projected = im.create<LinearOp>(
      operands,
      {namedAttr(im, "transpose_weight", im.getBuilder().getBoolAttr(true))});
  if (failed(projected))
    return failure();
  // [B, patches, O] -> [B, O, rows, cols]
  FailureOr<Value> channelsFirst = im.transpose(*projected, {0, 2, 1});
  if (failed(channelsFirst))
    return failure();
  return bindResult(im, 0,
                    im.reshape(*channelsFirst, {x[0], w[0], rows, cols}));
}

//===----------------------------------------------------------------------===//
// Gather
//===----------------------------------------------------------------------===//

LogicalResult convertGather(Importer &im) {
  FailureOr<ONNXTensorType> dataType = im.inputType(0);
  FailureOr<ONNXTensorType> indicesType = im.inputType(1);
  if (failed(dataType) || failed(indicesType))
    return failure();
  int64_t rank = dataType->shape.size();
  FailureOr<int64_t> axis = axisAttribute(im, "axis", 0, rank);
  FailureOr<bool> folded = im.allInputsConstant();
  FailureOr<const HostTensor *> indices = im.constantInput(1);
  if (failed(axis) || failed(folded) || failed(indices))
    return failure();
  if (*folded)
    return bindConstant(im, 0,
                        gatherTensor(**im.constantInput(0), **indices, *axis));
  if (isFloatType(indicesType->type))
    return im.fail("Gather indices must be integers");
  llvm::ArrayRef<int64_t> dataShape = dataType->shape;
  int64_t size = dataShape[*axis];
  SmallVector<int64_t> resultShape(dataShape.take_front(*axis));
  resultShape.append(indicesType->shape.begin(), indicesType->shape.end());
  resultShape.append(dataShape.begin() + *axis + 1, dataShape.end());

  FailureOr<Value> data = im.input(0);
  if (failed(data))
    return failure();
  Value indexValue;
  if (*indices) {
    // Known indices: normalize negatives; a run of consecutive indices is a
    // slice (position ids, a class token).
    HostTensor normalized = **indices;
    for (int64_t &index : normalized.ints) {
      if (index < -size || index >= size)
        return im.fail("Gather index " + Twine(index) +
                       " is out of range for a dimension of size " +
                       Twine(size));
      if (index < 0)
        index += size;
    }
    int64_t count = normalized.numel();
    bool consecutive = true;
    for (int64_t i = 1; i < count && consecutive; ++i)
      consecutive = normalized.ints[i] == normalized.ints[0] + i;
    if (consecutive && count) {
      SliceSpec spec{SmallVector<int64_t>(rank, 0),
                     SmallVector<int64_t>(rank, 1),
                     SmallVector<int64_t>(dataShape)};
      spec.starts[*axis] = normalized.ints[0];
      spec.sizes[*axis] = count;
      FailureOr<Value> sliced = im.slice(*data, spec);
      if (failed(sliced))
        return failure();
      return bindResult(im, 0, im.reshape(*sliced, resultShape));
    }
    FailureOr<Value> materialized = im.materialize(normalized);
    if (failed(materialized))
      return failure();
    indexValue = *materialized;
  } else {
    FailureOr<Value> value = im.input(1);
    if (failed(value))
      return failure();
    indexValue = *value;
  }
  if (!isa<FloatType>(elementTypeOf(*data)))
    return im.fail("Gather from integer data computed at run time is not "
                   "supported");
  // Rows of a [size, rest] table: move the axis first, look up, move the
  // leading data dimensions back in front of the index dimensions.
  SmallVector<int64_t> perm = {*axis}, others;
  for (int64_t dim = 0; dim < rank; ++dim)
    if (dim != *axis) {
      perm.push_back(dim);
      others.push_back(dataShape[dim]);
    }
  int64_t rest = 1;
  for (int64_t dim : others)
    rest *= dim;
  FailureOr<Value> moved = im.transpose(*data, perm);
  if (failed(moved))
    return failure();
  FailureOr<Value> table = im.reshape(*moved, {size, rest});
  if (failed(table))
    return failure();
  FailureOr<Value> rows = im.create<EmbeddingOp>({*table, indexValue});
  if (failed(rows))
    return failure();
  SmallVector<int64_t> unflattened(indicesType->shape);
  unflattened.append(others.begin(), others.end());
  FailureOr<Value> result = im.reshape(*rows, unflattened);
  if (failed(result))
    return failure();
  int64_t indexRank = indicesType->shape.size();
  SmallVector<int64_t> order;
  for (int64_t dim = 0; dim < *axis; ++dim)
    order.push_back(indexRank + dim);
  for (int64_t dim = 0; dim < indexRank; ++dim)
    order.push_back(dim);
  for (int64_t dim = indexRank + *axis; dim < indexRank + rank - 1; ++dim)
    order.push_back(dim);
  return bindResult(im, 0, im.transpose(*result, order));
}

//===----------------------------------------------------------------------===//
// Shape ops
//===----------------------------------------------------------------------===//

/// Binds the input reshaped to `shape`, on the host or at run time.
LogicalResult bindReshaped(Importer &im, llvm::ArrayRef<int64_t> shape) {
  return foldOrBuild(
      im, [&](const HostTensor &input) { return reshapeTensor(input, shape); },
      [&](Value value) { return im.reshape(value, shape); });
}

LogicalResult convertReshape(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> requested = im.requireInts(1, "shape input");
  FailureOr<int64_t> allowZero = im.intAttribute("allowzero", 0);
  if (failed(type) || failed(requested) || failed(allowZero))
    return failure();
  FailureOr<SmallVector<int64_t>> shape =
      check(im, resolveReshape(type->shape, *requested, *allowZero));
  if (failed(shape))
    return failure();
  return bindReshaped(im, *shape);
}

LogicalResult convertFlatten(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  int64_t rank = type->shape.size();
  FailureOr<int64_t> axis = im.intAttribute("axis", 1);
  if (failed(axis))
    return failure();
  if (*axis < -rank || *axis > rank)
    return im.fail("Flatten axis " + Twine(*axis) + " is out of range");
  int64_t split = *axis < 0 ? *axis + rank : *axis;
  int64_t outer = 1, inner = 1;
  for (int64_t dim = 0; dim < rank; ++dim)
    (dim < split ? outer : inner) *= type->shape[dim];
  return bindReshaped(im, {outer, inner});
}

LogicalResult convertSqueeze(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  SmallVector<int64_t> axes;
  if (im.hasInput(1)) {
    FailureOr<SmallVector<int64_t>> given = im.requireInts(1, "axes input");
    if (failed(given))
      return failure();
    axes = *given;
  }
  FailureOr<SmallVector<int64_t>> shape =
      check(im, resolveSqueeze(type->shape, axes));
  if (failed(shape))
    return failure();
  return bindReshaped(im, *shape);
}

LogicalResult convertUnsqueeze(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> axes = im.requireInts(1, "axes input");
  if (failed(type) || failed(axes))
    return failure();
  FailureOr<SmallVector<int64_t>> shape =
      check(im, resolveUnsqueeze(type->shape, *axes));
  if (failed(shape))
    return failure();
  return bindReshaped(im, *shape);
}

LogicalResult convertTranspose(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> given = im.intsAttribute("perm");
  if (failed(type) || failed(given))
    return failure();
  FailureOr<SmallVector<int64_t>> perm =
      check(im, resolvePermutation(type->shape.size(), *given));
  if (failed(perm))
    return failure();
  return foldOrBuild(
      im,
      [&](const HostTensor &input) { return transposeTensor(input, *perm); },
      [&](Value value) { return im.transpose(value, *perm); });
}

LogicalResult convertConcat(Importer &im) {
  if (im.numInputs() < 1)
    return im.fail("Concat needs at least one input");
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  FailureOr<int64_t> axis = axisAttribute(im, "axis", 0, type->shape.size());
  FailureOr<bool> folded = im.allInputsConstant();
  if (failed(axis) || failed(folded))
    return failure();
  if (*folded) {
    SmallVector<const HostTensor *> inputs;
    for (int index = 0; index < im.numInputs(); ++index)
      inputs.push_back(*im.constantInput(index));
    return bindConstant(im, 0, concatTensors(inputs, *axis));
  }
  SmallVector<Value> inputs;
  for (int index = 0; index < im.numInputs(); ++index) {
    FailureOr<Value> value = im.input(index);
    if (failed(value))
      return failure();
    inputs.push_back(*value);
  }
  return bindResult(
      im, 0,
      im.create<ConcatOp>(
          inputs,
          {namedAttr(im, "axis", im.getBuilder().getI64IntegerAttr(*axis))}));
}

LogicalResult convertSplit(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(type))
    return failure();
  FailureOr<int64_t> axis = axisAttribute(im, "axis", 0, type->shape.size());
  if (failed(axis))
    return failure();
  int64_t size = type->shape[*axis];
  int parts = im.node().output_size();
  SmallVector<int64_t> sizes;
  if (im.hasInput(1)) {
    FailureOr<SmallVector<int64_t>> given = im.requireInts(1, "split input");
    if (failed(given))
      return failure();
    sizes = *given;
  } else if (const onnx::AttributeProto *attr = im.attribute("split")) {
    // Opset 11 spelling, still written by some exporters.
    sizes.assign(attr->ints().begin(), attr->ints().end());
  } else {
    if (parts < 1 || size % parts != 0)
      return im.fail("cannot split a dimension of size " + Twine(size) +
                     " into " + Twine(parts) + " equal parts");
    sizes.assign(parts, size / parts);
  }
  int64_t total = 0;
  for (int64_t part : sizes) {
    if (part < 0 || __builtin_add_overflow(total, part, &total))
      return im.fail("split sizes must not be negative");
  }
  if (static_cast<int>(sizes.size()) != parts || total != size)
    return im.fail("split sizes do not add up to the dimension of size " +
                   Twine(size) + " over " + Twine(parts) + " outputs");
  FailureOr<const HostTensor *> contents = im.constantInput(0);
  if (failed(contents))
    return failure();
  int64_t offset = 0;
  if (*contents) {
    for (auto [index, part] : llvm::enumerate(sizes)) {
      HostResult piece = splitTensor(**contents, *axis, offset, part);
      if (!piece)
        return im.fail(piece.takeError());
      im.setOutput(index, std::move(*piece));
      offset += part;
    }
    return success();
  }
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  if (llvm::all_of(sizes, [](int64_t part) { return part > 0; })) {
    FailureOr<Operation *> split = im.createOp<SplitOp>(
        {*value},
        {namedAttr(im, "axis", im.getBuilder().getI64IntegerAttr(*axis)),
         namedAttr(im, "sizes", im.getBuilder().getDenseI64ArrayAttr(sizes))});
    if (failed(split))
      return failure();
    for (auto [index, result] : llvm::enumerate((*split)->getResults()))
      im.setOutput(index, result);
    return success();
  }
  // Empty pieces: slices (the split op wants positive sizes).
  for (auto [index, part] : llvm::enumerate(sizes)) {
    SliceSpec spec{SmallVector<int64_t>(type->shape.size(), 0),
                   SmallVector<int64_t>(type->shape.size(), 1), type->shape};
    spec.starts[*axis] = offset;
    spec.sizes[*axis] = part;
    FailureOr<Value> piece = im.slice(*value, spec);
    if (failed(piece))
      return failure();
    im.setOutput(index, *piece);
    offset += part;
  }
  return success();
}

LogicalResult convertSlice(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> starts = im.requireInts(1, "starts input");
  FailureOr<SmallVector<int64_t>> ends = im.requireInts(2, "ends input");
  if (failed(type) || failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (im.hasInput(3)) {
    FailureOr<SmallVector<int64_t>> given = im.requireInts(3, "axes input");
    if (failed(given))
      return failure();
    axes = *given;
  }
  if (im.hasInput(4)) {
    FailureOr<SmallVector<int64_t>> given = im.requireInts(4, "steps input");
    if (failed(given))
      return failure();
    steps = *given;
  }
  FailureOr<SliceSpec> spec =
      check(im, resolveSlice(type->shape, *starts, *ends, axes, steps));
  if (failed(spec))
    return failure();
  return foldOrBuild(
      im, [&](const HostTensor &input) { return sliceTensor(input, *spec); },
      [&](Value value) -> FailureOr<Value> {
        // A negative step that takes one element is a plain slice.
        SliceSpec forward = *spec;
        for (auto [step, size] : llvm::zip(forward.steps, forward.sizes)) {
          if (step < 0 && size > 1)
            return im.fail("Slice with a negative step is not supported at "
                           "run time");
          step = std::max<int64_t>(step, 1);
        }
        return im.slice(value, forward);
      });
}

LogicalResult convertExpand(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> shape = im.requireInts(1, "shape input");
  if (failed(type) || failed(shape))
    return failure();
  FailureOr<SmallVector<int64_t>> target =
      check(im, broadcastShapes(type->shape, *shape));
  if (failed(target))
    return failure();
  return foldOrBuild(
      im, [&](const HostTensor &input) { return expandTensor(input, *shape); },
      [&](Value value) { return im.broadcast(value, *target); });
}

LogicalResult convertTile(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<SmallVector<int64_t>> repeats = im.requireInts(1, "repeats input");
  FailureOr<const HostTensor *> contents = im.constantInput(0);
  if (failed(type) || failed(repeats) || failed(contents))
    return failure();
  if (*contents)
    return bindConstant(im, 0, tileTensor(**contents, *repeats));
  if (repeats->size() != type->shape.size())
    return im.fail("Tile needs one repeat count per dimension");
  // reshape to [1, d0, 1, d1, ...], broadcast to [r0, d0, r1, d1, ...],
  // reshape to [r0·d0, r1·d1, ...].
  SmallVector<int64_t> interleaved, expanded, tiled;
  for (auto [dim, repeat] : llvm::zip(type->shape, *repeats)) {
    if (repeat < 0)
      return im.fail("Tile repeat counts must not be negative");
    interleaved.append({1, dim});
    expanded.append({repeat, dim});
    tiled.push_back(repeat * dim);
  }
  FailureOr<Value> value = im.input(0);
  if (succeeded(value))
    value = im.reshape(*value, interleaved);
  if (succeeded(value))
    value = im.broadcast(*value, expanded);
  if (failed(value))
    return failure();
  return bindResult(im, 0, im.reshape(*value, tiled));
}

LogicalResult convertRange(Importer &im) {
  FailureOr<const HostTensor *> start = im.requireConstant(0, "start");
  FailureOr<const HostTensor *> limit = im.requireConstant(1, "limit");
  FailureOr<const HostTensor *> delta = im.requireConstant(2, "delta");
  if (failed(start) || failed(limit) || failed(delta))
    return failure();
  return bindConstant(im, 0, rangeTensor(**start, **limit, **delta));
}

LogicalResult convertTrilu(Importer &im) {
  FailureOr<int64_t> upper = im.intAttribute("upper", 1);
  FailureOr<ONNXTensorType> type = im.inputType(0);
  if (failed(upper) || failed(type))
    return failure();
  int64_t diagonal = 0;
  if (im.hasInput(1)) {
    FailureOr<const HostTensor *> k = im.requireConstant(1, "diagonal input");
    if (failed(k))
      return failure();
    if ((*k)->numel() != 1 || (*k)->isFloat())
      return im.fail("the diagonal of Trilu must be an integer scalar");
    diagonal = (*k)->ints[0];
  }
  FailureOr<const HostTensor *> contents = im.constantInput(0);
  if (failed(contents))
    return failure();
  if (*contents)
    return bindConstant(im, 0, triluTensor(**contents, diagonal, *upper));
  int64_t rank = type->shape.size();
  if (rank < 2)
    return im.fail("Trilu needs a tensor of rank >= 2");
  // Lower keeps column - row <= k; upper keeps column - row >= k, the
  // complement of the lower mask with diagonal k - 1.
  int64_t maskDiagonal =
      *upper ? (diagonal == INT64_MIN ? diagonal : diagonal - 1) : diagonal;
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  auto maskType =
      RankedTensorType::get(llvm::ArrayRef<int64_t>(type->shape).take_back(2),
                            im.getBuilder().getI1Type());
  FailureOr<Value> mask = im.create<TrilMaskOp>(
      {},
      {namedAttr(im, "diagonal",
                 im.getBuilder().getI64IntegerAttr(maskDiagonal))},
      {maskType});
  FailureOr<Value> zero = im.scalar(0.0, elementTypeOf(*value));
  if (failed(mask) || failed(zero))
    return failure();
  return bindResult(im, 0,
                    *upper ? im.create<SelectOp>({*mask, *zero, *value})
                           : im.create<SelectOp>({*mask, *value, *zero}));
}

//===----------------------------------------------------------------------===//
// Normalization, softmax, reductions
//===----------------------------------------------------------------------===//

LogicalResult convertSoftmax(Importer &im) {
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  FailureOr<int64_t> axis =
      axisAttribute(im, "axis", -1, shapeOf(*value).size());
  if (failed(axis))
    return failure();
  return bindResult(
      im, 0,
      im.create<SoftmaxOp>(
          {*value},
          {namedAttr(im, "axis", im.getBuilder().getI64IntegerAttr(*axis))},
          {value->getType()}));
}

template <ReduceKind Kind> LogicalResult convertReduce(Importer &im) {
  FailureOr<ONNXTensorType> type = im.inputType(0);
  FailureOr<int64_t> keepDims = im.intAttribute("keepdims", 1);
  FailureOr<int64_t> noopWithEmptyAxes =
      im.intAttribute("noop_with_empty_axes", 0);
  FailureOr<SmallVector<int64_t>> axes = im.intsAttribute("axes");
  if (failed(type) || failed(keepDims) || failed(noopWithEmptyAxes) ||
      failed(axes))
    return failure();
  // ReduceSum takes its axes as an input since opset 13.
  if (im.hasInput(1)) {
    FailureOr<SmallVector<int64_t>> given = im.requireInts(1, "axes input");
    if (failed(given))
      return failure();
    axes = *given;
  }
  if (axes->empty() && *noopWithEmptyAxes) {
    im.aliasOutput(0, 0);
    return success();
  }
  FailureOr<SmallVector<int64_t>> reduced =
      check(im, resolveAxes(type->shape.size(), *axes));
  FailureOr<const HostTensor *> contents = im.constantInput(0);
  if (failed(reduced) || failed(contents))
    return failure();
  if (*contents)
    return bindConstant(im, 0,
                        reduceTensor(Kind, **contents, *reduced, *keepDims));
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  SmallVector<NamedAttribute> attributes = {
      namedAttr(im, "axes", im.getBuilder().getDenseI64ArrayAttr(*reduced)),
      namedAttr(im, "keep_dims", im.getBuilder().getBoolAttr(*keepDims))};
  switch (Kind) {
  case ReduceKind::Sum:
    return bindResult(im, 0, im.create<ReduceSumOp>({*value}, attributes));
  case ReduceKind::Mean:
    return bindResult(im, 0, im.create<ReduceMeanOp>({*value}, attributes));
  case ReduceKind::Max:
    return bindResult(im, 0, im.create<ReduceMaxOp>({*value}, attributes));
  case ReduceKind::Min: {
    // min(x) = -max(-x)
    FailureOr<Value> negated =
        im.create<NegOp>({*value}, {}, {value->getType()});
    if (failed(negated))
      return failure();
    FailureOr<Value> largest = im.create<ReduceMaxOp>({*negated}, attributes);
    if (failed(largest))
      return failure();
    return bindResult(im, 0,
                      im.create<NegOp>({*largest}, {}, {largest->getType()}));
  }
  case ReduceKind::Prod:
    break;
  }
  return im.fail("ReduceProd needs inputs known at import; galvatron has no "
                 "run-time op for it");
}

LogicalResult convertLayerNormalization(Importer &im) {
  FailureOr<Value> value = im.input(0);
  if (failed(value))
    return failure();
  auto type = cast<RankedTensorType>(value->getType());
  int64_t rank = type.getRank();
  FailureOr<int64_t> axis = axisAttribute(im, "axis", -1, rank);
  FailureOr<double> epsilon = im.floatAttribute("epsilon", 1e-5);
  if (failed(axis) || failed(epsilon))
    return failure();
  // Normalizing the trailing dimensions [axis, rank) is a layer norm over
  // them flattened into one.
  SmallVector<int64_t> rows(type.getShape().take_front(*axis));
  int64_t features = 1;
  for (int64_t dim : type.getShape().drop_front(*axis))
    features *= dim;
  SmallVector<int64_t> flatShape(rows);
  flatShape.push_back(features);
  FailureOr<Value> flat = im.reshape(*value, flatShape);
  if (failed(flat))
    return failure();
  SmallVector<Value> operands = {*flat};
  for (int index = 1; index <= 2; ++index) {
    if (!im.hasInput(index))
      continue;
    FailureOr<Value> parameter = im.input(index);
    if (failed(parameter))
      return failure();
    if (cast<RankedTensorType>(parameter->getType()).getNumElements() !=
        features)
      return im.fail("the scale and bias of LayerNormalization must hold one "
                     "value per normalized element");
    parameter = im.reshape(*parameter, {features});
    if (failed(parameter))
      return failure();
    operands.push_back(*parameter);
  }
  FailureOr<Value> normalized = im.create<LayerNormOp>(
      operands,
      {namedAttr(im, "epsilon", im.getBuilder().getF64FloatAttr(*epsilon))},
      {(*flat).getType()});
  if (failed(normalized))
    return failure();
  if (failed(bindResult(im, 0, im.reshape(*normalized, type.getShape()))))
    return failure();
  bool wantsStatistics = false;
  for (int output = 1; output < im.node().output_size(); ++output)
    wantsStatistics |= !im.node().output(output).empty();
  if (!wantsStatistics)
    return success();
  // Mean and 1/sqrt(variance + epsilon) over the normalized dimensions, kept
  // as size-1 dimensions.
  SmallVector<int64_t> axes;
  for (int64_t dim = *axis; dim < rank; ++dim)
    axes.push_back(dim);
  SmallVector<NamedAttribute> reduction = {
      namedAttr(im, "axes", im.getBuilder().getDenseI64ArrayAttr(axes)),
      namedAttr(im, "keep_dims", im.getBuilder().getBoolAttr(true))};
  FailureOr<Value> mean = im.create<ReduceMeanOp>({*value}, reduction);
  if (failed(mean))
    return failure();
  FailureOr<Value> centered = im.create<SubOp>({*value, *mean});
  FailureOr<Value> squared =
      succeeded(centered) ? im.create<MulOp>({*centered, *centered}) : centered;
  FailureOr<Value> variance =
      succeeded(squared) ? im.create<ReduceMeanOp>({*squared}, reduction)
                         : squared;
  FailureOr<Value> eps = im.scalar(*epsilon, type.getElementType());
  if (failed(variance) || failed(eps))
    return failure();
  FailureOr<Value> shifted = im.create<AddOp>({*variance, *eps});
  if (failed(shifted))
    return failure();
  im.setOutput(1, *mean);
  return bindResult(im, 2,
                    im.create<RsqrtOp>({*shifted}, {}, {shifted->getType()}));
}

} // namespace

//===----------------------------------------------------------------------===//
// The table
//===----------------------------------------------------------------------===//

const llvm::StringMap<OpConverter> &
mlir::galvatron::onnx_import::getOpConverters() {
  static const llvm::StringMap<OpConverter> converters = {
      {"Abs", {convertUnary<UnaryKind::Abs, AbsOp>, false, 1, 1}},
      {"Add", {convertBinary<BinaryKind::Add>, false, 2, 2}},
      {"And", {convertBinary<BinaryKind::And>, true, 2, 2}},
      {"Cast", {convertCast, false, 1, 1}},
      {"CastLike", {convertCastLike, false, 2, 2}},
      {"Ceil", {convertUnary<UnaryKind::Ceil>, true, 1, 1}},
      {"Clip", {convertClip, false, 1, 3}},
      {"Concat", {convertConcat, false, 1, kVariadic}},
      {"Constant", {convertConstant, false, 0, 0}},
      {"ConstantOfShape", {convertConstantOfShape, false, 1, 1}},
      {"Conv", {convertConv, false, 2, 3}},
      {"Cos", {convertUnary<UnaryKind::Cos>, true, 1, 1}},
      {"Div", {convertBinary<BinaryKind::Div>, false, 2, 2}},
      {"Dropout", {convertDropout, false, 1, 3}},
      {"Equal", {convertBinary<BinaryKind::Equal>, true, 2, 2}},
      {"Erf", {convertUnary<UnaryKind::Erf, ErfOp>, false, 1, 1}},
      {"Exp", {convertUnary<UnaryKind::Exp, ExpOp>, false, 1, 1}},
      {"Expand", {convertExpand, false, 2, 2}},
      {"Flatten", {convertFlatten, false, 1, 1}},
      {"Floor", {convertUnary<UnaryKind::Floor>, true, 1, 1}},
      {"Gather", {convertGather, false, 2, 2}},
      {"Gemm", {convertGemm, false, 2, 3}},
      {"Greater", {convertBinary<BinaryKind::Greater>, true, 2, 2}},
      {"GreaterOrEqual",
       {convertBinary<BinaryKind::GreaterOrEqual>, true, 2, 2}},
      {"Identity", {convertIdentity, false, 1, 1}},
      {"LayerNormalization", {convertLayerNormalization, false, 2, 3}},
      {"Less", {convertBinary<BinaryKind::Less>, true, 2, 2}},
      {"LessOrEqual", {convertBinary<BinaryKind::LessOrEqual>, true, 2, 2}},
      {"Log", {convertUnary<UnaryKind::Log, LogOp>, false, 1, 1}},
      {"MatMul", {convertMatMul, false, 2, 2}},
      {"Max", {convertVariadic<BinaryKind::Max>, false, 1, kVariadic}},
      {"Mean", {convertVariadic<BinaryKind::Add, true>, false, 1, kVariadic}},
      {"Min", {convertVariadic<BinaryKind::Min>, false, 1, kVariadic}},
      {"Mod", {convertBinary<BinaryKind::Mod>, true, 2, 2}},
      {"Mul", {convertBinary<BinaryKind::Mul>, false, 2, 2}},
      {"Neg", {convertUnary<UnaryKind::Neg, NegOp>, false, 1, 1}},
      {"Not", {convertUnary<UnaryKind::Not>, true, 1, 1}},
      {"Or", {convertBinary<BinaryKind::Or>, true, 2, 2}},
      {"Pow", {convertBinary<BinaryKind::Pow>, false, 2, 2}},
      {"Range", {convertRange, true, 3, 3}},
      {"Reciprocal",
       {convertUnary<UnaryKind::Reciprocal, ReciprocalOp>, false, 1, 1}},
      {"ReduceMax", {convertReduce<ReduceKind::Max>, false, 1, 1}},
      {"ReduceMean", {convertReduce<ReduceKind::Mean>, false, 1, 1}},
      {"ReduceMin", {convertReduce<ReduceKind::Min>, false, 1, 1}},
      {"ReduceProd", {convertReduce<ReduceKind::Prod>, true, 1, 1}},
      {"ReduceSum", {convertReduce<ReduceKind::Sum>, false, 1, 2}},
      {"Relu", {convertUnary<UnaryKind::Relu, ReluOp>, false, 1, 1}},
      {"Reshape", {convertReshape, false, 2, 2}},
      {"Round", {convertUnary<UnaryKind::Round>, true, 1, 1}},
      {"Shape", {convertShape, false, 1, 1}},
      {"Sigmoid", {convertUnary<UnaryKind::Sigmoid, SigmoidOp>, false, 1, 1}},
      {"Sign", {convertUnary<UnaryKind::Sign>, true, 1, 1}},
      {"Sin", {convertUnary<UnaryKind::Sin>, true, 1, 1}},
      {"Size", {convertSize, false, 1, 1}},
      {"Slice", {convertSlice, false, 3, 5}},
      {"Softmax", {convertSoftmax, false, 1, 1}},
      {"Split", {convertSplit, false, 1, 2}},
      {"Sqrt", {convertUnary<UnaryKind::Sqrt, SqrtOp>, false, 1, 1}},
      {"Squeeze", {convertSqueeze, false, 1, 2}},
      {"Sub", {convertBinary<BinaryKind::Sub>, false, 2, 2}},
      {"Sum", {convertVariadic<BinaryKind::Add>, false, 1, kVariadic}},
      {"Tanh", {convertUnary<UnaryKind::Tanh, TanhOp>, false, 1, 1}},
      {"Tile", {convertTile, false, 2, 2}},
      {"Transpose", {convertTranspose, false, 1, 1}},
      {"Trilu", {convertTrilu, false, 1, 2}},
      {"Unsqueeze", {convertUnsqueeze, false, 2, 2}},
      {"Where", {convertWhere, false, 3, 3}},
      {"Xor", {convertBinary<BinaryKind::Xor>, true, 2, 2}},
  };
  return converters;
}

llvm::SmallVector<SupportedONNXOp> mlir::galvatron::getSupportedONNXOps() {
  llvm::SmallVector<SupportedONNXOp> ops;
  for (const auto &entry : onnx_import::getOpConverters())
    ops.push_back({entry.getKey(), entry.getValue().constantOnly});
  llvm::sort(ops, [](const SupportedONNXOp &a, const SupportedONNXOp &b) {
    return a.opType < b.opType;
  });
  return ops;
}
