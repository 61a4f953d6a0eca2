//===- ImportONNX.cpp - Import ONNX models into the galvatron dialect -----===//
//
// Walks the graph in order, keeping for every ONNX tensor either an IR value,
// its contents when known at import, or the initializer it names. Float
// initializers with more than one element are weights: they become
// `galvatron.parameter`s that reference the bytes where they lie, one per
// parameter of the source model (torch.onnx's merged duplicates are split
// again, see separateWeight); float buffers (rotary tables, additive masks)
// are constants. Everything
// else an op needs before run time is evaluated on the host; a value is only
// materialized as IR when a run-time op consumes it.
//
//===----------------------------------------------------------------------===//

#include "Importer.h"

#include "galvatron/Runtime/InputFiles.h"

#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>

using namespace mlir;
using namespace mlir::galvatron;
using namespace mlir::galvatron::onnx_import;
using llvm::SmallVector;
using llvm::StringRef;
using llvm::Twine;
namespace rt = ::galvatron::runtime;

//===----------------------------------------------------------------------===//
// Types
//===----------------------------------------------------------------------===//

Type mlir::galvatron::onnx_import::getElementType(MLIRContext *context,
                                                  DType type) {
  Builder builder(context);
  switch (type) {
  case DType::Float:
    return builder.getF32Type();
  case DType::Float16:
    return builder.getF16Type();
  case DType::BFloat16:
    return builder.getBF16Type();
  case DType::Int64:
    return builder.getI64Type();
  case DType::Int32:
    return builder.getI32Type();
  case DType::Bool:
    return builder.getI1Type();
  default:
    return {};
  }
}

DType mlir::galvatron::onnx_import::getDType(Type type) {
  if (type.isF32())
    return DType::Float;
  if (type.isF16())
    return DType::Float16;
  if (type.isBF16())
    return DType::BFloat16;
  if (type.isInteger(64))
    return DType::Int64;
  if (type.isInteger(32))
    return DType::Int32;
  if (type.isInteger(1))
    return DType::Bool;
  return DType::Undefined;
}

/// Float tensors with more than one element: weights unless buffers;
/// scalars and integer tensors are constants the importer folds.
static bool isFloatArray(const onnx::TensorProto &tensor) {
  auto type = static_cast<DType>(tensor.data_type());
  if (type != DType::Float && type != DType::Float16 && type != DType::BFloat16)
    return false;
  int64_t count = 1;
  for (int64_t dim : tensor.dims())
    if (dim < 0 || __builtin_mul_overflow(count, dim, &count))
      return false;
  return count > 1;
}

//===----------------------------------------------------------------------===//
// Importer
//===----------------------------------------------------------------------===//

Importer::Importer(MLIRContext *context, const ONNXModel &model,
                   const ONNXImportOptions &options, std::string displayName)
    : context(context), model(model), options(options),
      displayName(std::move(displayName)), builder(context),
      fileLoc(FileLineColLoc::get(context, this->displayName, 0, 0)),
      currentLoc(fileLoc) {}

Location Importer::locate(StringRef name) const {
  return NameLoc::get(StringAttr::get(context, name), fileLoc);
}

std::string Importer::describeNode() const {
  if (!currentNode)
    return "";
  std::string what = currentNode->name().empty()
                         ? "node #" + std::to_string(currentIndex)
                         : "node '" + currentNode->name() + "'";
  return what + " (" + currentNode->op_type() + ")";
}

LogicalResult Importer::fail(const Twine &message) {
  if (error.empty()) {
    std::string where = describeNode();
    error = where.empty() ? message.str() : where + ": " + message.str();
  }
  return failure();
}

LogicalResult Importer::fail(llvm::Error err) {
  return fail(llvm::toString(std::move(err)));
}

FailureOr<Operation *> Importer::finishOp(Operation *op) {
  if (failed(mlir::verify(op))) {
    op->erase();
    return failure();
  }
  return op;
}

//===----------------------------------------------------------------------===//
// Inputs, attributes and outputs of the current node
//===----------------------------------------------------------------------===//

FailureOr<TensorValue *> Importer::lookupInput(int index) {
  if (!hasInput(index))
    return fail("input #" + Twine(index) + " is required");
  auto separate = separateUses.find({currentIndex, index});
  if (separate != separateUses.end())
    return &separated[separate->second];
  auto it = tensors.find(node().input(index));
  if (it == tensors.end())
    return fail("input '" + node().input(index) + "' is not defined");
  return &it->second;
}

FailureOr<ONNXTensorType> Importer::inputType(int index) {
  FailureOr<TensorValue *> tensor = lookupInput(index);
  if (failed(tensor))
    return failure();
  TensorValue &value = **tensor;
  if (value.value) {
    auto type = cast<RankedTensorType>(value.value.getType());
    return ONNXTensorType{getDType(type.getElementType()),
                          SmallVector<int64_t>(type.getShape())};
  }
  if (value.constant)
    return ONNXTensorType{value.constant->type, value.constant->shape};
  const onnx::TensorProto *source =
      value.transposeOf ? value.transposeOf : value.initializer;
  llvm::Expected<SmallVector<int64_t>> shape = ONNXModel::tensorShape(*source);
  if (!shape)
    return fail(shape.takeError());
  if (value.transposeOf)
    std::swap((*shape)[0], (*shape)[1]);
  return ONNXTensorType{static_cast<DType>(source->data_type()), *shape};
}

