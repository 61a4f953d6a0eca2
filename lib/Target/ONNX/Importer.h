//===- Importer.h - ONNX graph to galvatron IR ------------------*- C++ -*-===//
//
// The state of one import: the ONNX tensors seen so far (IR values, contents
// known at import, weights not yet read), the function being built, and the
// node being converted. Op converters (ONNXOps.cpp) read their inputs and
// attributes through it and bind their outputs.
//
//===----------------------------------------------------------------------===//

#ifndef GALVATRON_LIB_TARGET_ONNX_IMPORTER_H
#define GALVATRON_LIB_TARGET_ONNX_IMPORTER_H

#include "HostTensor.h"
#include "ONNXModel.h"

#include "galvatron/Dialect/Galvatron/IR/GalvatronDialect.h"
#include "galvatron/Target/ONNX/ImportONNX.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/DenseSet.h"

#include <map>
#include <memory>

namespace mlir::galvatron::onnx_import {

/// An ONNX tensor as the importer knows it.
struct TensorValue {
  /// The IR value, once materialized.
  Value value;
  /// The contents, when known at import.
  std::shared_ptr<const HostTensor> constant;
  /// An initializer not read yet.
  const onnx::TensorProto *initializer = nullptr;
  /// For a weight that the exporter stored as the transpose of another
  /// initializer (torch folds `W^T` of `F.linear`), that initializer.
  const onnx::TensorProto *transposeOf = nullptr;
  /// For a weight, the parameter it is read as when that is not the
  /// initializer's name (see separateWeight).
  std::string parameter;
};

/// The static type of a tensor in ONNX terms.
struct ONNXTensorType {
  DType type;
  llvm::SmallVector<int64_t> shape;
};

/// The IR element type of an ONNX type, or null when the dialect has none.
Type getElementType(MLIRContext *context, DType type);
/// The ONNX type of an IR element type.
DType getDType(Type type);

class Importer;

/// Converts one ONNX op type. `constantOnly` ops have no run-time lowering.
struct OpConverter {
  LogicalResult (*convert)(Importer &importer);
  bool constantOnly;
  /// Inputs the op takes; the first `minInputs` must be given.
  int minInputs, maxInputs;
};
/// maxInputs of ops taking any number of (given) inputs.
constexpr int kVariadic = 1 << 20;
/// The converters by ONNX op type (default domain).
const llvm::StringMap<OpConverter> &getOpConverters();

class Importer {
public:
  Importer(MLIRContext *context, const ONNXModel &model,
           const ONNXImportOptions &options, std::string displayName);
  llvm::Expected<OwningOpRef<ModuleOp>> run();

  //===--------------------------------------------------------------------===//
  // The node being converted
  //===--------------------------------------------------------------------===//

  const onnx::NodeProto &node() const { return *currentNode; }
  Location loc() const { return currentLoc; }
  /// Records an error about the current node; always returns failure.
  LogicalResult fail(const llvm::Twine &message);
  LogicalResult fail(llvm::Error error);

  int numInputs() const { return node().input_size(); }
  /// Whether optional input `index` is given.
  bool hasInput(int index) const {
    return index < numInputs() && !node().input(index).empty();
  }
  /// The type of input `index` (which must be given).
  FailureOr<ONNXTensorType> inputType(int index);
  /// Input `index` as an IR value (materializing constants and weights).
  FailureOr<Value> input(int index);
  /// The contents of input `index` when known at import, else null.
  FailureOr<const HostTensor *> constantInput(int index);
  /// Input `index`, which must be known at import (`what` names it in the
  /// error).
  FailureOr<const HostTensor *> requireConstant(int index,
                                                llvm::StringRef what);
  /// A 1-D (or scalar) integer input known at import, as a vector.
  FailureOr<llvm::SmallVector<int64_t>> requireInts(int index,
                                                    llvm::StringRef what);
  /// Whether every given input is known at import.
  FailureOr<bool> allInputsConstant();

  const onnx::AttributeProto *attribute(llvm::StringRef name) const;
  FailureOr<int64_t> intAttribute(llvm::StringRef name, int64_t fallback);
  FailureOr<double> floatAttribute(llvm::StringRef name, double fallback);
  FailureOr<llvm::SmallVector<int64_t>> intsAttribute(llvm::StringRef name);
  FailureOr<std::string> stringAttribute(llvm::StringRef name,
                                         llvm::StringRef fallback);
  /// A TENSOR attribute's contents, or null when absent.
  FailureOr<std::shared_ptr<const HostTensor>>
  tensorAttribute(llvm::StringRef name);

  /// Binds output `index` of the current node.
  void setOutput(int index, Value value);
  void setOutput(int index, HostTensor contents);
  void setOutput(int index, llvm::Expected<HostTensor> contents);
  /// Binds output `index` to the same tensor as input `inputIndex`.
  void aliasOutput(int index, int inputIndex);
  /// torch.onnx keeps one of several initializers with equal values (a
  /// fresh model's LayerNorm scales, its zero biases) and reads the others
  /// through Identity nodes named like the parameters they stand for; the
  /// source model's real ties read one initializer directly. Makes output
  /// `index`, when it is such an alias of a weight, a parameter of its own
  /// named like the output.
  void separateWeight(int index);

  //===--------------------------------------------------------------------===//
  // Building IR
  //===--------------------------------------------------------------------===//

  MLIRContext *getContext() { return context; }
  OpBuilder &getBuilder() { return builder; }