LogicalResult Importer::loadConstant(TensorValue &tensor) {
  if (tensor.constant)
    return success();
  HostResult contents = model.decode(*tensor.initializer);
  if (!contents)
    return fail(contents.takeError());
  tensor.constant = std::make_shared<HostTensor>(std::move(*contents));
  return success();
}

FailureOr<const HostTensor *> Importer::constantInput(int index) {
  FailureOr<TensorValue *> tensor = lookupInput(index);
  if (failed(tensor))
    return failure();
  TensorValue &value = **tensor;
  if (value.constant)
    return value.constant.get();
  if (!value.initializer || value.transposeOf || isWeight(*value.initializer))
    return static_cast<const HostTensor *>(nullptr);
  if (failed(loadConstant(value)))
    return failure();
  return value.constant.get();
}

FailureOr<const HostTensor *> Importer::requireConstant(int index,
                                                        StringRef what) {
  FailureOr<const HostTensor *> contents = constantInput(index);
  if (failed(contents))
    return failure();
  if (!*contents)
    return fail("the " + what + " ('" + node().input(index) +
                "') must be known at import, but it is computed at run time "
                "or is a weight");
  return *contents;
}

FailureOr<SmallVector<int64_t>> Importer::requireInts(int index,
                                                      StringRef what) {
  FailureOr<const HostTensor *> contents = requireConstant(index, what);
  if (failed(contents))
    return failure();
  const HostTensor &tensor = **contents;
  if (tensor.isFloat() || tensor.rank() > 1)
    return fail("the " + what + " must be a 1-D integer tensor");
  return SmallVector<int64_t>(tensor.ints.begin(), tensor.ints.end());
}

FailureOr<bool> Importer::allInputsConstant() {
  for (int index = 0; index < numInputs(); ++index) {
    if (!hasInput(index))
      continue;
    FailureOr<const HostTensor *> contents = constantInput(index);
    if (failed(contents))
      return failure();
    if (!*contents)
      return false;
  }
  return true;
}

FailureOr<Value> Importer::input(int index) {
  FailureOr<TensorValue *> tensor = lookupInput(index);
  if (failed(tensor))
    return failure();
  return materialize(**tensor);
}

const onnx::AttributeProto *Importer::attribute(StringRef name) const {
  for (const onnx::AttributeProto &attr : node().attribute())
    if (attr.name() == name)
      return &attr;
  return nullptr;
}

FailureOr<int64_t> Importer::intAttribute(StringRef name, int64_t fallback) {
  const onnx::AttributeProto *attr = attribute(name);
  if (!attr)
    return fallback;
  if (attr->type() != onnx::AttributeProto::INT)
    return fail("attribute '" + name + "' must be an int");
  return attr->i();
}

FailureOr<double> Importer::floatAttribute(StringRef name, double fallback) {
  const onnx::AttributeProto *attr = attribute(name);
  if (!attr)
    return fallback;
  if (attr->type() != onnx::AttributeProto::FLOAT)
    return fail("attribute '" + name + "' must be a float");
  return attr->f();
}

FailureOr<SmallVector<int64_t>> Importer::intsAttribute(StringRef name) {
  const onnx::AttributeProto *attr = attribute(name);
  if (!attr)
    return SmallVector<int64_t>();
  if (attr->type() != onnx::AttributeProto::INTS)
    return fail("attribute '" + name + "' must be a list of ints");
  return SmallVector<int64_t>(attr->ints().begin(), attr->ints().end());
}

FailureOr<std::string> Importer::stringAttribute(StringRef name,
                                                 StringRef fallback) {
  const onnx::AttributeProto *attr = attribute(name);
  if (!attr)
    return fallback.str();
  if (attr->type() != onnx::AttributeProto::STRING)
    return fail("attribute '" + name + "' must be a string");
  return attr->s();
}

FailureOr<std::shared_ptr<const HostTensor>>
Importer::tensorAttribute(StringRef name) {
  const onnx::AttributeProto *attr = attribute(name);
  if (!attr)
    return std::shared_ptr<const HostTensor>();
  if (attr->type() != onnx::AttributeProto::TENSOR)
    return fail("attribute '" + name + "' must be a tensor");
  HostResult contents = model.decode(attr->t());
  if (!contents)
    return fail(contents.takeError());
  return std::shared_ptr<const HostTensor>(
      std::make_shared<HostTensor>(std::move(*contents)));
}

void Importer::setOutput(int index, Value value) {
  if (index >= node().output_size() || node().output(index).empty())
    return;
  TensorValue output;
  output.value = value;
  tensors[node().output(index)] = std::move(output);
}

void Importer::setOutput(int index, HostTensor contents) {
  if (index >= node().output_size() || node().output(index).empty())
    return;
  TensorValue output;
  output.constant = std::make_shared<HostTensor>(std::move(contents));
  tensors[node().output(index)] = std::move(output);
}

void Importer::setOutput(int index, llvm::Expected<HostTensor> contents) {
  if (!contents) {
    (void)fail(contents.takeError());
    return;
  }
  setOutput(index, std::move(*contents));
}

void Importer::aliasOutput(int index, int inputIndex) {
  if (index < node().output_size() && !node().output(index).empty())
    tensors[node().output(index)] = tensors[node().input(inputIndex)];
}

void Importer::separateWeight(int index) {
  if (index >= node().output_size() || node().output(index).empty())
    return;
  const std::string &name = node().output(index);
  TensorValue &alias = tensors[name];
  if (!alias.initializer || alias.transposeOf || !isWeight(*alias.initializer))
    return;
  alias.value = Value();
  alias.parameter = name;
}

//===----------------------------------------------------------------------===//
// Materialization
//===----------------------------------------------------------------------===//

FailureOr<Value> Importer::materialize(TensorValue &tensor) {
  if (tensor.value)
    return tensor.value;
  FailureOr<Value> value;
  if (tensor.transposeOf) {
    FailureOr<Value> weight =
        readWeight(*tensor.transposeOf, tensor.transposeOf->name());
    if (failed(weight))
      return failure();
    value = transpose(*weight, {1, 0});
  } else if (tensor.initializer && isWeight(*tensor.initializer)) {
    value = readWeight(*tensor.initializer, tensor.parameter.empty()
                                                ? tensor.initializer->name()
                                                : tensor.parameter);
  } else {
    if (!tensor.constant && failed(loadConstant(tensor)))
      return failure();
    value = materialize(*tensor.constant);
  }
  if (failed(value))
    return failure();
  tensor.value = *value;
  return *value;
}

FailureOr<Value> Importer::readWeight(const onnx::TensorProto &tensor,
                                      StringRef parameterName) {
  auto symbol = parameterSymbols.find(parameterName);
  Type elementType =
      getElementType(context, static_cast<DType>(tensor.data_type()));
  llvm::Expected<SmallVector<int64_t>> shape = ONNXModel::tensorShape(tensor);
  if (!shape)
    return fail(shape.takeError());
  auto type = RankedTensorType::get(*shape, elementType);
  if (symbol == parameterSymbols.end()) {
    llvm::Expected<TensorLocation> where = model.locate(tensor);
    if (!where)
      return fail(where.takeError());
    // Tensor names are unique; only the function's own name can clash.
    std::string name = parameterName.str();
    while (name == function.getSymName() || parameterSymbols.count(name))
      name += ".weight";
    auto external = ExternalDataAttr::get(
        context, where->location, where->offset, where->length,
        where->key.empty() ? StringAttr() : builder.getStringAttr(where->key));
    OpBuilder::InsertionGuard guard(builder);
    builder.setInsertionPoint(function);
    ParameterOp::create(builder, locate(name), name, type, InitAttr(),
                        external);
    symbol = parameterSymbols.try_emplace(parameterName, name).first;
  }
  return create<ParamOp>(
      {},
      {builder.getNamedAttr("name",
                            FlatSymbolRefAttr::get(context, symbol->second))},
      {type});
}

/// Dense elements of `contents` as an attribute of `type`.
static DenseElementsAttr denseAttr(const HostTensor &contents,
                                   RankedTensorType type) {
  Type element = type.getElementType();
  if (element.isF32()) {
    SmallVector<float> values(contents.floats.begin(), contents.floats.end());
    return DenseElementsAttr::get(type, llvm::ArrayRef<float>(values));
  }
  if (isa<FloatType>(element)) {
    const llvm::fltSemantics &semantics =
        cast<FloatType>(element).getFloatSemantics();
    SmallVector<llvm::APFloat> values;
    for (double value : contents.floats) {
      llvm::APFloat number(value);
      bool lost;
      number.convert(semantics, llvm::APFloat::rmNearestTiesToEven, &lost);
      values.push_back(number);
    }
    return DenseElementsAttr::get(type, values);
  }
  if (element.isInteger(1)) {
    SmallVector<bool> values(contents.ints.begin(), contents.ints.end());
    return DenseElementsAttr::get(type, llvm::ArrayRef<bool>(values));
  }
  if (element.isInteger(32)) {
    SmallVector<int32_t> values(contents.ints.begin(), contents.ints.end());
    return DenseElementsAttr::get(type, llvm::ArrayRef<int32_t>(values));
  }
  return DenseElementsAttr::get(type, llvm::ArrayRef<int64_t>(contents.ints));
}

/// Masks: bool tensors, or float tensors holding 0 and a large negative
/// value (an additive attention mask).
static bool isMaskLike(const HostTensor &contents) {
  if (contents.rank() < 2)
    return false;
  if (contents.type == DType::Bool)
    return true;
  if (!contents.isFloat())
    return false;
  for (double value : contents.floats)
    if (value != 0.0 && !(value <= -1e4))
      return false;
  return true;
}

FailureOr<Value> Importer::materializeTriangular(const HostTensor &contents,
                                                 Type elementType) {
  std::optional<TriangularPattern> pattern = matchTriangular(contents);
  if (!pattern)
    return failure();
  auto maskType = RankedTensorType::get(contents.shape, builder.getI1Type());
  FailureOr<Value> mask = create<TrilMaskOp>(
      {},
      {builder.getNamedAttr("diagonal",
                            builder.getI64IntegerAttr(pattern->diagonal))},
      {maskType});
  if (failed(mask) || (elementType.isInteger(1) && pattern->lower == 1.0))
    return mask;
  FailureOr<Value> lower = scalar(pattern->lower, elementType);
  FailureOr<Value> upper = scalar(pattern->upper, elementType);
  if (failed(lower) || failed(upper))
    return failure();
  return create<SelectOp>({*mask, *lower, *upper});
}