  /// Creates and verifies an op at the current node; infers the result
  /// types when `resultTypes` is empty (ops with InferTypeOpInterface).
  /// Diagnostics become the node's error instead of aborting.
  template <typename OpTy>
  FailureOr<Operation *>
  createOp(ValueRange operands, llvm::ArrayRef<NamedAttribute> attributes = {},
           TypeRange resultTypes = {}) {
    OperationState state(currentLoc, OpTy::getOperationName());
    OpTy::build(builder, state, resultTypes, operands, attributes);
    // The generic builder leaves default-valued attributes unset.
    if constexpr (!std::is_same_v<typename OpTy::Properties, EmptyProperties>)
      state.name.populateDefaultProperties(
          &state.getOrAddProperties<typename OpTy::Properties>());
    if (resultTypes.empty()) {
      if constexpr (OpTy::template hasTrait<InferTypeOpInterface::Trait>()) {
        llvm::SmallVector<Type> inferred;
        if (failed(OpTy::inferReturnTypes(
                context, currentLoc, state.operands,
                state.attributes.getDictionary(context),
                state.getRawProperties(), state.regions, inferred)))
          return failure();
        state.addTypes(inferred);
      }
    }
    return finishOp(builder.create(state));
  }
  template <typename OpTy>
  FailureOr<Value> create(ValueRange operands,
                          llvm::ArrayRef<NamedAttribute> attributes = {},
                          TypeRange resultTypes = {}) {
    FailureOr<Operation *> op =
        createOp<OpTy>(operands, attributes, resultTypes);
    if (failed(op))
      return failure();
    return (*op)->getResult(0);
  }

  FailureOr<Value> reshape(Value input, llvm::ArrayRef<int64_t> shape);
  FailureOr<Value> transpose(Value input, llvm::ArrayRef<int64_t> perm);
  FailureOr<Value> broadcast(Value input, llvm::ArrayRef<int64_t> shape);
  FailureOr<Value> slice(Value input, const SliceSpec &spec);
  FailureOr<Value> castTo(Value input, Type elementType);
  /// A scalar (rank-0) constant of `elementType`.
  FailureOr<Value> scalar(double value, Type elementType);
  /// Emits IR producing `contents`: a galvatron.constant when small; a
  /// splat, broadcast or triangular mask when large but structured.
  FailureOr<Value> materialize(const HostTensor &contents);

private:
  FailureOr<Operation *> finishOp(Operation *op);
  /// The TensorValue of input `index`, checked to be defined.
  FailureOr<TensorValue *> lookupInput(int index);
  /// Reads the contents of an initializer that is not a weight.
  LogicalResult loadConstant(TensorValue &tensor);
  FailureOr<Value> materialize(TensorValue &tensor);
  /// The parameter `name` that holds `tensor`'s initial value.
  FailureOr<Value> readWeight(const onnx::TensorProto &tensor,
                              llvm::StringRef name);
  /// Float initializers with more than one element are weights, except
  /// buffers (findBuffers).
  bool isWeight(const onnx::TensorProto &tensor) const;
  /// Finds the float initializers that hold buffers, not weights: rotary
  /// cos/sin tables and additive masks, which no trained weight starts as.
  /// Their values become constants.
  void findBuffers();
  /// Merged vectors without Identity nodes (a graph optimizer removed
  /// them): a vector weight (a norm's scale, a bias) that nodes of several
  /// module scopes read directly cannot be a tie of the source model, which
  /// ties matrices (embeddings, heads) or reuses a whole module (one
  /// scope). Each scope other than the one the initializer is named after
  /// reads a parameter of its own, named by the scope and the
  /// initializer's role ("transformer.h.1.ln_2" + "weight").
  void findSharedVectors();
  FailureOr<Value> materializeTriangular(const HostTensor &contents,
                                         Type elementType);
  FailureOr<Value> materializeRotaryTable(const HostTensor &contents,
                                          const RotaryTablePattern &table);

  LogicalResult declareInputs(llvm::SmallVectorImpl<Type> &types,
                              llvm::SmallVectorImpl<std::string> &names);
  LogicalResult resolveInputShape(const onnx::ValueInfoProto &input,
                                  llvm::SmallVectorImpl<int64_t> &shape);
  void findTransposedCopies();
  LogicalResult convertNode(const onnx::NodeProto &node, int index);
  LogicalResult bindOutputs(llvm::SmallVectorImpl<Value> &results,
                            llvm::SmallVectorImpl<std::string> &names);
  std::string describeNode() const;
  /// `name` (a node, initializer, graph input or output) in the model file:
  /// loc("NAME"("FILE":0:0)).
  Location locate(llvm::StringRef name) const;

  MLIRContext *context;
  const ONNXModel &model;
  const ONNXImportOptions &options;
  std::string displayName;
  OpBuilder builder;
  OwningOpRef<ModuleOp> module;
  func::FuncOp function;
  llvm::StringMap<TensorValue> tensors;
  /// Parameter name -> declared parameter symbol.
  llvm::StringMap<std::string> parameterSymbols;
  /// Initializers findBuffers found to be buffers.
  llvm::DenseSet<const onnx::TensorProto *> buffers;
  /// The uses (node index, input position) of a weight that read a
  /// parameter of their own (findSharedVectors), and those parameters.
  std::map<std::pair<int, int>, std::string> separateUses;
  llvm::StringMap<TensorValue> separated;
  const onnx::NodeProto *currentNode = nullptr;
  int currentIndex = -1;
  /// The model file, which has no line and column to point at.
  Location fileLoc;
  /// Where the ops being created come from: the node, or the graph input,
  /// initializer or output they stand for (locate).
  Location currentLoc;
  std::string error;
  /// The first error diagnostic MLIR emitted while converting a node.
  std::string diagnostic;
};

} // namespace mlir::galvatron::onnx_import

#endif // GALVATRON_LIB_TARGET_ONNX_IMPORTER_H