FailureOr<Value>
Importer::materializeRotaryTable(const HostTensor &contents,
                                 const RotaryTablePattern &table) {
  // rotary() of the basis [1 ... 1, 0 ... 0] at positions 0..S-1 is
  // [cos | sin] of the frequencies; each table repeats one half twice.
  int64_t rank = contents.rank();
  int64_t rows = contents.shape[rank - 2], dim = contents.shape[rank - 1];
  int64_t half = dim / 2;
  SmallVector<double> basisValues(dim, 0.0);
  std::fill(basisValues.begin(), basisValues.begin() + half, 1.0);
  FailureOr<Value> basis = materialize(
      HostTensor::fromDoubles(contents.type, {1, dim}, basisValues));
  if (failed(basis))
    return failure();
  FailureOr<Value> positions = broadcast(*basis, {rows, dim});
  if (failed(positions))
    return failure();
  FailureOr<Value> rotated = create<RotaryOp>(
      {*positions},
      {builder.getNamedAttr("seq_axis", builder.getI64IntegerAttr(0)),
       builder.getNamedAttr("theta", builder.getF64FloatAttr(table.theta))},
      {positions->getType()});
  if (failed(rotated))
    return failure();
  FailureOr<Value> values = slice(
      *rotated, SliceSpec{{0, table.sine ? half : 0}, {1, 1}, {rows, half}});
  if (failed(values))
    return failure();
  FailureOr<Value> repeated = create<ConcatOp>(
      {*values, *values},
      {builder.getNamedAttr("axis", builder.getI64IntegerAttr(1))});
  if (failed(repeated))
    return failure();
  return reshape(*repeated, contents.shape);
}

FailureOr<Value> Importer::materialize(const HostTensor &contents) {
  Type elementType = getElementType(context, contents.type);
  if (!elementType)
    return fail("a constant of element type " + dtypeName(contents.type) +
                " cannot be used at run time");
  auto type = RankedTensorType::get(contents.shape, elementType);
  auto constant = [&]() {
    return create<ConstantOp>(
        {}, {builder.getNamedAttr("value", denseAttr(contents, type))}, {type});
  };
  bool small = contents.numel() <= ConstantOp::kMaxElements;
  bool mask = isMaskLike(contents);
  // Rotary tables are always built from the rotary op, so that raising can
  // recognize rotary embeddings whatever the sequence length.
  std::optional<RotaryTablePattern> rotaryTable = matchRotaryTable(contents);
  if (rotaryTable)
    return materializeRotaryTable(contents, *rotaryTable);
  if (small && !mask)
    return constant();
  if (!small && contents.isSplat()) {
    FailureOr<Value> value = scalar(contents.getDouble(0), elementType);
    if (failed(value))
      return failure();
    return broadcast(*value, contents.shape);
  }
  // A broadcast along some dimensions: materialize one slice, broadcast it.
  SmallVector<bool> broadcastDims = findBroadcastDims(contents);
  if (llvm::is_contained(broadcastDims, true)) {
    SliceSpec spec;
    spec.starts.assign(contents.rank(), 0);
    spec.steps.assign(contents.rank(), 1);
    for (auto [dim, size] : llvm::enumerate(contents.shape))
      spec.sizes.push_back(broadcastDims[dim] ? 1 : size);
    HostResult reduced = sliceTensor(contents, spec);
    if (!reduced)
      return fail(reduced.takeError());
    FailureOr<Value> value = materialize(*reduced);
    if (failed(value))
      return failure();
    return broadcast(*value, contents.shape);
  }
  if (mask || !small) {
    FailureOr<Value> triangular = materializeTriangular(contents, elementType);
    if (succeeded(triangular) || !error.empty())
      return triangular;
  }
  if (small)
    return constant();
  return fail("a constant of " + Twine(contents.numel()) +
              " elements is too large for the IR (at most " +
              Twine(ConstantOp::kMaxElements) +
              ") and is not a splat, broadcast, triangular mask or rotary "
              "table");
}

FailureOr<Value> Importer::scalar(double value, Type elementType) {
  HostTensor contents =
      HostTensor::fromDoubles(getDType(elementType), {}, {value});
  auto type = RankedTensorType::get({}, elementType);
  return create<ConstantOp>(
      {}, {builder.getNamedAttr("value", denseAttr(contents, type))}, {type});
}

FailureOr<Value> Importer::reshape(Value input, llvm::ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(input.getType());
  if (type.getShape() == shape)
    return input;
  return create<ReshapeOp>(
      {input}, {}, {RankedTensorType::get(shape, type.getElementType())});
}

FailureOr<Value> Importer::transpose(Value input,
                                     llvm::ArrayRef<int64_t> perm) {
  if (llvm::equal(perm, llvm::seq<int64_t>(0, perm.size())))
    return input;
  return create<TransposeOp>(
      {input},
      {builder.getNamedAttr("perm", builder.getDenseI64ArrayAttr(perm))});
}

FailureOr<Value> Importer::broadcast(Value input,
                                     llvm::ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(input.getType());
  if (type.getShape() == shape)
    return input;
  return create<BroadcastOp>(
      {input}, {}, {RankedTensorType::get(shape, type.getElementType())});
}

FailureOr<Value> Importer::slice(Value input, const SliceSpec &spec) {
  SmallVector<int64_t> limits;
  for (auto [start, step, size] :
       llvm::zip(spec.starts, spec.steps, spec.sizes))
    limits.push_back(size ? start + (size - 1) * step + 1 : start);
  return create<SliceOp>(
      {input},
      {builder.getNamedAttr("starts",
                            builder.getDenseI64ArrayAttr(spec.starts)),
       builder.getNamedAttr("limits", builder.getDenseI64ArrayAttr(limits)),
       builder.getNamedAttr("strides",
                            builder.getDenseI64ArrayAttr(spec.steps))});
}

FailureOr<Value> Importer::castTo(Value input, Type elementType) {
  auto type = cast<RankedTensorType>(input.getType());
  if (type.getElementType() == elementType)
    return input;
  return create<CastOp>({input}, {}, {type.clone(elementType)});
}

//===----------------------------------------------------------------------===//
// Weights stored transposed
//===----------------------------------------------------------------------===//

/// Whether 2-D `copy` ([r, c]) holds the transpose of `original` ([c, r]).
static bool isTransposedCopy(const ONNXModel &model,
                             const onnx::TensorProto &copy,
                             const onnx::TensorProto &original) {
  llvm::Expected<RawBytes> a = model.rawBytes(copy);
  llvm::Expected<RawBytes> b = model.rawBytes(original);
  if (!a || !b) {
    llvm::consumeError(a.takeError());
    llvm::consumeError(b.takeError());
    return false;
  }
  int64_t rows = copy.dims(0), cols = copy.dims(1);
  int64_t size = dtypeSize(static_cast<DType>(copy.data_type()));
  auto same = [&](int64_t i, int64_t j) {
    return std::memcmp(a->data.data() + (i * cols + j) * size,
                       b->data.data() + (j * rows + i) * size, size) == 0;
  };
  // A sample rejects unrelated weights cheaply; then compare everything.
  int64_t count = rows * cols;
  for (int64_t k = 0; k < 64 && count; ++k) {
    int64_t index = (k * 2654435761LL) % count;
    if (!same(index / cols, index % cols))
      return false;
  }
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      if (!same(i, j))
        return false;
  return true;
}

bool Importer::isWeight(const onnx::TensorProto &tensor) const {
  return isFloatArray(tensor) && !buffers.contains(&tensor);
}

void Importer::findBuffers() {
  for (const onnx::TensorProto &tensor : model.graph().initializer()) {
    // Tables and masks are [..., rows, columns] with unit leading
    // dimensions; their first value is 0 or 1 (cos 0, sin 0, an unmasked
    // position). Only such candidates are decoded.
    int rank = tensor.dims_size();
    if (!isFloatArray(tensor) || rank < 2 || tensor.dims(rank - 2) < 2 ||
        llvm::any_of(llvm::drop_end(tensor.dims(), 2),
                     [](int64_t size) { return size != 1; }))
      continue;
    if (tensor.data_type() == static_cast<int32_t>(DType::Float)) {
      llvm::Expected<RawBytes> raw = model.rawBytes(tensor);
      if (!raw) {
        llvm::consumeError(raw.takeError());
      } else if (raw->data.size() >= sizeof(float)) {
        float first;
        std::memcpy(&first, raw->data.data(), sizeof(float));
        if (first != 0.0f && first != 1.0f)
          continue;
      }
    }
    HostResult contents = model.decode(tensor);
    if (!contents) {
      llvm::consumeError(contents.takeError());
      continue;
    }
    bool masks = isMaskLike(*contents) &&
                 llvm::any_of(contents->floats,
                              [](double value) { return value <= -1e4; });
    if (masks || matchRotaryTable(*contents))
      buffers.insert(&tensor);
  }
}

/// The module scope of a node torch.onnx named "/transformer/h.1/ln_2/Mul":
/// "transformer.h.1.ln_2"; empty for a name without one.
static std::string scopeOf(const onnx::NodeProto &node) {
  StringRef name = node.name();
  size_t last = name.rfind('/');
  if (!name.consume_front("/") || last == 0 || last == StringRef::npos)
    return "";
  std::string scope = name.take_front(last - 1).str();
  std::replace(scope.begin(), scope.end(), '/', '.');
  return scope;
}

void Importer::findSharedVectors() {
  // Vector weight -> the scopes of the nodes reading it directly -> uses.
  std::map<std::string,
           std::map<std::string, SmallVector<std::pair<int, int>>>>
      uses;
  for (auto [index, node] : llvm::enumerate(model.graph().node())) {
    // torch.onnx's own merges read through Identity (separateWeight).
    if (node.op_type() == "Identity")
      continue;
    std::string scope = scopeOf(node);
    for (auto [position, input] : llvm::enumerate(node.input())) {
      auto found = tensors.find(input);
      if (found == tensors.end() || !found->second.initializer ||
          found->second.initializer->dims_size() != 1 ||
          !isWeight(*found->second.initializer))
        continue;
      uses[input][scope].push_back({int(index), int(position)});
    }
  }
  for (auto &[name, byScope] : uses) {
    // One module reads it (a module called repeatedly shares its scope),
    // or a reader has no scope to tell modules apart by.
    auto [owner, role] = StringRef(name).rsplit('.');
    if (byScope.size() < 2 || byScope.count("") || role.empty())
      continue;
    for (auto &[scope, reads] : byScope) {
      if (scope == owner)
        continue;
      std::string parameter = scope + "." + role.str();
      const onnx::TensorProto *initializer = tensors[name].initializer;
      auto taken = separated.find(parameter);
      if (tensors.count(parameter) ||
          (taken != separated.end() &&
           taken->second.initializer != initializer))
        continue;
      TensorValue &entry = separated[parameter];
      entry.initializer = initializer;
      entry.parameter = parameter;
      for (std::pair<int, int> use : reads)
        separateUses[use] = parameter;
    }
  }
}

void Importer::findTransposedCopies() {
  // torch.onnx folds the `W^T` of F.linear into a new initializer named
  // "onnx::MatMul_N". When W itself is still in the graph (a tied LM head
  // reads the embedding table), read W transposed so both uses share one
  // parameter.
  std::map<std::pair<int64_t, int64_t>, SmallVector<const onnx::TensorProto *>>
      named;
  auto isMatrixWeight = [&](const onnx::TensorProto &tensor) {
    return isWeight(tensor) && tensor.dims_size() == 2;
  };
  for (const onnx::TensorProto &tensor : model.graph().initializer())
    if (isMatrixWeight(tensor) &&
        !StringRef(tensor.name()).starts_with("onnx::"))
      named[{tensor.dims(0), tensor.dims(1)}].push_back(&tensor);
  for (const onnx::TensorProto &tensor : model.graph().initializer()) {
    if (!isMatrixWeight(tensor) ||
        !StringRef(tensor.name()).starts_with("onnx::"))
      continue;
    auto candidates = named.find({tensor.dims(1), tensor.dims(0)});
    if (candidates == named.end())
      continue;
    for (const onnx::TensorProto *original : candidates->second)
      if (original->data_type() == tensor.data_type() &&
          isTransposedCopy(model, tensor, *original)) {
        tensors[tensor.name()].transposeOf = original;
        break;
      }
  }
}

//===----------------------------------------------------------------------===//
// Graph inputs and outputs
//===----------------------------------------------------------------------===//

static std::string shapeText(llvm::ArrayRef<int64_t> shape) {
  std::string text;
  for (auto [index, dim] : llvm::enumerate(shape))
    text += (index ? "x" : "") + std::to_string(dim);
  return text;
}

LogicalResult Importer::resolveInputShape(const onnx::ValueInfoProto &input,
                                          SmallVectorImpl<int64_t> &shape) {
  StringRef name = input.name();
  const onnx::TypeProto::Tensor &tensorType = input.type().tensor_type();
  auto given = options.inputShapes.find(name);
  bool hasShape = tensorType.has_shape();
  if (given != options.inputShapes.end()) {
    shape.assign(given->second.begin(), given->second.end());
    if (!hasShape)
      return success();
    if (tensorType.shape().dim_size() != static_cast<int>(shape.size()))
      return fail("--input-shape gives graph input '" + name + "' rank " +
                  Twine(shape.size()) + " but the model gives it rank " +
                  Twine(tensorType.shape().dim_size()));
    for (auto [index, dim] : llvm::enumerate(tensorType.shape().dim()))
      if (dim.has_dim_value() && dim.dim_value() != shape[index])
        return fail("--input-shape gives dimension " + Twine(index) +
                    " of graph input '" + name + "' size " +
                    Twine(shape[index]) + " but the model fixes it to " +
                    Twine(dim.dim_value()));
    return success();
  }
  if (!hasShape)
    return fail("graph input '" + name +
                "' has no shape; give it with --input-shape " + name +
                "=D0xD1x...");
  for (auto [index, dim] : llvm::enumerate(tensorType.shape().dim())) {
    if (dim.has_dim_value()) {
      if (dim.dim_value() < 0)
        return fail("graph input '" + name + "' has a negative dimension");
      shape.push_back(dim.dim_value());
      continue;
    }
    StringRef param = dim.dim_param();
    auto named = options.dimSizes.find(param);
    if (!param.empty() && named != options.dimSizes.end())
      shape.push_back(named->second);
    else if (index == 0 && options.batch)
      shape.push_back(*options.batch);
    else if (index == 1 && options.seqLen)
      shape.push_back(*options.seqLen);
    else
      return fail("graph input '" + name + "' has a dynamic dimension " +
                  Twine(index) +
                  (param.empty() ? Twine("") : Twine(" ('") + param + "')") +
                  "; give its size with " +
                  (index == 0   ? "--batch, "
                   : index == 1 ? "--seq-len, "
                                : "") +
                  (param.empty() ? "" : "--dim " + param.str() + "=N, ") +
                  "or --input-shape " + name + "=D0xD1x...");
  }
  return success();
}

LogicalResult Importer::declareInputs(SmallVectorImpl<Type> &types,
                                      SmallVectorImpl<std::string> &names) {
  for (const onnx::ValueInfoProto &input : model.graph().input()) {
    StringRef name = input.name();
    // Older exporters list initializers as inputs with defaults.
    auto existing = tensors.find(name);
    if (existing != tensors.end() && existing->second.initializer)
      continue;
    if (name.empty())
      return fail("a graph input has no name");
    if (existing != tensors.end())
      return fail("graph input '" + name + "' is declared twice");
    if (!input.type().has_tensor_type())
      return fail("graph input '" + name + "' is not a tensor");
    int32_t code = input.type().tensor_type().elem_type();
    Type elementType = getElementType(context, static_cast<DType>(code));
    if (!elementType)
      return fail("graph input '" + name + "' has element type " +
                  dtypeName(code) +
                  "; galvatron supports float32, float16, bfloat16, int64, "
                  "int32 and bool");
    SmallVector<int64_t> shape;
    if (failed(resolveInputShape(input, shape)))
      return failure();
    types.push_back(RankedTensorType::get(shape, elementType));
    names.push_back(name.str());
    tensors[name] = TensorValue();
  }
  for (const auto &entry : options.inputShapes)
    if (!llvm::is_contained(names, entry.getKey()))
      return fail("--input-shape names '" + entry.getKey() +
                  "', which is not a graph input");
  // A --dim the graph inputs do not name is a typo, not a no-op.
  SmallVector<std::string> symbolic;
  for (const onnx::ValueInfoProto &input : model.graph().input())
    for (const onnx::TensorShapeProto::Dimension &dim :
         input.type().tensor_type().shape().dim())
      if (!dim.dim_param().empty() &&
          !llvm::is_contained(symbolic, dim.dim_param()))
        symbolic.push_back(dim.dim_param());
  for (const auto &entry : options.dimSizes)
    if (!llvm::is_contained(symbolic, entry.getKey()))
      return fail("--dim names '" + entry.getKey() +
                  "', which is no symbolic dimension of the graph inputs (" +
                  (symbolic.empty()
                       ? std::string("they have none")
                       : "they have: " + llvm::join(symbolic, ", ")) +
                  ")");
  return success();
}

LogicalResult Importer::bindOutputs(SmallVectorImpl<Value> &results,
                                    SmallVectorImpl<std::string> &names) {
  for (const onnx::ValueInfoProto &output : model.graph().output()) {
    StringRef name = output.name();
    auto it = tensors.find(name);
    if (it == tensors.end())
      return fail("graph output '" + name +
                  "' is not produced by any node, initializer or graph input");
    // An initializer or a constant read only as an output is built here.
    currentLoc = locate(name);
    FailureOr<Value> value = materialize(it->second);
    if (failed(value))
      return failure();
    auto type = cast<RankedTensorType>(value->getType());
    const onnx::TypeProto::Tensor &declared = output.type().tensor_type();
    DType computed = getDType(type.getElementType());
    if (declared.elem_type() &&
        declared.elem_type() != static_cast<int32_t>(computed))
      return fail("graph output '" + name + "' is declared as " +
                  dtypeName(declared.elem_type()) + " but computes " +
                  dtypeName(computed));
    if (declared.has_shape()) {
      bool matches = declared.shape().dim_size() == type.getRank();
      for (auto [index, dim] : llvm::enumerate(declared.shape().dim()))
        if (matches && dim.has_dim_value() &&
            dim.dim_value() != type.getDimSize(index))
          matches = false;
      if (!matches)
        return fail("graph output '" + name + "' computes shape " +
                    shapeText(type.getShape()) +
                    ", which contradicts the shape the model declares");
    }
    results.push_back(*value);
    names.push_back(name.str());
  }
  return success();
}

//===----------------------------------------------------------------------===//
// Nodes
//===----------------------------------------------------------------------===//

LogicalResult Importer::convertNode(const onnx::NodeProto &node, int index) {
  currentNode = &node;
  currentIndex = index;
  currentLoc = locate(node.name().empty()
                          ? "#" + std::to_string(index) + " " + node.op_type()
                          : node.name());
  diagnostic.clear();

  StringRef domain = node.domain();
  const OpConverter *converter = nullptr;
  if (domain.empty() || domain == "ai.onnx") {
    auto it = getOpConverters().find(node.op_type());
    if (it != getOpConverters().end())
      converter = &it->second;
  }
  if (!converter) {
    int64_t version = model.opsetOf(domain);
    return fail("op type '" + node.op_type() + "' (domain '" +
                (domain.empty() ? StringRef("ai.onnx") : domain) + "', " +
                (version < 0 ? Twine("which the model does not import")
                             : "opset " + Twine(version)) +
                ") is not supported by the importer");
  }

  int inputs = node.input_size();
  if (inputs < converter->minInputs || inputs > converter->maxInputs)
    return fail(converter->minInputs == converter->maxInputs
                    ? "takes " + Twine(converter->minInputs) + " inputs, got " +
                          Twine(inputs)
                    : "takes " + Twine(converter->minInputs) + " to " +
                          (converter->maxInputs == kVariadic
                               ? Twine("any number of")
                               : Twine(converter->maxInputs)) +
                          " inputs, got " + Twine(inputs));
  for (int position = 0; position < inputs; ++position)
    if (node.input(position).empty() &&
        (position < converter->minInputs || converter->maxInputs == kVariadic))
      return fail("input #" + Twine(position) + " is required");
  for (const std::string &name : node.input()) {
    if (name.empty() || tensors.count(name))
      continue;
    bool later = false;
    for (const onnx::NodeProto &other : model.graph().node())
      later |= llvm::is_contained(other.output(), name);
    return fail("input '" + name + "' is not " +
                (later ? "defined before the node (ONNX graphs must be "
                         "topologically sorted)"
                       : "a graph input, an initializer or the output of any "
                         "node"));
  }
  for (const std::string &name : node.output())
    if (!name.empty() && tensors.count(name))
      return fail("output '" + name +
                  "' is already defined (tensor names "
                  "must be unique)");

  if (failed(converter->convert(*this)) || !error.empty()) {
    if (error.empty())
      return fail(diagnostic.empty() ? "cannot be converted" : diagnostic);
    return failure();
  }
  for (auto [position, name] : llvm::enumerate(node.output()))
    if (!name.empty() && !tensors.count(name))
      return fail("output #" + Twine(position) + " ('" + name +
                  "') is not supported");
  return success();
}

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run() {
  context->loadDialect<GalvatronDialect, func::FuncDialect>();
  // Turn MLIR diagnostics (op verifiers, shape inference) into node errors.
  ScopedDiagnosticHandler handler(context, [&](Diagnostic &diag) {
    if (diag.getSeverity() == DiagnosticSeverity::Error && diagnostic.empty())
      diagnostic = diag.str();
    return success();
  });
  auto reportError = [&]() { return makeError(displayName + ": " + error); };
  auto failWith = [&](const Twine &message) {
    (void)fail(message);
    return reportError();
  };

  const onnx::GraphProto &graph = model.graph();
  module = ModuleOp::create(fileLoc);
  // Exporters give graphs generic names ("torch_jit"); the file names the
  // model.
  std::string modelName = llvm::sys::path::stem(displayName).str();
  if (modelName.empty())
    modelName = graph.name();
  (*module)->setAttr(GalvatronDialect::getModelAttrName(),
                     builder.getStringAttr(modelName));

  for (const onnx::TensorProto &tensor : graph.initializer()) {
    if (tensor.name().empty())
      return failWith("an initializer has no name");
    TensorValue &entry = tensors[tensor.name()];
    if (entry.initializer)
      return failWith("initializer '" + tensor.name() + "' is defined twice");
    entry.initializer = &tensor;
  }
  findBuffers();
  findTransposedCopies();
  findSharedVectors();

  SmallVector<Type> inputTypes;
  SmallVector<std::string> inputNames;
  if (failed(declareInputs(inputTypes, inputNames)))
    return reportError();
  builder.setInsertionPointToEnd(module->getBody());
  function = func::FuncOp::create(builder, fileLoc, "main",
                                  builder.getFunctionType(inputTypes, {}));
  Block *entry = function.addEntryBlock();
  for (auto [index, name] : llvm::enumerate(inputNames)) {
    function.setArgAttr(index, GalvatronDialect::getNameAttrName(),
                        builder.getStringAttr(name));
    entry->getArgument(index).setLoc(locate(name));
    tensors[name].value = entry->getArgument(index);
  }
  builder.setInsertionPointToStart(entry);

  for (auto [index, node] : llvm::enumerate(graph.node()))
    if (failed(convertNode(node, index)))
      return reportError();
  currentNode = nullptr;

  SmallVector<Value> results;
  SmallVector<std::string> outputNames;
  if (failed(bindOutputs(results, outputNames)))
    return reportError();
  currentLoc = fileLoc;
  func::ReturnOp::create(builder, fileLoc, results);
  function.setFunctionType(
      builder.getFunctionType(inputTypes, ValueRange(results).getTypes()));
  for (auto [index, name] : llvm::enumerate(outputNames))
    function.setResultAttr(index, GalvatronDialect::getNameAttrName(),
                           builder.getStringAttr(name));
  if (failed(mlir::verify(*module)))
    return failWith("the imported IR does not verify: " + diagnostic);
  return std::move(module);
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::galvatron::importONNX(MLIRContext *context, StringRef bytes,
                            StringRef fileName, StringRef directory,
                            const ONNXImportOptions &options) {
  llvm::Expected<std::unique_ptr<ONNXModel>> model =
      ONNXModel::parse(bytes, fileName.str(), directory.str());
  if (!model)
    return makeError(fileName + ": " + llvm::toString(model.takeError()));
  return Importer(context, **model, options, fileName.str()).run();
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::galvatron::importONNXFile(MLIRContext *context, StringRef path,
                                const ONNXImportOptions &options) {
  // Only a regular file: a FIFO or a device would block or never end.
  rt::Expected<rt::InputFile> file =
      rt::openRegularFile(path.str(), "the model");
  if (!file)
    return makeError(file.status().message());
  auto buffer = llvm::MemoryBuffer::getOpenFile(
      fileno(file->file.get()), path, file->size,
      /*RequiresNullTerminator=*/false);
  if (!buffer)
    return makeError("cannot read the model '" + path +
                     "': " + buffer.getError().message());
  StringRef directory = llvm::sys::path::parent_path(path);
  llvm::Expected<std::unique_ptr<ONNXModel>> model = ONNXModel::parse(
      (*buffer)->getBuffer(), llvm::sys::path::filename(path).str(),
      directory.empty() ? "." : directory.str());
  if (!model)
    return makeError(path + ": " + llvm::toString(model.takeError()));
  return Importer(context, **model, options, path.str()).run();
}
